import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { decideAdmission, effectiveRoles, negotiateProtocol } from "../../src/admission/decide.js";
import { claimsFromConnect } from "../../src/admission/claims.js";
import { satisfies } from "../../src/admission/scopes.js";
import { ConnectParamsValidator, type ConnectParams } from "../../src/protocol/frames.js";
import { toWireError } from "../../src/protocol/gateway-error.js";
import type { Scope } from "../../src/protocol/enums.js";
import { createTestDevice } from "../support/device.js";
import {
  admitEffects,
  ALL_OPERATOR_SCOPES,
  BACKEND_CLIENT_CLAIM,
  BACKEND_SECRET,
  BOOTSTRAP_TOKEN,
  CHALLENGE_NONCE,
  NO_AUTH,
  NOW_MS,
  SHARED_PASSWORD,
  SHARED_TOKEN,
  assertAdmit,
  assertPairingRequired,
  assertReject,
  backendRecord,
  bootstrapRecord,
  connectInput,
  decide,
  loopbackPeer,
  makePeer,
  pairedDeviceRecord,
  passwordAuth,
  remotePeer,
  silentPairingOn,
  tokenAuth,
  trustedProxyAuth,
  type ConnectOptions,
} from "../support/admission-fixtures.js";

const fresh = createTestDevice();
const paired = createTestDevice();
const other = createTestDevice();
const DEVICE_TOKEN = "device-token-7d3a9c1e5b";
const ADMIN: Scope[] = ["operator.admin"];

/** Loopback, no Origin, the shared token, a `gateway-client`/`backend` claim asking for admin (issue #72418). */
const SEED: ConnectOptions = {
  claims: { ...BACKEND_CLIENT_CLAIM, requestedScopes: ADMIN },
  presented: { token: SHARED_TOKEN },
};

function withSeed(extra: ConnectOptions): ConnectOptions {
  return {
    ...SEED,
    ...extra,
    claims: { ...SEED.claims, ...extra.claims },
    facts: { ...SEED.facts, ...extra.facts },
    policy: { ...SEED.policy, ...extra.policy },
  };
}

describe("decideAdmission: seed scenario (gateway-client/backend + shared secret + operator.admin, issue #72418)", () => {
  it("A01 without a device the backend claim is admitted with scopes [] only", () => {
    const d = assertAdmit(decide(SEED), { role: "operator", scopes: [], credential: "shared-secret" });
    assert.equal(d.grant.authMethod, "token");
    assert.equal(d.grant.deviceId, undefined);
    assert.equal(d.device, undefined);
    assert.equal(admitEffects(d).mints, undefined);
    assert.equal(d.silentApproval, undefined);
    assert.equal(d.protocol, 3);
  });

  it("A08 a device-less cli client asking for operator.admin gets the same: scopes []", () => {
    assertAdmit(decide(withSeed({ claims: { clientId: "cli", clientMode: "cli" } })), { scopes: [], credential: "shared-secret" });
  });

  it("A02 with a fresh unpaired device the backend claim needs pairing (not-paired), exactly like a cli client", () => {
    for (const claims of [BACKEND_CLIENT_CLAIM, { clientId: "cli", clientMode: "cli" } as const]) {
      const d = assertPairingRequired(decide(withSeed({ claims, device: fresh })), "not-paired");
      assert.equal(d.request.deviceId, fresh.id);
      assert.equal(d.request.publicKey, fresh.publicKey);
      assert.equal(d.request.role, "operator");
      assert.deepEqual(d.request.scopes, ADMIN);
      assert.equal(d.request.isRepair, false);
      assert.equal(d.request.requesterIp, "127.0.0.1");
      assert.equal(d.request.metadata.clientId, claims.clientId);
      assert.equal(d.approved, undefined);
      assert.equal(d.credential.kind, "shared-secret");
    }
  });

  it("A03 with auth.password instead of a token: admitted with [] without a device, pairing with one", () => {
    const base = { presented: { password: SHARED_PASSWORD }, policy: { auth: passwordAuth() } };
    const d = assertAdmit(decide(withSeed(base)), { scopes: [], credential: "shared-secret" });
    assert.equal(d.grant.authMethod, "password");
    assertPairingRequired(decide(withSeed({ ...base, device: fresh })), "not-paired");
  });

  it("A04 with auth mode none and no credential: no scopes without a device, pairing with one", () => {
    const base = { presented: {}, policy: { auth: NO_AUTH } };
    const d = assertAdmit(decide(withSeed(base)), { scopes: [], credential: "open" });
    assert.equal(d.grant.authMethod, "none");
    assertPairingRequired(decide(withSeed({ ...base, device: fresh })), "not-paired");
  });

  it("A05 from a container-style loopback peer with forwarding headers: as A01 and A02", () => {
    for (const peer of [
      makePeer({ remoteAddress: "127.0.0.1", forwardedFor: "172.17.0.1" }),
      makePeer({ remoteAddress: "127.0.0.1", realIp: "127.0.0.1" }),
      makePeer({ remoteAddress: "::ffff:127.0.0.1", forwarded: "for=127.0.0.1" }),
    ]) {
      assertAdmit(decide(withSeed({ facts: { peer } })), { scopes: [] });
      assertPairingRequired(decide(withSeed({ facts: { peer }, device: fresh })), "not-paired");
      // silent local pairing does not apply either: the connection is not direct_local
      assertPairingRequired(decide(withSeed({ facts: { peer }, device: fresh, policy: { silentLocalPairing: silentPairingOn() } })), "not-paired");
    }
  });

  it("A05 from a remote peer: the same outcomes", () => {
    assertAdmit(decide(withSeed({ facts: { peer: remotePeer() } })), { scopes: [] });
    assertPairingRequired(decide(withSeed({ facts: { peer: remotePeer() }, device: fresh })), "not-paired");
  });
});

describe("decideAdmission: registered backend credential (the one pairing-free path)", () => {
  const backend = backendRecord({ scopes: ["operator.read", "operator.write"] });
  const BACKEND: ConnectOptions = withSeed({ presented: { token: BACKEND_SECRET }, facts: { backend } });

  it("is admitted without a device with requested ∩ backend scopes", () => {
    const d = assertAdmit(decide(withSeed({ ...BACKEND, claims: { requestedScopes: ["operator.admin", "operator.read"] } })), {
      role: "operator",
      scopes: ["operator.read"],
      credential: "backend",
    });
    assert.equal(d.grant.principal, "ci-runner");
    assert.equal(d.grant.authMethod, "token");
    assert.equal(admitEffects(d).mints, undefined);
  });

  it("asking for admin when the backend holds read+write grants nothing above read+write", () => {
    assertAdmit(decide(BACKEND), { scopes: [], credential: "backend" });
  });

  it("a backend registered with admin gets exactly what it asks for, no more", () => {
    const admin = withSeed({ ...BACKEND, facts: { backend: backendRecord({ scopes: ADMIN }) }, claims: { requestedScopes: ["operator.read", "operator.pairing"] } });
    assertAdmit(decide(admin), { scopes: ["operator.pairing", "operator.read"] });
  });

  it("with a fresh, unpaired device it is admitted with no pairing step and no device token", () => {
    const d = assertAdmit(decide(withSeed({ ...BACKEND, device: fresh, claims: { requestedScopes: ["operator.write"] } })), {
      scopes: ["operator.write"],
      credential: "backend",
    });
    assert.equal(d.grant.deviceId, fresh.id);
    assert.equal(d.device?.deviceId, fresh.id);
    assert.equal(d.silentApproval, undefined);
    assert.equal(admitEffects(d).mints, undefined);
  });

  it("does not depend on the client.id/mode claim, nor on locality", () => {
    for (const claims of [{ clientId: "cli", clientMode: "cli" }, { clientId: "test", clientMode: "test" }] as const) {
      assertAdmit(decide(withSeed({ ...BACKEND, claims: { ...claims, requestedScopes: ["operator.read"] }, facts: { backend, peer: remotePeer() } })), {
        scopes: ["operator.read"],
        credential: "backend",
      });
    }
  });

  it("admits the operator role only", () => {
    const r = assertReject(decide(withSeed({ ...BACKEND, device: fresh, claims: { requestedRole: "node", requestedScopes: [] } })), "INVALID_ROLE");
    assert.equal(r.stage, "role");
  });

  it("a revoked or unknown backend secret is rejected with AUTH_BACKEND_CREDENTIAL_INVALID and counts as an auth failure", () => {
    for (const facts of [{ backend: backendRecord({ revokedAtMs: NOW_MS - 1 }) }, { backend: undefined }]) {
      const r = assertReject(decide(withSeed({ ...BACKEND, facts })), "AUTH_BACKEND_CREDENTIAL_INVALID");
      assert.equal(r.authFailure, true);
      assert.equal(r.stage, "credential");
    }
  });

  it("A28 the shared token is never a backend credential: a backend record in the facts changes nothing", () => {
    const d = assertAdmit(decide(withSeed({ facts: { backend: backendRecord({ secret: SHARED_TOKEN, scopes: ALL_OPERATOR_SCOPES }) } })), {
      scopes: [],
      credential: "shared-secret",
    });
    assert.equal(d.grant.principal, undefined);
    assertPairingRequired(decide(withSeed({ device: fresh, facts: { backend: backendRecord({ secret: SHARED_TOKEN }) } })), "not-paired");
  });

  it("A28 a shared token that happens to carry the gwb_ prefix still only proves the shared secret", () => {
    const token = "gwb_looks-like-a-backend-secret";
    assertAdmit(decide(withSeed({ presented: { token }, policy: { auth: tokenAuth(token) } })), { scopes: [], credential: "shared-secret" });
  });
});

describe("decideAdmission: silent local pairing (A09)", () => {
  const SILENT = withSeed({ device: fresh, policy: { silentLocalPairing: silentPairingOn() } });

  it("A09 never grants above the default ceiling: a fresh device asking for admin is approved with []", () => {
    const d = assertAdmit(decide(SILENT), { scopes: [], credential: "shared-secret" });
    assert.equal(d.silentApproval, "local-policy");
    assert.deepEqual(admitEffects(d).pairedScopes, []);
    assert.deepEqual(admitEffects(d).mints, { deviceId: fresh.id, role: "operator" });
  });

  it("A09 approves the part of the request under the ceiling, and the grant, the pairing and the token agree (A13)", () => {
    const d = assertAdmit(decide(withSeed({ ...SILENT, claims: { requestedScopes: [...ALL_OPERATOR_SCOPES] } })), {
      scopes: ["operator.approvals", "operator.pairing", "operator.read", "operator.write"],
    });
    assert.deepEqual(admitEffects(d).pairedScopes, d.grant.scopes);
    assert.deepEqual(admitEffects(d).mints, { deviceId: fresh.id, role: "operator" });
    for (const s of d.grant.scopes) assert.ok(satisfies(["operator.read", "operator.write", "operator.approvals", "operator.pairing"], s));
  });

  it("the operator may raise the ceiling in config: then admin is approved", () => {
    const d = decide(withSeed({ ...SILENT, policy: { silentLocalPairing: silentPairingOn({ scopeCeiling: ADMIN }) } }));
    assertAdmit(d, { scopes: ADMIN });
  });

  it("is off by default", () => {
    assertPairingRequired(decide(withSeed({ device: fresh })), "not-paired");
  });

  it("needs a direct loopback peer: not remote, not forwarded (A35), not behind a trusted proxy", () => {
    for (const peer of [
      remotePeer(),
      makePeer({ remoteAddress: "10.0.0.2", forwardedFor: "127.0.0.1", trustedProxies: ["10.0.0.0/8"] }),
      makePeer({ remoteAddress: "127.0.0.1", forwardedFor: "127.0.0.1", trustedProxies: ["127.0.0.1"] }),
    ]) {
      assertPairingRequired(decide(withSeed({ ...SILENT, facts: { peer } })), "not-paired");
    }
  });

  it("needs no Origin header, even an allowed one", () => {
    const peer = loopbackPeer({ origin: "http://localhost:18789" });
    assertPairingRequired(decide(withSeed({ ...SILENT, facts: { peer } })), "not-paired");
  });

  it("needs the shared secret: an open gateway (auth mode none) is not a basis", () => {
    assertPairingRequired(decide(withSeed({ ...SILENT, presented: {}, policy: { auth: NO_AUTH, silentLocalPairing: silentPairingOn() } })), "not-paired");
  });

  it("applies to the password too (it is the shared secret)", () => {
    const d = decide(withSeed({ ...SILENT, presented: { password: SHARED_PASSWORD }, policy: { auth: passwordAuth(), silentLocalPairing: silentPairingOn() } }));
    assertAdmit(d, { scopes: [] });
  });

  it("applies only to the roles the policy lists", () => {
    const d = decide(withSeed({ ...SILENT, claims: { requestedRole: "node", requestedScopes: [] } }));
    assertPairingRequired(d, "not-paired");
  });
});

describe("decideAdmission: paired devices", () => {
  const readOnly = pairedDeviceRecord(paired, {
    approvedScopes: ["operator.read"],
    tokens: { operator: { token: DEVICE_TOKEN, scopes: ["operator.read"] } },
  });
  const base = (extra: ConnectOptions = {}): ConnectOptions => ({
    device: paired,
    presented: { token: DEVICE_TOKEN, deviceToken: DEVICE_TOKEN },
    ...extra,
    claims: { requestedScopes: ["operator.read"], ...extra.claims },
    facts: { pairedDevice: readOnly, ...extra.facts },
  });

  it("a paired device reconnecting with its device token is admitted with its scopes and no new token", () => {
    const d = assertAdmit(decide(base()), { role: "operator", scopes: ["operator.read"], credential: "device-token" });
    assert.equal(d.grant.authMethod, "device-token");
    assert.equal(d.grant.deviceId, paired.id);
    assert.equal(admitEffects(d).mints, undefined);
  });

  it("the device token may travel in auth.token alone (as the upstream client sends it)", () => {
    assertAdmit(decide(base({ presented: { token: DEVICE_TOKEN } })), { scopes: ["operator.read"], credential: "device-token" });
  });

  it("asking for less than approved is granted exactly what was asked (A13)", () => {
    assertAdmit(decide(base({ claims: { requestedScopes: [] } })), { scopes: [] });
  });

  it("A10 a device paired with operator.read asking for operator.admin needs a scope-upgrade approval", () => {
    const d = assertPairingRequired(decide(base({ claims: { requestedScopes: ADMIN } })), "scope-upgrade");
    assert.equal(d.request.isRepair, true);
    assert.deepEqual(d.request.scopes, ADMIN);
    assert.deepEqual(d.approved, { roles: ["operator"], scopes: ["operator.read"] });
  });

  it("A10 a scope upgrade is never silent, even with silent local pairing on and the shared token", () => {
    for (const presented of [{ deviceToken: DEVICE_TOKEN }, { token: SHARED_TOKEN }]) {
      const d = decide(base({ presented, claims: { requestedScopes: ADMIN }, policy: { silentLocalPairing: silentPairingOn({ scopeCeiling: ALL_OPERATOR_SCOPES }) } }));
      assertPairingRequired(d, "scope-upgrade");
    }
  });

  it("A11 a node-role device asking for the operator role needs a role-upgrade approval", () => {
    const nodeDevice = pairedDeviceRecord(paired, { roles: ["node"], tokens: { node: { token: DEVICE_TOKEN } } });
    const d = decide(base({ presented: { token: SHARED_TOKEN }, claims: { requestedScopes: [] }, facts: { pairedDevice: nodeDevice } }));
    const p = assertPairingRequired(d, "role-upgrade");
    assert.equal(p.request.role, "operator");
    assert.deepEqual(p.approved?.roles, ["node"]);
    // silent pairing does not apply to upgrades either
    const s = decide(base({ presented: { token: SHARED_TOKEN }, claims: { requestedScopes: [] }, facts: { pairedDevice: nodeDevice }, policy: { silentLocalPairing: silentPairingOn({ roles: ["operator", "node"] }) } }));
    assertPairingRequired(s, "role-upgrade");
  });

  it("A11 a node-role device holding only its node token gets a role-upgrade request, not the operator role", () => {
    const nodeDevice = pairedDeviceRecord(paired, { roles: ["node"], tokens: { node: { token: DEVICE_TOKEN } } });
    assertPairingRequired(decide(base({ presented: { deviceToken: DEVICE_TOKEN }, claims: { requestedScopes: [] }, facts: { pairedDevice: nodeDevice } })), "role-upgrade");
    // and as node it is admitted
    assertAdmit(decide(base({ presented: { deviceToken: DEVICE_TOKEN }, claims: { requestedRole: "node", requestedScopes: [] }, facts: { pairedDevice: nodeDevice } })), {
      role: "node",
      scopes: [],
    });
  });

  it("a device approved for both roles cannot use its node token for an operator session", () => {
    const both = pairedDeviceRecord(paired, {
      roles: ["node", "operator"],
      approvedScopes: ["operator.read"],
      tokens: { node: { token: DEVICE_TOKEN }, operator: { token: "operator-token-of-this-device" } },
    });
    const r = assertReject(decide(base({ presented: { deviceToken: DEVICE_TOKEN }, claims: { requestedScopes: ["operator.read"] }, facts: { pairedDevice: both } })), "AUTH_DEVICE_TOKEN_MISMATCH");
    assert.equal(r.authFailure, false, "a real token used for the wrong role is a mistake, not a guess");
  });

  it("A24 device A's token presented with device B's key is rejected; nothing is requested", () => {
    // B is paired with its own token; A's token does not match it
    const recordB = pairedDeviceRecord(other, { approvedScopes: ["operator.read"], tokens: { operator: { token: "token-of-B" } } });
    const r = assertReject(decide({ device: other, presented: { deviceToken: DEVICE_TOKEN }, claims: { requestedScopes: ["operator.read"] }, facts: { pairedDevice: recordB } }), "AUTH_DEVICE_TOKEN_MISMATCH");
    assert.equal(r.authFailure, true);
    // B unpaired, or the lookup returning A's record: still rejected
    assertReject(decide({ device: other, presented: { deviceToken: DEVICE_TOKEN }, facts: { pairedDevice: undefined } }), "AUTH_DEVICE_TOKEN_MISMATCH");
    assertReject(decide({ device: other, presented: { deviceToken: DEVICE_TOKEN }, facts: { pairedDevice: readOnly } }), "AUTH_DEVICE_TOKEN_MISMATCH");
  });

  it("A26 a revoked device token is rejected on a new connection (deviceToken → device token mismatch, token → token mismatch)", () => {
    const revoked = pairedDeviceRecord(paired, { approvedScopes: ["operator.read"], tokens: { operator: { token: DEVICE_TOKEN, scopes: ["operator.read"], revokedAtMs: NOW_MS - 5 } } });
    const r1 = assertReject(decide(base({ presented: { deviceToken: DEVICE_TOKEN }, facts: { pairedDevice: revoked } })), "AUTH_DEVICE_TOKEN_MISMATCH");
    const r2 = assertReject(decide(base({ presented: { token: DEVICE_TOKEN }, facts: { pairedDevice: revoked } })), "AUTH_TOKEN_MISMATCH");
    assert.equal(r1.authFailure, true);
    assert.equal(r2.authFailure, true);
  });

  it("A26 a device whose role token was revoked must re-pair that role even with the shared token", () => {
    const revoked = pairedDeviceRecord(paired, { approvedScopes: ["operator.read"], tokens: { operator: { token: DEVICE_TOKEN, revokedAtMs: NOW_MS - 5 } } });
    assertPairingRequired(decide(base({ presented: { token: SHARED_TOKEN }, facts: { pairedDevice: revoked } })), "role-upgrade");
    assert.deepEqual(effectiveRoles(revoked), []);
  });

  it("a paired device proving the shared secret is admitted with requested ∩ approved and handed a device token", () => {
    const record = pairedDeviceRecord(paired, {
      approvedScopes: ["operator.read", "operator.write"],
      tokens: { operator: { token: DEVICE_TOKEN, scopes: ["operator.read", "operator.write"] } },
    });
    const d = assertAdmit(decide(base({ presented: { token: SHARED_TOKEN }, claims: { requestedScopes: ["operator.read"] }, facts: { pairedDevice: record } })), {
      scopes: ["operator.read"],
      credential: "shared-secret",
    });
    assert.deepEqual(admitEffects(d).mints, { deviceId: paired.id, role: "operator" }, "a token for the role's whole grant (the applier mints it from the record)");
    assert.deepEqual(d.effects[0], { kind: "require-device", deviceId: paired.id, record }, "only while the record is the one decided on");
  });

  it("approved write satisfies a request for read", () => {
    const record = pairedDeviceRecord(paired, { approvedScopes: ["operator.write"], tokens: { operator: { token: DEVICE_TOKEN, scopes: ["operator.write"] } } });
    assertAdmit(decide(base({ claims: { requestedScopes: ["operator.read"] }, facts: { pairedDevice: record } })), { scopes: ["operator.read"] });
  });

  it("a token narrowed below the approved baseline is the role's grant: asking for more is a scope upgrade, with any credential", () => {
    const record = pairedDeviceRecord(paired, {
      approvedScopes: ["operator.read", "operator.write"],
      tokens: { operator: { token: DEVICE_TOKEN, scopes: ["operator.read"] } },
    });
    const wider = { requestedScopes: ["operator.write", "operator.read"] as Scope[] };
    assertPairingRequired(decide(base({ claims: wider, facts: { pairedDevice: record } })), "scope-upgrade");
    assertPairingRequired(decide(base({ claims: wider, presented: { token: SHARED_TOKEN }, facts: { pairedDevice: record } })), "scope-upgrade");
    assertAdmit(decide(base({ claims: { requestedScopes: ["operator.read"] }, facts: { pairedDevice: record } })), { scopes: ["operator.read"] });
    assertAdmit(decide(base({ claims: { requestedScopes: ["operator.read"] }, presented: { token: SHARED_TOKEN }, facts: { pairedDevice: record } })), { scopes: ["operator.read"] });
  });

  it("a changed platform or deviceFamily (after normalization) needs a metadata-upgrade approval", () => {
    const pinned = pairedDeviceRecord(paired, { approvedScopes: ["operator.read"], platform: "darwin", deviceFamily: "laptop", tokens: { operator: { token: DEVICE_TOKEN, scopes: ["operator.read"] } } });
    assertPairingRequired(decide(base({ claims: { platform: "linux", deviceFamily: "laptop" }, facts: { pairedDevice: pinned } })), "metadata-upgrade");
    assertPairingRequired(decide(base({ claims: { platform: "darwin", deviceFamily: "phone" }, facts: { pairedDevice: pinned } })), "metadata-upgrade");
    assertPairingRequired(decide(base({ claims: { platform: "darwin" }, facts: { pairedDevice: pinned } })), "metadata-upgrade");
    assertAdmit(decide(base({ claims: { platform: "  Darwin ", deviceFamily: "LAPTOP" }, facts: { pairedDevice: pinned } })), { scopes: ["operator.read"] });
  });

  it("a store record for another key under the same id is not a pairing", () => {
    const foreign = { ...readOnly, publicKey: other.publicKey };
    assertPairingRequired(decide(base({ presented: { token: SHARED_TOKEN }, facts: { pairedDevice: foreign } })), "not-paired");
  });

  it("auth mode none: a paired device's proof plus its pairing is the evidence", () => {
    assertAdmit(decide(base({ presented: {}, policy: { auth: NO_AUTH } })), { scopes: ["operator.read"], credential: "open" });
  });
});

describe("decideAdmission: bootstrap tokens", () => {
  const boot = (extra: ConnectOptions = {}): ConnectOptions => ({
    device: fresh,
    presented: { bootstrapToken: BOOTSTRAP_TOKEN },
    ...extra,
    facts: { bootstrap: bootstrapRecord(), ...extra.facts },
  });

  it("a fresh device with a valid bootstrap token is paired silently with requested ∩ profile scopes", () => {
    const d = assertAdmit(decide(boot({ claims: { requestedScopes: ["operator.admin", "operator.read"] } })), {
      scopes: ["operator.read"],
      credential: "bootstrap-token",
    });
    assert.equal(d.grant.authMethod, "bootstrap-token");
    assert.equal(d.silentApproval, "bootstrap");
    assert.equal(admitEffects(d).consumesBootstrap, bootstrapRecord().tokenHash);
    assert.deepEqual(admitEffects(d).pairedScopes, ["operator.read"]);
    assert.deepEqual(admitEffects(d).mints, { deviceId: fresh.id, role: "operator" });
  });

  it("works for the node role", () => {
    assertAdmit(decide(boot({ claims: { requestedRole: "node" } })), { role: "node", scopes: [] });
  });

  it("A27 an expired, consumed or wrong-role bootstrap token is rejected with AUTH_BOOTSTRAP_TOKEN_INVALID", () => {
    for (const bootstrap of [
      bootstrapRecord({ expiresAtMs: NOW_MS - 1 }),
      bootstrapRecord({ consumedAtMs: NOW_MS - 60_000 }),
      bootstrapRecord({ roles: ["node"] }),
      bootstrapRecord({ token: "another-bootstrap-token" }),
    ]) {
      const r = assertReject(decide(boot({ facts: { bootstrap } })), "AUTH_BOOTSTRAP_TOKEN_INVALID");
      assert.equal(r.authFailure, true);
    }
  });

  it("a bootstrap token without a device proves nothing", () => {
    assertReject(decide({ presented: { bootstrapToken: BOOTSTRAP_TOKEN }, facts: { bootstrap: bootstrapRecord() } }), "AUTH_TOKEN_MISSING");
  });

  it("on an already paired device it neither re-pairs nor widens the grant", () => {
    const record = pairedDeviceRecord(fresh, { approvedScopes: ["operator.read"] });
    const d = assertAdmit(decide(boot({ claims: { requestedScopes: ["operator.read"] }, facts: { pairedDevice: record } })), { scopes: ["operator.read"] });
    assert.equal(d.silentApproval, undefined);
    assertPairingRequired(decide(boot({ claims: { requestedScopes: ["operator.write"] }, facts: { pairedDevice: record } })), "scope-upgrade");
  });
});

describe("decideAdmission: device-less connections", () => {
  it("the node role always needs a device: DEVICE_IDENTITY_REQUIRED", () => {
    const r = assertReject(decide({ presented: { token: SHARED_TOKEN }, claims: { requestedRole: "node" } }), "DEVICE_IDENTITY_REQUIRED");
    assert.equal(r.error.code, "NOT_PAIRED");
    assert.equal(r.stage, "device-required");
  });

  it("the browser Control UI needs a device: CONTROL_UI_DEVICE_IDENTITY_REQUIRED", () => {
    const r = decide({
      presented: { token: SHARED_TOKEN },
      claims: { clientId: "openclaw-control-ui", clientMode: "webchat", requestedScopes: ADMIN },
      facts: { peer: loopbackPeer({ origin: "http://localhost:18789" }) },
    });
    assertReject(r, "CONTROL_UI_DEVICE_IDENTITY_REQUIRED");
  });

  it("a trusted proxy's user is admitted with no scopes, and named as the principal", () => {
    const peer = makePeer({ remoteAddress: "10.0.0.2", forwardedFor: "203.0.113.5", proxyHeaders: { "x-forwarded-user": "alice" }, trustedProxies: ["10.0.0.0/8"] });
    const d = assertAdmit(decide({ claims: { requestedScopes: ADMIN }, facts: { peer }, policy: { auth: trustedProxyAuth(), trustedProxies: ["10.0.0.0/8"] } }), {
      scopes: [],
      credential: "trusted-proxy",
    });
    assert.equal(d.grant.principal, "alice");
  });

  it("A34 a peer that is not a trusted proxy cannot assert a user with headers", () => {
    const peer = makePeer({ remoteAddress: "203.0.113.9", forwardedFor: "127.0.0.1", proxyHeaders: { "x-forwarded-user": "alice" } });
    const r = assertReject(decide({ facts: { peer }, policy: { auth: trustedProxyAuth(), trustedProxies: ["10.0.0.0/8"] } }), "AUTH_UNAUTHORIZED");
    assert.equal(r.authFailure, false);
  });
});

describe("decideAdmission: protocol, role and scope validation", () => {
  it("negotiates the highest common protocol: 3 only → 3, 4 only → 4, 3–4 → 4, 1–3 → 3", () => {
    for (const [min, max, expected] of [[3, 3, 3], [4, 4, 4], [3, 4, 4], [1, 3, 3], [3, 9, 4]] as const) {
      assert.equal(negotiateProtocol(min, max), expected);
      assert.equal(assertAdmit(decide({ presented: { token: SHARED_TOKEN }, claims: { minProtocol: min, maxProtocol: max } })).protocol, expected);
    }
  });

  it("5+ only, 2 only, or min > max → INVALID_REQUEST protocol mismatch, close 1002", () => {
    for (const [min, max] of [[5, 5], [5, 9], [2, 2], [1, 2], [4, 3], [Number.NaN, 3]] as const) {
      assert.equal(negotiateProtocol(min, max), undefined);
      const r = assertReject(decide({ presented: { token: SHARED_TOKEN }, claims: { minProtocol: min, maxProtocol: max } }), "PROTOCOL_MISMATCH", 1002);
      assert.equal(r.error.code, "INVALID_REQUEST");
      assert.equal(r.error.message, "protocol mismatch");
      assert.equal(r.error.close?.reason, "protocol mismatch");
      assert.equal(r.stage, "protocol");
      assert.equal(r.authFailure, false);
    }
  });

  it("A12 role superuser (or any role but operator/node) → INVALID_REQUEST invalid role, close 1008", () => {
    for (const role of ["superuser", "admin", "Operator", "operator ", "", "nоde" /* Cyrillic о */]) {
      const r = assertReject(decide({ presented: { token: SHARED_TOKEN }, claims: { requestedRole: role } }), "INVALID_ROLE");
      assert.equal(r.error.code, "INVALID_REQUEST");
      assert.equal(r.error.message, "invalid role");
    }
  });

  it("A12 unknown scope strings → INVALID_REQUEST invalid scope, close 1008, even with a paired admin device", () => {
    const record = pairedDeviceRecord(paired, { approvedScopes: ADMIN, tokens: { operator: { token: DEVICE_TOKEN, scopes: ADMIN } } });
    for (const scope of ["operator.superuser", "*", "admin", "operator.admin ", "node.camera"]) {
      const r = assertReject(
        decide({ device: paired, presented: { deviceToken: DEVICE_TOKEN }, claims: { requestedScopes: ["operator.read", scope] }, facts: { pairedDevice: record } }),
        "INVALID_SCOPE",
      );
      assert.equal(r.error.code, "INVALID_REQUEST");
      assert.equal(r.error.details?.["scope"], scope);
    }
  });

  it("A12 operator scopes requested with the node role are refused", () => {
    assertReject(decide({ device: fresh, presented: { token: SHARED_TOKEN }, claims: { requestedRole: "node", requestedScopes: ["operator.read"] } }), "INVALID_SCOPE");
  });

  it("checks run in order: protocol before role before scope before credentials", () => {
    assertReject(decide({ claims: { minProtocol: 9, maxProtocol: 9, requestedRole: "superuser" } }), "PROTOCOL_MISMATCH", 1002);
    assertReject(decide({ claims: { requestedRole: "superuser", requestedScopes: ["bogus"] } }), "INVALID_ROLE");
    assertReject(decide({ presented: { token: "wrong" }, claims: { requestedScopes: ["bogus"] } }), "INVALID_SCOPE");
  });
});

describe("decideAdmission: origins", () => {
  const token = { token: SHARED_TOKEN };

  it("A37 a page on https://evil.example with a valid credential is rejected with CONTROL_UI_ORIGIN_NOT_ALLOWED, close 1008", () => {
    const record = pairedDeviceRecord(paired, { approvedScopes: ADMIN, tokens: { operator: { token: DEVICE_TOKEN, scopes: ADMIN } } });
    for (const peer of [loopbackPeer({ origin: "https://evil.example" }), remotePeer("203.0.113.7", { origin: "https://evil.example" })]) {
      const r = assertReject(
        decide({ device: paired, presented: { deviceToken: DEVICE_TOKEN }, claims: { requestedScopes: ADMIN }, facts: { peer, pairedDevice: record } }),
        "CONTROL_UI_ORIGIN_NOT_ALLOWED",
      );
      assert.equal(r.error.details?.["reason"], "origin not allowed");
      assert.equal(r.stage, "origin");
      assert.equal(r.authFailure, false);
    }
  });

  it("A38 Origin: null and http://127.0.0.1.evil.example are rejected", () => {
    const cases = [
      ["null", "origin missing or invalid"],
      ["http://127.0.0.1.evil.example", "origin not allowed"],
    ] as const;
    for (const [origin, reason] of cases) {
      const r = assertReject(decide({ presented: token, facts: { peer: loopbackPeer({ origin }) } }), "CONTROL_UI_ORIGIN_NOT_ALLOWED");
      assert.equal(r.error.details?.["reason"], reason);
    }
  });

  it("an allowlisted exact origin passes from a remote peer", () => {
    const peer = remotePeer("203.0.113.7", { origin: "https://control.example.com" });
    assertAdmit(decide({ presented: token, facts: { peer }, policy: { allowedOrigins: ["https://control.example.com"] } }), { scopes: [] });
  });

  it("a loopback origin on a direct local connection passes", () => {
    assertAdmit(decide({ presented: token, facts: { peer: loopbackPeer({ origin: "http://127.0.0.1:18789" }) } }), { scopes: [] });
  });

  it("a browser client claim without an Origin header is checked anyway and rejected (the claim only narrows)", () => {
    for (const claims of [{ clientId: "openclaw-control-ui" }, { clientId: "webchat-ui" }, { clientMode: "webchat" }] as const) {
      const r = assertReject(decide({ presented: token, claims }), "CONTROL_UI_ORIGIN_NOT_ALLOWED");
      assert.equal(r.error.details?.["reason"], "origin missing or invalid");
    }
  });

  it("the Control UI with a device, from an allowlisted origin, is handled like any device (v2 signature)", () => {
    const peer = remotePeer("203.0.113.7", { origin: "https://control.example.com" });
    const d = decide({
      device: fresh,
      sign: { version: "v2" },
      presented: token,
      claims: { clientId: "openclaw-control-ui", clientMode: "webchat", requestedScopes: ADMIN },
      facts: { peer },
      policy: { allowedOrigins: ["https://control.example.com"] },
    });
    assertPairingRequired(d, "not-paired");
  });
});

describe("decideAdmission: rate limiting and auth failures", () => {
  it("A21 during a lockout even the correct token is refused with AUTH_RATE_LIMITED and retry information", () => {
    const r = assertReject(decide({ presented: { token: SHARED_TOKEN }, facts: { lockout: { retryAfterMs: 299_500 } } }), "AUTH_RATE_LIMITED");
    assert.equal(r.stage, "rate-limit");
    assert.equal(r.error.retryAfterMs, 299_500);
    assert.equal(r.error.retryable, true);
    assert.equal(r.error.details?.["authReason"], "rate_limited");
    assert.equal(r.error.details?.["recommendedNextStep"], "wait_then_retry");
    const wire = toWireError(r.error);
    assert.equal(wire.retryAfterMs, 299_500);
    assert.equal(wire.details?.code, "AUTH_RATE_LIMITED");
    // a lockout rejection is not itself a new failure
    assert.equal(r.authFailure, false);
  });

  it("A21 the lockout also refuses a valid device token and a backend credential", () => {
    const record = pairedDeviceRecord(paired, { approvedScopes: ["operator.read"], tokens: { operator: { token: DEVICE_TOKEN, scopes: ["operator.read"] } } });
    assertReject(decide({ device: paired, presented: { deviceToken: DEVICE_TOKEN }, facts: { pairedDevice: record, lockout: { retryAfterMs: 1 } } }), "AUTH_RATE_LIMITED");
    assertReject(decide({ presented: { token: BACKEND_SECRET }, facts: { backend: backendRecord(), lockout: { retryAfterMs: 1 } } }), "AUTH_RATE_LIMITED");
  });

  it("a wrong shared token is AUTH_TOKEN_MISMATCH and counts as an auth failure", () => {
    const r = assertReject(decide({ presented: { token: "wrong" } }), "AUTH_TOKEN_MISMATCH");
    assert.equal(r.authFailure, true);
    assert.equal(r.stage, "credential");
    assert.equal(r.error.details?.["authReason"], "token_mismatch");
  });

  it("A23 wrong tokens of many lengths all give AUTH_TOKEN_MISMATCH from the decision too", () => {
    for (let n = 1; n <= 128; n++) {
      assertReject(decide({ presented: { token: "z".repeat(n) } }), "AUTH_TOKEN_MISMATCH");
    }
  });

  it("a wrong password is AUTH_PASSWORD_MISMATCH and counts as an auth failure", () => {
    const r = assertReject(decide({ presented: { password: "wrong" }, policy: { auth: passwordAuth() } }), "AUTH_PASSWORD_MISMATCH");
    assert.equal(r.authFailure, true);
  });

  it("no secret at all is AUTH_TOKEN_MISSING / AUTH_PASSWORD_MISSING and is not an auth failure", () => {
    const r1 = assertReject(decide({}), "AUTH_TOKEN_MISSING");
    const r2 = assertReject(decide({ presented: { token: "  " } }), "AUTH_TOKEN_MISSING");
    const r3 = assertReject(decide({ policy: { auth: passwordAuth() } }), "AUTH_PASSWORD_MISSING");
    for (const r of [r1, r2, r3]) assert.equal(r.authFailure, false);
  });

  it("device proof errors are reported before a bad shared token, and are not auth failures", () => {
    const r = assertReject(decide({ device: fresh, presented: { token: "wrong" }, wire: { id: other.id } }), "DEVICE_AUTH_DEVICE_ID_MISMATCH");
    assert.equal(r.stage, "device-proof");
    assert.equal(r.authFailure, false);
  });

  it("the retry hint suggests the device token only when a device and auth.token (no deviceToken, no password) were sent", () => {
    const withDevice = assertReject(decide({ device: fresh, presented: { token: "wrong" } }), "AUTH_TOKEN_MISMATCH");
    assert.equal(withDevice.error.details?.["recommendedNextStep"], "retry_with_device_token");
    assert.equal(withDevice.error.details?.["canRetryWithDeviceToken"], true);
    const without = assertReject(decide({ presented: { token: "wrong" } }), "AUTH_TOKEN_MISMATCH");
    assert.equal(without.error.details?.["recommendedNextStep"], "update_auth_credentials");
  });

  it("the client label changes only the hint text of an auth error, never its code", () => {
    const cli = assertReject(decide({ presented: { token: "wrong" }, claims: { clientId: "cli", clientMode: "cli" } }), "AUTH_TOKEN_MISMATCH");
    const backend = assertReject(decide({ presented: { token: "wrong" }, claims: BACKEND_CLIENT_CLAIM }), "AUTH_TOKEN_MISMATCH");
    assert.match(cli.error.message, /gateway\.remote\.token/);
    assert.match(backend.error.message, /provide gateway auth token/);
  });
});

describe("decideAdmission: device proof inside the decision", () => {
  it("A17 a complete valid connect replayed on another socket is rejected (nonce differs)", () => {
    const original = connectInput({ device: fresh, presented: { token: SHARED_TOKEN } });
    const replay = { ...original, facts: { ...original.facts, challengeNonce: "nonce-of-socket-B" } };
    assertReject(decideAdmission(replay), "DEVICE_AUTH_NONCE_MISMATCH");
    // the original socket accepts it
    assertPairingRequired(decideAdmission(original), "not-paired");
  });

  it("A18 signed role, scopes, client id or token differing from the params: signature invalid, nothing admitted", () => {
    const opts: ConnectOptions = { device: fresh, presented: { token: SHARED_TOKEN }, claims: { requestedScopes: ["operator.read"] } };
    for (const sign of [{ role: "node" }, { scopes: ["operator.admin"] }, { scopes: [] }, { clientId: "gateway-client" }, { clientMode: "backend" }, { token: "" }, { token: "other" }, { platform: "darwin" }]) {
      const r = assertReject(decide({ ...opts, sign }), "DEVICE_AUTH_SIGNATURE_INVALID");
      assert.equal(r.stage, "device-proof");
    }
  });

  it("A18 the scopes are signed in the order sent: the server does not re-sort before verifying", () => {
    const d = decide({ device: fresh, presented: { token: SHARED_TOKEN }, claims: { requestedScopes: ["operator.write", "operator.read"] } });
    const p = assertPairingRequired(d, "not-paired");
    assert.deepEqual(p.request.scopes, ["operator.read", "operator.write"]);
  });

  it("the signed token is auth.token ?? auth.deviceToken ?? auth.bootstrapToken", () => {
    // bootstrap token only: signed field is the bootstrap token
    assertAdmit(decide({ device: fresh, presented: { bootstrapToken: BOOTSTRAP_TOKEN }, facts: { bootstrap: bootstrapRecord() } }));
    assertReject(decide({ device: fresh, presented: { bootstrapToken: BOOTSTRAP_TOKEN }, facts: { bootstrap: bootstrapRecord() }, sign: { token: "" } }), "DEVICE_AUTH_SIGNATURE_INVALID");
  });

  it("A16 a stale signature is rejected inside the decision with DEVICE_AUTH_SIGNATURE_EXPIRED", () => {
    assertReject(decide({ device: fresh, presented: { token: SHARED_TOKEN }, sign: { signedAt: NOW_MS - 600_000 }, wire: { signedAt: NOW_MS - 600_000 } }), "DEVICE_AUTH_SIGNATURE_EXPIRED");
  });

  it("A19/A20 a malformed key, blank nonce or missing signature is rejected inside the decision", () => {
    assertReject(decide({ device: fresh, presented: { token: SHARED_TOKEN }, wire: { publicKey: "AAAA" } }), "DEVICE_AUTH_PUBLIC_KEY_INVALID");
    assertReject(decide({ device: fresh, presented: { token: SHARED_TOKEN }, wire: { nonce: " " } }), "DEVICE_AUTH_NONCE_REQUIRED");
    assertReject(decide({ device: fresh, presented: { token: SHARED_TOKEN }, wire: { signature: "" } }), "DEVICE_AUTH_SIGNATURE_INVALID");
  });

  it("uses the challenge nonce from the facts", () => {
    const d = decide({ device: fresh, presented: { token: SHARED_TOKEN }, facts: { challengeNonce: "custom-nonce" } });
    assertPairingRequired(d, "not-paired");
    assert.notEqual(CHALLENGE_NONCE, "custom-nonce");
  });
});

describe("claims from connect params", () => {
  const parseConnect = (value: unknown): ConnectParams => {
    const parsed = ConnectParamsValidator.parse(value);
    if (!parsed.success) throw new Error(parsed.issues);
    return parsed.data;
  };
  const params = (client: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
    minProtocol: 3,
    maxProtocol: 3,
    client: { id: "gateway-client", mode: "backend", version: "1.0.0", platform: "linux", ...client },
    ...extra,
  });

  it("A07 unicode look-alikes and case variants of gateway-client/backend are refused by the closed enumeration", () => {
    for (const client of [
      { id: "Gateway-Client" },
      { id: "gateway\u2010client" }, // Unicode hyphen
      { id: "gаteway-client" }, // Cyrillic а
      { id: "gateway-client " },
      { mode: "Backend" },
      { mode: "bасkend" }, // Cyrillic а, с
      { mode: "backend\u200b" }, // zero-width space
    ]) {
      assert.equal(ConnectParamsValidator.check(params(client)), false, JSON.stringify(client));
    }
    assert.equal(ConnectParamsValidator.check(params({})), true);
  });

  it("claimsFromConnect defaults the role to operator and the scopes to [] and keeps the scope order as sent", () => {
    const parsed = parseConnect(params({}, { scopes: ["operator.write", "operator.read"] }));
    const claims = claimsFromConnect(parsed);
    assert.equal(claims.requestedRole, "operator");
    assert.deepEqual(claims.requestedScopes, ["operator.write", "operator.read"]);
    assert.equal(claimsFromConnect(parseConnect(params({}))).requestedScopes.length, 0);
  });

  it("A06 a declared client id/mode selects nothing: parsed backend and cli claims decide identically", () => {
    const input = (client: Record<string, unknown>) => {
      const claims = claimsFromConnect(parseConnect(params(client, { scopes: ADMIN })));
      return decideAdmission(connectInput({ claims, presented: { token: SHARED_TOKEN } }));
    };
    const backend = assertAdmit(input({}), { scopes: [] });
    const cli = assertAdmit(input({ id: "cli", mode: "cli" }), { scopes: [] });
    assert.equal(backend.grant.credential, cli.grant.credential);
  });
});
