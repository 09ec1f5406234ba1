import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import WebSocket from "ws";
import { SecretLedger, addBackend, alive, assertGatewayServes, rssKiB } from "../support/adversarial.js";
import { createTestDevices } from "../support/device.js";
import { Rng, connectFrame, generateFrame, hugeStringFrame, signedConnectFrame, type FuzzContext, type FuzzFrame } from "../support/fuzz-frames.js";
import { startGatewayProcess, type GatewayProcess } from "../support/gateway-process.js";

// Fuzzing the frame parser and the handshake state machine of a live gateway
// process. CI size: 100 000 frames in well under a minute. Longer runs:
//   GATEWARDEN_FUZZ_FRAMES=1000000 node --test dist/test/adversarial/fuzz.test.js
// Replay a run: GATEWARDEN_FUZZ_SEED=<seed printed by the test>.

const TOTAL_FRAMES = Number(process.env["GATEWARDEN_FUZZ_FRAMES"] ?? 100_000);
const SEED = Number(process.env["GATEWARDEN_FUZZ_SEED"] ?? Math.floor(Math.random() * 2 ** 31));
/** Share of frames sent on fresh, unauthenticated sockets (one socket each, as the handshake closes on bad input). */
const PREAUTH_SHARE = 0.1;
const PREAUTH_WORKERS = 24;
const SESSION_WORKERS = 8;
const BATCH = 16;
const REPLY_TIMEOUT_MS = 20_000;
/** Fuzz sockets come from 127.0.60.1–40, good clients from 127.0.0.1. */
const FUZZ_ADDRESSES = Array.from({ length: 40 }, (_, i) => `127.0.60.${i + 1}`);
const MAX_PREAUTH = 64 * 1024;
const MAX_PAYLOAD = 1024 * 1024;
const EXPECTED_CLOSES = new Set([1000, 1002, 1007, 1008, 1009, 1013]);
/** Devices whose signed connects reach the pairing paths (fresh ones, then paired or pending). */
const DEVICES = createTestDevices(64);

interface Stats {
  frames: number;
  preauthSockets: number;
  sessions: number;
  replies: number;
  events: number;
  closes: Map<number, number>;
  kinds: Map<string, number>;
  invalid: string[];
}

const bump = (m: Map<number | string, number>, k: number | string) => m.set(k, (m.get(k) ?? 0) + 1);

/** Why a server message is not a valid protocol frame, or `undefined` if it is. */
function frameProblem(data: WebSocket.RawData, isBinary: boolean): string | undefined {
  if (isBinary) return "binary message from the server";
  let value: unknown;
  try {
    value = JSON.parse(data.toString());
  } catch {
    return `unparseable message: ${data.toString().slice(0, 80)}`;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return "not a JSON object";
  const f = value as Record<string, unknown>;
  if (f.type === "event") return typeof f.event === "string" ? undefined : "event without a name";
  if (f.type !== "res") return `unknown frame type ${String(f.type)}`;
  if (typeof f.id !== "string" || typeof f.ok !== "boolean") return "res without id/ok";
  if (f.ok === false) {
    const e = f.error as Record<string, unknown> | undefined;
    if (!e || typeof e.code !== "string" || typeof e.message !== "string") return "error without code/message";
    if (e.code === "UNAVAILABLE" && (e.details as Record<string, unknown> | undefined)?.code === "INTERNAL") return "internal error reply";
  }
  return undefined;
}

/** A raw socket that validates and counts everything the server sends. */
class FuzzSocket {
  readonly ws: WebSocket;
  replies = 0;
  hello: boolean | undefined;
  nonce = "";
  closedWith: number | undefined;
  private closedByUs = false;
  readonly closed: Promise<number>;
  readonly opened: Promise<void>;
  private wake: (() => void) | undefined;

  constructor(url: string, localAddress: string, private readonly stats: Stats) {
    this.ws = new WebSocket(url, { localAddress, maxPayload: 64 * 1024 * 1024 });
    this.opened = new Promise((resolve, reject) => {
      this.ws.once("open", () => resolve());
      this.ws.once("unexpected-response", (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
      this.ws.once("error", reject);
    });
    this.opened.catch(() => undefined);
    this.ws.on("error", () => undefined);
    this.closed = new Promise((resolve) =>
      this.ws.on("close", (code) => {
        this.closedWith = code;
        // 1005 (no code) is the echo of our own close
        if (!(this.closedByUs && code === 1005)) {
          bump(stats.closes, code);
          if (!EXPECTED_CLOSES.has(code)) stats.invalid.push(`unexpected close code ${code}`);
        }
        this.wake?.();
        resolve(code);
      }),
    );
    this.ws.on("message", (data, isBinary) => {
      const problem = frameProblem(data, isBinary);
      if (problem) {
        stats.invalid.push(problem);
        return;
      }
      const f = JSON.parse(data.toString()) as { type: string; event?: string; ok?: boolean; id?: string; payload?: { nonce?: string } };
      if (f.type === "event") {
        stats.events++;
        if (f.event === "connect.challenge") this.nonce = f.payload?.nonce ?? "";
      } else {
        stats.replies++;
        this.replies++;
        if (this.hello === undefined) this.hello = f.ok === true;
      }
      this.wake?.();
    });
  }

  get open(): boolean {
    return this.closedWith === undefined && this.ws.readyState === WebSocket.OPEN;
  }

  /** Wait until `check` holds or the socket closes; a silent server is a failure. */
  async until(check: () => boolean, what: string): Promise<void> {
    const deadline = Date.now() + REPLY_TIMEOUT_MS;
    while (!check() && this.closedWith === undefined) {
      if (Date.now() > deadline) throw new Error(`no ${what} within ${REPLY_TIMEOUT_MS} ms`);
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        setTimeout(resolve, 250);
      });
    }
  }

  send(frame: FuzzFrame): void {
    if (!this.open) return;
    this.stats.frames++;
    bump(this.stats.kinds, frame.kind);
    this.ws.send(frame.data, { binary: frame.binary });
  }

  close(): void {
    this.closedByUs = true;
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close();
  }
}

describe("fuzzing frame parsing and the handshake state machine against a live gateway", () => {
  const ledger = new SecretLedger();
  let gw: GatewayProcess;
  let admin: string;

  before(async () => {
    gw = await startGatewayProcess({
      config: {
        // many fuzz sockets per address at once; guesses must not lock the fuzz addresses out (that would hide deeper paths)
        limits: { maxPreauthPerIp: 256 },
        rateLimit: { maxFailures: 1_000_000_000 },
        // signed connects from loopback are silently paired within the ceiling, so that path is fuzzed too
        pairing: { silentLocal: { enabled: true } },
      },
      env: { GATEWARDEN_LOG_LEVEL: "warn" },
    });
    admin = addBackend(gw, "fuzz-admin", ["operator.admin"], ledger);
  });
  after(async () => {
    await gw.stop();
  });

  it("A44/A45 fuzz: generated frames (random bytes, mutations, deep nesting, huge strings, invalid UTF-8, prototype keys) never crash the server, bloat it, or get an invalid reply", async (t) => {
    const stats: Stats = { frames: 0, preauthSockets: 0, sessions: 0, replies: 0, events: 0, closes: new Map(), kinds: new Map(), invalid: [] };
    const ctx: FuzzContext = { tokens: [gw.token!, admin], maxBytes: MAX_PREAUTH - 1024 };
    const postCtx: FuzzContext = { tokens: [gw.token!, admin], maxBytes: 64 * 1024 };
    const pid = gw.proc.pid!;
    t.diagnostic(`seed ${SEED} (replay with GATEWARDEN_FUZZ_SEED=${SEED}), ${TOTAL_FRAMES} frames`);

    await assertGatewayServes(gw);
    const rssBefore = rssKiB(pid);
    let rssPeak = rssBefore;
    const sampler = setInterval(() => {
      if (alive(gw)) rssPeak = Math.max(rssPeak, rssKiB(pid));
    }, 200);
    sampler.unref(); // a failing run must not keep the process alive
    const started = Date.now();

    // Phase 1: the handshake state machine. Each socket gets 1–3 frames back to back
    // (connect-centred, sometimes a connect followed by more frames while it is in progress).
    const preauthQuota = Math.floor(TOTAL_FRAMES * PREAUTH_SHARE);
    let preauthSent = 0;
    const preauthWorker = async (w: number) => {
      const rng = new Rng(SEED + 1000 + w);
      for (let k = 0; preauthSent < preauthQuota; k++) {
        const s = new FuzzSocket(gw.url, FUZZ_ADDRESSES[(w + k * PREAUTH_WORKERS) % FUZZ_ADDRESSES.length]!, stats);
        await s.opened;
        stats.preauthSockets++;
        await s.until(() => s.nonce !== "", "challenge");
        const n = 1 + (rng.chance(0.25) ? rng.int(3) : 0);
        for (let i = 0; i < n; i++) {
          if (i === 0 && rng.chance(0.1)) {
            s.send({ kind: "signed-connect", data: signedConnectFrame(rng, rng.pick(DEVICES), s.nonce, gw.token!), binary: false });
            preauthSent++;
            continue;
          }
          let frame = rng.chance(0.005)
            ? { kind: "oversized-preauth", data: hugeStringFrame(rng, MAX_PREAUTH + 1 + rng.int(200_000)), binary: false }
            : generateFrame(rng, ctx, true);
          if (typeof frame.data === "string" && rng.chance(0.5)) frame = { ...frame, data: frame.data.replace('"nonce":"nonce"', `"nonce":"${s.nonce}"`) };
          s.send(frame);
          preauthSent++;
        }
        // the server must answer or close; an admitted fuzz socket is closed by us
        await s.until(() => s.hello === true, "reply or close");
        s.close();
        await s.closed;
      }
    };
    const died = () => `the gateway exited (${gw.proc.exitCode ?? gw.proc.signalCode}): ${gw.logs().slice(-2000)}`;
    await Promise.all(Array.from({ length: PREAUTH_WORKERS }, (_, w) => preauthWorker(w)));
    assert.ok(alive(gw), died());
    const preauthMs = Date.now() - started;

    // Phase 2: admitted sessions (admin and scope-less), many frames per socket,
    // every frame answered by exactly one reply unless the socket is closed.
    let sessionSent = 0;
    const sessionQuota = TOTAL_FRAMES - stats.frames;
    const sessionWorker = async (w: number) => {
      const rng = new Rng(SEED + 2000 + w);
      while (sessionSent < sessionQuota) {
        const s = new FuzzSocket(gw.url, FUZZ_ADDRESSES[w % FUZZ_ADDRESSES.length]!, stats);
        await s.opened;
        await s.until(() => s.nonce !== "", "challenge");
        const asAdmin = w % 4 !== 0;
        const connect = connectFrame(rng, ctx);
        connect.params = {
          minProtocol: 3,
          maxProtocol: 4,
          client: { id: "cli", version: "fuzz", platform: "linux", mode: "cli" },
          scopes: asAdmin ? ["operator.admin"] : [],
          auth: { token: asAdmin ? admin : gw.token! },
        };
        s.send({ kind: "good-connect", data: JSON.stringify(connect), binary: false });
        await s.until(() => s.hello !== undefined, "hello");
        assert.equal(s.hello, true, "a well-formed connect is admitted");
        stats.sessions++;
        while (s.open && sessionSent < sessionQuota) {
          const target = s.replies + BATCH;
          for (let i = 0; i < BATCH; i++) {
            const frame = rng.chance(0.0005)
              ? { kind: "oversized", data: hugeStringFrame(rng, MAX_PAYLOAD + 1 + rng.int(100_000), "health"), binary: false }
              : generateFrame(rng, postCtx, false, 0.2);
            s.send(frame);
            sessionSent++;
          }
          await s.until(() => s.replies >= target, "reply to every frame");
        }
        s.close();
        await s.closed;
      }
    };
    await Promise.all(Array.from({ length: SESSION_WORKERS }, (_, w) => sessionWorker(w)));
    clearInterval(sampler);
    const elapsed = Date.now() - started;

    assert.ok(alive(gw), died());
    await assertGatewayServes(gw);
    // what the fuzzed connects stored can still be listed by the operator
    const listing = gw.cli(["devices", "list", "--json"]);
    assert.equal(listing.code, 0, listing.stderr);
    const stored = JSON.parse(listing.stdout) as { pending: unknown[]; paired: unknown[] };
    await new Promise((r) => setTimeout(r, 500));
    const rssAfter = rssKiB(pid);
    const mib = (k: number) => Math.round(k / 1024);
    t.diagnostic(
      `${stats.frames} frames in ${elapsed} ms (handshake phase ${preauthMs} ms): ${stats.preauthSockets} pre-auth sockets, ${stats.sessions} sessions, ${stats.replies} replies, ${stats.events} events; ` +
        `closes ${JSON.stringify(Object.fromEntries(stats.closes))}; kinds ${JSON.stringify(Object.fromEntries(stats.kinds))}; ` +
        `server RSS ${mib(rssBefore)} MiB before, peak ${mib(rssPeak)} MiB, ${mib(rssAfter)} MiB after; ${stored.pending.length} pending, ${stored.paired.length} paired`,
    );
    assert.deepEqual(stats.invalid.slice(0, 10), [], "every server message is a valid res/event frame and every close code is expected");
    assert.ok(stats.frames >= TOTAL_FRAMES, `${stats.frames} frames sent`);
    // Generous: the server may keep freed memory, but fuzzing must not make it grow without bound.
    assert.ok(rssAfter < rssBefore + 256 * 1024, `RSS grew from ${mib(rssBefore)} to ${mib(rssAfter)} MiB`);
    assert.ok(rssPeak < rssBefore + 768 * 1024, `RSS peaked at ${mib(rssPeak)} MiB`);
  });
});
