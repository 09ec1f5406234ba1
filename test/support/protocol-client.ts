import WebSocket from "ws";
import { deviceProof, type SignatureVersion, type TestDevice } from "./device.js";

// A protocol client for tests that behaves like the official clients: waits for
// connect.challenge, signs the nonce with a real Ed25519 device key, and then
// correlates requests and responses by id.

export interface Frame {
  type: string;
  id?: string;
  ok?: boolean;
  payload?: unknown;
  error?: { code: string; message: string; details?: Record<string, unknown>; retryable?: boolean; retryAfterMs?: number };
  event?: string;
  seq?: number;
}

export interface ConnectOptions {
  device?: TestDevice;
  clientId?: string;
  clientMode?: string;
  role?: string;
  scopes?: string[];
  auth?: { token?: string; password?: string; deviceToken?: string; bootstrapToken?: string };
  platform?: string;
  deviceFamily?: string;
  displayName?: string;
  minProtocol?: number;
  maxProtocol?: number;
  signedAt?: number;
  signatureVersion?: SignatureVersion;
  /** Sign a different nonce than the challenge's (attack tests). */
  signNonce?: string;
  /** Rewrite the params after signing (attack tests). */
  tamper?: (params: Record<string, unknown>) => Record<string, unknown>;
}

export interface OpenOptions {
  headers?: Record<string, string>;
  localAddress?: string;
  /** Do not wait for the challenge (slowloris and raw-frame tests). */
  skipChallenge?: boolean;
}

export class TestClient {
  readonly frames: Frame[] = [];
  nonce = "";
  private waiters: { match: (f: Frame) => boolean; resolve: (f: Frame) => void }[] = [];
  private seq = 0;
  readonly closed: Promise<{ code: number; reason: string }>;

  private constructor(readonly ws: WebSocket) {
    this.closed = new Promise((resolve) => ws.on("close", (code, reason) => resolve({ code, reason: reason.toString() })));
    ws.on("error", () => undefined);
    ws.on("message", (data) => {
      let frame: Frame;
      try {
        frame = JSON.parse(data.toString()) as Frame;
      } catch {
        return;
      }
      this.frames.push(frame);
      const ready = this.waiters.filter((w) => w.match(frame));
      this.waiters = this.waiters.filter((w) => !w.match(frame));
      for (const w of ready) w.resolve(frame);
    });
  }

  static async open(url: string, opts: OpenOptions = {}): Promise<TestClient> {
    const ws = new WebSocket(url, { headers: opts.headers ?? {}, ...(opts.localAddress ? { localAddress: opts.localAddress } : {}) });
    const client = new TestClient(ws);
    const challenge = opts.skipChallenge ? undefined : client.waitFor((f) => f.type === "event" && f.event === "connect.challenge", 5000);
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("unexpected-response", (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
      ws.once("error", reject);
    });
    if (challenge) {
      const f = await challenge;
      client.nonce = (f.payload as { nonce: string }).nonce;
    }
    return client;
  }

  waitFor(match: (f: Frame) => boolean, timeoutMs = 5000): Promise<Frame> {
    const already = this.frames.find(match);
    if (already) return Promise.resolve(already);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error("timed out waiting for a frame")), timeoutMs);
      this.waiters.push({
        match,
        resolve: (f) => {
          clearTimeout(t);
          resolve(f);
        },
      });
    });
  }

  waitEvent(event: string, timeoutMs = 5000): Promise<Frame> {
    return this.waitFor((f) => f.type === "event" && f.event === event, timeoutMs);
  }

  buildConnect(o: ConnectOptions): Record<string, unknown> {
    const clientId = o.clientId ?? "cli";
    const clientMode = o.clientMode ?? "cli";
    const role = o.role ?? "operator";
    const scopes = o.scopes ?? [];
    const platform = o.platform ?? "linux";
    const auth = o.auth;
    const token = auth?.token ?? auth?.deviceToken ?? auth?.bootstrapToken ?? "";
    const signedAt = o.signedAt ?? Date.now();
    let params: Record<string, unknown> = {
      minProtocol: o.minProtocol ?? 3,
      maxProtocol: o.maxProtocol ?? 3,
      client: {
        id: clientId,
        version: "test",
        platform,
        mode: clientMode,
        ...(o.displayName ? { displayName: o.displayName } : {}),
        ...(o.deviceFamily ? { deviceFamily: o.deviceFamily } : {}),
      },
      role,
      scopes,
      ...(auth ? { auth } : {}),
    };
    if (o.device) {
      params.device = deviceProof(o.device, {
        clientId,
        clientMode,
        role,
        scopes,
        token,
        nonce: o.signNonce ?? this.nonce,
        platform,
        ...(o.deviceFamily ? { deviceFamily: o.deviceFamily } : {}),
        signedAt,
        version: o.signatureVersion ?? "v3",
      });
      if (o.signNonce) (params.device as Record<string, unknown>).nonce = o.signNonce;
    }
    if (o.tamper) params = o.tamper(params);
    return params;
  }

  connect(o: ConnectOptions = {}): Promise<Frame> {
    return this.request("connect", this.buildConnect(o));
  }

  request(method: string, params?: unknown, timeoutMs = 5000): Promise<Frame> {
    const id = `r${++this.seq}`;
    const reply = this.waitFor((f) => f.type === "res" && f.id === id, timeoutMs);
    this.ws.send(JSON.stringify({ type: "req", id, method, ...(params !== undefined ? { params } : {}) }));
    return reply;
  }

  sendRaw(data: string | Buffer, binary = false): void {
    this.ws.send(data, { binary });
  }

  close(): void {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close();
  }
}
