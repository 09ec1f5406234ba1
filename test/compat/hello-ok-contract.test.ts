import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { startGatewayProcess, type GatewayProcess } from "../support/gateway-process.js";
import { TestClient, type Frame } from "../support/protocol-client.js";

// hello-ok against the *closed* schemas of the published clients: an object
// with a key its version's schema does not declare fails validation there.
// The key sets are those of `HelloOkSchema` / `SnapshotSchema` /
// `PresenceEntrySchema` in openclaw 2026.4.24 (protocol 3) and 2026.9.6
// (protocol 4), read from the packages' own dist files. Needs no CLI install.

const V3 = {
  top: ["type", "protocol", "server", "features", "snapshot", "canvasHostUrl", "auth", "policy"],
  server: ["version", "connId"],
  features: ["methods", "events"],
  auth: ["deviceToken", "role", "scopes", "issuedAtMs", "deviceTokens"],
  policy: ["maxPayload", "maxBufferedBytes", "tickIntervalMs"],
  snapshot: ["presence", "health", "stateVersion", "uptimeMs", "configPath", "stateDir", "sessionDefaults", "authMode", "updateAvailable"],
  presence: ["host", "ip", "version", "platform", "deviceFamily", "modelIdentifier", "mode", "lastInputSeconds", "reason", "tags", "text", "ts", "deviceId", "roles", "scopes", "instanceId"],
};

const V4 = {
  top: [...V3.top.filter((k) => k !== "canvasHostUrl"), "controlUiUrl", "controlUiTabs", "controlUiWidgetKinds", "controlUiLinkReaders", "pluginSurfaceUrls"],
  server: ["version", "buildId", "bootId", "controlUiBuildSource", "connId"],
  features: ["methods", "events", "capabilities"],
  auth: ["method", "deviceToken", "recoveryMigrationAllowed", "recoveryScope", "role", "scopes", "issuedAtMs", "deviceTokens"],
  policy: [...V3.policy, "attachments", "allowedSessionVisibilities", "hasMultipleSessionSharingIdentities"],
  snapshot: [...V3.snapshot, "suspension", "appliedConfigHash", "controlUiIdentityUrl", "updateSchedule"],
  presence: [...V3.presence, "clientId", "timeZone", "onlineSince", "lastActivityAt", "user", "watchedSessions"],
};

type Shape = typeof V3;
type Obj = Record<string, unknown>;

function keysWithin(value: unknown, allowed: readonly string[], where: string): void {
  assert.ok(value && typeof value === "object" && !Array.isArray(value), `${where} is an object`);
  const extra = Object.keys(value).filter((k) => !allowed.includes(k));
  assert.deepEqual(extra, [], `${where} carries keys the client's closed schema rejects`);
}

function assertFits(hello: Obj, shape: Shape): void {
  keysWithin(hello, shape.top, "hello-ok");
  keysWithin(hello.server, shape.server, "hello-ok.server");
  keysWithin(hello.features, shape.features, "hello-ok.features");
  keysWithin(hello.auth, shape.auth, "hello-ok.auth");
  keysWithin(hello.policy, shape.policy, "hello-ok.policy");
  keysWithin(hello.snapshot, shape.snapshot, "hello-ok.snapshot");
  const presence = (hello.snapshot as { presence: unknown[] }).presence;
  assert.ok(presence.length > 0, "the snapshot shows the other session, so its entry's shape is checked too");
  for (const p of presence) keysWithin(p, shape.presence, "presence entry");
}

describe("hello-ok fits the closed schema of the client's protocol", () => {
  let gw: GatewayProcess;
  let bystander: TestClient;
  let readerSecret: string;

  before(async () => {
    gw = await startGatewayProcess();
    // Presence is shown to sessions holding operator.read: a backend with that scope.
    const added = gw.cli(["backends", "add", "presence-reader", "--scopes", "operator.read", "--json"]);
    assert.equal(added.code, 0, added.stderr);
    readerSecret = (JSON.parse(added.stdout) as { secret: string }).secret;
    // A tracked (non-CLI) session, so every snapshot carries a presence entry.
    bystander = await TestClient.open(gw.url);
    const hello = await bystander.connect({ clientId: "gateway-client", clientMode: "backend", displayName: "bystander", auth: { token: gw.token! } });
    assert.equal(hello.ok, true, JSON.stringify(hello.error));
  });
  after(async () => {
    bystander?.close();
    await gw?.stop();
  });

  async function hello(minProtocol: number, maxProtocol: number, scopes: string[] = ["operator.read"], token = readerSecret): Promise<Frame> {
    const c = await TestClient.open(gw.url);
    try {
      return await c.connect({ minProtocol, maxProtocol, scopes, auth: { token } });
    } finally {
      c.close();
    }
  }

  it("a client offering only protocol 3 (openclaw 2026.4.x) gets protocol 3 and no auth.method, server.bootId or features.capabilities", async () => {
    const reply = await hello(3, 3);
    assert.equal(reply.ok, true, JSON.stringify(reply.error));
    const payload = reply.payload as Obj;
    assert.equal(payload.protocol, 3);
    assertFits(payload, V3);
  });

  it("a client offering protocols 3 to 4 (the 2026.9.x status probe) or only 4 gets protocol 4 with auth.method, a per-process server.bootId and an empty capability list", async () => {
    const both = (await hello(3, 4)).payload as Obj;
    const only4 = (await hello(4, 4)).payload as Obj;
    for (const payload of [both, only4]) {
      assert.equal(payload.protocol, 4);
      assertFits(payload, V4);
      assert.equal((payload.auth as Obj).method, "token", "a backend credential is presented as a token");
      assert.deepEqual((payload.features as Obj).capabilities, [], "gatewarden implements none of the optional protocol-4 contracts");
      assert.equal((payload.auth as Obj).recoveryMigrationAllowed, undefined, "no recovery migration is offered");
    }
    const bootId = (both.server as Obj).bootId;
    assert.match(String(bootId), /^[0-9a-f-]{36}$/);
    assert.equal((only4.server as Obj).bootId, bootId, "one gateway process, one boot id");
    assert.notEqual((only4.server as Obj).connId, (both.server as Obj).connId);
  });

  it("a client offering only a protocol above 4 is refused with protocol mismatch", async () => {
    const reply = await hello(5, 5);
    assert.equal(reply.ok, false);
    assert.equal(reply.error?.message, "protocol mismatch");
    assert.equal(reply.error?.details?.expectedProtocol, 4);
  });

  it("under both protocols hello-ok.auth.scopes is the effective grant: a device-less shared-token session that asks for admin is told it has none", async () => {
    for (const [min, max] of [
      [3, 3],
      [4, 4],
    ] as const) {
      const reply = await hello(min, max, ["operator.admin", "operator.pairing"], gw.token!);
      assert.equal(reply.ok, true, JSON.stringify(reply.error));
      assert.deepEqual(((reply.payload as Obj).auth as Obj).scopes, [], `protocol ${max}`);
    }
  });
});
