import { WebSocket, type RawData } from "ws";
import type { Role } from "../protocol/enums.js";
import { buildV3Payload } from "../identity/signature-payload.js";
import type { UpstreamSigner } from "./upstream-identity.js";

// One WebSocket session with the upstream OpenClaw gateway, as a client of
// the protocol: wait for the challenge, sign it with gatewarden's own device
// key, connect, then requests with ids and a bounded wait, and events. Every
// wait is bounded and every frame size too; nothing here decides a grant.

/** The error object of a refused request or connect, as the upstream sent it. */
export interface UpstreamError {
  readonly code: string;
  readonly message: string;
  readonly details?: Readonly<Record<string, unknown>>;
  readonly retryable?: boolean;
  readonly retryAfterMs?: number;
}

export interface ResponseFrame {
  readonly type: "res";
  readonly id: string;
  readonly ok: boolean;
  readonly payload?: unknown;
  readonly error?: UpstreamError;
}

/** A response, and its text after the id where the upstream wrote the id first (see requestRaw). */
export interface RawResponse {
  readonly frame: ResponseFrame;
  readonly afterId: string | undefined;
}

export interface EventFrame {
  readonly type: "event";
  readonly event: string;
  readonly payload?: unknown;
  readonly seq?: number;
  readonly stateVersion?: unknown;
}

export interface UpstreamClientLabel {
  readonly id: string;
  readonly mode: string;
  readonly version: string;
  readonly platform: string;
  readonly displayName?: string;
}

export interface UpstreamConnectOptions {
  readonly url: string;
  readonly signer: UpstreamSigner;
  readonly role: Role;
  readonly scopes: readonly string[];
  /** The upstream's shared token (pairing) or the device token it issued to gatewarden. */
  readonly auth: { readonly token: string } | { readonly deviceToken: string };
  readonly client?: UpstreamClientLabel;
  /** Bounds the challenge, the connect reply, and each later request unless it names its own. */
  readonly timeoutMs?: number;
  /** Largest frame accepted from the upstream. */
  readonly maxPayloadBytes?: number;
  /** Bytes that may wait to be sent to an upstream that is not reading; past them a request is refused retryably. */
  readonly maxBufferedBytes?: number;
}

export type UpstreamConnectResult =
  | { readonly ok: true; readonly link: UpstreamLink; readonly hello: Readonly<Record<string, unknown>> }
  | { readonly ok: false; readonly error: UpstreamError; readonly unreachable: boolean };

const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_MAX_PAYLOAD = 25 * 1024 * 1024;
const DEFAULT_MAX_BUFFERED = 8 * 1024 * 1024;
// Plain CLI labels: "gateway-client"/"backend" would ask 2026.4.24 for its pairing skip (#72418), which gatewarden never relies on.
const DEFAULT_CLIENT: UpstreamClientLabel = { id: "cli", mode: "cli", version: "gatewarden", platform: process.platform };

function parse(data: RawData): Record<string, unknown> | undefined {
  return parseText(data.toString());
}

function parseText(text: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(text);
    return v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function unreachable(message: string): UpstreamConnectResult {
  return { ok: false, unreachable: true, error: { code: "UNAVAILABLE", message } };
}

export class UpstreamLink {
  private seq = 0;
  private readonly pending = new Map<string, { resolve: (r: RawResponse) => void; timer: NodeJS.Timeout }>();
  private eventListener: ((e: EventFrame) => void) | undefined;
  private closeListeners: ((code: number, reason: string) => void)[] = [];
  closed = false;

  private constructor(
    private readonly ws: WebSocket,
    private readonly timeoutMs: number,
    private readonly maxBufferedBytes: number,
  ) {
    ws.on("message", (data) => {
      const text = data.toString();
      this.onFrame(parseText(text), text);
    });
    ws.on("close", (code, reason) => this.handleClose(code, reason.toString()));
  }

  /** Connect and authenticate; resolves with the link, or the upstream's refusal. Never throws. */
  static open(opts: UpstreamConnectOptions): Promise<UpstreamConnectResult> {
    const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    return new Promise((resolve) => {
      let settled = false;
      const ws = new WebSocket(opts.url, { maxPayload: opts.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD, handshakeTimeout: timeoutMs, perMessageDeflate: false });
      const done = (r: UpstreamConnectResult): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (!r.ok) ws.terminate();
        resolve(r);
      };
      const timer = setTimeout(() => done(unreachable(`upstream ${opts.url} did not complete the handshake within ${timeoutMs} ms`)), timeoutMs);
      ws.on("error", (e) => done(unreachable(`upstream ${opts.url} unreachable: ${e.message}`)));
      ws.on("close", (code, reason) => done(unreachable(`upstream closed the connection during the handshake (${code} ${reason.toString().slice(0, 120)})`)));
      const onFirst = (data: RawData): void => {
        const f = parse(data);
        if (!f) return;
        if (f.type === "event" && f.event === "connect.challenge") {
          const nonce = (f.payload as { nonce?: unknown } | undefined)?.nonce;
          if (typeof nonce !== "string") return done(unreachable("upstream sent a challenge without a nonce"));
          ws.send(JSON.stringify({ type: "req", id: "connect", method: "connect", params: connectParams(opts, nonce) }));
          return;
        }
        if (f.type === "res" && f.id === "connect") {
          ws.off("message", onFirst);
          if (f.ok !== true) {
            const error = (f.error as UpstreamError | undefined) ?? { code: "UNAVAILABLE", message: "upstream refused the connect" };
            return done({ ok: false, unreachable: false, error });
          }
          ws.removeAllListeners("close");
          ws.removeAllListeners("error");
          ws.on("error", () => undefined);
          const link = new UpstreamLink(ws, timeoutMs, opts.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED);
          done({ ok: true, link, hello: (f.payload as Record<string, unknown> | undefined) ?? {} });
        }
      };
      ws.on("message", onFirst);
    });
  }

  /** One request; resolves with the upstream's response, or a synthetic UNAVAILABLE one on timeout or close. */
  async request(method: string, params?: unknown, timeoutMs = this.timeoutMs): Promise<ResponseFrame> {
    return (await this.requestRaw(method, params, timeoutMs)).frame;
  }

  /**
   * As request(), also with the response's text after its id when the
   * upstream wrote `{"type":"res","id":"<ours>",` first (it does): a relay
   * then writes the client's id before that text instead of serializing the
   * payload again. The text is the upstream's own, parsed as valid JSON.
   */
  requestRaw(method: string, params?: unknown, timeoutMs = this.timeoutMs): Promise<RawResponse> {
    const id = `gw${++this.seq}`;
    if (this.closed) return Promise.resolve(this.unavailable(id, "upstream session closed"));
    // An upstream that stops reading never makes gatewarden hold more than this for it.
    if (this.ws.bufferedAmount > this.maxBufferedBytes) return Promise.resolve(this.unavailable(id, "upstream is not taking requests; retry"));
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        resolve(this.unavailable(id, `upstream did not answer ${method.slice(0, 128)} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve, timer });
      this.ws.send(JSON.stringify({ type: "req", id, method, ...(params !== undefined ? { params } : {}) }));
    });
  }

  onEvent(listener: (e: EventFrame) => void): void {
    this.eventListener = listener;
  }

  onClose(listener: (code: number, reason: string) => void): void {
    if (this.closed) listener(1006, "closed");
    else this.closeListeners.push(listener);
  }

  /** Bytes queued towards the upstream, for back-pressure. */
  get bufferedAmount(): number {
    return this.ws.bufferedAmount;
  }

  close(code = 1000, reason = ""): void {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close(code, reason);
    // A peer that never answers the close handshake is cut.
    setTimeout(() => this.ws.terminate(), 2000).unref();
  }

  /** A synthetic retryable refusal, for a request the upstream will not answer. */
  private unavailable(id: string, message: string): RawResponse {
    return { frame: { type: "res", id, ok: false, error: { code: "UNAVAILABLE", message, retryable: true, retryAfterMs: 1000 } }, afterId: undefined };
  }


  private onFrame(f: Record<string, unknown> | undefined, text: string): void {
    if (!f) return;
    if (f.type === "res" && typeof f.id === "string") {
      const waiter = this.pending.get(f.id);
      if (!waiter) return;
      this.pending.delete(f.id);
      clearTimeout(waiter.timer);
      const head = `{"type":"res","id":"${f.id}",`;
      waiter.resolve({ frame: f as unknown as ResponseFrame, afterId: text.startsWith(head) ? text.slice(head.length) : undefined });
    } else if (f.type === "event" && typeof f.event === "string") {
      this.eventListener?.(f as unknown as EventFrame);
    }
  }

  private handleClose(code: number, reason: string): void {
    this.closed = true;
    for (const [id, waiter] of this.pending) {
      clearTimeout(waiter.timer);
      waiter.resolve(this.unavailable(id, `upstream session closed (${code})`));
    }
    this.pending.clear();
    const listeners = this.closeListeners;
    this.closeListeners = [];
    for (const l of listeners) l(code, reason);
  }
}

function connectParams(opts: UpstreamConnectOptions, nonce: string): Record<string, unknown> {
  const client = opts.client ?? DEFAULT_CLIENT;
  const auth = "token" in opts.auth ? { token: opts.auth.token } : { deviceToken: opts.auth.deviceToken };
  const token = "token" in opts.auth ? opts.auth.token : opts.auth.deviceToken;
  const signedAtMs = Date.now();
  const payload = buildV3Payload({
    deviceId: opts.signer.deviceId,
    clientId: client.id,
    clientMode: client.mode,
    role: opts.role,
    scopes: opts.scopes,
    signedAtMs,
    token,
    nonce,
    platform: client.platform,
    deviceFamily: undefined,
  });
  return {
    minProtocol: 3,
    maxProtocol: 4,
    client: { id: client.id, version: client.version, platform: client.platform, mode: client.mode, ...(client.displayName ? { displayName: client.displayName } : {}) },
    role: opts.role,
    scopes: [...opts.scopes],
    auth,
    device: { id: opts.signer.deviceId, publicKey: opts.signer.publicKey, signature: opts.signer.sign(payload), signedAt: signedAtMs, nonce },
  };
}
