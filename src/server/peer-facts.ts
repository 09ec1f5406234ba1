import type { IncomingMessage } from "node:http";
import type { RawPeerFacts } from "../admission/locality.js";

type Headers = IncomingMessage["headers"];

function header(headers: Headers, name: string): string | undefined {
  const v = headers[name];
  if (Array.isArray(v)) return v.join(", ");
  return v;
}

/** What the upgrade request shows, unjudged. Admission decides what any of it is worth. */
const NO_HEADERS: Readonly<Record<string, string>> = Object.freeze({});

export function rawPeerFacts(req: IncomingMessage, proxyHeaderNames: readonly string[]): RawPeerFacts {
  // Node builds `req.headers` on first read; read it once, and each header once.
  const headers = req.headers;
  let proxyHeaders = NO_HEADERS;
  if (proxyHeaderNames.length > 0) {
    const found: Record<string, string> = {};
    for (const name of proxyHeaderNames) {
      const v = header(headers, name);
      if (v !== undefined) found[name] = v.slice(0, 1024);
    }
    proxyHeaders = found;
  }
  const forwardedFor = header(headers, "x-forwarded-for");
  const realIp = header(headers, "x-real-ip");
  const forwarded = header(headers, "forwarded");
  return {
    remoteAddress: req.socket.remoteAddress ?? "",
    forwardedFor: forwardedFor?.slice(0, 4096),
    realIp: realIp?.slice(0, 256),
    forwarded: forwarded?.slice(0, 4096),
    hasForwardingHeaders:
      forwardedFor !== undefined || realIp !== undefined || forwarded !== undefined || headers["x-forwarded-proto"] !== undefined || headers["x-forwarded-host"] !== undefined,
    origin: header(headers, "origin"),
    host: header(headers, "host"),
    proxyHeaders,
  };
}
