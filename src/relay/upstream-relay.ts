import type { Grant } from "../admission/grant.js";
import { GatewayError } from "../protocol/gateway-error.js";
import { tableFor } from "./relay-authorize.js";
import { errorForClient } from "./translate-error.js";
import type { UpstreamCredentials, UpstreamSigner } from "./upstream-identity.js";
import { UpstreamLink, type EventFrame, type UpstreamClientLabel } from "./upstream-link.js";
import { OPENCLAW_2026_4_24, OPENCLAW_2026_9_6, type UpstreamMethodTable } from "./upstream-method-tables.js";
import type { WireError } from "../protocol/gateway-error.js";

// Upstream mode: the OpenClaw gateway behind gatewarden, and one upstream
// session per admitted client session, signed by gatewarden's own key with
// the device token the upstream issued to it, asking for exactly the client
// session's effective scopes.

export const UPSTREAM_TABLES: readonly UpstreamMethodTable[] = [OPENCLAW_2026_4_24, OPENCLAW_2026_9_6];

export interface UpstreamTarget {
  readonly credentials: UpstreamCredentials;
  readonly signer: UpstreamSigner;
  readonly connectTimeoutMs: number;
  readonly requestTimeoutMs: number;
  /** Bytes a session's link may queue towards an upstream that is not reading (the client side has its own bound). */
  readonly maxBufferedBytes: number;
}

export interface UpstreamInfo {
  readonly table: UpstreamMethodTable;
  readonly protocol: number;
  readonly serverVersion: string | undefined;
  /** What the upstream advertises in hello-ok.features. */
  readonly methods: readonly string[];
  readonly events: readonly string[];
  /** The upstream's protocol-4 capabilities for the contracts gatewarden relays (node-worker ones are not: nodes are not relayed). */
  readonly capabilities: readonly string[];
}

function unavailable(message: string): GatewayError {
  return new GatewayError({ code: "UNAVAILABLE", detailCode: "UPSTREAM_UNAVAILABLE", message, retryable: true, retryAfterMs: 2000, close: { code: 1013 } });
}

function stringList(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];
}

/** Client ids and modes the upstream treats as a browser page (it then checks the page's Origin itself). */
const BROWSER_CLIENT_IDS = new Set(["openclaw-control-ui", "webchat-ui", "webchat"]);
const BROWSER_CLIENT_MODES = new Set(["webchat", "ui"]);

/**
 * How a client session is labelled towards the upstream. The upstream's
 * session is gatewarden's, never a browser's: gatewarden already checked the
 * browser's Origin, and the upstream would refuse a browser label that comes
 * with no Origin (measured on 2026.9.6: "origin not allowed"). So a browser
 * client (the Control UI, webchat) is labelled as a CLI there; its version
 * and display name are kept.
 */
export function upstreamLabel(label: UpstreamClientLabel): UpstreamClientLabel {
  // The platform is pinned to the paired device upstream (another one asks for a new approval):
  // it is gatewarden's own, whatever the client runs on.
  const own = { ...label, platform: process.platform };
  if (!BROWSER_CLIENT_IDS.has(label.id) && !BROWSER_CLIENT_MODES.has(label.mode)) return own;
  return { ...own, id: "cli", mode: "cli" };
}

/** A relayed request's outcome, in the client's protocol. */
export type RelayReply =
  /** `afterId`: the upstream's response text after its id, to be written after the client's id unchanged. */
  | { readonly ok: true; readonly payload: unknown; readonly afterId: string | undefined }
  | { readonly ok: false; readonly error: WireError };

/** One client session's upstream session. */
export class RelaySession {
  constructor(
    private readonly link: UpstreamLink,
    private readonly clientProtocol: number,
    private readonly requestTimeoutMs: number,
    private readonly relay: UpstreamRelay,
  ) {
    relay.openSessions++;
    let counted = true;
    link.onClose(() => {
      if (counted) relay.openSessions--;
      counted = false;
    });
  }

  /** Relay one request, params untouched; the reply (or error) in the client's protocol. */
  async request(method: string, params: unknown): Promise<RelayReply> {
    const { frame: res, afterId } = await this.link.requestRaw(method, params, this.requestTimeoutMs);
    if (res.ok) return { ok: true, payload: res.payload, afterId };
    this.relay.onError?.(res.error?.code === "UNAVAILABLE" ? "unavailable" : "refused");
    return { ok: false, error: errorForClient(res.error ?? { code: "UNAVAILABLE", message: "upstream error" }, this.clientProtocol) };
  }

  onEvent(listener: (e: EventFrame) => void): void {
    this.link.onEvent(listener);
  }

  onClose(listener: (code: number, reason: string) => void): void {
    this.link.onClose(listener);
  }

  get bufferedAmount(): number {
    return this.link.bufferedAmount;
  }

  close(): void {
    this.link.close(1000, "client session closed");
  }
}

export class UpstreamRelay {
  /** Upstream sessions open now (metrics). */
  openSessions = 0;
  /** Told of each relayed request or upstream session that failed (metrics). */
  onError: ((kind: "unavailable" | "refused") => void) | undefined;

  private constructor(
    private readonly target: UpstreamTarget,
    readonly info: UpstreamInfo,
  ) {}

  /** The upstream's WebSocket URL. */
  get url(): string {
    return this.target.credentials.url;
  }

  /**
   * Reach the upstream once with gatewarden's own identity: learn its release
   * (which method table applies) and what it advertises. Refuses to start in
   * front of an upstream that does not admit gatewarden, or whose release
   * speaks a protocol gatewarden has no table for.
   */
  static async connect(target: UpstreamTarget): Promise<UpstreamRelay> {
    const r = await UpstreamLink.open({
      url: target.credentials.url,
      signer: target.signer,
      role: "operator",
      scopes: target.credentials.scopes,
      auth: { deviceToken: target.credentials.deviceToken },
      timeoutMs: target.connectTimeoutMs,
    });
    if (!r.ok) {
      throw new Error(
        r.unreachable
          ? `${r.error.message} (is the OpenClaw gateway running?)`
          : `the upstream ${target.credentials.url} refused gatewarden's device: ${r.error.message}; pair again with \`gatewarden upstream pair\``,
      );
    }
    r.link.close();
    const server = (r.hello.server ?? {}) as { version?: unknown };
    const features = (r.hello.features ?? {}) as { methods?: unknown; events?: unknown; capabilities?: unknown };
    const protocol = typeof r.hello.protocol === "number" ? r.hello.protocol : 3;
    const serverVersion = typeof server.version === "string" ? server.version : undefined;
    const table = tableFor(UPSTREAM_TABLES, serverVersion, protocol);
    if (!table) throw new Error(`the upstream speaks protocol ${protocol} (OpenClaw ${serverVersion ?? "unknown"}), for which gatewarden has no method table`);
    return new UpstreamRelay(target, {
      table,
      protocol,
      serverVersion,
      methods: stringList(features.methods),
      events: stringList(features.events),
      capabilities: stringList(features.capabilities).filter((c) => !c.startsWith("node-")),
    });
  }

  /**
   * The upstream session for an admitted client session, or why there is
   * none: then the client is not admitted (no hello-ok without a working
   * upstream session). Node-role clients are not relayed: the upstream would
   * take gatewarden's own device for the node.
   */
  async openSession(grant: Grant, label: UpstreamClientLabel, clientProtocol: number): Promise<{ ok: true; session: RelaySession } | { ok: false; error: GatewayError }> {
    if (grant.role !== "operator") {
      return {
        ok: false,
        error: new GatewayError({
          code: "INVALID_REQUEST",
          detailCode: "INVALID_ROLE",
          message: "invalid role: in front of an OpenClaw gateway, gatewarden relays operator sessions only (connect nodes to the upstream directly)",
          close: { code: 1008 },
        }),
      };
    }
    const { credentials, signer } = this.target;
    const r = await UpstreamLink.open({
      url: credentials.url,
      signer,
      role: "operator",
      // Never more than gatewarden's own upstream identity was approved for: the upstream would
      // answer a scope beyond it with a pairing request for gatewarden's device (2026.9.6's
      // operator.questions, which 2026.4.24 does not know and `upstream pair` does not ask for).
      scopes: grant.scopes.filter((s) => credentials.scopes.includes(s)),
      auth: { deviceToken: credentials.deviceToken },
      client: label,
      timeoutMs: this.target.connectTimeoutMs,
      maxBufferedBytes: this.target.maxBufferedBytes,
    });
    if (!r.ok) {
      this.onError?.(r.unreachable ? "unavailable" : "refused");
      return { ok: false, error: unavailable(r.unreachable ? "upstream unavailable; retry" : `upstream refused the session: ${r.error.message}`) };
    }
    return { ok: true, session: new RelaySession(r.link, clientProtocol, this.target.requestTimeoutMs, this) };
  }
}
