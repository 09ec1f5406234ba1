import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Decision } from "../../src/admission/decide.js";
import { CLIENT_IDS, CLIENT_MODES, type Scope } from "../../src/protocol/enums.js";
import { ConnectParamsValidator } from "../../src/protocol/frames.js";
import {
  admitEffects,
  ALL_OPERATOR_SCOPES,
  BACKEND_SECRET,
  BOOTSTRAP_TOKEN,
  NO_AUTH,
  SHARED_PASSWORD,
  SHARED_TOKEN,
  backendRecord,
  bootstrapRecord,
  decide,
  loopbackPeer,
  makePeer,
  pairedDeviceRecord,
  passwordAuth,
  remotePeer,
  silentPairingOn,
  trustedProxyAuth,
  type ConnectOptions,
} from "../support/admission-fixtures.js";
import {
  SecretLedger,
  assertLogsHoldNoSecret,
  assertNoTraceOf,
  assertRefused,
  detailCode,
  helloAuth,
  honouredScopes,
  listDevices,
  openConnect,
} from "../support/adversarial.js";
import { createTestDevice } from "../support/device.js";
import { startGatewayProcess, type GatewayProcess } from "../support/gateway-process.js";

// A01–A07: what a client says about itself (client.id, client.mode, platform,
// displayName) is a label. It never grants a scope or skips pairing.

const BACKEND_CLAIM = { clientId: "gateway-client", clientMode: "backend" } as const;
const CLI_CLAIM = { clientId: "cli", clientMode: "cli" } as const;
const ADMIN = ["operator.admin"];

describe("A01–A05, A07 over real sockets: a backend declaration changes nothing", () => {
  const ledger = new SecretLedger();
  let gw: GatewayProcess;
  let pw: GatewayProcess;
  let open: GatewayProcess;
  let silent: GatewayProcess;
  const PASSWORD = "adversarial-password-5c1e9a7d3b";

  before(async () => {
    [gw, pw, open, silent] = await Promise.all([
      startGatewayProcess(),
      startGatewayProcess({ env: { GATEWARDEN_PASSWORD: PASSWORD } }),
      startGatewayProcess({ args: ["--auth-mode", "none"] }),
      startGatewayProcess({ config: { pairing: { silentLocal: { enabled: true } } } }),
    ]);
    ledger.add(gw.token, silent.token, PASSWORD);
  });
  after(async () => {
    await Promise.all([gw.stop(), pw.stop(), open.stop(), silent.stop()]);
  });

  it("A01 gateway-client/backend with the shared token and no device is admitted with scopes [] and every scoped method is refused", async () => {
    const { client, reply } = await openConnect(gw, { ...BACKEND_CLAIM, scopes: ADMIN, auth: { token: gw.token! } }, ledger);
    const auth = helloAuth(reply);
    assert.deepEqual(auth.scopes, []);
    assert.equal(auth.deviceToken, undefined, "no token is minted for a device-less session");
    assert.equal((await client.request("health", {})).ok, true, "health stays open to every session");
    assert.deepEqual(await honouredScopes(client), [], "every scoped method is refused");
    client.close();
    assert.deepEqual(listDevices(gw), { pending: [], paired: [] }, "nothing persisted");
    assert.deepEqual(JSON.parse(gw.cli(["backends", "list", "--json"]).stdout), [], "no backend credential appeared");
  });

  it("A01 the same connect as a cli client gets the identical grant", async () => {
    const grants: unknown[] = [];
    for (const claim of [BACKEND_CLAIM, CLI_CLAIM]) {
      const { client, reply } = await openConnect(gw, { ...claim, maxProtocol: 4, scopes: [...ALL_OPERATOR_SCOPES], auth: { token: gw.token! } }, ledger);
      const { role, scopes, method } = helloAuth(reply);
      grants.push({ role, scopes, method });
      client.close();
    }
    assert.deepEqual(grants[0], grants[1]);
    assert.deepEqual(grants[0], { role: "operator", scopes: [], method: "token" });
  });

  it("A02 gateway-client/backend with a fresh device key gets PAIRING_REQUIRED (not-paired) exactly like a cli client; pairing is never skipped", async () => {
    const requests = [];
    for (const claim of [BACKEND_CLAIM, CLI_CLAIM]) {
      const device = createTestDevice();
      const { client, reply } = await openConnect(gw, { ...claim, device, scopes: ADMIN, auth: { token: gw.token! } }, ledger);
      assert.equal(reply.error?.code, "NOT_PAIRED");
      assert.equal(reply.error?.details?.reason, "not-paired");
      await assertRefused(client, reply, "PAIRING_REQUIRED");
      const { pending, paired } = listDevices(gw);
      const mine = pending.filter((p) => p.deviceId === device.id);
      assert.equal(mine.length, 1, "one pending request, for an operator to decide");
      assert.equal(paired.filter((p) => p.deviceId === device.id).length, 0, "not paired");
      requests.push({ role: mine[0]?.role, scopes: mine[0]?.scopes, reason: mine[0]?.reason });
    }
    assert.deepEqual(requests[0], requests[1], "the backend claim's request is the cli client's request");
  });

  it("A02 with silent local pairing on, the backend claim is approved only up to the ceiling, like a cli client", async () => {
    const grants = [];
    for (const claim of [BACKEND_CLAIM, CLI_CLAIM]) {
      const device = createTestDevice();
      const { client, reply } = await openConnect(silent, { ...claim, device, scopes: ["operator.admin", "operator.read"], auth: { token: silent.token! } }, ledger);
      const auth = helloAuth(reply);
      ledger.add(auth.deviceToken);
      grants.push(auth.scopes);
      client.close();
    }
    assert.deepEqual(grants, [["operator.read"], ["operator.read"]]);
    assert.ok(listDevices(silent).paired.every((p) => !p.scopes.includes("operator.admin")), "no pairing holds admin");
  });

  it("A03 with auth.password instead of a token: scopes [] without a device, PAIRING_REQUIRED with one", async () => {
    const { client, reply } = await openConnect(pw, { ...BACKEND_CLAIM, maxProtocol: 4, scopes: ADMIN, auth: { password: PASSWORD } }, ledger);
    assert.deepEqual(helloAuth(reply).scopes, []);
    assert.equal(helloAuth(reply).method, "password");
    assert.deepEqual(await honouredScopes(client), [], "every scoped method is refused");
    client.close();

    const device = createTestDevice();
    const second = await openConnect(pw, { ...BACKEND_CLAIM, device, scopes: ADMIN, auth: { password: PASSWORD } }, ledger);
    await assertRefused(second.client, second.reply, "PAIRING_REQUIRED");
    assert.equal(listDevices(pw).paired.length, 0, "no pairing, no token");
  });

  it("A04 auth mode none: the backend declaration with no credential gets no scopes, and a device still needs pairing", async () => {
    const { client, reply } = await openConnect(open, { ...BACKEND_CLAIM, maxProtocol: 4, scopes: ADMIN }, ledger);
    const auth = helloAuth(reply);
    assert.deepEqual(auth.scopes, []);
    assert.equal(auth.method, "none");
    assert.deepEqual(await honouredScopes(client), [], "every scoped method is refused");
    client.close();

    const device = createTestDevice();
    const second = await openConnect(open, { ...BACKEND_CLAIM, device, scopes: ADMIN }, ledger);
    await assertRefused(second.client, second.reply, "PAIRING_REQUIRED");
    assert.equal(listDevices(open).paired.length, 0);
  });

  it("A05 from a container-style loopback peer (forwarding headers present): scopes [], and no silent pairing even when it is on", async () => {
    const headers = { "x-forwarded-for": "172.17.0.1", "x-forwarded-proto": "http", "x-forwarded-host": "gateway.local" };
    const { client, reply } = await openConnect(silent, { ...BACKEND_CLAIM, scopes: ADMIN, auth: { token: silent.token! } }, ledger, { headers });
    assert.deepEqual(helloAuth(reply).scopes, []);
    client.close();

    const device = createTestDevice();
    const second = await openConnect(silent, { ...BACKEND_CLAIM, device, scopes: ["operator.read"], auth: { token: silent.token! } }, ledger, { headers });
    await assertRefused(second.client, second.reply, "PAIRING_REQUIRED");
    assert.equal(listDevices(silent).paired.filter((p) => p.deviceId === device.id).length, 0, "the forwarded peer was not silently paired");
  });

  it("A06 over real sockets: every client.id × client.mode on the A01 path gets scopes [] or is refused, never a scope", async () => {
    const outcomes = new Set<string>();
    for (const clientId of CLIENT_IDS) {
      for (const clientMode of CLIENT_MODES) {
        const { client, reply } = await openConnect(gw, { clientId, clientMode, scopes: [...ALL_OPERATOR_SCOPES], auth: { token: gw.token! } }, ledger);
        if (reply.ok) {
          assert.deepEqual(helloAuth(reply).scopes, [], `${clientId}/${clientMode}`);
          outcomes.add("admitted with []");
        } else {
          // Browser labels only add the Origin check: a claim can narrow, never widen.
          assert.equal(detailCode(reply), "CONTROL_UI_ORIGIN_NOT_ALLOWED", `${clientId}/${clientMode}`);
          outcomes.add("refused (browser label without Origin)");
        }
        client.close();
      }
    }
    assert.deepEqual([...outcomes].sort(), ["admitted with []", "refused (browser label without Origin)"]);
  });

  it("A07 unicode look-alikes and case variants of gateway-client/backend are refused by the closed enumeration", async () => {
    const variants: [string, string][] = [
      ["gateway\u2011client", "backend"], // non-breaking hyphen
      ["Gateway-Client", "backend"],
      ["GATEWAY-CLIENT", "backend"],
      ["gateway-client ", "backend"],
      ["gateway_client", "backend"],
      ["\uff47ateway-client", "backend"], // fullwidth g
      ["gateway-client", "Backend"],
      ["gateway-client", "back\u0435nd"], // Cyrillic e
      ["gateway-client", "backend\u200b"], // zero-width space
    ];
    for (const [clientId, clientMode] of variants) {
      const device = createTestDevice();
      const { client, reply } = await openConnect(gw, { clientId, clientMode, device, scopes: ADMIN, auth: { token: gw.token! } }, ledger);
      assert.equal(reply.error?.code, "INVALID_REQUEST", JSON.stringify([clientId, clientMode]));
      assert.match(reply.error?.message ?? "", /^invalid connect params/);
      await assertRefused(client, reply, "INVALID_PARAMS");
      assertNoTraceOf(gw, device.id);
    }
  });

  it("A47 nothing the identity-claim attacks presented appears in the gateways' logs", async () => {
    for (const g of [gw, pw, open, silent]) await assertLogsHoldNoSecret(g, ledger);
  });
});

describe("A07 the connect schema's enumerations are closed", () => {
  it("A07 look-alikes of client ids and modes never parse, so they never reach a decision", () => {
    const base = { minProtocol: 3, maxProtocol: 3, client: { id: "gateway-client", version: "1", platform: "linux", mode: "backend" } };
    assert.equal(ConnectParamsValidator.check(base), true, "the real values parse");
    for (const id of ["gateway\u2011client", "Gateway-Client", " gateway-client", "gateway-client\u0000", "gatewayclient", "gateway-clients"]) {
      assert.equal(ConnectParamsValidator.check({ ...base, client: { ...base.client, id } }), false, JSON.stringify(id));
    }
    for (const mode of ["BACKEND", "back\u0435nd", "backend ", "", "admin"]) {
      assert.equal(ConnectParamsValidator.check({ ...base, client: { ...base.client, mode } }), false, JSON.stringify(mode));
    }
  });
});

// ---------------------------------------------------------------- A06 differential (pure core)

type Summary =
  | { kind: "admit"; role: string; scopes: readonly Scope[]; credential: string; silent: string | undefined; issue: readonly Scope[] | undefined }
  | { kind: "pairing-required"; reason: string; role: string; scopes: readonly Scope[]; credential: string }
  | { kind: "reject"; stage: string; code: string; close: number | undefined; authFailure: boolean };

function summarize(d: Decision): Summary {
  if (d.kind === "admit") {
    return { kind: "admit", role: d.grant.role, scopes: d.grant.scopes, credential: d.grant.credential, silent: d.silentApproval, issue: admitEffects(d).pairedScopes };
  }
  if (d.kind === "pairing-required") {
    return { kind: "pairing-required", reason: d.request.reason, role: d.request.role, scopes: d.request.scopes, credential: d.credential.kind };
  }
  return { kind: "reject", stage: d.stage, code: d.error.detailCode, close: d.error.close?.code, authFailure: d.authFailure };
}

/** `variant` grants nothing `base` does not: a label may narrow a decision, never widen it. */
function assertNotWider(base: Summary, variant: Summary, label: string): void {
  if (variant.kind === "admit") {
    assert.equal(base.kind, "admit", `${label}: admitted where the base was not`);
    if (base.kind !== "admit") return;
    assert.equal(variant.role, base.role, label);
    assert.equal(variant.credential, base.credential, label);
    assert.ok(variant.scopes.every((s) => base.scopes.includes(s)), `${label}: scopes widened`);
  } else if (variant.kind === "pairing-required") {
    assert.notEqual(base.kind, "reject", `${label}: a refused connect became a pairing request`);
  }
}

const paired = createTestDevice();
const fresh = createTestDevice();
const other = createTestDevice();
const DEVICE_TOKEN = "adversarial-device-token-4e8b2c6a";
const pairedRead = pairedDeviceRecord(paired, { approvedScopes: ["operator.read"], tokens: { operator: { token: DEVICE_TOKEN, scopes: ["operator.read"] } } });
const pairedPinned = pairedDeviceRecord(paired, {
  approvedScopes: ["operator.read"],
  platform: "linux",
  tokens: { operator: { token: DEVICE_TOKEN, scopes: ["operator.read"] } },
});

/** Every case of this file (and the other decision cases of the catalogue), as pure-core inputs. */
const SCENARIOS: Record<string, ConnectOptions> = {
  "A01 shared token, no device, asks admin": { presented: { token: SHARED_TOKEN }, claims: { requestedScopes: ["operator.admin"] } },
  "A02 shared token, fresh device": { device: fresh, presented: { token: SHARED_TOKEN }, claims: { requestedScopes: ["operator.admin"] } },
  "A03 password, no device": { presented: { password: SHARED_PASSWORD }, policy: { auth: passwordAuth() }, claims: { requestedScopes: ["operator.admin"] } },
  "A03 password, fresh device": { device: fresh, presented: { password: SHARED_PASSWORD }, policy: { auth: passwordAuth() } },
  "A04 auth none, no credential": { policy: { auth: NO_AUTH }, claims: { requestedScopes: ["operator.admin"] } },
  "A04 auth none, fresh device": { device: fresh, policy: { auth: NO_AUTH } },
  "A05 container loopback peer": {
    presented: { token: SHARED_TOKEN },
    facts: { peer: makePeer({ remoteAddress: "127.0.0.1", forwardedFor: "172.17.0.1" }) },
    claims: { requestedScopes: ["operator.admin"] },
  },
  "A09 silent pairing, fresh device asks admin+read": {
    device: fresh,
    presented: { token: SHARED_TOKEN },
    policy: { silentLocalPairing: silentPairingOn() },
    claims: { requestedScopes: ["operator.admin", "operator.read"] },
  },
  "A10 paired read, device token, asks admin": {
    device: paired,
    presented: { deviceToken: DEVICE_TOKEN },
    facts: { pairedDevice: pairedRead },
    claims: { requestedScopes: ["operator.admin"] },
  },
  "paired read, device token, asks read": {
    device: paired,
    presented: { deviceToken: DEVICE_TOKEN },
    facts: { pairedDevice: pairedRead },
    claims: { requestedScopes: ["operator.read"] },
  },
  "paired read, shared token": { device: paired, presented: { token: SHARED_TOKEN }, facts: { pairedDevice: pairedRead }, claims: { requestedScopes: ["operator.read"] } },
  "platform pinned, device token": {
    device: paired,
    presented: { deviceToken: DEVICE_TOKEN },
    facts: { pairedDevice: pairedPinned },
    claims: { requestedScopes: ["operator.read"] },
  },
  "A11 node device asks operator": {
    device: paired,
    presented: { token: SHARED_TOKEN },
    facts: { pairedDevice: pairedDeviceRecord(paired, { roles: ["node"] }) },
  },
  "A12 unknown scope": { presented: { token: SHARED_TOKEN }, claims: { requestedScopes: ["operator.superuser"] } },
  "A15 wrong nonce": { device: fresh, presented: { token: SHARED_TOKEN }, sign: { nonce: "another-socket-nonce" }, wire: { nonce: "another-socket-nonce" } },
  "A21 locked out": { presented: { token: SHARED_TOKEN }, facts: { lockout: { retryAfterMs: 1000 } } },
  "A24 A's token with B's key": { device: other, presented: { deviceToken: DEVICE_TOKEN }, facts: { pairedDevice: pairedRead } },
  "A26 revoked token": {
    device: paired,
    presented: { deviceToken: DEVICE_TOKEN },
    facts: { pairedDevice: pairedDeviceRecord(paired, { approvedScopes: ["operator.read"], tokens: { operator: { token: DEVICE_TOKEN, revokedAtMs: 1 } } }) },
  },
  "A27 consumed bootstrap": { device: fresh, presented: { bootstrapToken: BOOTSTRAP_TOKEN }, facts: { bootstrap: bootstrapRecord({ consumedAtMs: 1 }) } },
  "bootstrap, fresh device": { device: fresh, presented: { bootstrapToken: BOOTSTRAP_TOKEN }, facts: { bootstrap: bootstrapRecord() }, claims: { requestedScopes: ["operator.read"] } },
  "A28 backend credential, no device": { presented: { token: BACKEND_SECRET }, facts: { backend: backendRecord() }, claims: { requestedScopes: ["operator.read", "operator.admin"] } },
  "A28 backend credential, fresh device": { device: fresh, presented: { token: BACKEND_SECRET }, facts: { backend: backendRecord() }, claims: { requestedScopes: ["operator.write"] } },
  "A34 remote peer, shared token": { presented: { token: SHARED_TOKEN }, facts: { peer: remotePeer() }, claims: { requestedScopes: ["operator.admin"] } },
  "trusted proxy user": {
    facts: { peer: makePeer({ remoteAddress: "10.0.0.5", forwardedFor: "198.51.100.4", proxyHeaders: { "x-forwarded-user": "alice" }, trustedProxies: ["10.0.0.0/8"] }) },
    policy: { auth: trustedProxyAuth(), trustedProxies: ["10.0.0.0/8"] },
  },
  "A37 evil origin": { presented: { token: SHARED_TOKEN }, facts: { peer: loopbackPeer({ origin: "https://evil.example" }) } },
};

const BROWSER_IDS = new Set(["openclaw-control-ui", "webchat-ui"]);

function withLabels(opts: ConnectOptions, labels: NonNullable<ConnectOptions["claims"]>): ConnectOptions {
  return { ...opts, claims: { ...opts.claims, ...labels } };
}

describe("A06 differential: swapping client-declared labels never changes a decision (pure core)", () => {
  it("A06 every client.id × client.mode gives the identical decision, except browser labels, which may only narrow it", () => {
    for (const [name, opts] of Object.entries(SCENARIOS)) {
      const base = summarize(decide(withLabels(opts, CLI_CLAIM)));
      for (const clientId of CLIENT_IDS) {
        for (const clientMode of CLIENT_MODES) {
          const label = `${name} as ${clientId}/${clientMode}`;
          const variant = summarize(decide(withLabels(opts, { clientId, clientMode })));
          if (BROWSER_IDS.has(clientId) || clientMode === "webchat") assertNotWider(base, variant, label);
          else assert.deepEqual(variant, base, label);
        }
      }
    }
  });

  it("A06 displayName, version, instanceId and modelIdentifier never change a decision", () => {
    const labels = [
      { displayName: "gateway:health" },
      { displayName: "Administrator" },
      { version: "9999.0.0" },
      { instanceId: "backend-main" },
      { modelIdentifier: "Mac15,3" },
      { displayName: "x".repeat(256), version: "dev", instanceId: "i", modelIdentifier: "m" },
    ];
    for (const [name, opts] of Object.entries(SCENARIOS)) {
      const base = summarize(decide(opts));
      for (const l of labels) assert.deepEqual(summarize(decide(withLabels(opts, l))), base, `${name} with ${JSON.stringify(l).slice(0, 60)}`);
    }
  });

  it("A06 platform and deviceFamily never widen a decision; a pinned device that changes them needs a metadata-upgrade approval", () => {
    for (const [name, opts] of Object.entries(SCENARIOS)) {
      const base = summarize(decide(opts));
      for (const l of [{ platform: "darwin" }, { platform: "Windows" }, { deviceFamily: "iPhone" }, { platform: "linux", deviceFamily: "server" }]) {
        assertNotWider(base, summarize(decide(withLabels(opts, l))), `${name} with ${JSON.stringify(l)}`);
      }
    }
    const moved = summarize(decide(withLabels(SCENARIOS["platform pinned, device token"]!, { platform: "darwin" })));
    assert.equal(moved.kind, "pairing-required");
    assert.equal(moved.kind === "pairing-required" && moved.reason, "metadata-upgrade");
  });
});
