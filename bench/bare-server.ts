import { createPublicKey, randomUUID, verify, type KeyObject } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { WebSocketServer, type WebSocket } from "ws";

// The limit: a bare `ws` server doing the frames of a handshake and nothing
// else. connect.challenge with a random nonce → connect → one Ed25519 verify
// of the v3 payload → a hello-ok of about gatewarden's size. No store, no
// policy, no schema validation, no logging, no per-socket timer. Also answers
// `health` with a payload of the same shape, for the round-trip benchmark.
//
// Run: node dist/bench/bare-server.js [port]; prints "bare listening on <port>".

const SPKI_ED25519_PREFIX = Buffer.from("302a300506032b6570032100", "hex");

/**
 * The hello-ok sent, as a template: gatewarden's own hello-ok for the same
 * client (captured by bench/run.ts and passed in BARE_HELLO_TEMPLATE), so the
 * frames are the same size; a fixed stand-in of the same shape otherwise.
 * Per connection only server.connId, snapshot.uptimeMs and auth.scopes change.
 */
interface HelloTemplate {
  server: { connId: string } & Record<string, unknown>;
  snapshot: { uptimeMs: number } & Record<string, unknown>;
  auth: { scopes: string[] } & Record<string, unknown>;
  [key: string]: unknown;
}

const FALLBACK_TEMPLATE: HelloTemplate = {
  type: "hello-ok",
  protocol: 3,
  server: { version: "0.1.0", connId: "" },
  features: {
    methods: ["device.pair.approve", "device.pair.list", "device.pair.reject", "device.pair.remove", "device.token.revoke", "device.token.rotate", "gateway.identity.get", "health", "status", "system-presence"],
    events: ["connect.challenge", "tick", "presence", "health", "shutdown", "device.pair.requested", "device.pair.resolved"],
  },
  snapshot: { presence: [], health: {}, stateVersion: { presence: 0, health: 0 }, uptimeMs: 0 },
  auth: { role: "operator", scopes: [] },
  policy: { maxPayload: 1048576, maxBufferedBytes: 8388608, tickIntervalMs: 30000 },
};

const TEMPLATE: HelloTemplate = process.env.BARE_HELLO_TEMPLATE ? (JSON.parse(process.env.BARE_HELLO_TEMPLATE) as HelloTemplate) : FALLBACK_TEMPLATE;

/** The `health` payload, likewise gatewarden's own (BARE_HEALTH_TEMPLATE) or a stand-in of its shape. */
const HEALTH: Record<string, unknown> = process.env.BARE_HEALTH_TEMPLATE
  ? (JSON.parse(process.env.BARE_HEALTH_TEMPLATE) as Record<string, unknown>)
  : { ok: true, ts: 0, durationMs: 0, channels: {}, channelOrder: [], channelLabels: {}, heartbeatSeconds: 0, defaultAgentId: "main", agents: [], sessions: { path: "", count: 0, recent: [] } };

interface ConnectFrame {
  id: string;
  params: {
    client: { id: string; mode: string; platform: string; deviceFamily?: string };
    role?: string;
    scopes?: string[];
    auth?: { token?: string; deviceToken?: string; bootstrapToken?: string };
    device: { id: string; publicKey: string; signature: string; signedAt: number; nonce: string };
  };
}

// A key is parsed once per wire text, as a production server would cache it.
const keys = new Map<string, KeyObject>();
function keyOf(text: string): KeyObject {
  let key = keys.get(text);
  if (!key) {
    key = createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, Buffer.from(text, "base64url")]), format: "der", type: "spki" });
    keys.set(text, key);
  }
  return key;
}

function norm(v: string | undefined): string {
  return (v ?? "").trim().toLowerCase();
}

const startedAt = Date.now();

function helloOk(connId: string, scopes: string[]): string {
  return JSON.stringify({
    ...TEMPLATE,
    server: { ...TEMPLATE.server, connId },
    snapshot: { ...TEMPLATE.snapshot, uptimeMs: Date.now() - startedAt },
    auth: { ...TEMPLATE.auth, scopes },
  });
}

function onSocket(ws: WebSocket): void {
  const nonce = randomUUID();
  let admitted = false;
  ws.on("error", () => undefined);
  ws.on("message", (data) => {
    let frame: ConnectFrame & { method: string };
    try {
      frame = JSON.parse((data as Buffer).toString("utf8")) as ConnectFrame & { method: string };
      if (!admitted && typeof frame.params?.device?.publicKey !== "string") throw new Error("not a signed connect");
    } catch {
      // Only the load generator talks to the limit; anything else is dropped, not crashed on.
      ws.close(1008, "invalid request frame");
      return;
    }
    if (admitted) {
      if (frame.method === "health") {
        const ts = Date.now();
        ws.send(JSON.stringify({ type: "res", id: frame.id, ok: true, payload: { ...HEALTH, ts, durationMs: 0 } }));
      }
      return;
    }
    const p = frame.params;
    const d = p.device;
    const token = p.auth?.token ?? p.auth?.deviceToken ?? p.auth?.bootstrapToken ?? "";
    const payload = ["v3", d.id, p.client.id, p.client.mode, p.role ?? "operator", (p.scopes ?? []).join(","), String(d.signedAt), token, d.nonce, norm(p.client.platform), norm(p.client.deviceFamily)].join("|");
    const ok = d.nonce === nonce && verify(null, Buffer.from(payload, "utf8"), keyOf(d.publicKey), Buffer.from(d.signature, "base64url"));
    if (!ok) {
      ws.send(JSON.stringify({ type: "res", id: frame.id, ok: false, error: { code: "INVALID_REQUEST", message: "device signature invalid" } }));
      ws.close(1008, "device signature invalid");
      return;
    }
    admitted = true;
    ws.send(`{"type":"res","id":${JSON.stringify(frame.id)},"ok":true,"payload":${helloOk(randomUUID(), [...(p.scopes ?? [])].sort())}}`);
  });
  ws.send(JSON.stringify({ type: "event", event: "connect.challenge", payload: { nonce, ts: Date.now() } }));
}

/** Start the bare server on 127.0.0.1 (loopback only). */
export async function startBareServer(port = 0): Promise<{ port: number; close(): Promise<void> }> {
  const http = createServer((_req, res) => res.writeHead(426).end());
  // Same `ws` options as gatewarden, so the difference measured is what gatewarden adds.
  const wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024, perMessageDeflate: false, clientTracking: false });
  http.on("upgrade", (req, socket, head) => {
    socket.on("error", () => undefined);
    // As gatewarden does: the 101 response and the challenge leave in one write.
    socket.cork();
    wss.handleUpgrade(req, socket, head, onSocket);
    socket.uncork();
  });
  await new Promise<void>((done) => http.listen(port, "127.0.0.1", done));
  return {
    port: (http.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((done) => {
        http.close(() => done());
        http.closeAllConnections();
      }),
  };
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const server = await startBareServer(Number(process.argv[2] ?? 0));
  process.stdout.write(`bare listening on ${server.port}\n`);
  const stop = () => void server.close().then(() => process.exit(0));
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  // Stop with the parent (it holds our stdin): the benchmark never leaves a server behind.
  process.stdin.on("end", stop).on("close", stop).resume();
}
