import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createTestDevice } from "../support/device.js";
import { startGatewayProcess, type GatewayProcess } from "../support/gateway-process.js";
import { TestClient } from "../support/protocol-client.js";

describe("pairing end to end against a real gateway process", () => {
  let gw: GatewayProcess;
  before(async () => {
    gw = await startGatewayProcess();
  });
  after(async () => {
    await gw.stop();
  });

  it("a new device is refused with PAIRING_REQUIRED, approved with the CLI, then admitted with its device token", async () => {
    const device = createTestDevice();
    const scopes = ["operator.read", "operator.pairing"];

    const first = await TestClient.open(gw.url);
    const refused = await first.connect({ device, scopes, auth: { token: gw.token! } });
    assert.equal(refused.ok, false);
    assert.equal(refused.error?.code, "NOT_PAIRED");
    assert.equal(refused.error?.details?.code, "PAIRING_REQUIRED");
    assert.equal(refused.error?.details?.reason, "not-paired");
    const requestId = refused.error?.details?.requestId as string;
    assert.match(requestId, /^[0-9a-f-]{36}$/);
    const closed = await first.closed;
    assert.equal(closed.code, 1008);
    assert.match(closed.reason, /pairing required/);

    const listed = gw.cli(["devices", "list", "--json"]);
    assert.equal(listed.code, 0, listed.stderr);
    const pending = (JSON.parse(listed.stdout) as { pending: { requestId: string; scopes: string[] }[] }).pending;
    assert.deepEqual(pending.map((p) => p.requestId), [requestId]);
    assert.deepEqual(pending[0]?.scopes, [...scopes].sort());

    const approved = gw.cli(["devices", "approve", "--yes", requestId]);
    assert.equal(approved.code, 0, approved.stderr);

    const second = await TestClient.open(gw.url);
    const hello = await second.connect({ device, scopes, auth: { token: gw.token! } });
    assert.equal(hello.ok, true, JSON.stringify(hello.error));
    const auth = (hello.payload as { auth: { role: string; scopes: string[]; deviceToken?: string } }).auth;
    assert.equal(auth.role, "operator");
    assert.deepEqual(auth.scopes, [...scopes].sort());
    assert.ok(auth.deviceToken && auth.deviceToken.length === 43);
    second.close();

    const third = await TestClient.open(gw.url);
    // protocol 4: its hello-ok names the auth method (protocol 3's closed schema has no such field)
    const again = await third.connect({ device, maxProtocol: 4, scopes, auth: { deviceToken: auth.deviceToken } });
    assert.equal(again.ok, true, JSON.stringify(again.error));
    const againAuth = (again.payload as { auth: { scopes: string[]; method: string; deviceToken?: string } }).auth;
    assert.deepEqual(againAuth.scopes, [...scopes].sort());
    assert.equal(againAuth.method, "device-token");
    assert.equal(againAuth.deviceToken, undefined, "a device token is never re-sent (only its hash is stored)");
    const list = await third.request("device.pair.list", {});
    assert.equal(list.ok, true);
    third.close();
  });

  it("the verification code the device receives is the one the approver sees (devices list, its table, device.pair.list); approve --code refuses another code and approves with the right one", async () => {
    const device = createTestDevice();
    const client = await TestClient.open(gw.url);
    const refused = await client.connect({ device, scopes: ["operator.read"], auth: { token: gw.token! } });
    const requestId = refused.error?.details?.requestId as string;
    const code = refused.error?.details?.verificationCode as string;
    assert.match(code, /^[0-9]{6}$/);

    const listed = JSON.parse(gw.cli(["devices", "list", "--json"]).stdout) as { pending: { requestId: string; verificationCode: string }[] };
    assert.equal(listed.pending.find((p) => p.requestId === requestId)?.verificationCode, code);
    const tableRow = gw.cli(["devices", "list"]).stdout.split("\n").find((l) => l.startsWith(requestId));
    assert.ok(tableRow?.split(/\s+/).includes(code), tableRow);

    // An operator session with operator.pairing sees the same code over the protocol.
    const approver = createTestDevice();
    const first = await TestClient.open(gw.url);
    const pendingApprover = await first.connect({ device: approver, scopes: ["operator.pairing"], auth: { token: gw.token! } });
    assert.equal(gw.cli(["devices", "approve", "--yes", pendingApprover.error?.details?.requestId as string]).code, 0);
    const op = await TestClient.open(gw.url);
    assert.equal((await op.connect({ device: approver, scopes: ["operator.pairing"], auth: { token: gw.token! } })).ok, true);
    const pairList = await op.request("device.pair.list", {});
    const seen = (pairList.payload as { pending: { requestId: string; verificationCode: string }[] }).pending.find((p) => p.requestId === requestId);
    assert.equal(seen?.verificationCode, code);
    op.close();

    const wrong = String((Number(code) + 1) % 1_000_000).padStart(6, "0");
    const mismatch = gw.cli(["devices", "approve", "--yes", requestId, "--code", wrong]);
    assert.notEqual(mismatch.code, 0);
    assert.equal(mismatch.stderr, `gatewarden: the verification code of request ${requestId} is not ${wrong}: not approved (this may not be the device you expect)\n`);
    const malformed = gw.cli(["devices", "approve", "--yes", requestId, "--code", "12ab"]);
    assert.notEqual(malformed.code, 0);
    assert.match(malformed.stderr, /^gatewarden: --code takes the 6 digits the device shows\n$/);
    assert.ok(
      (JSON.parse(gw.cli(["devices", "list", "--json"]).stdout) as { pending: { requestId: string }[] }).pending.some((p) => p.requestId === requestId),
      "still pending after both refusals",
    );
    const approved = gw.cli(["devices", "approve", "--yes", requestId, "--code", code]);
    assert.equal(approved.code, 0, approved.stderr);
  });

  it("devices approve --scopes grants only a subset of the request: a scope it did not ask for is refused in one line, and the device is admitted with the subset", async () => {
    const device = createTestDevice();
    const client = await TestClient.open(gw.url);
    const refused = await client.connect({ device, scopes: ["operator.read", "operator.write"], auth: { token: gw.token! } });
    const requestId = refused.error?.details?.requestId as string;
    const widened = gw.cli(["devices", "approve", "--yes", requestId, "--scopes", "operator.read,operator.admin"]);
    assert.notEqual(widened.code, 0);
    assert.equal(widened.stderr, "gatewarden: scope not requested: operator.admin (an approval can only narrow the request)\n");
    const narrowed = gw.cli(["devices", "approve", "--yes", requestId, "--scopes", "operator.read", "--json"]);
    assert.equal(narrowed.code, 0, narrowed.stderr);
    assert.deepEqual((JSON.parse(narrowed.stdout) as { granted: { scopes: string[] } }).granted.scopes, ["operator.read"]);
    const again = await TestClient.open(gw.url);
    const admitted = await again.connect({ device, scopes: ["operator.read"], auth: { token: gw.token! } });
    assert.equal(admitted.ok, true, JSON.stringify(admitted.error));
    assert.deepEqual((admitted.payload as { auth: { scopes: string[] } }).auth.scopes, ["operator.read"]);
    again.close();
    // Asking for the write scope it was not granted is a new request, not an admission.
    const upgrade = await TestClient.open(gw.url);
    const asked = await upgrade.connect({ device, scopes: ["operator.read", "operator.write"], auth: { token: gw.token! } });
    assert.equal(asked.error?.details?.code, "PAIRING_REQUIRED");
  });

  it("a device token does not work with another device's key", async () => {
    const a = createTestDevice();
    const b = createTestDevice();
    const c1 = await TestClient.open(gw.url);
    const r1 = await c1.connect({ device: a, scopes: ["operator.read"], auth: { token: gw.token! } });
    assert.equal(gw.cli(["devices", "approve", "--yes", r1.error?.details?.requestId as string]).code, 0);
    const c2 = await TestClient.open(gw.url);
    const hello = await c2.connect({ device: a, scopes: ["operator.read"], auth: { token: gw.token! } });
    const tokenA = (hello.payload as { auth: { deviceToken: string } }).auth.deviceToken;
    c2.close();

    const c3 = await TestClient.open(gw.url);
    const stolen = await c3.connect({ device: b, scopes: ["operator.read"], auth: { deviceToken: tokenA } });
    assert.equal(stolen.ok, false);
    assert.equal(stolen.error?.details?.code, "AUTH_DEVICE_TOKEN_MISMATCH");
    assert.equal((await c3.closed).code, 1008);
  });

  it("removing a device closes its live session with 4001", async () => {
    const device = createTestDevice();
    const c1 = await TestClient.open(gw.url);
    const r1 = await c1.connect({ device, auth: { token: gw.token! } });
    assert.equal(gw.cli(["devices", "approve", "--yes", r1.error?.details?.requestId as string]).code, 0);
    const live = await TestClient.open(gw.url);
    const hello = await live.connect({ device, auth: { token: gw.token! } });
    assert.equal(hello.ok, true, JSON.stringify(hello.error));
    const removed = gw.cli(["devices", "remove", device.id]);
    assert.equal(removed.code, 0, removed.stderr);
    const closed = await live.closed;
    assert.equal(closed.code, 4001);
    assert.equal(closed.reason, "device removed");
  });
});
