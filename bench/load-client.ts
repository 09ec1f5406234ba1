import { createConnection, type NetConnectOpts, type Socket } from "node:net";
import { performance } from "node:perf_hooks";
import WebSocket from "ws";
import { createTestDevice, signConnect, type TestDevice } from "../test/support/device.js";
import type { ClientCommand, ClientReplies, ClientRequest, ClientResponse, HandshakePhases, HandshakeRun, RoundTripRun, SessionsOpened } from "./lib/ipc.js";
import { LatencyRecorder } from "./lib/stats.js";

// The load generator: one process, one event loop, separate from the servers
// so that their RSS and CPU are measured alone. It signs every connect with a
// real Ed25519 device key, like the official clients (test/support/device.ts).
// Driven by bench/run.ts over the IPC channel; exits when the channel closes.

interface PooledDevice {
  readonly device: TestDevice;
  deviceToken: string | undefined;
}

interface ResFrame {
  readonly type: string;
  readonly ok?: boolean;
  readonly payload?: { readonly auth?: { readonly deviceToken?: string } };
  readonly error?: { readonly code: string; readonly message: string; readonly details?: { readonly requestId?: string; readonly code?: string } };
}

// What the official CLI sends (spec §4.5), with least-privilege scopes.
const CLIENT = { id: "cli", version: "bench", platform: "linux", mode: "cli" } as const;
const ROLE = "operator";
const SCOPES = ["operator.read"];
const HANDSHAKE_TIMEOUT_MS = 15_000;
/**
 * Source addresses are spread over 127.0.0.1–127.0.0.<SPREAD>: each address
 * has its own ephemeral port range, so tens of thousands of short
 * connections (and their TIME_WAIT) never exhaust ports.
 */
const SOURCE_SPREAD = 64;

const pool: PooledDevice[] = [];
const sessions: WebSocket[] = [];
let addressCursor = 0;

function nextLocalAddress(): string {
  const address = `127.0.0.${1 + (addressCursor % SOURCE_SPREAD)}`;
  addressCursor++;
  return address;
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface HandshakeOutcome {
  readonly ws: WebSocket;
  /** From `new WebSocket()` (TCP connect) to the `res` of connect. */
  readonly ms: number;
  /** performance.now() at connect(), TCP up, challenge received: for the phase breakdown. */
  readonly startedAt: number;
  readonly connectedAt: number;
  readonly challengedAt: number;
  readonly replyBytes: number;
  readonly reply: ResFrame;
}

/** Open a socket, answer the challenge with a signed connect, resolve on the connect `res`. */
function handshake(url: string, entry: PooledDevice, auth: { token?: string; deviceToken?: string }): Promise<HandshakeOutcome> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    let connectedAt = Number.NaN;
    let challengedAt = Number.NaN;
    // ws's own connector is net.connect; this one also notes when TCP is up.
    const connect = ((options: NetConnectOpts): Socket => {
      const socket = createConnection(options);
      socket.once("connect", () => {
        connectedAt = performance.now();
      });
      return socket;
    }) as typeof createConnection;
    const ws = new WebSocket(url, { perMessageDeflate: false, localAddress: nextLocalAddress(), createConnection: connect });
    let stage: "challenge" | "connect" | "done" = "challenge";
    const fail = (e: Error) => {
      if (stage === "done") return;
      stage = "done";
      clearTimeout(timer);
      ws.terminate();
      reject(e);
    };
    const timer = setTimeout(() => fail(new Error("handshake timed out")), HANDSHAKE_TIMEOUT_MS);
    ws.on("error", fail);
    ws.on("unexpected-response", (_req, res) => fail(new Error(`HTTP ${res.statusCode ?? "?"}`)));
    ws.on("close", (code, reason) => fail(new Error(`closed ${code} ${reason.toString()}`)));
    ws.on("message", (data: Buffer) => {
      if (stage === "challenge") {
        challengedAt = performance.now();
        const challenge = JSON.parse(data.toString("utf8")) as { payload: { nonce: string } };
        const nonce = challenge.payload.nonce;
        const signedAt = Date.now();
        const token = auth.token ?? auth.deviceToken ?? "";
        const signature = signConnect(entry.device, { clientId: CLIENT.id, clientMode: CLIENT.mode, role: ROLE, scopes: SCOPES, token, nonce, platform: CLIENT.platform, signedAt });
        const params = {
          minProtocol: 3,
          maxProtocol: 3,
          client: CLIENT,
          role: ROLE,
          scopes: SCOPES,
          auth,
          device: { id: entry.device.id, publicKey: entry.device.publicKey, signature, signedAt, nonce },
        };
        stage = "connect";
        ws.send(JSON.stringify({ type: "req", id: "connect-1", method: "connect", params }));
      } else if (stage === "connect") {
        stage = "done";
        clearTimeout(timer);
        resolve({ ws, ms: performance.now() - started, startedAt: started, connectedAt, challengedAt, replyBytes: data.length, reply: JSON.parse(data.toString("utf8")) as ResFrame });
      }
      // Later frames (tick, presence, replies) belong to whoever took the socket.
    });
  });
}

function closeAndWait(ws: WebSocket): Promise<void> {
  if (ws.readyState === WebSocket.CLOSED) return Promise.resolve();
  return new Promise((resolve) => {
    ws.once("close", () => resolve());
    ws.close();
  });
}

function device(i: number): PooledDevice {
  const entry = pool[i % pool.length];
  if (!entry) throw new Error("no devices: createDevices first");
  return entry;
}

/** Run `fn` over 0..n-1 with at most `concurrency` at once. */
async function forEachLimited(n: number, concurrency: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, n) }, async () => {
      while (next < n) await fn(next++);
    }),
  );
}

async function requestPairing(url: string, token: string): Promise<{ requestIds: string[] }> {
  const requestIds: string[] = [];
  await forEachLimited(pool.length, 8, async (i) => {
    const o = await handshake(url, device(i), { token });
    const id = o.reply.error?.details?.requestId;
    if (o.reply.ok || o.reply.error?.code !== "NOT_PAIRED" || id === undefined) {
      throw new Error(`expected NOT_PAIRED with a requestId, got ${JSON.stringify(o.reply).slice(0, 300)}`);
    }
    requestIds[i] = id;
    await closeAndWait(o.ws);
  });
  return { requestIds };
}

async function fetchDeviceTokens(url: string, token: string): Promise<{ tokens: number }> {
  await forEachLimited(pool.length, 8, async (i) => {
    const entry = device(i);
    const o = await handshake(url, entry, { token });
    const issued = o.reply.payload?.auth?.deviceToken;
    if (!o.reply.ok || issued === undefined) throw new Error(`expected hello-ok with a device token, got ${JSON.stringify(o.reply).slice(0, 300)}`);
    entry.deviceToken = issued;
    await closeAndWait(o.ws);
  });
  return { tokens: pool.filter((d) => d.deviceToken !== undefined).length };
}

/** Per-step latency recorders for the phase breakdown (HandshakePhases). */
class PhaseRecorder {
  private readonly tcp = new LatencyRecorder();
  private readonly challenge = new LatencyRecorder();
  private readonly hello = new LatencyRecorder();
  private readonly close = new LatencyRecorder();

  record(o: HandshakeOutcome, closeMs: number): void {
    this.tcp.record(o.connectedAt - o.startedAt);
    this.challenge.record(o.challengedAt - o.connectedAt);
    this.hello.record(o.startedAt + o.ms - o.challengedAt);
    this.close.record(closeMs);
  }

  medians(): HandshakePhases {
    return { tcpMs: this.tcp.summary().p50, challengeMs: this.challenge.summary().p50, helloMs: this.hello.summary().p50, closeMs: this.close.summary().p50 };
  }
}

/** `concurrency` loops of connect → handshake → close, for `durationMs`; loop i uses device i. */
async function runHandshakes(url: string, concurrency: number, durationMs: number): Promise<HandshakeRun> {
  const latency = new LatencyRecorder();
  const phases = new PhaseRecorder();
  let completed = 0;
  let errors = 0;
  let firstError: string | undefined;
  let bytes = 0;
  const cpu = process.cpuUsage();
  const started = performance.now();
  const deadline = started + durationMs;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, i) => {
      const entry = device(i);
      while (performance.now() < deadline) {
        try {
          const o = await handshake(url, entry, { deviceToken: entry.deviceToken });
          if (!o.reply.ok) throw new Error(`connect refused: ${o.reply.error?.code} ${o.reply.error?.message}`);
          latency.record(o.ms);
          completed++;
          bytes += o.replyBytes;
          const closing = performance.now();
          await closeAndWait(o.ws);
          phases.record(o, performance.now() - closing);
        } catch (e) {
          errors++;
          firstError ??= errorText(e);
          await sleep(20);
        }
      }
    }),
  );
  const elapsedMs = performance.now() - started;
  const used = process.cpuUsage(cpu);
  const { p50, p99, max } = latency.summary();
  return {
    completed,
    errors,
    firstError,
    elapsedMs,
    p50Ms: p50,
    p99Ms: p99,
    maxMs: max,
    helloBytes: completed > 0 ? bytes / completed : 0,
    clientCpuS: (used.user + used.system) / 1e6,
    phases: phases.medians(),
  };
}

/** Open authenticated sessions until `total` are open; they stay idle until closeSessions. */
async function openSessions(url: string, total: number, concurrency: number): Promise<SessionsOpened> {
  let errors = 0;
  let firstError: string | undefined;
  const started = performance.now();
  const base = sessions.length;
  await forEachLimited(Math.max(0, total - base), concurrency, async (i) => {
    const entry = device(base + i);
    try {
      const o = await handshake(url, entry, { deviceToken: entry.deviceToken });
      if (!o.reply.ok) throw new Error(`connect refused: ${o.reply.error?.code} ${o.reply.error?.message}`);
      sessions.push(o.ws);
    } catch (e) {
      errors++;
      firstError ??= errorText(e);
    }
  });
  return { open: sessions.length, errors, firstError, elapsedMs: performance.now() - started };
}

async function closeSessions(): Promise<{ closed: number }> {
  const all = sessions.splice(0);
  await Promise.all(all.map((ws) => closeAndWait(ws)));
  return { closed: all.length };
}

/** `health` over one open session: `window` requests in flight (1 = sequential), for `durationMs`. */
async function roundTrips(url: string, window: number, durationMs: number): Promise<RoundTripRun> {
  const entry = device(0);
  const o = await handshake(url, entry, { deviceToken: entry.deviceToken });
  if (!o.reply.ok) throw new Error(`connect refused: ${o.reply.error?.code}`);
  const ws = o.ws;
  let sent = 0;
  let completed = 0;
  let errors = 0;
  let bytes = 0;
  const cpu = process.cpuUsage();
  const started = performance.now();
  const deadline = started + durationMs;
  const send = () => ws.send(`{"type":"req","id":"h${++sent}","method":"health","params":{}}`);
  await new Promise<void>((resolve) => {
    ws.on("message", (data: Buffer) => {
      const frame = JSON.parse(data.toString("utf8")) as ResFrame;
      if (frame.type !== "res") return;
      if (frame.ok) completed++;
      else errors++;
      bytes += data.length;
      if (performance.now() < deadline) send();
      else if (completed + errors === sent) resolve();
    });
    for (let i = 0; i < window; i++) send();
  });
  const elapsedMs = performance.now() - started;
  const used = process.cpuUsage(cpu);
  await closeAndWait(ws);
  return { completed, errors, elapsedMs, replyBytes: completed + errors > 0 ? bytes / (completed + errors) : 0, clientCpuS: (used.user + used.system) / 1e6 };
}

/** One device-token session: its hello-ok payload and one `health` payload. */
async function sample(url: string): Promise<{ hello: unknown; health: unknown }> {
  const entry = device(0);
  const o = await handshake(url, entry, { deviceToken: entry.deviceToken });
  if (!o.reply.ok) throw new Error(`connect refused: ${o.reply.error?.code}`);
  const health = await new Promise<unknown>((resolve, reject) => {
    o.ws.on("message", (data: Buffer) => {
      const frame = JSON.parse(data.toString("utf8")) as ResFrame & { id?: string };
      if (frame.type !== "res" || frame.id !== "sample-health") return;
      if (frame.ok) resolve(frame.payload);
      else reject(new Error(`health failed: ${frame.error?.code}`));
    });
    o.ws.send(JSON.stringify({ type: "req", id: "sample-health", method: "health", params: {} }));
  });
  await closeAndWait(o.ws);
  return { hello: o.reply.payload, health };
}

async function execute(command: ClientCommand): Promise<ClientReplies[ClientCommand["cmd"]]> {
  switch (command.cmd) {
    case "createDevices":
      while (pool.length < command.n) pool.push({ device: createTestDevice(), deviceToken: undefined });
      return { created: pool.length };
    case "requestPairing":
      return requestPairing(command.url, command.token);
    case "fetchDeviceTokens":
      return fetchDeviceTokens(command.url, command.token);
    case "handshakes":
      return runHandshakes(command.url, command.concurrency, command.durationMs);
    case "openSessions":
      return openSessions(command.url, command.total, command.concurrency);
    case "closeSessions":
      return closeSessions();
    case "sample":
      return sample(command.url);
    case "roundTrips":
      return roundTrips(command.url, command.window, command.durationMs);
  }
}

if (!process.send) throw new Error("load-client runs as a child of bench/run.js (IPC channel required)");
process.on("message", (message: ClientRequest) => {
  execute(message.command).then(
    (value) => process.send?.({ seq: message.seq, ok: true, value } satisfies ClientResponse),
    (e: unknown) => process.send?.({ seq: message.seq, ok: false, error: errorText(e) } satisfies ClientResponse),
  );
});
// The orchestrator went away: stop, leaving no sockets behind.
process.on("disconnect", () => process.exit(0));
