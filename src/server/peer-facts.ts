import type { IncomingMessage } from "node:http";
import type { RawPeerFacts } from "../admission/locality.js";

const FORWARDING = ["forwarded", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-real-ip"] as const;

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  if (Array.isArray(v)) return v.join(", ");
  return v;
}

/** What the upgrade request shows, unjudged. Admission decides what any of it is worth. */
const NO_HEADERS: Readonly<Record<string, string>> = Object.freeze({});

export function rawPeerFacts(req: IncomingMessage, proxyHeaderNames: readonly string[]): RawPeerFacts {
  let proxyHeaders = NO_HEADERS;
  if (proxyHeaderNames.length > 0) {
    const found: Record<string, string> = {};
    for (const name of proxyHeaderNames) {
      const v = header(req, name);
      if (v !== undefined) found[name] = v.slice(0, 1024);
    }
    proxyHeaders = found;
  }
  return {
    remoteAddress: req.socket.remoteAddress ?? "",
    forwardedFor: header(req, "x-forwarded-for")?.slice(0, 4096),
    realIp: header(req, "x-real-ip")?.slice(0, 256),
    forwarded: header(req, "forwarded")?.slice(0, 4096),
    hasForwardingHeaders: FORWARDING.some((h) => req.headers[h] !== undefined),
    origin: header(req, "origin"),
    host: header(req, "host"),
    proxyHeaders,
  };
}
