import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import type { Grant } from "../../src/admission/grant.js";
import type { Role } from "../../src/protocol/enums.js";
import { RECENT_REVOCATIONS, RecentRevocations, revocationOf, revokes, type Revocation } from "../../src/server/revocations.js";
import type { ChangeInput, ChangeRecord } from "../../src/store/store.js";
import { createTestDevice, type TestDevice } from "../support/device.js";
import {
  BACKEND_SECRET,
  BOOTSTRAP_TOKEN,
  NO_AUTH,
  SHARED_TOKEN,
  assertAdmit,
  backendRecord,
  bootstrapRecord,
  decide,
  makePeer,
  pairedDeviceRecord,
  trustedProxyAuth,
} from "../support/admission-fixtures.js";

// What a store change takes away from admitted sessions (revocationOf,
// revokes), and RecentRevocations, which lets a handshake that decided on
// older facts learn, before it registers its session, that a revocation
// since took its grant away.

/** Runs per property; raise it for a longer soak, e.g. GATEWARDEN_PROPERTY_RUNS=20000. */
const RUNS = Math.max(600, Number(process.env["GATEWARDEN_PROPERTY_RUNS"] ?? 0) || 0);

// ---------------------------------------------------------------- grants, as the admission decision makes them

const DEVICE_NAMES = ["alice", "bob", "carol", "dave", "eve"] as const;
type DeviceName = (typeof DEVICE_NAMES)[number];
const DEVICES: Record<DeviceName, TestDevice> = {
  alice: createTestDevice(),
  bob: createTestDevice(),
  carol: createTestDevice(),
  dave: createTestDevice(),
  eve: createTestDevice(), // never admitted: revocations for it apply to nothing here
};
const nameOf = (deviceId: string | undefined): string => DEVICE_NAMES.find((n) => DEVICES[n].id === deviceId) ?? String(deviceId);

const DEVICE_TOKEN = "device-token-revocations-1f2e3d4c";
const OTHER_BACKEND_SECRET = "gwb_other-backend-secret-5e6f7a8b9c0d";

/** A paired device reconnecting with its `role` device token. */
function deviceTokenGrant(device: TestDevice, role: Role): Grant {
  const pairedDevice = pairedDeviceRecord(device, { roles: ["operator", "node"], tokens: { [role]: { token: DEVICE_TOKEN } } });
  const d = decide({ device, presented: { deviceToken: DEVICE_TOKEN }, claims: { requestedRole: role, requestedScopes: [] }, facts: { pairedDevice } });
  return assertAdmit(d, { role, credential: "device-token" }).grant;
}

/**
 * Every kind of grant the gateway hands out, each from a real admission
 * decision, with the revocations that must take it away (written out here,
 * not derived from the code under test).
 */
const GRANTS: readonly { readonly name: string; readonly grant: Grant; readonly revokedBy: readonly string[] }[] = [
  {
    name: "the shared token, no device",
    grant: assertAdmit(decide({ presented: { token: SHARED_TOKEN } }), { credential: "shared-secret" }).grant,
    revokedBy: ["shared-secret"],
  },
  {
    name: "the shared token with alice's paired device key",
    grant: assertAdmit(
      decide({
        device: DEVICES.alice,
        presented: { token: SHARED_TOKEN },
        claims: { requestedScopes: [] },
        facts: { pairedDevice: pairedDeviceRecord(DEVICES.alice) },
      }),
      { role: "operator", credential: "shared-secret" },
    ).grant,
    revokedBy: ["shared-secret", "device:alice", "device-role:alice:operator"],
  },
  { name: "alice's operator device token", grant: deviceTokenGrant(DEVICES.alice, "operator"), revokedBy: ["device:alice", "device-role:alice:operator"] },
  { name: "alice's node device token", grant: deviceTokenGrant(DEVICES.alice, "node"), revokedBy: ["device:alice", "device-role:alice:node"] },
  { name: "bob's operator device token", grant: deviceTokenGrant(DEVICES.bob, "operator"), revokedBy: ["device:bob", "device-role:bob:operator"] },
  {
    name: "backend-1's secret, no device",
    grant: assertAdmit(decide({ presented: { token: BACKEND_SECRET }, facts: { backend: backendRecord() } }), { credential: "backend" }).grant,
    revokedBy: ["backend:backend-1"],
  },
  {
    name: "backend-2's secret with carol's unpaired device key",
    grant: assertAdmit(
      decide({
        device: DEVICES.carol,
        presented: { token: OTHER_BACKEND_SECRET },
        facts: { backend: { ...backendRecord({ secret: OTHER_BACKEND_SECRET, name: "indexer" }), id: "backend-2" } },
      }),
      { credential: "backend" },
    ).grant,
    revokedBy: ["backend:backend-2", "device:carol", "device-role:carol:operator"],
  },
  {
    name: "dave's bootstrap token",
    grant: assertAdmit(decide({ device: DEVICES.dave, presented: { bootstrapToken: BOOTSTRAP_TOKEN }, facts: { bootstrap: bootstrapRecord() } }), {
      role: "operator",
      credential: "bootstrap-token",
    }).grant,
    revokedBy: ["device:dave", "device-role:dave:operator"],
  },
  {
    name: "a trusted proxy's user",
    grant: assertAdmit(
      decide({
        facts: { peer: makePeer({ remoteAddress: "10.0.0.2", forwardedFor: "203.0.113.5", proxyHeaders: { "x-forwarded-user": "alice" }, trustedProxies: ["10.0.0.0/8"] }) },
        policy: { auth: trustedProxyAuth(), trustedProxies: ["10.0.0.0/8"] },
      }),
      { credential: "trusted-proxy" },
    ).grant,
    revokedBy: [],
  },
  {
    name: "auth mode none",
    grant: assertAdmit(decide({ policy: { auth: NO_AUTH } }), { credential: "open" }).grant,
    revokedBy: [],
  },
];

/** Every revocation over the devices and backends above (and some that match nothing). */
const REVOCATIONS: readonly Revocation[] = [
  ...DEVICE_NAMES.map((n): Revocation => ({ kind: "device", deviceId: DEVICES[n].id })),
  ...DEVICE_NAMES.flatMap((n) => (["operator", "node"] as const).map((role): Revocation => ({ kind: "device-role", deviceId: DEVICES[n].id, role }))),
  ...["backend-1", "backend-2", "backend-3"].map((backendId): Revocation => ({ kind: "backend", backendId })),
  { kind: "shared-secret" },
];

function keyOf(r: Revocation): string {
  switch (r.kind) {
    case "device":
      return `device:${nameOf(r.deviceId)}`;
    case "device-role":
      return `device-role:${nameOf(r.deviceId)}:${r.role}`;
    case "backend":
      return `backend:${r.backendId}`;
    case "shared-secret":
      return "shared-secret";
  }
}

/** The oracle: the table above. */
const applies = (r: Revocation, grantIndex: number): boolean => GRANTS[grantIndex]?.revokedBy.includes(keyOf(r)) ?? false;

const change = (input: ChangeInput): ChangeRecord => ({ ...input, id: 1, ts: 1_000 });

// ---------------------------------------------------------------- tests

describe("revokes: which grants a revocation takes away", () => {
  it("the grant fixtures are what their names say (built by decideAdmission)", () => {
    const byName = new Map(GRANTS.map((g) => [g.name, g.grant]));
    assert.equal(byName.get("alice's node device token")?.deviceId, DEVICES.alice.id);
    assert.equal(byName.get("alice's node device token")?.role, "node");
    assert.equal(byName.get("the shared token with alice's paired device key")?.deviceId, DEVICES.alice.id);
    assert.equal(byName.get("backend-1's secret, no device")?.backendId, "backend-1");
    assert.equal(byName.get("backend-1's secret, no device")?.deviceId, undefined);
    assert.equal(byName.get("backend-2's secret with carol's unpaired device key")?.backendId, "backend-2");
    assert.equal(byName.get("backend-2's secret with carol's unpaired device key")?.deviceId, DEVICES.carol.id);
    assert.equal(byName.get("dave's bootstrap token")?.deviceId, DEVICES.dave.id);
  });

  for (const { name, grant, revokedBy } of GRANTS) {
    it(`a session admitted with ${name} is revoked by exactly: ${revokedBy.length > 0 ? revokedBy.join(", ") : "nothing"}`, () => {
      const got = REVOCATIONS.filter((r) => revokes(r, grant)).map(keyOf);
      assert.deepEqual(got.sort(), [...revokedBy].sort());
    });
  }

  it("removing a device revokes every role of it, whatever credential admitted it; revoking one role's token leaves its other role alone", () => {
    const aliceGrants = GRANTS.filter((g) => g.grant.deviceId === DEVICES.alice.id).map((g) => g.grant);
    assert.equal(aliceGrants.length, 3);
    assert.ok(aliceGrants.every((g) => revokes({ kind: "device", deviceId: DEVICES.alice.id }, g)));
    const nodeOnly: Revocation = { kind: "device-role", deviceId: DEVICES.alice.id, role: "node" };
    assert.deepEqual(
      aliceGrants.map((g) => [g.role, g.credential, revokes(nodeOnly, g)]),
      [
        ["operator", "shared-secret", false],
        ["operator", "device-token", false],
        ["node", "device-token", true],
      ],
    );
  });
});

describe("revocationOf: the revocation a store change carries", () => {
  const id = DEVICES.alice.id;

  it("device.removed revokes the whole device", () => {
    assert.deepEqual(revocationOf(change({ kind: "device.removed", deviceId: id })), { kind: "device", deviceId: id });
  });

  it("device.token.changed (rotated or revoked) revokes that device's role only", () => {
    for (const c of ["rotated", "revoked"] as const) {
      for (const role of ["operator", "node"] as const) {
        assert.deepEqual(revocationOf(change({ kind: "device.token.changed", deviceId: id, role, change: c })), { kind: "device-role", deviceId: id, role });
      }
    }
  });

  it("backend.revoked revokes that backend", () => {
    assert.deepEqual(revocationOf(change({ kind: "backend.revoked", backendId: "backend-2" })), { kind: "backend", backendId: "backend-2" });
  });

  it("shared-secret.rotated revokes what the shared secret admitted", () => {
    assert.deepEqual(revocationOf(change({ kind: "shared-secret.rotated" })), { kind: "shared-secret" });
  });

  it("pairing changes (requested, approved, rejected, expired) revoke nothing", () => {
    const request = {
      requestId: "req-1",
      deviceId: id,
      publicKey: DEVICES.alice.publicKey,
      role: "operator",
      roles: ["operator"],
      scopes: [],
      reason: "not-paired",
      isRepair: false,
      requesterIp: "127.0.0.1",
      ts: 1,
      expiresAtMs: 2,
    } as const;
    assert.equal(revocationOf(change({ kind: "pairing.requested", request })), undefined);
    for (const decision of ["approved", "rejected", "expired"] as const) {
      assert.equal(revocationOf(change({ kind: "pairing.resolved", requestId: "req-1", deviceId: id, decision })), undefined);
    }
  });
});

describe("RecentRevocations", () => {
  const aliceOperator = deviceTokenGrant(DEVICES.alice, "operator");
  const removeAlice: Revocation = { kind: "device", deviceId: DEVICES.alice.id };
  const removeBob: Revocation = { kind: "device", deviceId: DEVICES.bob.id };

  it("mark() is 0 before any revocation and counts every one recorded", () => {
    const recent = new RecentRevocations(2);
    assert.equal(recent.mark(), 0);
    for (let i = 1; i <= 5; i++) {
      recent.record(removeBob);
      assert.equal(recent.mark(), i, "evictions do not reset the count");
    }
  });

  it("nothing recorded since the mark: not revoked, even when an earlier revocation applies", () => {
    const recent = new RecentRevocations();
    recent.record(removeAlice);
    const mark = recent.mark();
    assert.equal(recent.revokedSince(mark, aliceOperator), false);
  });

  it("a revocation recorded after the mark that applies to the grant: revoked", () => {
    const recent = new RecentRevocations();
    const mark = recent.mark();
    recent.record(removeBob);
    recent.record(removeAlice);
    recent.record(removeBob);
    assert.equal(recent.revokedSince(mark, aliceOperator), true);
  });

  it("revocations recorded after the mark that apply to other grants only: not revoked", () => {
    const recent = new RecentRevocations();
    const mark = recent.mark();
    recent.record(removeBob);
    recent.record({ kind: "device-role", deviceId: DEVICES.alice.id, role: "node" });
    recent.record({ kind: "shared-secret" });
    recent.record({ kind: "backend", backendId: "backend-1" });
    assert.equal(recent.revokedSince(mark, aliceOperator), false);
  });

  it("when revocations since the mark were evicted, the answer is conservatively 'revoked'", () => {
    const recent = new RecentRevocations(2);
    recent.record(removeBob);
    const mark = recent.mark(); // 1
    recent.record(removeBob);
    recent.record(removeBob);
    assert.equal(recent.revokedSince(mark, aliceOperator), false, "both kept: known not to apply");
    recent.record(removeBob); // #2 evicted: it is no longer known what it was
    assert.equal(recent.revokedSince(mark, aliceOperator), true);
    assert.equal(recent.revokedSince(recent.mark() - 2, aliceOperator), false, "a later mark whose revocations are all kept is exact again");
  });

  it("capacity 0 keeps nothing: any revocation since the mark counts as revoked, none since does not", () => {
    const recent = new RecentRevocations(0);
    const mark = recent.mark();
    assert.equal(recent.revokedSince(mark, aliceOperator), false);
    recent.record(removeBob);
    assert.equal(recent.revokedSince(mark, aliceOperator), true);
    assert.equal(recent.revokedSince(recent.mark(), aliceOperator), false);
  });

  it(`by default it keeps the last ${RECENT_REVOCATIONS} revocations exactly`, () => {
    const recent = new RecentRevocations();
    const mark = recent.mark();
    for (let i = 0; i < RECENT_REVOCATIONS; i++) recent.record(removeBob);
    assert.equal(recent.revokedSince(mark, aliceOperator), false);
    recent.record(removeBob);
    assert.equal(recent.revokedSince(mark, aliceOperator), true);
  });

  it("revokedSince(mark, grant) is true iff a revocation recorded after mark applies to grant, and always true once one of those was evicted (model-based property)", () => {
    type Op = { readonly op: "record"; readonly revocation: Revocation } | { readonly op: "check"; readonly markSeed: number; readonly grant: number };
    const opArb: fc.Arbitrary<Op> = fc.oneof(
      { weight: 3, arbitrary: fc.constantFrom(...REVOCATIONS).map((revocation): Op => ({ op: "record", revocation })) },
      { weight: 2, arbitrary: fc.record({ op: fc.constant("check" as const), markSeed: fc.nat(), grant: fc.nat(GRANTS.length - 1) }) },
    );
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 5 }), fc.array(opArb, { maxLength: 40 }), (capacity, ops) => {
        const recent = new RecentRevocations(capacity);
        const recorded: Revocation[] = [];
        for (const o of ops) {
          if (o.op === "record") {
            recent.record(o.revocation);
            recorded.push(o.revocation);
            assert.equal(recent.mark(), recorded.length);
            continue;
          }
          // Any mark an earlier handshake could hold: 0 … the current one.
          const mark = o.markSeed % (recorded.length + 1);
          const since = recorded.slice(mark);
          const evicted = since.length > capacity;
          const applied = since.some((r) => applies(r, o.grant));
          const expected = applied || evicted;
          assert.equal(
            recent.revokedSince(mark, GRANTS[o.grant]!.grant),
            expected,
            `mark ${mark} of ${recorded.length}, capacity ${capacity}, grant "${GRANTS[o.grant]!.name}", since: [${since.map(keyOf).join(", ")}]`,
          );
        }
      }),
      { numRuns: RUNS },
    );
  });
});
