import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { after, before, describe, it } from "node:test";
import WebSocket from "ws";
import { SecretLedger, addBackend, alive, assertGatewayServes, delay, eventually, listDevices, rssKiB } from "../support/adversarial.js";
import { createTestDevice, deviceProof } from "../support/device.js";
import { startGatewayProcess, viaProxy, type GatewayProcess } from "../support/gateway-process.js";

// Load and abuse on loopback, bounded in count and time. CI size by default;
//   GATEWARDEN_LOAD_SCALE=full node --test dist/test/adversarial/load.test.js
// runs the big numbers (10 000 idle sessions, 10 000 fresh keys). Figures are
// reported as test diagnostics; nothing here asserts on speed.

const FULL = process.env["GATEWARDEN_LOAD_SCALE"] === "full";
const SESSIONS = FULL ? 10_000 : 1_000;
const IDLE_SOCKETS = 1_000;
const PRESENCE_SESSIONS = FULL ? 1_000 : 200;
const WRONG_TOKENS = FULL ? 2_000 : 300;
const FRESH_KEYS = FULL ? 10_000 : 400;
const HANDSHAKE_TIMEOUT_MS = 1500;
const BATCH = 200;
/** Sources on 127/8 (Linux routes it all to lo): spreads per-IP budgets and ephemeral ports. */
const addresses = (block: number, n: number) => Array.from({ length: n }, (_, i) => `127.0.${block}.${i + 1}`);

/** The soft open-files limit of this shell (node cannot raise it). */
function openFilesLimit(): number {
  const r = spawnSync("sh", ["-c", "ulimit -n"], { encoding: "utf8" });
  const n = Number(r.stdout.trim());
  return Number.isFinite(n) && n > 0 ? n : 1024;
}

type Reply = { ok?: boolean; error?: { code: string; details?: { code?: string } } };

/** Open a socket, wait for the challenge, send `connect` built for its nonce; resolves with the reply (socket left open). */
function connectRaw(url: string, from: string | { localAddress: string; headers: Record<string, string> }, params: (nonce: string) => Record<string, unknown>): Promise<{ ws: WebSocket; reply: Reply }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, typeof from === "string" ? { localAddress: from } : from);
    const timer = setTimeout(() => reject(new Error("no reply within 30 s")), 30_000);
    ws.on("error", reject);
    ws.once("unexpected-response", (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    ws.on("message", (data) => {
      const f = JSON.parse(data.toString()) as { type: string; event?: string; payload?: { nonce: string } } & Reply;
      if (f.type === "event" && f.event === "connect.challenge") {
        ws.send(JSON.stringify({ type: "req", id: "c", method: "connect", params: params(f.payload!.nonce) }));
      } else if (f.type === "res") {
        clearTimeout(timer);
        resolve({ ws, reply: f });
      }
    });
  });
}

const cliParams = (auth: Record<string, string>, scopes: string[] = []) => ({
  minProtocol: 3,
  maxProtocol: 4,
  client: { id: "cli", version: "load", platform: "linux", mode: "cli" },
  scopes,
  auth,
});

/** Run `task` for 0..n-1 with at most `width` in flight. */
async function inBatches<T>(n: number, width: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array(n);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, n) }, async () => {
      while (next < n) {
        const i = next++;
        out[i] = await task(i);
      }
    }),
  );
  return out;
}

const mib = (kib: number) => `${Math.round(kib / 1024)} MiB`;
const closeAll = (sockets: readonly WebSocket[]) => Promise.all(sockets.map((ws) => new Promise<void>((r) => (ws.readyState === WebSocket.CLOSED ? r() : (ws.once("close", () => r()), ws.close())))));

describe(`load and abuse on loopback (${FULL ? "full" : "CI"} scale)`, () => {
  const ledger = new SecretLedger();
  let gw: GatewayProcess;
  let slow: GatewayProcess;

  before(async () => {
    [gw, slow] = await Promise.all([
      startGatewayProcess({
        config: {
          limits: { maxConnectionsPerIp: 20_000, maxConnections: 25_000, maxPreauthPerIp: 512 },
          pairing: { maxPendingPerIp: 16, maxPendingTotal: 64 },
        },
        env: { GATEWARDEN_LOG_LEVEL: "warn" },
      }),
      startGatewayProcess({ config: { limits: { handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS } }, env: { GATEWARDEN_LOG_LEVEL: "warn" } }),
    ]);
    ledger.add(gw.token, slow.token);
  });
  after(async () => {
    await Promise.all([gw.stop(), slow.stop()]);
  });

  it(`load: ${SESSIONS} concurrent idle sessions are held and the gateway keeps serving new clients`, async (t) => {
    const limit = openFilesLimit();
    const count = Math.min(SESSIONS, limit - 500);
    if (count < SESSIONS) t.diagnostic(`ulimit -n is ${limit}: holding ${count} sessions instead of ${SESSIONS}`);
    const reader = addBackend(gw, "load-reader", ["operator.read"], ledger);
    const pid = gw.proc.pid!;
    const rssBefore = rssKiB(pid);
    const sources = addresses(70, 20);
    const started = Date.now();
    const sessions = await inBatches(count, BATCH, async (i) => {
      const { ws, reply } = await connectRaw(gw.url, sources[i % sources.length]!, () => cliParams({ token: gw.token! }));
      assert.equal(reply.ok, true, JSON.stringify(reply.error));
      return ws;
    });
    const openMs = Date.now() - started;
    const rssHeld = rssKiB(pid);

    // while they are held: a new client is admitted and status counts them all
    const { ws: observer, reply } = await connectRaw(gw.url, "127.0.0.1", () => cliParams({ token: reader }, ["operator.read"]));
    assert.equal(reply.ok, true);
    const status = await new Promise<{ payload: { gateway: { sessions: { total: number } } } }>((resolve) => {
      observer.on("message", (d) => {
        const f = JSON.parse(d.toString()) as { type: string; id?: string };
        if (f.type === "res" && f.id === "s") resolve(f as never);
      });
      observer.send(JSON.stringify({ type: "req", id: "s", method: "status", params: {} }));
    });
    assert.ok(status.payload.gateway.sessions.total >= count, `status counts ${status.payload.gateway.sessions.total} sessions`);
    await assertGatewayServes(gw);
    assert.equal(sessions.filter((ws) => ws.readyState === WebSocket.OPEN).length, count, "every idle session is still open");

    await closeAll([...sessions, observer]);
    assert.ok(alive(gw));
    t.diagnostic(`${count} sessions opened in ${openMs} ms (${BATCH} at a time from ${sources.length} addresses); server RSS ${mib(rssBefore)} before, ${mib(rssHeld)} while held`);
  });

  it(`load: ${PRESENCE_SESSIONS} presence-tracked (non-CLI) sessions connecting at once get coalesced presence broadcasts, not one per connect`, async (t) => {
    const sources = addresses(74, 10);
    const events: number[] = [];
    const lastSize: number[] = [];
    let bytes = 0;
    // Presence goes to sessions holding operator.read: these hold it through a backend credential.
    const watcher = addBackend(gw, "presence-watcher", ["operator.read"], ledger);
    const started = Date.now();
    const sessions = await inBatches(PRESENCE_SESSIONS, 50, async (i) => {
      events[i] = 0;
      lastSize[i] = 0;
      const { ws, reply } = await connectRaw(gw.url, sources[i % sources.length]!, () => ({
        ...cliParams({ token: watcher }, ["operator.read"]),
        client: { id: "gateway-client", version: "load", platform: "linux", mode: "backend", displayName: `presence-${i}` },
      }));
      assert.equal(reply.ok, true, JSON.stringify(reply.error));
      ws.on("message", (d: Buffer) => {
        bytes += d.length;
        const f = JSON.parse(d.toString()) as { event?: string; payload?: { presence?: unknown[] } };
        if (f.event !== "presence") return;
        events[i]!++;
        lastSize[i] = f.payload?.presence?.length ?? 0;
      });
      return ws;
    });
    const openMs = Date.now() - started;
    // every session learns the final presence list...
    await eventually(() => lastSize.every((n) => n >= PRESENCE_SESSIONS), "every session saw the full presence list", 30_000);
    const total = events.reduce((a, b) => a + b, 0);
    await closeAll(sessions);
    t.diagnostic(`${PRESENCE_SESSIONS} presence-tracked sessions opened in ${openMs} ms; ${total} presence events (${Math.round(bytes / 1e6)} MB) delivered in all`);
    // ...without a broadcast to everyone per connect: that is N²/2 events and O(N³) bytes
    assert.ok(total < PRESENCE_SESSIONS ** 2 / 10, `${total} presence events for ${PRESENCE_SESSIONS} connects`);
  });

  it(`A43 load: ${IDLE_SOCKETS} sockets that never send connect are closed at the handshake timeout without starving a real client`, async (t) => {
    const sources = addresses(71, 40); // 25 per address, under the default 32 pre-auth sockets per IP
    const opened: number[] = [];
    const lifetimes: number[] = [];
    const codes = new Map<number, number>();
    let realClientDone: Promise<unknown> | undefined;
    const sockets = await inBatches(IDLE_SOCKETS, BATCH, (i) => {
      if (i === IDLE_SOCKETS / 2) {
        // a real client from another address, while half of the idle sockets are open
        realClientDone = connectRaw(slow.url, "127.0.0.1", () => cliParams({ token: slow.token! })).then(({ ws, reply }) => {
          assert.equal(reply.ok, true, "the real client is admitted meanwhile");
          ws.close();
        });
      }
      return new Promise<WebSocket>((resolve, reject) => {
        // measured from before the upgrade request, so a lifetime can only overstate the server's timer
        const at = Date.now();
        const ws = new WebSocket(slow.url, { localAddress: sources[i % sources.length] });
        ws.on("error", () => undefined);
        ws.once("unexpected-response", (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
        ws.once("close", (code) => {
          lifetimes.push(Date.now() - at);
          codes.set(code, (codes.get(code) ?? 0) + 1);
        });
        ws.once("open", () => {
          opened.push(Date.now());
          resolve(ws);
        });
      });
    });
    await realClientDone;
    await eventually(() => lifetimes.length === IDLE_SOCKETS, "every idle socket closed by the server", HANDSHAKE_TIMEOUT_MS + 20_000);
    assert.deepEqual([...codes.keys()], [1000], "closed with 1000, as the protocol says");
    const shortest = Math.min(...lifetimes);
    const longest = Math.max(...lifetimes);
    assert.ok(shortest >= HANDSHAKE_TIMEOUT_MS - 20, `none closed early (shortest ${shortest} ms)`);
    assert.ok(longest <= HANDSHAKE_TIMEOUT_MS + 15_000, `none held for long (longest ${longest} ms)`);
    // the budgets were released: every address can open sockets again
    await closeAll(sockets);
    const again = await inBatches(sources.length, 40, async (i) => (await connectRaw(slow.url, sources[i]!, () => cliParams({ token: slow.token! }))).ws);
    await closeAll(again);
    t.diagnostic(`${IDLE_SOCKETS} idle sockets opened in ${Math.max(...opened) - Math.min(...opened)} ms; closed after ${shortest}–${longest} ms (timeout ${HANDSHAKE_TIMEOUT_MS} ms)`);
  });

  it(`A21 load: a flood of ${WRONG_TOKENS} wrong tokens from one IP is locked out after 10 while a correct client from another IP connects`, async (t) => {
    // Clients behind the trusted test proxy: all of loopback is one budget (A57), so two loopback addresses are not two IPs.
    const flooder = viaProxy("203.0.113.72");
    let correct: Promise<Reply> | undefined;
    const started = Date.now();
    const replies = await inBatches(WRONG_TOKENS, 32, async (i) => {
      if (i === Math.floor(WRONG_TOKENS / 2)) {
        correct = connectRaw(slow.url, viaProxy("203.0.113.73"), () => cliParams({ token: slow.token! })).then(({ ws, reply }) => (ws.close(), reply));
      }
      const { ws, reply } = await connectRaw(slow.url, flooder, () => cliParams({ token: `gwt_flood-${i}-5e2a9c` }));
      // the server closes a refused socket; wait for it, so the flood stays within the pre-auth budget
      await new Promise((r) => (ws.readyState === WebSocket.CLOSED ? r(undefined) : ws.once("close", r)));
      return reply;
    });
    const byCode = new Map<string, number>();
    for (const r of replies) byCode.set(String(r.error?.details?.code), (byCode.get(String(r.error?.details?.code)) ?? 0) + 1);
    assert.equal(byCode.get("AUTH_TOKEN_MISMATCH"), 10, JSON.stringify(Object.fromEntries(byCode)));
    assert.equal(byCode.get("AUTH_RATE_LIMITED"), WRONG_TOKENS - 10);
    assert.equal((await correct)?.ok, true, "the other address was admitted during the flood");
    const locked = await connectRaw(slow.url, flooder, () => cliParams({ token: slow.token! }));
    locked.ws.close();
    assert.equal(locked.reply.error?.details?.code, "AUTH_RATE_LIMITED", "the correct token is refused from the locked address");
    t.diagnostic(`${WRONG_TOKENS} wrong tokens in ${Date.now() - started} ms: ${JSON.stringify(Object.fromEntries(byCode))}`);
  });

  it(`A29 load: ${FRESH_KEYS} connects with fresh keys fill the pending-request bounds (16 per IP, 64 in total) and no more`, async (t) => {
    const sources = addresses(73, 8);
    const pid = gw.proc.pid!;
    const rssBefore = rssKiB(pid);
    const started = Date.now();
    const replies = await inBatches(FRESH_KEYS, 64, async (i) => {
      const device = createTestDevice();
      const { ws, reply } = await connectRaw(gw.url, sources[i % sources.length]!, (nonce) => {
        const p = cliParams({ token: gw.token! }, ["operator.read"]);
        return { ...p, device: deviceProof(device, { clientId: "cli", clientMode: "cli", scopes: ["operator.read"], token: gw.token!, nonce, platform: "linux", signedAt: Date.now() }) };
      });
      ws.close();
      return reply;
    });
    const byCode = new Map<string, number>();
    for (const r of replies) byCode.set(String(r.error?.details?.code), (byCode.get(String(r.error?.details?.code)) ?? 0) + 1);
    assert.equal(byCode.get("PAIRING_REQUIRED"), 64, JSON.stringify(Object.fromEntries(byCode)));
    assert.equal(byCode.get("TOO_MANY_PENDING_REQUESTS"), FRESH_KEYS - 64);
    const { pending, paired } = listDevices(gw);
    assert.equal(pending.length, 64);
    assert.equal(paired.length, 0);
    for (const ip of sources) assert.ok(pending.filter((p) => (p.remoteIp ?? p.requesterIp) === ip).length <= 16, ip);
    await assertGatewayServes(gw);
    t.diagnostic(`${FRESH_KEYS} fresh keys in ${Date.now() - started} ms: ${JSON.stringify(Object.fromEntries(byCode))}; server RSS ${mib(rssBefore)} before, ${mib(rssKiB(pid))} after`);
  });

  it("A47 the load runs logged no secret", async () => {
    await delay(50);
    for (const g of [gw, slow]) {
      await g.stop();
      ledger.assertAbsentFrom(g.logs(), "the gateway's logs");
    }
  });
});
