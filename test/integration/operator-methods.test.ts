import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createTestDevice, type TestDevice } from "../support/device.js";
import { startGatewayProcess, type GatewayProcess } from "../support/gateway-process.js";
import { TestClient } from "../support/protocol-client.js";

// Pairing administration over the protocol, by an operator session holding
// operator.pairing (here: a registered backend), and the events it receives.

describe("operator methods and events against a real gateway process", () => {
  let gw: GatewayProcess;
  let adminSecret: string;
  let readerSecret: string;

  before(async () => {
    gw = await startGatewayProcess();
    const admin = gw.cli(["backends", "add", "approver", "--scopes", "operator.pairing,operator.read", "--json"]);
    assert.equal(admin.code, 0, admin.stderr);
    adminSecret = (JSON.parse(admin.stdout) as { secret: string }).secret;
    const reader = gw.cli(["backends", "add", "reader", "--scopes", "operator.read", "--json"]);
    readerSecret = (JSON.parse(reader.stdout) as { secret: string }).secret;
  });
  after(async () => {
    await gw.stop();
  });

  async function operator(secret: string, scopes: string[]): Promise<TestClient> {
    const c = await TestClient.open(gw.url);
    const hello = await c.connect({ clientId: "gateway-client", clientMode: "backend", scopes, auth: { token: secret } });
    assert.equal(hello.ok, true, JSON.stringify(hello.error));
    return c;
  }

  async function requestPairing(device: TestDevice, scopes: string[], role = "operator"): Promise<string> {
    const c = await TestClient.open(gw.url);
    const r = await c.connect({ device, scopes, role, auth: { token: gw.token! } });
    assert.equal(r.error?.details?.code, "PAIRING_REQUIRED", JSON.stringify(r.error));
    return r.error?.details?.requestId as string;
  }

  it("sessions holding operator.pairing receive device.pair.requested and device.pair.resolved; others do not", async () => {
    const approver = await operator(adminSecret, ["operator.pairing", "operator.read"]);
    const reader = await operator(readerSecret, ["operator.read"]);
    const device = createTestDevice();
    const requestId = await requestPairing(device, ["operator.read"]);
    const requested = await approver.waitEvent("device.pair.requested");
    assert.equal((requested.payload as { requestId: string }).requestId, requestId);
    assert.equal((requested.payload as { deviceId: string }).deviceId, device.id);

    const approved = await approver.request("device.pair.approve", { requestId });
    assert.equal(approved.ok, true, JSON.stringify(approved.error));
    const resolved = await approver.waitEvent("device.pair.resolved");
    assert.deepEqual(
      { ...(resolved.payload as Record<string, unknown>), ts: 0 },
      { requestId, deviceId: device.id, decision: "approved", ts: 0 },
    );
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(reader.frames.some((f) => f.event?.startsWith("device.pair.")), false, "operator.read alone receives no pairing events");
    approver.close();
    reader.close();
  });

  it("presence (events and the hello snapshot) reaches sessions holding operator.read, never scope-less ones", async () => {
    const reader = await operator(readerSecret, ["operator.read"]);
    const blind = await TestClient.open(gw.url);
    const blindHello = await blind.connect({ clientId: "gateway-client", clientMode: "backend", auth: { token: gw.token! } });
    assert.deepEqual((blindHello.payload as { snapshot: { presence: unknown[] } }).snapshot.presence, []);
    const other = await TestClient.open(gw.url);
    await other.connect({ clientId: "gateway-client", clientMode: "backend", displayName: "visible", auth: { token: readerSecret }, scopes: ["operator.read"] });
    const seen = await reader.waitFor((f) => f.event === "presence" && JSON.stringify(f.payload).includes("visible"));
    assert.ok(seen);
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(blind.frames.some((f) => f.event === "presence"), false, "a session with no scopes learns nothing about other clients");
    for (const c of [reader, blind, other]) c.close();
  });

  it("A30 a session without operator.pairing cannot approve, and the request stays pending", async () => {
    const reader = await operator(readerSecret, ["operator.read"]);
    const requestId = await requestPairing(createTestDevice(), ["operator.read"]);
    const r = await reader.request("device.pair.approve", { requestId });
    assert.equal(r.error?.details?.code, "MISSING_SCOPE");
    const list = JSON.parse(gw.cli(["devices", "list", "--json"]).stdout) as { pending: { requestId: string }[] };
    assert.ok(list.pending.some((p) => p.requestId === requestId));
    reader.close();
  });

  it("A31 an approver holding operator.read and operator.pairing cannot approve operator.admin", async () => {
    const approver = await operator(adminSecret, ["operator.pairing", "operator.read"]);
    const requestId = await requestPairing(createTestDevice(), ["operator.admin"]);
    const r = await approver.request("device.pair.approve", { requestId });
    assert.equal(r.ok, false);
    assert.equal(r.error?.details?.code, "MISSING_SCOPE");
    assert.match(r.error?.message ?? "", /missing scope: operator.admin/);
    approver.close();
  });

  it("device.token.rotate and device.token.revoke close the device's live sessions with 4001", async () => {
    const approver = await operator(adminSecret, ["operator.pairing", "operator.read"]);
    const device = createTestDevice();
    const requestId = await requestPairing(device, ["operator.read"]);
    assert.equal((await approver.request("device.pair.approve", { requestId })).ok, true);

    const live = await TestClient.open(gw.url);
    const hello = await live.connect({ device, scopes: ["operator.read"], auth: { token: gw.token! } });
    const oldToken = (hello.payload as { auth: { deviceToken: string } }).auth.deviceToken;
    const rotated = await approver.request("device.token.rotate", { deviceId: device.id, role: "operator" });
    assert.equal(rotated.ok, true, JSON.stringify(rotated.error));
    const newToken = (rotated.payload as { token: string }).token;
    assert.notEqual(newToken, oldToken);
    const closed = await live.closed;
    assert.equal(closed.code, 4001);

    const stale = await TestClient.open(gw.url);
    const refused = await stale.connect({ device, scopes: ["operator.read"], auth: { deviceToken: oldToken } });
    assert.equal(refused.error?.details?.code, "AUTH_DEVICE_TOKEN_MISMATCH", "A26 a rotated-away token is refused");

    const fresh = await TestClient.open(gw.url);
    assert.equal((await fresh.connect({ device, scopes: ["operator.read"], auth: { deviceToken: newToken } })).ok, true);
    assert.equal((await approver.request("device.token.revoke", { deviceId: device.id, role: "operator" })).ok, true);
    assert.equal((await fresh.closed).code, 4001);

    const revoked = await TestClient.open(gw.url);
    const r = await revoked.connect({ device, scopes: ["operator.read"], auth: { deviceToken: newToken } });
    assert.equal(r.ok, false, "A26 a revoked token is refused");
    approver.close();
  });

  let current = "";
  it("a device rotating its own token over its session gets the new token in the reply, then the session closes with 4001 and the new token admits", async () => {
    const approver = await operator(adminSecret, ["operator.pairing", "operator.read"]);
    const device = createTestDevice();
    const scopes = ["operator.pairing", "operator.read"];
    const requestId = await requestPairing(device, scopes);
    assert.equal((await approver.request("device.pair.approve", { requestId })).ok, true);
    approver.close();
    const first = await TestClient.open(gw.url);
    const token = ((await first.connect({ device, scopes, auth: { token: gw.token! } })).payload as { auth: { deviceToken: string } }).auth.deviceToken;
    first.close();

    for (let round = 0; round < 5; round++) {
      const self = await TestClient.open(gw.url);
      assert.equal((await self.connect({ device, scopes, auth: { deviceToken: round === 0 ? token : current } })).ok, true);
      const rotated = await self.request("device.token.rotate", { deviceId: device.id, role: "operator" });
      assert.equal(rotated.ok, true, `round ${round}: the reply arrives before the close (${JSON.stringify(rotated.error)})`);
      current = (rotated.payload as { token: string }).token;
      assert.equal((await self.closed).code, 4001, "the session of the old token ends");
    }
    const fresh = await TestClient.open(gw.url);
    assert.equal((await fresh.connect({ device, scopes, auth: { deviceToken: current } })).ok, true);
    fresh.close();
  });

  it("gatewarden token rotate closes sessions admitted with the old token (4001 gateway auth changed) and the new token works", async () => {
    const live = await TestClient.open(gw.url);
    assert.equal((await live.connect({ auth: { token: gw.token! } })).ok, true);
    const rotated = gw.cli(["token", "rotate", "--json"]);
    assert.equal(rotated.code, 0, rotated.stderr);
    const newToken = (JSON.parse(rotated.stdout) as { token: string }).token;
    const closed = await live.closed;
    assert.deepEqual(closed, { code: 4001, reason: "gateway auth changed" });
    const old = await TestClient.open(gw.url);
    assert.equal((await old.connect({ auth: { token: gw.token! } })).error?.details?.code, "AUTH_TOKEN_MISMATCH");
    const fresh = await TestClient.open(gw.url);
    assert.equal((await fresh.connect({ auth: { token: newToken } })).ok, true);
    fresh.close();
  });
});
