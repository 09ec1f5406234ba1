import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  SecretLedger,
  addBackend,
  assertDevicesUnchanged,
  assertLogsHoldNoSecret,
  assertRefused,
  cliAsync,
  delay,
  detailCode,
  helloAuth,
  listDevices,
  openConnect,
  pairDevice,
} from "../support/adversarial.js";
import { createTestDevice, type TestDevice } from "../support/device.js";
import { startGatewayProcess, type GatewayProcess } from "../support/gateway-process.js";
import type { Frame, TestClient } from "../support/protocol-client.js";

// A29–A33: pending requests are bounded, only a session holding
// operator.pairing (and every scope it approves) resolves them, a request is
// approved at most once, and nothing is minted for a request that is gone.

const CAP = { maxPendingPerIp: 4, maxPendingTotal: 10, pendingTtlMs: 5000 };
/** A trusted proxy (on loopback) that forwards IPv6 clients. */
const PROXY = "127.0.29.9";

describe("A29–A33 pairing over real sockets", () => {
  const ledger = new SecretLedger();
  let gw: GatewayProcess;
  let capped: GatewayProcess;
  let proxied: GatewayProcess;

  before(async () => {
    [gw, capped, proxied] = await Promise.all([
      startGatewayProcess(),
      startGatewayProcess({ config: { pairing: CAP } }),
      startGatewayProcess({ config: { pairing: CAP, trustedProxies: [PROXY] } }),
    ]);
    ledger.add(gw.token, capped.token, proxied.token);
  });
  after(async () => {
    await Promise.all([gw.stop(), capped.stop(), proxied.stop()]);
  });

  /** A fresh device asks to pair (shared token); returns its request id. */
  async function pendingRequest(g: GatewayProcess, scopes: string[], device: TestDevice = createTestDevice(), localAddress?: string): Promise<string> {
    const { client, reply } = await openConnect(g, { device, scopes, auth: { token: g.token! } }, ledger, localAddress ? { localAddress } : {});
    await assertRefused(client, reply, "PAIRING_REQUIRED");
    return reply.error?.details?.requestId as string;
  }

  async function session(g: GatewayProcess, opts: Parameters<typeof openConnect>[1]): Promise<TestClient> {
    const { client, reply } = await openConnect(g, opts, ledger);
    ledger.add(helloAuth(reply).deviceToken);
    return client;
  }

  it("A29 connects with fresh keys fill the per-IP and total caps, never more; the excess is refused retryably; expired requests free the room", async () => {
    const replies: Record<string, Frame[]> = {};
    for (const ip of ["127.0.29.1", "127.0.29.2", "127.0.29.3", "127.0.29.4"]) {
      replies[ip] = [];
      for (let i = 0; i < 6; i++) {
        const { client, reply } = await openConnect(capped, { device: createTestDevice(), scopes: ["operator.read"], auth: { token: capped.token! } }, ledger, { localAddress: ip });
        replies[ip].push(reply);
        assert.equal((await client.closed).code, reply.ok === false && detailCode(reply) === "PAIRING_REQUIRED" ? 1008 : 1013);
      }
    }
    const created = (ip: string) => replies[ip]!.filter((r) => detailCode(r) === "PAIRING_REQUIRED").length;
    assert.deepEqual(["127.0.29.1", "127.0.29.2", "127.0.29.3", "127.0.29.4"].map(created), [4, 4, 2, 0], "4 per IP until 10 in total");
    for (const r of Object.values(replies).flat().filter((x) => detailCode(x) !== "PAIRING_REQUIRED")) {
      assert.equal(r.error?.code, "UNAVAILABLE");
      assert.equal(detailCode(r), "TOO_MANY_PENDING_REQUESTS");
      assert.equal(r.error?.retryable, true);
      assert.ok((r.error?.retryAfterMs ?? -1) >= 0 && (r.error?.retryAfterMs ?? Infinity) <= CAP.pendingTtlMs);
    }
    const { pending, paired } = listDevices(capped);
    assert.equal(pending.length, 10);
    assert.equal(paired.length, 0, "a flood pairs nothing");
    for (const ip of ["127.0.29.1", "127.0.29.2"]) assert.equal(pending.filter((p) => p.requesterIp === ip || p.remoteIp === ip).length, 4);

    await delay(CAP.pendingTtlMs + 300);
    await pendingRequest(capped, ["operator.read"], createTestDevice(), "127.0.29.5");
    assert.equal(listDevices(capped).pending.length, 1, "the expired requests are gone and a new one fits");
  });

  it("A29 IPv6 clients of one /64 share one per-IP cap however many addresses they rotate through; another /64 has its own", async () => {
    const ask = async (clientIp: string) => {
      const { client, reply } = await openConnect(
        proxied,
        { device: createTestDevice(), scopes: ["operator.read"], auth: { token: proxied.token! } },
        ledger,
        { localAddress: PROXY, headers: { "x-forwarded-for": clientIp } },
      );
      client.close();
      return detailCode(reply);
    };
    const rotating = [];
    for (let i = 1; i <= 7; i++) rotating.push(await ask(`2001:db8:29:1::${i.toString(16)}:${(i * 7919).toString(16)}`));
    assert.deepEqual(rotating, [...Array(4).fill("PAIRING_REQUIRED"), ...Array(3).fill("TOO_MANY_PENDING_REQUESTS")]);
    assert.equal(await ask("2001:db8:29:2::1"), "PAIRING_REQUIRED", "a neighbouring /64 is another requester");
    const { pending } = listDevices(proxied);
    assert.equal(pending.length, 5);
    assert.deepEqual(
      pending.map((p) => p.remoteIp).filter((ip) => ip?.startsWith("2001:db8:29:1:")).length,
      4,
      "operators still see each exact address",
    );
  });

  it("A30 a session without operator.pairing cannot approve: refused, and the request stays pending", async () => {
    const requestId = await pendingRequest(gw, ["operator.read"]);
    const reader = createTestDevice();
    const { deviceToken } = await pairDevice(gw, reader, ledger, { scopes: ["operator.read"] });
    const readWrite = addBackend(gw, "a30-read-write", ["operator.read", "operator.write"], ledger);
    const before = listDevices(gw);
    const sessions = [
      await session(gw, { device: reader, scopes: ["operator.read"], auth: { deviceToken } }),
      await session(gw, { scopes: ["operator.admin", "operator.pairing"], auth: { token: gw.token! } }),
      await session(gw, { scopes: ["operator.read", "operator.write", "operator.pairing"], auth: { token: readWrite } }),
    ];
    for (const s of sessions) {
      for (const method of ["device.pair.approve", "device.pair.reject"]) {
        const r = await s.request(method, { requestId });
        assert.equal(detailCode(r), "MISSING_SCOPE", method);
        assert.equal(r.error?.message, "missing scope: operator.pairing");
      }
      s.close();
    }
    assertDevicesUnchanged(gw, before, "the request is still pending and nothing was paired");
    assert.ok(before.pending.some((p) => p.requestId === requestId));
  });

  it("A31 an approver holding operator.read and operator.pairing cannot approve a request for operator.admin", async () => {
    const target = createTestDevice();
    const requestId = await pendingRequest(gw, ["operator.admin", "operator.read"], target);
    const approver = createTestDevice();
    const { deviceToken } = await pairDevice(gw, approver, ledger, { scopes: ["operator.read", "operator.pairing"] });
    const backend = addBackend(gw, "a31-approver", ["operator.read", "operator.pairing"], ledger);
    const before = listDevices(gw);
    const attempts: [string, Parameters<typeof openConnect>[1], string][] = [
      // a device-token session acts only on its own device: another device's request does not exist for it (A60)
      ["paired device with its device token", { device: approver, scopes: ["operator.read", "operator.pairing"], auth: { deviceToken } }, "NOT_FOUND"],
      ["paired device with the shared token", { device: approver, scopes: ["operator.read", "operator.pairing"], auth: { token: gw.token! } }, "MISSING_SCOPE"],
      ["backend credential", { scopes: ["operator.read", "operator.pairing"], auth: { token: backend } }, "MISSING_SCOPE"],
    ];
    for (const [who, opts, code] of attempts) {
      const s = await session(gw, opts);
      const r = await s.request("device.pair.approve", { requestId });
      assert.equal(r.ok, false, who);
      assert.equal(detailCode(r), code, `${who}: ${JSON.stringify(r.error)}`);
      if (code === "MISSING_SCOPE") assert.equal(r.error?.message, "missing scope: operator.admin");
      s.close();
    }
    const after = listDevices(gw);
    assert.deepEqual(after.pending, before.pending, "still pending");
    assert.equal(after.paired.filter((p) => p.deviceId === target.id).length, 0, "the target holds nothing");
    const refused = await openConnect(gw, { device: target, scopes: ["operator.admin", "operator.read"], auth: { token: gw.token! } }, ledger);
    await assertRefused(refused.client, refused.reply, "PAIRING_REQUIRED");
  });

  it("A32 approving an unknown, rejected or expired request id is refused with INVALID_REQUEST and mints nothing", async () => {
    const approver = addBackend(gw, "a32-approver", ["operator.pairing", "operator.read"], ledger);
    const rejectedId = await pendingRequest(gw, ["operator.read"]);
    const rj = gw.cli(["devices", "reject", rejectedId]);
    assert.equal(rj.code, 0, rj.stderr);
    const before = listDevices(gw);
    const s = await session(gw, { scopes: ["operator.pairing", "operator.read"], auth: { token: approver } });
    for (const requestId of ["00000000-0000-4000-8000-000000000000", rejectedId, "../../etc/passwd", "x".repeat(256)]) {
      const r = await s.request("device.pair.approve", { requestId });
      assert.equal(r.error?.code, "INVALID_REQUEST", requestId);
      assert.equal(detailCode(r), "NOT_FOUND");
    }
    s.close();
    assert.notEqual(gw.cli(["devices", "approve", "--yes", rejectedId]).code, 0, "the CLI refuses it too");
    assertDevicesUnchanged(gw, before);

    // expired: the capped gateway's requests live 5 s
    const cappedApprover = addBackend(capped, "a32-approver", ["operator.pairing", "operator.read"], ledger);
    const expiredId = await pendingRequest(capped, ["operator.read"], createTestDevice(), "127.0.32.1");
    await delay(CAP.pendingTtlMs + 300);
    const cappedBefore = listDevices(capped);
    const c = await session(capped, { scopes: ["operator.pairing", "operator.read"], auth: { token: cappedApprover } });
    const r = await c.request("device.pair.approve", { requestId: expiredId });
    // An approver that may act on it is told it expired (still INVALID_REQUEST, still nothing minted).
    assert.equal(r.error?.code, "INVALID_REQUEST");
    assert.equal(detailCode(r), "REQUEST_EXPIRED");
    c.close();
    assert.notEqual(capped.cli(["devices", "approve", "--yes", expiredId]).code, 0);
    assertDevicesUnchanged(capped, cappedBefore);
    assert.equal(cappedBefore.paired.length, 0);
  });

  it("A33 concurrent approvals of one request (sessions and CLI processes): exactly one succeeds, one pairing, one token", async () => {
    const approver = addBackend(gw, "a33-approver", ["operator.pairing", "operator.read"], ledger);
    const device = createTestDevice();
    const requestId = await pendingRequest(gw, ["operator.read"], device);
    const sessions = await Promise.all([1, 2, 3, 4].map(() => session(gw, { scopes: ["operator.pairing", "operator.read"], auth: { token: approver } })));
    const [replies, clis] = await Promise.all([
      Promise.all(sessions.map((s) => s.request("device.pair.approve", { requestId }))),
      Promise.all([cliAsync(gw, ["devices", "approve", "--yes", requestId]), cliAsync(gw, ["devices", "approve", "--yes", requestId])]),
    ]);
    for (const s of sessions) s.close();
    const wins = replies.filter((r) => r.ok).length + clis.filter((r) => r.code === 0).length;
    assert.equal(wins, 1, JSON.stringify({ replies: replies.map((r) => detailCode(r) ?? "ok"), clis: clis.map((c) => c.code) }));
    for (const r of replies.filter((x) => !x.ok)) assert.equal(detailCode(r), "NOT_FOUND");

    const hello = await openConnect(gw, { device, scopes: ["operator.read"], auth: { token: gw.token! } }, ledger);
    ledger.add(helloAuth(hello.reply).deviceToken);
    hello.client.close();
    const record = listDevices(gw).paired.filter((p) => p.deviceId === device.id);
    assert.equal(record.length, 1, "one pairing");
    assert.deepEqual(record[0]?.scopes, ["operator.read"]);
    assert.equal(record[0]?.tokens?.length, 1, "one token set");
  });

  it("A47 nothing the pairing attacks presented appears in the gateways' logs", async () => {
    for (const g of [gw, capped]) await assertLogsHoldNoSecret(g, ledger);
  });
});
