import ipaddr from "ipaddr.js";

// Where a peer is, from the socket. Forwarding headers are read only when the
// TCP peer is a configured trusted proxy; otherwise they are ignored for
// identity, but their presence still makes the connection non-local.

/** What the transport saw on the upgrade request: raw, unverified headers included. */
export interface RawPeerFacts {
  readonly remoteAddress: string;
  readonly forwardedFor: string | undefined;
  readonly realIp: string | undefined;
  readonly forwarded: string | undefined;
  readonly hasForwardingHeaders: boolean;
  readonly origin: string | undefined;
  readonly host: string | undefined;
  /** Headers a trusted-proxy auth policy may read (lowercased names). */
  readonly proxyHeaders: Readonly<Record<string, string>>;
}

export type Locality = "direct_local" | "remote";

export interface PeerEvidence {
  /** Canonical TCP peer (IPv4-mapped IPv6 unmapped). */
  readonly remoteAddress: string;
  /** The client address used for limits and records; forwarded only via a trusted proxy. */
  readonly clientIp: string;
  readonly viaTrustedProxy: boolean;
  readonly locality: Locality;
  readonly origin: string | undefined;
  readonly host: string | undefined;
  readonly proxyHeaders: Readonly<Record<string, string>>;
}

export type Cidr = [ipaddr.IPv4 | ipaddr.IPv6, number];

export function parseCidrs(list: readonly string[]): Cidr[] {
  return list.map((entry) => {
    const text = entry.trim();
    if (text.includes("/")) return ipaddr.parseCIDR(text);
    const addr = ipaddr.parse(text);
    return [addr, addr.kind() === "ipv4" ? 32 : 128];
  });
}

/** Parse and unmap `::ffff:a.b.c.d`; `undefined` for anything that is not an IP. */
export function parseIp(text: string | undefined): ipaddr.IPv4 | ipaddr.IPv6 | undefined {
  if (!text) return undefined;
  let t = text.trim();
  if (t.startsWith("[") && t.endsWith("]")) t = t.slice(1, -1);
  const zone = t.indexOf("%");
  if (zone >= 0) t = t.slice(0, zone);
  if (!ipaddr.isValid(t)) return undefined;
  // ipaddr accepts "127.1" and octal forms; only canonical dotted quads are IPv4 here.
  if (!t.includes(":") && !ipaddr.IPv4.isValidFourPartDecimal(t)) return undefined;
  const addr = ipaddr.parse(t);
  if (addr.kind() === "ipv6" && (addr as ipaddr.IPv6).isIPv4MappedAddress()) {
    return (addr as ipaddr.IPv6).toIPv4Address();
  }
  return addr;
}

export function canonicalIp(text: string): string {
  return parseIp(text)?.toString() ?? text;
}

export function isLoopback(text: string | undefined): boolean {
  const addr = parseIp(text);
  return addr !== undefined && addr.range() === "loopback";
}

export function inCidrs(text: string | undefined, cidrs: readonly Cidr[]): boolean {
  const addr = parseIp(text);
  if (!addr) return false;
  return addressInCidrs(addr, cidrs);
}

function addressInCidrs(addr: ipaddr.IPv4 | ipaddr.IPv6, cidrs: readonly Cidr[]): boolean {
  return cidrs.some(([net, bits]) => addr.kind() === net.kind() && addr.match([net, bits] as never));
}

/** Right-to-left over X-Forwarded-For, skipping trusted and loopback hops. */
function clientFromForwardedFor(header: string | undefined, trusted: readonly Cidr[]): string | undefined {
  if (!header) return undefined;
  const hops = header.split(",").map((h) => h.trim()).filter(Boolean);
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hops[i];
    const addr = parseIp(hop);
    if (!addr) return undefined; // a garbled chain is not evidence
    if (addr.range() === "loopback" || inCidrs(hop, trusted)) continue;
    return addr.toString();
  }
  return undefined;
}

/** Proxy headers from a peer that is not a trusted proxy: none, shared. */
const NO_PROXY_HEADERS: Readonly<Record<string, string>> = Object.freeze({});

/** What the TCP peer's address alone says: the same for every connection from it. */
export interface TcpPeer {
  /** Canonical text (IPv4-mapped IPv6 unmapped); the raw text if it is not an IP. */
  readonly remoteAddress: string;
  readonly loopback: boolean;
  readonly trustedProxy: boolean;
  readonly budgetKey: string;
}

export function classifyTcpPeer(text: string, trustedProxies: readonly Cidr[]): TcpPeer {
  // Parsed once: the canonical text re-parses to the same address, so this
  // equals canonicalIp + inCidrs + isLoopback + addressBudgetKey on it.
  const addr = parseIp(text);
  if (!addr) return { remoteAddress: text, loopback: false, trustedProxy: false, budgetKey: text };
  return {
    remoteAddress: addr.toString(),
    loopback: addr.range() === "loopback",
    trustedProxy: addressInCidrs(addr, trustedProxies),
    budgetKey: budgetKeyOf(addr),
  };
}

/**
 * Judge what the upgrade request showed. `tcp` is `classifyTcpPeer` of the
 * socket's address, which a caller may have kept from an earlier connection.
 */
export function resolvePeer(raw: RawPeerFacts, trustedProxies: readonly Cidr[], tcp: TcpPeer = classifyTcpPeer(raw.remoteAddress, trustedProxies)): PeerEvidence {
  const forwardedClient = tcp.trustedProxy ? clientFromForwardedFor(raw.forwardedFor, trustedProxies) : undefined;
  // A configured proxy's own connection is a proxied one whether or not it forwarded anything: never direct local.
  const locality: Locality = !raw.hasForwardingHeaders && tcp.loopback && !tcp.trustedProxy ? "direct_local" : "remote";
  return {
    remoteAddress: tcp.remoteAddress,
    clientIp: forwardedClient ?? tcp.remoteAddress,
    viaTrustedProxy: tcp.trustedProxy,
    locality,
    origin: raw.origin,
    host: raw.host,
    proxyHeaders: tcp.trustedProxy ? raw.proxyHeaders : NO_PROXY_HEADERS,
  };
}

/**
 * The key per-address budgets count under: an IPv4 address, or the /64 an
 * IPv6 address belongs to (one subscriber usually holds a whole /64, so keying
 * single IPv6 addresses would give a peer 2^64 budgets).
 */
export function addressBudgetKey(ip: string): string {
  const addr = parseIp(ip);
  return addr ? budgetKeyOf(addr) : ip;
}

function budgetKeyOf(addr: ipaddr.IPv4 | ipaddr.IPv6): string {
  if (addr.kind() === "ipv4") return addr.toString();
  const parts = (addr as ipaddr.IPv6).parts.slice(0, 4).map((p) => p.toString(16));
  return `${parts.join(":")}::/64`;
}
