import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createTestDevice } from "../support/device.js";
import { startGatewayProcess, type GatewayProcess } from "../support/gateway-process.js";
import { TestClient } from "../support/protocol-client.js";

// Upstream #72418: a loopback process holding the shared token declares
// gateway-client/backend and keeps operator.admin without pairing. Here the
// declaration is a label; only a registered backend credential skips pairing.

const BACKEND_CLAIM = { clientId: "gateway-client", clientMode: "backend" } as const;

describe("seed scenario: gateway-client/backend on loopback with the shared token", () => {
  let gw: GatewayProcess;
  before(async () => {
    gw = await startGatewayProcess();
  });
  after(async () => {
    await gw.stop();
  });

  it("A01 without a device it is admitted with no scopes and admin methods are refused", async () => {
    const c = await TestClient.open(gw.url);
    const hello = await c.connect({ ...BACKEND_CLAIM, scopes: ["operator.admin"], auth: { token: gw.token! } });
    assert.equal(hello.ok, true, JSON.stringify(hello.error));
    assert.deepEqual((hello.payload as { auth: { scopes: string[] } }).auth.scopes, []);
    const health = await c.request("health", {});
    assert.equal(health.ok, true);
    const list = await c.request("device.pair.list", {});
    assert.equal(list.ok, false);
    assert.equal(list.error?.details?.code, "MISSING_SCOPE");
    const status = await c.request("status", {});
    assert.equal(status.error?.details?.code, "MISSING_SCOPE");
    c.close();
  });

  it("A02 with a fresh device key it gets PAIRING_REQUIRED exactly like a cli client", async () => {
    for (const claim of [BACKEND_CLAIM, { clientId: "cli", clientMode: "cli" }]) {
      const c = await TestClient.open(gw.url);
      const r = await c.connect({ ...claim, device: createTestDevice(), scopes: ["operator.admin"], auth: { token: gw.token! } });
      assert.equal(r.ok, false);
      assert.equal(r.error?.code, "NOT_PAIRED");
      assert.equal(r.error?.details?.reason, "not-paired");
      assert.equal((await c.closed).code, 1008);
    }
  });

  it("A28 the shared token is not a backend credential, and a registered backend credential is admitted within its scopes without pairing", async () => {
    const added = gw.cli(["backends", "add", "indexer", "--scopes", "operator.read,operator.write", "--json"]);
    assert.equal(added.code, 0, added.stderr);
    const { secret } = JSON.parse(added.stdout) as { secret: string };
    assert.match(secret, /^gwb_/);

    const withDevice = await TestClient.open(gw.url);
    const hello = await withDevice.connect({
      ...BACKEND_CLAIM,
      device: createTestDevice(),
      scopes: ["operator.admin", "operator.read", "operator.write"],
      auth: { token: secret },
    });
    assert.equal(hello.ok, true, JSON.stringify(hello.error));
    assert.deepEqual((hello.payload as { auth: { scopes: string[] } }).auth.scopes, ["operator.read", "operator.write"]);
    assert.equal((await withDevice.request("status", {})).ok, true);
    assert.equal((await withDevice.request("device.pair.list", {})).error?.details?.code, "MISSING_SCOPE");

    const noDevice = await TestClient.open(gw.url);
    const hello2 = await noDevice.connect({ ...BACKEND_CLAIM, scopes: ["operator.read"], auth: { token: secret } });
    assert.deepEqual((hello2.payload as { auth: { scopes: string[] } }).auth.scopes, ["operator.read"]);

    // Revoking the backend closes its sessions and refuses the secret from then on.
    assert.equal(gw.cli(["backends", "revoke", "indexer"]).code, 0);
    const closed = await noDevice.closed;
    assert.equal(closed.code, 4001);
    const after = await TestClient.open(gw.url);
    const refused = await after.connect({ ...BACKEND_CLAIM, auth: { token: secret } });
    assert.equal(refused.error?.details?.code, "AUTH_BACKEND_CREDENTIAL_INVALID");
    withDevice.close();
  });
});
