// Every bound of the transport in one place, with safe defaults (docs/configuration.md).

export interface TransportLimits {
  /** Largest frame before `connect` succeeds (spec §1: 64 KiB). */
  readonly maxPreauthPayloadBytes: number;
  /** Largest frame on an admitted session; reported in hello-ok.policy.maxPayload. */
  readonly maxPayloadBytes: number;
  /** A socket that has not completed `connect` by then is closed (1000). */
  readonly handshakeTimeoutMs: number;
  /** Sockets per client IP that have not completed `connect` (excess: HTTP 503). */
  readonly maxPreauthPerIp: number;
  /** Open sockets per client IP, admitted or not. */
  readonly maxConnectionsPerIp: number;
  /** Open sockets in total. */
  readonly maxConnections: number;
  /** Requests one session may have in flight at once. */
  readonly maxInflightPerSession: number;
  /** Outbound bytes buffered for a socket before it is closed as a slow consumer (replies, events and pongs alike). */
  readonly maxBufferedBytes: number;
  readonly tickIntervalMs: number;
  /** After the server starts closing a socket (revocation, slow consumer, …), how long the peer has to answer the close before the socket is cut. */
  readonly closeGraceMs: number;
  /** TCP connections per client address that have not finished their HTTP upgrade (excess: destroyed). */
  readonly maxUpgradingPerIp: number;
  /** A TCP connection that has not finished its HTTP upgrade by then is destroyed. */
  readonly upgradeTimeoutMs: number;
}

export const DEFAULT_TRANSPORT_LIMITS: TransportLimits = {
  maxPreauthPayloadBytes: 64 * 1024,
  maxPayloadBytes: 1024 * 1024,
  handshakeTimeoutMs: 10_000,
  maxPreauthPerIp: 32,
  maxConnectionsPerIp: 4096,
  maxConnections: 20_000,
  maxInflightPerSession: 32,
  maxBufferedBytes: 8 * 1024 * 1024,
  tickIntervalMs: 30_000,
  closeGraceMs: 1000,
  maxUpgradingPerIp: 32,
  upgradeTimeoutMs: 10_000,
};

export interface RateLimitOptions {
  /** Failed authentications per key within `windowMs` that lock the key. */
  readonly maxFailures: number;
  readonly windowMs: number;
  readonly lockoutMs: number;
  /** Loopback peers are limited too unless this is set. */
  readonly exemptLoopback: boolean;
  /** Keys tracked at most (oldest forgotten first), so a spray of IPs cannot grow memory. */
  readonly maxKeys: number;
}

export const DEFAULT_RATE_LIMIT: RateLimitOptions = {
  maxFailures: 10,
  windowMs: 60_000,
  lockoutMs: 300_000,
  exemptLoopback: false,
  maxKeys: 65_536,
};
