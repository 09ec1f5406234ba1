import { isLoopback } from "./locality.js";
import type { PeerEvidence } from "./locality.js";

// The Origin header is the browser signal (cross-site WebSocket hijacking
// defence). A present Origin must be allowlisted exactly, or be a loopback
// page on a direct loopback connection.

export type OriginCheck = { ok: true } | { ok: false; reason: "origin missing or invalid" | "origin not allowed" };

function parseOrigin(origin: string): URL | undefined {
  const trimmed = origin.trim();
  if (trimmed.length === 0 || trimmed.toLowerCase() === "null") return undefined;
  try {
    const url = new URL(trimmed);
    if (url.protocol !== "http:" && url.protocol !== "https:") return undefined;
    // An Origin is scheme://host[:port] and nothing else.
    if (url.pathname !== "/" || url.search || url.hash || url.username || url.password) return undefined;
    if (trimmed.endsWith("/")) return undefined;
    return url;
  } catch {
    return undefined;
  }
}

function isLoopbackHostname(hostname: string): boolean {
  const h = hostname.replace(/\.+$/, "").toLowerCase();
  if (h === "localhost") return true;
  return isLoopback(h);
}

export function checkOrigin(peer: PeerEvidence, allowedOrigins: readonly string[]): OriginCheck {
  if (peer.origin === undefined) return { ok: false, reason: "origin missing or invalid" };
  const url = parseOrigin(peer.origin);
  if (!url) return { ok: false, reason: "origin missing or invalid" };
  const normalized = url.origin.toLowerCase();
  if (allowedOrigins.includes(normalized)) return { ok: true };
  if (peer.locality === "direct_local" && isLoopbackHostname(url.hostname)) return { ok: true };
  return { ok: false, reason: "origin not allowed" };
}

/** Normalize configured origins the way `checkOrigin` compares them; throws on a bad entry. */
export function normalizeAllowedOrigin(origin: string): string {
  const url = parseOrigin(origin);
  if (!url) throw new Error(`invalid allowed origin: ${origin}`);
  return url.origin.toLowerCase();
}
