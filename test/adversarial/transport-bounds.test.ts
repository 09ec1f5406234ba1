import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import { SecretLedger, addBackend, assertLogsHoldNoSecret, assertRefused, listDevices, openConnect } from "../support/adversarial.js";
import { createTestDevice } from "../support/device.js";
import { startGatewayProcess, type GatewayProcess } from "../support/gateway-process.js";
import { TestClient } from "../support/protocol-client.js";
import { RawWs } from "../support/raw-ws.js";

// A54, A58, A59: a session the server is closing executes nothing and is cut
// after a short grace; every outbound buffer is bounded; TCP connections that
// never finish their HTTP upgrade are counted and timed per address.

const CLI = { id: "cli", version: "test", platform: "linux", mode: "cli" };

/** A raw, admitted session (no device) with `token` asking for `scopes`. */
async function rawSession(gw: GatewayProcess, token: string, scopes: string[], localAddress?: string): Promise<RawWs> {
  const ws = await RawWs.open(gw.port, localAddress ? { localAddress } : {});
  await ws.waitFor(() => ws.json().find((f) => f.event === "connect.challenge"));
  ws.sendJson({ type: "req", id: "c", method: "connect", params: { minProtocol: 3, maxProtocol: 3, client: CLI, role: "operator", scopes, auth: { token } } });
  const hello = await ws.waitFor(() => ws.json().find((f) => f.id === "c"));
  assert.equal(hello.ok, true, JSON.stringify(hello.error));
  return ws;
}

describe("A54, A58, A59 transport bounds over real sockets", () => {
  const ledger = new SecretLedger();
  let gw: GatewayProcess;
  let tight: GatewayProcess;

  before(async () => {
    [gw, tight] = await Promise.all([
      startGatewayProcess(),
      startGatewayProcess({ config: { limits: { maxBufferedBytes: 64 * 1024, maxUpgradingPerIp: 8, upgradeTimeoutMs: 1500 } } }),
    ]);
    ledger.add(gw.token, tight.token);
  });
  after(async () => {
    await assertLogsHoldNoSecret(gw, ledger);
    await Promise.all([gw.stop(), tight.stop()]);
  });

  it("A54 after its backend is revoked, a session that ignores the close frame and keeps sending executes nothing, and is cut within the grace", async () => {
    const secret = addBackend(gw, "a54-approver", ["operator.pairing", "operator.read"], ledger);
    const ws = await rawSession(gw, secret, ["operator.pairing", "operator.read"]);
    const target = createTestDevice();
    const pending = await openConnect(gw, { device: target, scopes: ["operator.read"], auth: { token: gw.token! } }, ledger);
    await assertRefused(pending.client, pending.reply, "PAIRING_REQUIRED");
    const requestId = pending.reply.error?.details?.requestId as string;

    assert.equal(gw.cli(["backends", "revoke", "a54-approver"]).code, 0);
    const closed = await ws.waitFor(() => ws.closeFrame(), 5000);
    assert.equal(closed.code, 4001);
    const closedAt = Date.now();
    // The attacker ignores the close and goes on: approve, remove, list.
    for (let i = 0; i < 20; i++) {
      ws.sendJson({ type: "req", id: `late-${i}`, method: "device.pair.approve", params: { requestId } });
      ws.sendJson({ type: "req", id: `list-${i}`, method: "device.pair.list", params: {} });
    }
    await ws.ended;
    assert.ok((ws.endedAt ?? Infinity) - closedAt < 5000, `cut ${(ws.endedAt ?? Infinity) - closedAt} ms after the close, not at TCP's pace`);
    assert.deepEqual(ws.json().filter((f) => typeof f.id === "string" && /^(late|list)-/.test(f.id as string)), [], "no request after the revocation got an answer");
    assert.ok(listDevices(gw).pending.some((p) => p.requestId === requestId), "the request is still pending");
    assert.ok(!listDevices(gw).paired.some((p) => p.deviceId === target.id), "nothing was approved");
  });

  it("A58 a session that sends many requests and pings but never reads is closed as a slow consumer; the gateway's buffers stay bounded", async () => {
    const ws = await rawSession(tight, tight.token!, []);
    ws.socket.pause();
    const health = Buffer.from(JSON.stringify({ type: "req", id: "h", method: "health" }));
    const ping = Buffer.alloc(125, 0x61);
    let sent = 0;
    // Several MB of replies and pongs: more than the kernel's buffers and far more than 64 KiB.
    for (let i = 0; i < 60_000 && !ws.socket.destroyed; i++) {
      ws.send(health);
      ws.send(ping, 0x9);
      sent++;
      if (i % 2000 === 0) await new Promise((r) => setImmediate(r));
    }
    await new Promise((r) => setTimeout(r, 1500));
    ws.socket.resume();
    await Promise.race([ws.ended, new Promise((r) => setTimeout(r, 15_000))]);
    assert.ok(ws.endedAt !== undefined, "the server ended the connection");
    const replies = ws.json().filter((f) => f.id === "h").length;
    assert.ok(replies < sent, `${replies} replies for ${sent} requests: the rest were never buffered`);
    assert.equal(tight.logLines().filter((l) => l.event === "slow-consumer").length, 1, "closed once, as a slow consumer, and said so");
    // Still healthy for others.
    const c = await TestClient.open(tight.url);
    assert.equal((await c.connect({ auth: { token: tight.token! } })).ok, true);
    c.close();
  });

  it("A59 TCP connections trickling their upgrade headers are capped per address and cut at the upgrade deadline; another address is unaffected", async () => {
    const open = (localAddress: string): Promise<Socket> =>
      new Promise((resolve, reject) => {
        const s = connect({ port: tight.port, host: "127.0.0.1", localAddress });
        s.once("connect", () => resolve(s));
        s.once("error", reject);
      });
    const socketsClosed = (s: Socket) => new Promise<number>((r) => (s.destroyed ? r(Date.now()) : s.once("close", () => r(Date.now()))));
    const started = Date.now();
    const sockets = await Promise.all(Array.from({ length: 20 }, () => open("127.0.59.1")));
    for (const s of sockets) {
      s.on("error", () => undefined);
      s.write("GET / HTTP/1.1\r\nHost: x\r\n");
    }
    const closes = sockets.map(socketsClosed);
    const trickle = setInterval(() => {
      for (const s of sockets) if (!s.destroyed) s.write("X-Slow: 1\r\n");
    }, 200);
    try {
      // Meanwhile another address upgrades and is admitted.
      const other = await TestClient.open(tight.url, { localAddress: "127.0.59.2" });
      assert.equal((await other.connect({ auth: { token: tight.token! } })).ok, true);
      other.close();
      const times = await Promise.all(closes);
      const early = times.filter((t) => t - started < 1000).length;
      assert.ok(early >= 12, `${early} of 20 cut at once (the cap is 8)`);
      assert.ok(times.every((t) => t - started < 6000), "the rest are cut at the upgrade deadline, not left to trickle");
    } finally {
      clearInterval(trickle);
      for (const s of sockets) s.destroy();
    }
  });
});
