import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  SecretLedger,
  addBackend,
  assertLogsHoldNoSecret,
  assertRefused,
  delay,
  detailCode,
  helloAuth,
  listDevices,
  openConnect,
  pairDevice,
} from "../support/adversarial.js";
import { createTestDevice, type TestDevice } from "../support/device.js";
import { startGatewayProcess, type GatewayProcess } from "../support/gateway-process.js";
import type { ConnectOptions, TestClient } from "../support/protocol-client.js";

// A49–A53, A60 over real sockets against a gateway process: what the
// management methods let a session with less authority, or the device itself,
// do after admission. The pure decisions are tested in test/pairing/.

describe("management plane over real sockets (A49–A53, A60)", () => {
  const ledger = new SecretLedger();
  let gw: GatewayProcess;
  let pairingOnly: string;

  before(async () => {
    gw = await startGatewayProcess();
    ledger.add(gw.token);
    pairingOnly = addBackend(gw, "pairing-only", ["operator.pairing"], ledger);
  });
  after(async () => {
    await assertLogsHoldNoSecret(gw, ledger);
    await gw.stop();
  });

  async function session(opts: ConnectOptions): Promise<TestClient> {
    const { client, reply } = await openConnect(gw, opts, ledger);
    assert.equal(reply.ok, true, JSON.stringify(reply.error));
    ledger.add(helloAuth(reply).deviceToken);
    return client;
  }

  /** The device's connect is refused for pairing; returns the request id and reason. */
  async function pendingOf(device: TestDevice, opts: Partial<ConnectOptions> = {}): Promise<{ requestId: string; reason: unknown }> {
    const { client, reply } = await openConnect(gw, { device, auth: { token: gw.token! }, ...opts }, ledger);
    await assertRefused(client, reply, "PAIRING_REQUIRED");
    return { requestId: reply.error?.details?.requestId as string, reason: reply.error?.details?.reason };
  }

  function tokenScopes(device: TestDevice): string[] {
    const paired = listDevices(gw).paired.find((p) => p.deviceId === device.id);
    return (paired?.tokens?.find((t) => t.role === "operator")?.scopes as string[] | undefined) ?? [];
  }

  it("A49 a pairing-only session approving a role-upgrade after the owner revoked admin restores the role with no scope", async () => {
    const d = createTestDevice();
    await pairDevice(gw, d, ledger, { scopes: ["operator.admin"] });
    assert.equal(gw.cli(["devices", "revoke", "--device", d.id, "--role", "operator"]).code, 0);
    const { requestId, reason } = await pendingOf(d);
    assert.equal(reason, "role-upgrade");
    const approver = await session({ scopes: ["operator.pairing"], auth: { token: pairingOnly } });
    const r = await approver.request("device.pair.approve", { requestId });
    assert.equal(r.ok, true, JSON.stringify(r.error));
    approver.close();
    const admin = await openConnect(gw, { device: d, scopes: ["operator.admin"], auth: { token: gw.token! } }, ledger);
    await assertRefused(admin.client, admin.reply, "PAIRING_REQUIRED");
    assert.equal(admin.reply.error?.details?.reason, "scope-upgrade", "admin stays revoked");
  });

  it("A50/A51 a device narrowed to operator.pairing changes its platform and cannot approve its own request; a pairing-only approver keeps the narrowing", async () => {
    const d = createTestDevice();
    await pairDevice(gw, d, ledger, { scopes: ["operator.admin", "operator.pairing"] });
    const rotated = gw.cli(["devices", "rotate", "--device", d.id, "--role", "operator", "--scope", "operator.pairing", "--json"]);
    assert.equal(rotated.code, 0, rotated.stderr);
    const { token } = JSON.parse(rotated.stdout) as { token: string };
    ledger.add(token);
    // The gateway closes the device's sessions when it sees the rotation (changePollMs); connect after that.
    await delay(700);
    const self = await session({ device: d, scopes: ["operator.pairing"], auth: { deviceToken: token } });
    const { requestId, reason } = await pendingOf(d, { platform: "darwin" });
    assert.equal(reason, "metadata-upgrade");
    const own = await self.request("device.pair.approve", { requestId });
    assert.equal(own.ok, false);
    assert.equal(detailCode(own), "FORBIDDEN");
    self.close();
    const approver = await session({ scopes: ["operator.pairing"], auth: { token: pairingOnly } });
    assert.equal((await approver.request("device.pair.approve", { requestId })).ok, true);
    approver.close();
    assert.deepEqual(tokenScopes(d), ["operator.pairing"], "the narrowing stays");
    const admin = await openConnect(gw, { device: d, platform: "darwin", scopes: ["operator.admin"], auth: { token: gw.token! } }, ledger);
    await assertRefused(admin.client, admin.reply, "PAIRING_REQUIRED");
  });

  it("A52 device.token.rotate on a revoked token is refused and the revocation stays", async () => {
    const d = createTestDevice();
    await pairDevice(gw, d, ledger, { scopes: ["operator.admin"] });
    assert.equal(gw.cli(["devices", "revoke", "--device", d.id, "--role", "operator"]).code, 0);
    const rotator = addBackend(gw, "a52-rotator", ["operator.pairing", "operator.read"], ledger);
    const approver = await session({ scopes: ["operator.pairing", "operator.read"], auth: { token: rotator } });
    for (const params of [{}, { scopes: ["operator.read"] }]) {
      const r = await approver.request("device.token.rotate", { deviceId: d.id, role: "operator", ...params });
      assert.equal(r.ok, false, JSON.stringify(params));
      assert.equal(detailCode(r), "FORBIDDEN");
    }
    approver.close();
    const again = await openConnect(gw, { device: d, scopes: ["operator.admin"], auth: { token: gw.token! } }, ledger);
    await assertRefused(again.client, again.reply, "PAIRING_REQUIRED");
    assert.equal(again.reply.error?.details?.reason, "role-upgrade");
  });

  it("A53 a bootstrap token issued for operator.read, presented with an admin device's key, admits operator.read at most and hands out no token", async () => {
    const d = createTestDevice();
    await pairDevice(gw, d, ledger, { scopes: ["operator.admin", "operator.read"] });
    const boot = gw.cli(["token", "bootstrap", "--scopes", "operator.read", "--json"]);
    assert.equal(boot.code, 0, boot.stderr);
    const { token } = JSON.parse(boot.stdout) as { token: string };
    ledger.add(token);
    const { client, reply } = await openConnect(gw, { device: d, scopes: ["operator.admin", "operator.read"], auth: { bootstrapToken: token } }, ledger);
    assert.equal(reply.ok, true, JSON.stringify(reply.error));
    const auth = helloAuth(reply);
    assert.deepEqual(auth.scopes, ["operator.read"]);
    assert.equal(auth.deviceToken, undefined);
    client.close();
  });

  it("A60 a session confined to its own device sees only its own pairing events, and foreign and unknown ids answer alike", async () => {
    const own = createTestDevice();
    const other = createTestDevice();
    const { deviceToken } = await pairDevice(gw, own, ledger, { scopes: ["operator.pairing"] });
    await pairDevice(gw, other, ledger, { scopes: ["operator.read"] });
    const watcher = await session({ device: own, scopes: ["operator.pairing"], auth: { deviceToken } });
    const admin = await session({ scopes: ["operator.pairing"], auth: { token: pairingOnly } });
    // Another device asks for an upgrade: only the unconfined session hears of it.
    await pendingOf(other, { scopes: ["operator.write"] });
    await admin.waitEvent("device.pair.requested");
    // Its own device asks too: the confined session hears of that one.
    await pendingOf(own, { platform: "darwin" });
    const heard = await watcher.waitFor((f) => f.type === "event" && f.event === "device.pair.requested");
    assert.equal((heard.payload as { deviceId: string }).deviceId, own.id);
    await delay(300);
    const foreign = watcher.frames.filter((f) => f.type === "event" && String(f.event).startsWith("device.pair.") && (f.payload as { deviceId?: string }).deviceId !== own.id);
    assert.deepEqual(foreign, [], "no event about another device");

    const unknown = "f".repeat(64);
    for (const [method, params] of [
      ["device.token.revoke", { role: "operator" }],
      ["device.pair.remove", {}],
      ["device.token.rotate", { role: "operator" }],
    ] as const) {
      const a = await watcher.request(method, { deviceId: other.id, ...params });
      const b = await watcher.request(method, { deviceId: unknown, ...params });
      assert.equal(a.ok, false);
      assert.deepEqual(a.error, b.error, `${method}: a foreign device answers as an unknown one`);
    }
    watcher.close();
    admin.close();
  });
});
