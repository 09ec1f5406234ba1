import type { AdmissionPolicy } from "../admission/policy.js";
import type { Grant } from "../admission/grant.js";
import type { PeerEvidence } from "../admission/locality.js";
import type { Clock, Random } from "../clock.js";
import type { ParsedPublicKey } from "../identity/device-key.js";
import type { MethodServices } from "../methods/define-method.js";
import type { MethodRegistry } from "../methods/registry.js";
import type { IssuedToken } from "../pairing/effects.js";
import type { PairingLimits } from "../pairing/limits.js";
import type { DeviceReadCachingStore } from "../store/device-read-cache.js";
import type { FailedAuthLimiter } from "./failed-auth-limiter.js";
import type { GatewayMetrics } from "./metrics.js";
import type { TransportLimits } from "./limits.js";
import type { AuditLog } from "./audit.js";
import type { Logger } from "./logger.js";
import type { RecentRevocations } from "./revocations.js";
import type { SessionRegistry } from "./session-registry.js";
import type { HandshakeDeadlines } from "./handshake-deadlines.js";
import type { WebSocket } from "ws";
import type { UpstreamRelay } from "../relay/upstream-relay.js";
import type { ListEntry } from "./linked-list.js";

/** What a connection needs from the gateway that owns it. */
export interface GatewayRuntime {
  readonly store: DeviceReadCachingStore;
  readonly clock: Clock;
  readonly random: Random;
  readonly logger: Logger;
  /** One line per admission decision. */
  readonly audit: AuditLog;
  readonly limits: TransportLimits;
  readonly pairingLimits: PairingLimits;
  readonly limiter: FailedAuthLimiter;
  /** Set when metrics are served (`metrics.port`). */
  readonly metrics: GatewayMetrics | undefined;
  readonly sessions: SessionRegistry;
  /** Revocations applied lately, for handshakes that decided before them. */
  readonly revocations: RecentRevocations;
  readonly methods: MethodRegistry;
  readonly services: MethodServices;
  readonly parseKey: (text: string) => ParsedPublicKey | undefined;
  policy(): AdmissionPolicy;
  /** Upstream mode: the OpenClaw gateway behind gatewarden. */
  readonly relay: UpstreamRelay | undefined;
  /**
   * Why nothing new may be admitted now, or `undefined`: the store's file was
   * deleted or replaced under the running gateway (for good), or a shared
   * store cannot tell this instance of commits (until it can again).
   */
  storeUnavailable(): { readonly reason: string; readonly retryAfterMs: number } | undefined;
  /** Count a failed authentication of a presented secret (shared with other instances where the store shares them). */
  recordAuthFailure(limiterKey: string): void;
  limiterExempt(peer: PeerEvidence): boolean;
  storeChanged(): void;
  /** The hello-ok payload for a new session, as JSON text. */
  helloOkJson(input: { protocol: number; connId: string; grant: Grant; issued: IssuedToken | undefined }): string;
  /** Unauthenticated sockets' deadlines. */
  readonly handshakeDeadlines: HandshakeDeadlines;
  /** A socket's handshake ended (admitted or closed): release its unauthenticated-socket budget. Once per socket. */
  preauthEnded(budgetKey: string): void;
  /** A socket this gateway accepted has closed: release what it held. */
  connectionClosed(budgetKey: string, openEntry?: ListEntry<WebSocket>): void;
}
