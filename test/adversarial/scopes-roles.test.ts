import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { satisfies } from "../../src/admission/scopes.js";
import {
  SecretLedger,
  addBackend,
  assertDevicesUnchanged,
  assertLogsHoldNoSecret,
  SCOPE_PROBES,
  assertRefused,
  helloAuth,
  honouredScopes,
  listDevices,
  openConnect,
  pairDevice,
} from "../support/adversarial.js";
import { createTestDevice } from "../support/device.js";
import { startGatewayProcess, type GatewayProcess } from "../support/gateway-process.js";

// A08–A13: a session's scopes are requested ∩ what its verified credential
// allows; upgrades need an operator; hello-ok reports exactly what methods allow.

describe("A08–A13 scopes and roles over real sockets", () => {
  const ledger = new SecretLedger();
  let gw: GatewayProcess;
  let silent: GatewayProcess;

  before(async () => {
    [gw, silent] = await Promise.all([startGatewayProcess(), startGatewayProcess({ config: { pairing: { silentLocal: { enabled: true } } } })]);
    ledger.add(gw.token, silent.token);
  });
  after(async () => {
    await Promise.all([gw.stop(), silent.stop()]);
  });

  it("A08 a device-less cli connect requesting operator.admin is admitted with [] and hello-ok.auth.scopes is []", async () => {
    const before = listDevices(gw);
    const { client, reply } = await openConnect(gw, { scopes: ["operator.admin"], auth: { token: gw.token! } }, ledger);
    const auth = helloAuth(reply);
    assert.deepEqual(auth.scopes, []);
    assert.equal(auth.deviceToken, undefined);
    assert.deepEqual(await honouredScopes(client), [], "no method needing a scope runs");
    client.close();
    assertDevicesUnchanged(gw, before);
  });

  it("A09 silent local pairing never approves above the ceiling: admin is left out, and asking for it later needs an operator", async () => {
    const device = createTestDevice();
    const first = await openConnect(silent, { device, scopes: ["operator.admin", "operator.read"], auth: { token: silent.token! } }, ledger);
    const auth = helloAuth(first.reply);
    ledger.add(auth.deviceToken);
    assert.deepEqual(auth.scopes, ["operator.read"], "the part under the default ceiling");
    assert.deepEqual(await honouredScopes(first.client), ["operator.read"]);
    first.client.close();
    const record = listDevices(silent).paired.find((p) => p.deviceId === device.id);
    assert.deepEqual(record?.scopes, ["operator.read"], "the pairing holds no admin");
    assert.ok(record?.tokens?.every((t) => !t.scopes.includes("operator.admin")), "no token holds admin");

    const upgrade = await openConnect(silent, { device, scopes: ["operator.admin"], auth: { token: silent.token! } }, ledger);
    assert.equal(upgrade.reply.error?.details?.reason, "scope-upgrade");
    await assertRefused(upgrade.client, upgrade.reply, "PAIRING_REQUIRED");
    const after = listDevices(silent);
    assert.deepEqual(after.paired.find((p) => p.deviceId === device.id)?.scopes, ["operator.read"], "still no admin until an operator approves");
    assert.equal(after.pending.filter((p) => p.deviceId === device.id).length, 1, "the upgrade waits for an operator");
  });

  it("A09 asking only for admin with silent pairing on pairs the device with no scopes at all", async () => {
    const device = createTestDevice();
    const { client, reply } = await openConnect(silent, { device, scopes: ["operator.admin"], auth: { token: silent.token! } }, ledger);
    const auth = helloAuth(reply);
    ledger.add(auth.deviceToken);
    assert.deepEqual(auth.scopes, []);
    assert.deepEqual(await honouredScopes(client), []);
    client.close();
  });

  it("A10 a device paired with operator.read reconnecting with its device token and asking for admin gets PAIRING_REQUIRED scope-upgrade, never silently", async () => {
    for (const g of [gw, silent]) {
      const device = createTestDevice();
      const { deviceToken } = await pairDevice(g, device, ledger, { scopes: ["operator.read"] });
      const before = listDevices(g);
      const up = await openConnect(g, { device, scopes: ["operator.admin"], auth: { deviceToken } }, ledger);
      assert.equal(up.reply.error?.details?.reason, "scope-upgrade");
      assert.deepEqual(up.reply.error?.details?.approvedScopes, ["operator.read"]);
      await assertRefused(up.client, up.reply, "PAIRING_REQUIRED");

      const after = listDevices(g);
      assert.deepEqual(after.paired, before.paired, "the pairing and its token are unchanged");
      const pending = after.pending.filter((p) => p.deviceId === device.id);
      assert.equal(pending.length, 1);
      assert.equal(pending[0]?.reason, "scope-upgrade");

      // Until an operator approves, the device token still admits only read.
      const again = await openConnect(g, { device, scopes: ["operator.read"], auth: { deviceToken } }, ledger);
      assert.deepEqual(helloAuth(again.reply).scopes, ["operator.read"]);
      assert.deepEqual(await honouredScopes(again.client), ["operator.read"]);
      again.client.close();
    }
  });

  it("A11 a node-role device asking for role operator gets a role-upgrade request and is never admitted as operator", async () => {
    const device = createTestDevice();
    const { deviceToken } = await pairDevice(gw, device, ledger, { role: "node" });
    const before = listDevices(gw);
    for (const auth of [{ deviceToken }, { token: gw.token! }]) {
      const { client, reply } = await openConnect(gw, { device, role: "operator", scopes: ["operator.read"], auth }, ledger);
      assert.equal(reply.error?.details?.reason, "role-upgrade", JSON.stringify(reply.error));
      assert.deepEqual(reply.error?.details?.approvedRoles, ["node"]);
      await assertRefused(client, reply, "PAIRING_REQUIRED");
      const after = listDevices(gw);
      assert.deepEqual(after.paired, before.paired, "still node only, with its node token unchanged");
      assert.deepEqual(after.pending.find((p) => p.deviceId === device.id)?.roles, ["operator"], "the upgrade waits for an operator");
    }
  });

  it("A12 role superuser is refused with INVALID_REQUEST and close 1008", async () => {
    const before = listDevices(gw);
    for (const role of ["superuser", "admin", "Operator", "operator ", "node\u0000", "owner"]) {
      const { client, reply } = await openConnect(gw, { role, auth: { token: gw.token! } }, ledger);
      assert.equal(reply.error?.code, "INVALID_REQUEST");
      assert.equal(reply.error?.message, "invalid role");
      await assertRefused(client, reply, "INVALID_ROLE");
    }
    assertDevicesUnchanged(gw, before);
  });

  it("A12 unknown scope strings are refused with INVALID_REQUEST and close 1008, even for a device paired with admin", async () => {
    const device = createTestDevice();
    const { deviceToken } = await pairDevice(gw, device, ledger, { scopes: ["operator.admin"] });
    const before = listDevices(gw);
    for (const scopes of [["operator.superuser"], ["operator.admin "], ["*"], ["operator.*"], ["admin"], ["operator.read", "node.x"], ["operator.\u0430dmin"]]) {
      const { client, reply } = await openConnect(gw, { device, scopes, auth: { deviceToken } }, ledger);
      assert.equal(reply.error?.code, "INVALID_REQUEST", JSON.stringify(scopes));
      await assertRefused(client, reply, "INVALID_SCOPE");
    }
    assertDevicesUnchanged(gw, before, "no request, no pairing change, no token");
  });

  it("A13 hello-ok.auth.scopes equals exactly the scopes the session's method calls honour, for every kind of credential", async () => {
    const readWrite = addBackend(gw, "a13-indexer", ["operator.read", "operator.write"], ledger);
    const admin = addBackend(gw, "a13-admin", ["operator.admin"], ledger);
    const device = createTestDevice();
    const { deviceToken } = await pairDevice(gw, device, ledger, { scopes: ["operator.read", "operator.pairing"] });
    const sessions: [string, Parameters<typeof openConnect>[1]][] = [
      ["shared token, no device", { scopes: ["operator.admin", "operator.read"], auth: { token: gw.token! } }],
      ["backend read+write asking for everything", { clientId: "gateway-client", clientMode: "backend", scopes: ["operator.admin", "operator.read", "operator.write", "operator.pairing"], auth: { token: readWrite } }],
      ["backend read+write asking for read", { scopes: ["operator.read"], auth: { token: readWrite } }],
      ["backend admin asking for admin", { scopes: ["operator.admin"], auth: { token: admin } }],
      ["backend admin asking for nothing", { scopes: [], auth: { token: admin } }],
      ["paired device token", { device, scopes: ["operator.read", "operator.pairing"], auth: { deviceToken } }],
      ["paired device token asking for less", { device, scopes: ["operator.pairing"], auth: { deviceToken } }],
      ["paired device with the shared token", { device, scopes: ["operator.read"], auth: { token: gw.token! } }],
    ];
    for (const [name, opts] of sessions) {
      const { client, reply } = await openConnect(gw, opts, ledger);
      const auth = helloAuth(reply);
      ledger.add(auth.deviceToken);
      const expected = SCOPE_PROBES.filter(([scope]) => satisfies(auth.scopes, scope)).map(([scope]) => scope);
      assert.deepEqual(await honouredScopes(client), expected, `${name}: hello-ok said ${JSON.stringify(auth.scopes)}`);
      assert.ok(auth.scopes.every((s) => (opts.scopes ?? []).includes(s)), `${name}: never more than requested`);
      client.close();
    }
  });

  it("A47 nothing the scope and role attacks presented appears in the gateways' logs", async () => {
    for (const g of [gw, silent]) await assertLogsHoldNoSecret(g, ledger);
  });
});
