import assert from "node:assert/strict";
import { describe, it as nodeIt } from "node:test";
import fc from "fast-check";
import type { PairingReason } from "../../src/protocol/error-codes.js";
import type { Role, Scope } from "../../src/protocol/enums.js";
import { StoreConflictError } from "../../src/store/errors.js";
import type {
  BackendRecord,
  BootstrapRecord,
  DeviceTokenRecord,
  PairedDeviceRecord,
  PendingRequestRecord,
} from "../../src/store/records.js";
import type { ChangeInput, Store, StoreWriter } from "../../src/store/store.js";
import { generateKeyPairSync, sign as edSign } from "node:crypto";
import { pruneAudit } from "../../src/server/audit-retention.js";
import { verifyAuditLog } from "../../src/store/audit-verify.js";

// The behaviour every Store implementation must have. Each case opens a fresh
// store through `open` and closes it afterwards.

// ---------------------------------------------------------------------------
// Fixtures

const HASH_A = "a".repeat(64);
const HASH_B = "b".repeat(64);
const HASH_C = "c".repeat(64);

function token(role: Role, overrides: Partial<DeviceTokenRecord> = {}): DeviceTokenRecord {
  return {
    role,
    tokenHash: `${role}-token-hash`,
    scopes: role === "operator" ? ["operator.read", "operator.write"] : ["node.camera"],
    createdAtMs: 1_000,
    ...overrides,
  };
}

/** Every optional field set, tokens for both roles with every optional field set. */
function fullDevice(deviceId: string, overrides: Partial<PairedDeviceRecord> = {}): PairedDeviceRecord {
  return {
    deviceId,
    publicKey: `pk-${deviceId}`,
    displayName: "Ada's laptop ✓",
    platform: "darwin",
    deviceFamily: "Mac",
    clientId: "cli",
    clientMode: "cli",
    remoteIp: "192.0.2.10",
    roles: ["operator", "node"],
    approvedScopes: ["operator.admin", "operator.read", "node.camera"],
    tokens: {
      operator: token("operator", { rotatedAtMs: 2_000, revokedAtMs: 3_000, lastUsedAtMs: 2_500 }),
      node: token("node", { lastUsedAtMs: 4_000 }),
    },
    createdAtMs: 1_000,
    approvedAtMs: 1_500,
    ...overrides,
  };
}

function minimalDevice(deviceId: string, overrides: Partial<PairedDeviceRecord> = {}): PairedDeviceRecord {
  return {
    deviceId,
    publicKey: `pk-${deviceId}`,
    roles: ["operator"],
    approvedScopes: ["operator.read"],
    tokens: {},
    createdAtMs: 1_000,
    approvedAtMs: 1_000,
    ...overrides,
  };
}

function fullPending(requestId: string, overrides: Partial<PendingRequestRecord> = {}): PendingRequestRecord {
  return {
    requestId,
    deviceId: "dev-1",
    publicKey: "pk-dev-1",
    displayName: "Phone",
    platform: "ios",
    deviceFamily: "iPhone",
    clientId: "openclaw-ios",
    clientMode: "ui",
    remoteIp: "198.51.100.7",
    role: "operator",
    roles: ["operator"],
    scopes: ["operator.read", "operator.write"],
    reason: "scope-upgrade",
    isRepair: true,
    requesterIp: "198.51.100.7",
    ts: 10_000,
    expiresAtMs: 70_000,
    ...overrides,
  };
}

function minimalPending(requestId: string, overrides: Partial<PendingRequestRecord> = {}): PendingRequestRecord {
  return {
    requestId,
    deviceId: "dev-1",
    publicKey: "pk-dev-1",
    role: "node",
    roles: ["node"],
    scopes: [],
    reason: "not-paired",
    isRepair: false,
    requesterIp: "203.0.113.1",
    ts: 10_000,
    expiresAtMs: 70_000,
    ...overrides,
  };
}

function backend(id: string, overrides: Partial<BackendRecord> = {}): BackendRecord {
  return { id, name: `backend-${id}`, secretHash: `${id}-secret-hash`, scopes: ["operator.read"], createdAtMs: 5_000, ...overrides };
}

function bootstrap(id: string, overrides: Partial<BootstrapRecord> = {}): BootstrapRecord {
  return {
    id,
    tokenHash: `${id}-token-hash`,
    roles: ["node"],
    scopes: ["node.camera"],
    createdAtMs: 1_000,
    expiresAtMs: 100_000,
    ...overrides,
  };
}

const SAMPLE_CHANGES: readonly ChangeInput[] = [
  { kind: "pairing.requested", request: fullPending("req-1") },
  { kind: "pairing.requested", request: minimalPending("req-2") },
  { kind: "pairing.resolved", requestId: "req-1", deviceId: "dev-1", decision: "approved" },
  { kind: "device.removed", deviceId: "dev-1" },
  { kind: "device.token.changed", deviceId: "dev-2", role: "node", change: "revoked" },
  { kind: "backend.revoked", backendId: "be-1" },
  { kind: "shared-secret.rotated" },
];

/** Records must omit absent optional fields, never carry them as undefined or null. */
function assertNoEmptyValues(value: unknown, at = "record"): void {
  assert.notEqual(value, undefined, `${at} is undefined`);
  assert.notEqual(value, null, `${at} is null`);
  if (typeof value === "object" && value !== null) {
    for (const [key, item] of Object.entries(value)) assertNoEmptyValues(item, `${at}.${key}`);
  }
}

// Arbitraries for property-based round trips. `noNullPrototype`: stores return
// ordinary objects, and deepEqual compares prototypes.
const ROLE_ARB = fc.constantFrom<Role>("operator", "node");
const SCOPES_ARB = fc.subarray<Scope>(["operator.admin", "operator.read", "operator.write", "node.camera", "node.x-y_z.1"]);
const TEXT_ARB = fc.string({ unit: "grapheme", maxLength: 24 });
const TIME_ARB = fc.maxSafeNat();

function tokenArb(role: Role): fc.Arbitrary<DeviceTokenRecord> {
  return fc.record(
    {
      role: fc.constant(role),
      tokenHash: TEXT_ARB,
      scopes: SCOPES_ARB,
      createdAtMs: TIME_ARB,
      rotatedAtMs: TIME_ARB,
      revokedAtMs: TIME_ARB,
      lastUsedAtMs: TIME_ARB,
    },
    { requiredKeys: ["role", "tokenHash", "scopes", "createdAtMs"], noNullPrototype: true },
  );
}

const METADATA_ARBS = {
  displayName: TEXT_ARB,
  platform: TEXT_ARB,
  deviceFamily: TEXT_ARB,
  clientId: TEXT_ARB,
  clientMode: TEXT_ARB,
  remoteIp: TEXT_ARB,
};

const DEVICE_ARB: fc.Arbitrary<Omit<PairedDeviceRecord, "deviceId">> = fc.record(
  {
    publicKey: TEXT_ARB,
    ...METADATA_ARBS,
    roles: fc.subarray<Role>(["operator", "node"]),
    approvedScopes: SCOPES_ARB,
    tokens: fc.record({ operator: tokenArb("operator"), node: tokenArb("node") }, { requiredKeys: [], noNullPrototype: true }),
    createdAtMs: TIME_ARB,
    approvedAtMs: TIME_ARB,
  },
  {
    requiredKeys: ["publicKey", "roles", "approvedScopes", "tokens", "createdAtMs", "approvedAtMs"],
    noNullPrototype: true,
  },
);

const PENDING_ARB: fc.Arbitrary<Omit<PendingRequestRecord, "requestId">> = fc.record(
  {
    deviceId: TEXT_ARB,
    publicKey: TEXT_ARB,
    ...METADATA_ARBS,
    role: ROLE_ARB,
    roles: fc.subarray<Role>(["operator", "node"]),
    scopes: SCOPES_ARB,
    reason: fc.constantFrom<PairingReason>("not-paired", "role-upgrade", "scope-upgrade", "metadata-upgrade"),
    isRepair: fc.boolean(),
    requesterIp: TEXT_ARB,
    ts: TIME_ARB,
    expiresAtMs: TIME_ARB,
  },
  {
    requiredKeys: ["deviceId", "publicKey", "role", "roles", "scopes", "reason", "isRepair", "requesterIp", "ts", "expiresAtMs"],
    noNullPrototype: true,
  },
);

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

class Boom extends Error {}

// ---------------------------------------------------------------------------

export interface StoreContractOptions {
  /**
   * Contract cases this implementation is known to break, by exact case name,
   * each with the reason. They still run, as node:test `todo` cases: reported
   * (and visible in the output) without failing the run, until fixed.
   */
  readonly knownGaps?: Readonly<Record<string, string>>;
}

/**
 * Try to change a record a store returned. A store may hand out copies (the
 * change lands on the copy) or frozen records (the change throws TypeError);
 * either way what it holds must not change.
 */
function mutate(change: () => unknown): void {
  try {
    change();
  } catch (e) {
    if (!(e instanceof TypeError)) throw e;
  }
}

export function runStoreContract(name: string, open: () => Promise<Store>, options: StoreContractOptions = {}): void {
  const it = (caseName: string, fn: () => Promise<void>): void => {
    const gap = options.knownGaps?.[caseName];
    nodeIt(caseName, gap === undefined ? {} : { todo: gap }, fn);
  };

  async function withStore(fn: (store: Store) => Promise<void>): Promise<void> {
    const store = await open();
    try {
      await fn(store);
    } finally {
      await store.close();
    }
  }

  describe(`${name} (Store contract)`, () => {
    describe("paired devices", () => {
      it("a device with every optional field and tokens for both roles reads back identical", () =>
        withStore(async (store) => {
          const device = fullDevice("dev-1");
          await store.transact((tx) => tx.putPairedDevice(device));
          const got = await store.getPairedDevice("dev-1");
          assert.deepEqual(got, device);
          assertNoEmptyValues(got);
        }));

      it("a device with only required fields reads back without any optional key (no undefined, no null)", () =>
        withStore(async (store) => {
          const device = minimalDevice("dev-1", { tokens: { node: token("node") } });
          await store.transact((tx) => tx.putPairedDevice(device));
          const got = await store.getPairedDevice("dev-1");
          assert.deepEqual(got, device);
          assertNoEmptyValues(got);
          assert.deepEqual(Object.keys(got?.tokens.node ?? {}).sort(), ["createdAtMs", "role", "scopes", "tokenHash"]);
        }));

      it("any paired device record round-trips exactly (property)", () =>
        withStore(async (store) => {
          let n = 0;
          await fc.assert(
            fc.asyncProperty(DEVICE_ARB, async (fields) => {
              const device: PairedDeviceRecord = { deviceId: `dev-${n++}`, ...fields };
              await store.transact((tx) => tx.putPairedDevice(device));
              assert.deepEqual(await store.getPairedDevice(device.deviceId), device);
            }),
            { numRuns: 60 },
          );
        }));

      it("getPairedDevice returns undefined for an unknown device", () =>
        withStore(async (store) => {
          assert.equal(await store.getPairedDevice("nope"), undefined);
        }));

      it("putPairedDevice replaces the stored device, and a token dropped from the record is removed", () =>
        withStore(async (store) => {
          await store.transact((tx) => tx.putPairedDevice(fullDevice("dev-1")));
          const updated = minimalDevice("dev-1", {
            publicKey: "pk-new",
            tokens: { node: token("node", { tokenHash: "new-node-hash" }) },
          });
          await store.transact((tx) => tx.putPairedDevice(updated));
          assert.deepEqual(await store.getPairedDevice("dev-1"), updated);
        }));

      it("deletePairedDevice removes the device with its tokens: re-pairing the same id starts with none", () =>
        withStore(async (store) => {
          await store.transact((tx) => tx.putPairedDevice(fullDevice("dev-1")));
          assert.equal(await store.transact((tx) => tx.deletePairedDevice("dev-1")), true);
          assert.equal(await store.getPairedDevice("dev-1"), undefined);
          assert.equal(await store.transact((tx) => tx.deletePairedDevice("dev-1")), false);

          await store.transact((tx) => tx.putPairedDevice(minimalDevice("dev-1")));
          assert.deepEqual((await store.getPairedDevice("dev-1"))?.tokens, {});
        }));

      it("deleting one device leaves other devices and their tokens alone", () =>
        withStore(async (store) => {
          await store.transact(async (tx) => {
            await tx.putPairedDevice(fullDevice("dev-1"));
            await tx.putPairedDevice(fullDevice("dev-2"));
            await tx.deletePairedDevice("dev-1");
          });
          assert.deepEqual(await store.listPairedDevices(), [fullDevice("dev-2")]);
        }));

      it("listPairedDevices returns the latest approval first", () =>
        withStore(async (store) => {
          await store.transact(async (tx) => {
            await tx.putPairedDevice(minimalDevice("old", { approvedAtMs: 100 }));
            await tx.putPairedDevice(minimalDevice("newest", { approvedAtMs: 300 }));
            await tx.putPairedDevice(minimalDevice("middle", { approvedAtMs: 200 }));
          });
          const ids = (await store.listPairedDevices()).map((d) => d.deviceId);
          assert.deepEqual(ids, ["newest", "middle", "old"]);
        }));

      it("putPairedDevice rejects a token filed under a role other than its own and keeps nothing", () =>
        withStore(async (store) => {
          const bad = minimalDevice("dev-1", { tokens: { operator: token("node") } });
          await assert.rejects(store.transact((tx) => tx.putPairedDevice(bad)));
          assert.equal(await store.getPairedDevice("dev-1"), undefined);
        }));
    });

    describe("pending requests", () => {
      it("requests with every optional field and with none read back identical, without empty keys", () =>
        withStore(async (store) => {
          const full = fullPending("req-full");
          const minimal = minimalPending("req-min");
          await store.transact(async (tx) => {
            await tx.putPendingRequest(full);
            await tx.putPendingRequest(minimal);
          });
          assert.deepEqual(await store.getPendingRequest("req-full"), full);
          const gotMinimal = await store.getPendingRequest("req-min");
          assert.deepEqual(gotMinimal, minimal);
          assertNoEmptyValues(gotMinimal);
          assert.equal(await store.getPendingRequest("nope"), undefined);
        }));

      it("any pending request record round-trips exactly (property)", () =>
        withStore(async (store) => {
          let n = 0;
          await fc.assert(
            fc.asyncProperty(PENDING_ARB, async (fields) => {
              const request: PendingRequestRecord = { requestId: `req-${n++}`, ...fields };
              await store.transact((tx) => tx.putPendingRequest(request));
              assert.deepEqual(await store.getPendingRequest(request.requestId), request);
            }),
            { numRuns: 60 },
          );
        }));

      it("putPendingRequest with an existing requestId replaces that request", () =>
        withStore(async (store) => {
          await store.transact((tx) => tx.putPendingRequest(fullPending("req-1")));
          const replacement = minimalPending("req-1", { deviceId: "dev-9", ts: 99 });
          await store.transact((tx) => tx.putPendingRequest(replacement));
          assert.deepEqual(await store.listPendingRequests(), [replacement]);
        }));

      it("listPendingRequests returns newest first; listPendingForDevice only that device's, newest first", () =>
        withStore(async (store) => {
          await store.transact(async (tx) => {
            await tx.putPendingRequest(minimalPending("a", { deviceId: "dev-1", ts: 1 }));
            await tx.putPendingRequest(minimalPending("b", { deviceId: "dev-2", ts: 3 }));
            await tx.putPendingRequest(minimalPending("c", { deviceId: "dev-1", ts: 2 }));
          });
          assert.deepEqual((await store.listPendingRequests()).map((r) => r.requestId), ["b", "c", "a"]);
          assert.deepEqual((await store.listPendingForDevice("dev-1")).map((r) => r.requestId), ["c", "a"]);
          assert.deepEqual(await store.listPendingForDevice("dev-3"), []);
        }));

      it("countPendingRequests counts every request, or only those from the given requesterIp", () =>
        withStore(async (store) => {
          assert.equal(await store.countPendingRequests(), 0);
          await store.transact(async (tx) => {
            await tx.putPendingRequest(minimalPending("a", { requesterIp: "10.0.0.1" }));
            await tx.putPendingRequest(minimalPending("b", { requesterIp: "10.0.0.1" }));
            await tx.putPendingRequest(minimalPending("c", { requesterIp: "10.0.0.2" }));
          });
          assert.equal(await store.countPendingRequests(), 3);
          assert.equal(await store.countPendingRequests({}), 3);
          assert.equal(await store.countPendingRequests({ requesterIp: "10.0.0.1" }), 2);
          assert.equal(await store.countPendingRequests({ requesterIp: "10.0.0.2" }), 1);
          assert.equal(await store.countPendingRequests({ requesterIp: "10.0.0.3" }), 0);
        }));

      it("deletePendingRequest reports whether it removed; deletePendingForDevice removes only that device's and counts them", () =>
        withStore(async (store) => {
          await store.transact(async (tx) => {
            await tx.putPendingRequest(minimalPending("a", { deviceId: "dev-1" }));
            await tx.putPendingRequest(minimalPending("b", { deviceId: "dev-1" }));
            await tx.putPendingRequest(minimalPending("c", { deviceId: "dev-2" }));
            await tx.putPendingRequest(minimalPending("d", { deviceId: "dev-3" }));
          });
          assert.equal(await store.transact((tx) => tx.deletePendingRequest("d")), true);
          assert.equal(await store.transact((tx) => tx.deletePendingRequest("d")), false);
          assert.equal(await store.transact((tx) => tx.deletePendingForDevice("dev-1")), 2);
          assert.equal(await store.transact((tx) => tx.deletePendingForDevice("dev-1")), 0);
          assert.deepEqual((await store.listPendingRequests()).map((r) => r.requestId), ["c"]);
        }));

      it("deleteExpiredPending removes and returns exactly the requests with expiresAtMs ≤ now", () =>
        withStore(async (store) => {
          const now = 50_000;
          const expiredEarlier = fullPending("expired-earlier", { ts: 1, expiresAtMs: now - 1 });
          const expiringNow = minimalPending("expiring-now", { ts: 2, expiresAtMs: now });
          const live = minimalPending("live", { ts: 3, expiresAtMs: now + 1 });
          await store.transact(async (tx) => {
            await tx.putPendingRequest(expiredEarlier);
            await tx.putPendingRequest(expiringNow);
            await tx.putPendingRequest(live);
          });
          const removed = await store.transact((tx) => tx.deleteExpiredPending(now));
          const byId = (a: PendingRequestRecord, b: PendingRequestRecord): number => a.requestId.localeCompare(b.requestId);
          assert.deepEqual([...removed].sort(byId), [expiredEarlier, expiringNow].sort(byId));
          assert.deepEqual(await store.listPendingRequests(), [live]);
          assert.deepEqual(await store.transact((tx) => tx.deleteExpiredPending(now)), []);
        }));
    });

    describe("backends", () => {
      it("a backend round-trips with and without optional fields and is found by secret hash and by name", () =>
        withStore(async (store) => {
          const plain = backend("be-1", { secretHash: HASH_A });
          const revoked = backend("be-2", { secretHash: HASH_B, revokedAtMs: 9_000, lastUsedAtMs: 8_000 });
          await store.transact(async (tx) => {
            await tx.putBackend(plain);
            await tx.putBackend(revoked);
          });
          const byHash = await store.getBackendBySecretHash(HASH_A);
          assert.deepEqual(byHash, plain);
          assertNoEmptyValues(byHash);
          assert.deepEqual(await store.getBackendBySecretHash(HASH_B), revoked);
          assert.deepEqual(await store.getBackendByName("backend-be-2"), revoked);
          assert.equal(await store.getBackendBySecretHash(HASH_C), undefined);
          assert.equal(await store.getBackendByName("nope"), undefined);
        }));

      it("putBackend with an existing id updates it: the new hash and name match, the old ones no longer do", () =>
        withStore(async (store) => {
          await store.transact((tx) => tx.putBackend(backend("be-1", { secretHash: HASH_A })));
          const rotated = backend("be-1", { name: "renamed", secretHash: HASH_B, revokedAtMs: 7_000 });
          await store.transact((tx) => tx.putBackend(rotated));
          assert.equal(await store.getBackendBySecretHash(HASH_A), undefined);
          assert.equal(await store.getBackendByName("backend-be-1"), undefined);
          assert.deepEqual(await store.getBackendBySecretHash(HASH_B), rotated);
          assert.deepEqual(await store.listBackends(), [rotated]);
        }));

      it("listBackends lists every backend ordered by name", () =>
        withStore(async (store) => {
          await store.transact(async (tx) => {
            await tx.putBackend(backend("1", { name: "charlie" }));
            await tx.putBackend(backend("2", { name: "alpha" }));
            await tx.putBackend(backend("3", { name: "bravo" }));
          });
          assert.deepEqual((await store.listBackends()).map((b) => b.name), ["alpha", "bravo", "charlie"]);
        }));

      it("a backend whose name or secret hash another backend holds is rejected with StoreConflictError, keeping nothing", () =>
        withStore(async (store) => {
          const existing = backend("be-1", { name: "ci", secretHash: HASH_A });
          await store.transact((tx) => tx.putBackend(existing));
          await assert.rejects(
            store.transact(async (tx) => {
              await tx.setSetting("side-effect", "1");
              await tx.putBackend(backend("be-2", { name: "ci", secretHash: HASH_B }));
            }),
            StoreConflictError,
          );
          await assert.rejects(
            store.transact((tx) => tx.putBackend(backend("be-3", { name: "other", secretHash: HASH_A }))),
            StoreConflictError,
          );
          assert.deepEqual(await store.listBackends(), [existing]);
          assert.equal(await store.getSetting("side-effect"), undefined);
        }));
    });

    describe("bootstrap tokens", () => {
      it("a bootstrap token round-trips with and without consumption fields and is found by token hash", () =>
        withStore(async (store) => {
          const fresh = bootstrap("bt-1", { tokenHash: HASH_A });
          const consumed = bootstrap("bt-2", { tokenHash: HASH_B, consumedAtMs: 2_000, consumedByDeviceId: "dev-1" });
          await store.transact(async (tx) => {
            await tx.putBootstrap(fresh);
            await tx.putBootstrap(consumed);
          });
          const gotFresh = await store.getBootstrapByTokenHash(HASH_A);
          assert.deepEqual(gotFresh, fresh);
          assertNoEmptyValues(gotFresh);
          assert.deepEqual(await store.getBootstrapByTokenHash(HASH_B), consumed);
          assert.equal(await store.getBootstrapByTokenHash(HASH_C), undefined);
        }));

      it("putBootstrap with an existing id updates it (consumption is recorded)", () =>
        withStore(async (store) => {
          await store.transact((tx) => tx.putBootstrap(bootstrap("bt-1", { tokenHash: HASH_A })));
          const consumed = bootstrap("bt-1", { tokenHash: HASH_A, consumedAtMs: 3_000, consumedByDeviceId: "dev-7" });
          await store.transact((tx) => tx.putBootstrap(consumed));
          assert.deepEqual(await store.getBootstrapByTokenHash(HASH_A), consumed);
        }));

      it("a bootstrap token whose hash another token holds is rejected with StoreConflictError", () =>
        withStore(async (store) => {
          await store.transact((tx) => tx.putBootstrap(bootstrap("bt-1", { tokenHash: HASH_A })));
          await assert.rejects(
            store.transact((tx) => tx.putBootstrap(bootstrap("bt-2", { tokenHash: HASH_A }))),
            StoreConflictError,
          );
          assert.deepEqual(await store.getBootstrapByTokenHash(HASH_A), bootstrap("bt-1", { tokenHash: HASH_A }));
        }));

      it("deleteStaleBootstrap removes tokens that expired or were consumed before the cutoff, and only those", () =>
        withStore(async (store) => {
          const cutoff = 50_000;
          const records = {
            expiredBefore: bootstrap("expired-before", { expiresAtMs: cutoff - 1 }),
            expiresAtCutoff: bootstrap("expires-at-cutoff", { expiresAtMs: cutoff }),
            consumedBefore: bootstrap("consumed-before", { consumedAtMs: cutoff - 1, consumedByDeviceId: "d" }),
            consumedAtCutoff: bootstrap("consumed-at-cutoff", { consumedAtMs: cutoff, consumedByDeviceId: "d" }),
            unconsumedLive: bootstrap("unconsumed-live"),
          };
          await store.transact(async (tx) => {
            for (const r of Object.values(records)) await tx.putBootstrap(r);
          });
          assert.equal(await store.transact((tx) => tx.deleteStaleBootstrap(cutoff)), 2);
          assert.equal(await store.getBootstrapByTokenHash(records.expiredBefore.tokenHash), undefined);
          assert.equal(await store.getBootstrapByTokenHash(records.consumedBefore.tokenHash), undefined);
          for (const kept of [records.expiresAtCutoff, records.consumedAtCutoff, records.unconsumedLive]) {
            assert.deepEqual(await store.getBootstrapByTokenHash(kept.tokenHash), kept);
          }
        }));
    });

    describe("settings", () => {
      it("getSetting returns undefined for a missing key and the last value set otherwise", () =>
        withStore(async (store) => {
          assert.equal(await store.getSetting("k"), undefined);
          await store.transact((tx) => tx.setSetting("k", "v1"));
          await store.transact((tx) => tx.setSetting("k", "v2"));
          await store.transact((tx) => tx.setSetting("empty", ""));
          assert.equal(await store.getSetting("k"), "v2");
          assert.equal(await store.getSetting("empty"), "");
        }));
    });

    describe("changes", () => {
      it("latestChangeId is 0 and changesSince is empty on a fresh store", () =>
        withStore(async (store) => {
          assert.equal(await store.latestChangeId(), 0);
          assert.deepEqual(await store.changesSince(0, 100), []);
        }));

      it("every change kind round-trips with its ts, in append order, with increasing ids", () =>
        withStore(async (store) => {
          await store.transact(async (tx) => {
            for (const [i, change] of SAMPLE_CHANGES.entries()) await tx.appendChange(change, 1_000 + i);
          });
          const got = await store.changesSince(0, 100);
          assert.deepEqual(
            got.map(({ id: _id, ...rest }) => rest),
            SAMPLE_CHANGES.map((change, i) => ({ ...change, ts: 1_000 + i })),
          );
          const ids = got.map((c) => c.id);
          assert.ok(ids.every((id, i) => i === 0 || id > (ids[i - 1] ?? Infinity)), `ids increase: ${ids.join(",")}`);
          assert.equal(await store.latestChangeId(), ids.at(-1));
          for (const c of got) assertNoEmptyValues(c);
        }));

      it("changesSince returns only changes after the given id, oldest first, at most `limit`", () =>
        withStore(async (store) => {
          await store.transact(async (tx) => {
            for (let i = 0; i < 5; i++) await tx.appendChange({ kind: "device.removed", deviceId: `d${i}` }, i);
          });
          const all = await store.changesSince(0, 100);
          const [first, second, third] = all.map((c) => c.id);
          assert.ok(first !== undefined && second !== undefined && third !== undefined);
          assert.deepEqual(await store.changesSince(0, 2), all.slice(0, 2));
          assert.deepEqual(await store.changesSince(first, 2), all.slice(1, 3));
          assert.deepEqual(await store.changesSince(second, 100), all.slice(2));
          assert.deepEqual(await store.changesSince(await store.latestChangeId(), 100), []);
          assert.deepEqual(await store.changesSince(0, 0), []);
        }));

      it("pruneChanges drops only changes with ts before the cutoff, returns the count, and ids are never reused", () =>
        withStore(async (store) => {
          await store.transact(async (tx) => {
            await tx.appendChange({ kind: "device.removed", deviceId: "old" }, 100);
            await tx.appendChange({ kind: "device.removed", deviceId: "at-cutoff" }, 200);
            await tx.appendChange({ kind: "device.removed", deviceId: "new" }, 300);
          });
          const latestBefore = await store.latestChangeId();
          assert.equal(await store.transact((tx) => tx.pruneChanges(200)), 1);
          const left = await store.changesSince(0, 100);
          assert.deepEqual(left.map((c) => c.ts), [200, 300]);

          assert.equal(await store.transact((tx) => tx.pruneChanges(1_000)), 2);
          await store.transact((tx) => tx.appendChange({ kind: "shared-secret.rotated" }, 2_000));
          const [next] = await store.changesSince(0, 100);
          assert.ok(next !== undefined && next.id > latestBefore, "a new change gets an id above every earlier one");
        }));
    });

    describe("transact", () => {
      it("transact resolves to the value fn resolves to", () =>
        withStore(async (store) => {
          assert.equal(await store.transact(async () => 42), 42);
        }));

      it("when fn throws, transact rejects with that error and none of its writes are kept", () =>
        withStore(async (store) => {
          const device = fullDevice("dev-1");
          await store.transact(async (tx) => {
            await tx.putPairedDevice(device);
            await tx.putPendingRequest(minimalPending("req-1"));
            await tx.setSetting("k", "before");
          });
          const latestBefore = await store.latestChangeId();
          const boom = new Boom("fn failed");

          const failing = store.transact(async (tx) => {
            await tx.deletePairedDevice("dev-1");
            await tx.putPairedDevice(minimalDevice("dev-2"));
            await tx.deletePendingRequest("req-1");
            await tx.putPendingRequest(minimalPending("req-2"));
            await tx.putBackend(backend("be-1"));
            await tx.putBootstrap(bootstrap("bt-1"));
            await tx.setSetting("k", "after");
            await tx.appendChange({ kind: "device.removed", deviceId: "dev-1" }, 1);
            throw boom;
          });
          await assert.rejects(failing, (err) => err === boom);

          assert.deepEqual(await store.listPairedDevices(), [device]);
          assert.deepEqual((await store.listPendingRequests()).map((r) => r.requestId), ["req-1"]);
          assert.deepEqual(await store.listBackends(), []);
          assert.equal(await store.getBootstrapByTokenHash(bootstrap("bt-1").tokenHash), undefined);
          assert.equal(await store.getSetting("k"), "before");
          assert.equal(await store.latestChangeId(), latestBefore);
        }));

      it("a failed transaction does not block the transactions after it", () =>
        withStore(async (store) => {
          const failed = store.transact(async () => {
            throw new Boom();
          });
          const next = store.transact((tx) => tx.setSetting("k", "v"));
          await assert.rejects(failed, Boom);
          await next;
          assert.equal(await store.getSetting("k"), "v");
        }));

      it("two concurrent read-modify-write transactions both apply (counter ends at 2)", () =>
        withStore(async (store) => {
          const increment = (): Promise<void> =>
            store.transact(async (tx) => {
              const value = Number((await tx.getSetting("counter")) ?? "0");
              await delay(5); // without serialization the other transaction would read the same value here
              await tx.setSetting("counter", String(value + 1));
            });
          await Promise.all([increment(), increment()]);
          assert.equal(await store.getSetting("counter"), "2");
        }));

      it("transactions run one at a time, in the order transact was called", () =>
        withStore(async (store) => {
          const log: string[] = [];
          const step = (name: string, ms: number): Promise<void> =>
            store.transact(async (tx) => {
              log.push(`${name}:start`);
              await delay(ms);
              await tx.setSetting("last", name);
              log.push(`${name}:end`);
            });
          await Promise.all([step("a", 10), step("b", 0), step("c", 5)]);
          assert.deepEqual(log, ["a:start", "a:end", "b:start", "b:end", "c:start", "c:end"]);
          assert.equal(await store.getSetting("last"), "c");
        }));

      it("a transaction sees its own writes, reads outside it do not until it commits", () =>
        withStore(async (store) => {
          await store.transact(async (tx) => {
            await tx.putPairedDevice(minimalDevice("dev-1"));
            await tx.setSetting("k", "v");
            assert.deepEqual(await tx.getPairedDevice("dev-1"), minimalDevice("dev-1"));
            assert.equal(await tx.getSetting("k"), "v");
            assert.equal(await store.getPairedDevice("dev-1"), undefined);
            assert.equal(await store.getSetting("k"), undefined);
          });
          assert.deepEqual(await store.getPairedDevice("dev-1"), minimalDevice("dev-1"));
          assert.equal(await store.getSetting("k"), "v");
        }));

      it("a transaction handle used after its transaction ended is rejected and writes nothing", () =>
        withStore(async (store) => {
          let leaked: Parameters<Parameters<Store["transact"]>[0]>[0] | undefined;
          await store.transact(async (tx) => {
            leaked = tx;
          });
          assert.ok(leaked);
          await assert.rejects(leaked.setSetting("k", "v"));
          assert.equal(await store.getSetting("k"), undefined);
        }));
    });

    describe("isolation of returned and stored objects", () => {
      it("mutating records returned by the store does not change what it stores (a copy takes the change, or a frozen record refuses it)", () =>
        withStore(async (store) => {
          const device = fullDevice("dev-1");
          const request = fullPending("req-1");
          const be = backend("be-1");
          const bt = bootstrap("bt-1");
          await store.transact(async (tx) => {
            await tx.putPairedDevice(device);
            await tx.putPendingRequest(request);
            await tx.putBackend(be);
            await tx.putBootstrap(bt);
            await tx.appendChange({ kind: "pairing.requested", request }, 1);
          });

          const gotDevice = await store.getPairedDevice("dev-1");
          assert.ok(gotDevice);
          mutate(() => ((gotDevice as { publicKey: string }).publicKey = "tampered"));
          mutate(() => (gotDevice.roles as Role[]).push("operator"));
          mutate(() => (gotDevice.tokens.operator?.scopes as Scope[] | undefined)?.push("operator.admin"));
          mutate(() => ((gotDevice.tokens as Partial<Record<Role, DeviceTokenRecord>>).node = undefined));
          const [listed] = await store.listPairedDevices();
          mutate(() => (listed?.approvedScopes as Scope[] | undefined)?.splice(0));
          const gotRequest = await store.getPendingRequest("req-1");
          mutate(() => (gotRequest?.scopes as Scope[] | undefined)?.push("operator.admin"));
          const gotBackend = await store.getBackendByName(be.name);
          mutate(() => ((gotBackend as { revokedAtMs?: number }).revokedAtMs = 1));
          const gotBootstrap = await store.getBootstrapByTokenHash(bt.tokenHash);
          mutate(() => (gotBootstrap?.roles as Role[] | undefined)?.push("operator"));
          const [change] = await store.changesSince(0, 1);
          if (change?.kind === "pairing.requested") mutate(() => ((change.request as { deviceId: string }).deviceId = "tampered"));

          assert.deepEqual(await store.getPairedDevice("dev-1"), device);
          assert.deepEqual(await store.getPendingRequest("req-1"), request);
          assert.deepEqual(await store.getBackendByName(be.name), be);
          assert.deepEqual(await store.getBootstrapByTokenHash(bt.tokenHash), bt);
          const [changeAgain] = await store.changesSince(0, 1);
          assert.equal(changeAgain?.kind === "pairing.requested" && changeAgain.request.deviceId, "dev-1");
        }));

      it("mutating a record after putting it does not change what the store holds", () =>
        withStore(async (store) => {
          const device = structuredClone(fullDevice("dev-1"));
          await store.transact((tx) => tx.putPairedDevice(device));
          (device as { publicKey: string }).publicKey = "tampered";
          (device.tokens.operator?.scopes as Scope[] | undefined)?.push("operator.admin");
          assert.deepEqual(await store.getPairedDevice("dev-1"), fullDevice("dev-1"));
        }));
    });

    describe("commitMarker", () => {
      it("commitMarker stays put while nothing is committed: repeated calls, reads and an uncommitted transaction leave it unchanged", () =>
        withStore(async (store) => {
          await store.transact((tx) => tx.putPairedDevice(minimalDevice("dev-1")));
          const marker = await store.commitMarker();
          assert.equal(await store.commitMarker(), marker, "reading the marker does not move it");
          await store.getPairedDevice("dev-1");
          await store.listPairedDevices();
          await store.getSetting("k");
          await store.changesSince(0, 10);
          assert.equal(await store.commitMarker(), marker, "reads do not move it");
          await store.transact(async (tx) => {
            await tx.setSetting("k", "in flight");
            assert.equal(await store.commitMarker(), marker, "an open transaction's writes are not committed yet");
          });
        }));

      it("commitMarker differs after every committed transaction, whatever it wrote", () =>
        withStore(async (store) => {
          let last = await store.commitMarker();
          const commits: ((tx: StoreWriter) => Promise<unknown>)[] = [
            (tx) => tx.setSetting("k", "v1"),
            (tx) => tx.putPairedDevice(fullDevice("dev-1")),
            (tx) => tx.deletePairedDevice("dev-1"),
            (tx) => tx.appendChange({ kind: "device.removed", deviceId: "dev-1" }, 1),
            (tx) => tx.setSetting("k", "v2"),
          ];
          for (const [i, write] of commits.entries()) {
            await store.transact(async (tx) => {
              await write(tx);
            });
            const now = await store.commitMarker();
            assert.notEqual(now, last, `commit #${i + 1} moved the marker`);
            last = now;
          }
        }));
    });

    describe("audit log", () => {
      const kinds = async (store: Store): Promise<Array<{ kind: string; actor: string }>> =>
        (await store.auditRows(0, 10_000)).map((r) => JSON.parse(r.event) as { kind: string; actor: string });
      const anyKey = (): boolean => true;

      it("appendAudit links entries after the anchor with contiguous sequence numbers, and the log verifies", () =>
        withStore(async (store) => {
          await store.appendAudit([{ kind: "t.one", actor: "gateway", fields: { n: 1 } }]);
          await store.appendAudit([
            { kind: "t.two", actor: "gateway", fields: { list: ["a", "b"] } },
            { kind: "t.three", actor: "owner" },
          ]);
          const rows = await store.auditRows(0, 100);
          assert.deepEqual(rows.map((r) => r.seq), [1, 2, 3]);
          assert.equal(rows[1]?.prev, rows[0]?.hash);
          assert.deepEqual((await store.newestAuditRow())?.seq, 3);
          const verdict = await verifyAuditLog(store, anyKey);
          assert.ok(verdict.ok && verdict.checked === 3, JSON.stringify(verdict));
        }));

      it("a transaction's changes to grants are audited in it, under the actor it names (the store's default otherwise)", () =>
        withStore(async (store) => {
          await store.transact((tx) => tx.putPairedDevice(fullDevice("dev-1")), { actor: "device:approver" });
          await store.transact((tx) => tx.putBackend(backend("be-1")));
          await store.transact(async (tx) => {
            await tx.deletePairedDevice("dev-1");
          }, { actor: "owner" });
          const got = await kinds(store);
          assert.deepEqual(got.map((e) => `${e.kind}/${e.actor}`), ["device.paired/device:approver", "backend.added/gateway", "device.removed/owner"]);
          assert.ok((await verifyAuditLog(store, anyKey)).ok);
        }));

      it("a transaction that fails keeps none of its audit entries", () =>
        withStore(async (store) => {
          await assert.rejects(
            store.transact(async (tx) => {
              await tx.putPairedDevice(fullDevice("dev-1"));
              throw new Boom();
            }),
            Boom,
          );
          assert.deepEqual(await kinds(store), []);
        }));

      it("inside a transaction, the audit log and its settings cannot be written directly", () =>
        withStore(async (store) => {
          await assert.rejects(store.transact((tx) => tx.setSetting("audit.anchor", "00")), /written only by the audit log/);
          await assert.rejects(store.transact((tx) => tx.appendAuditRows([])), /written only by the audit log/);
          await assert.rejects(store.transact((tx) => tx.deleteAuditThrough(10)), /written only by the audit log/);
        }));

      it("an audit-only append does not move the commit marker (no cache is emptied for it); a change does", () =>
        withStore(async (store) => {
          await store.transact((tx) => tx.setSetting("k", "v"));
          const before = await store.commitMarker();
          await store.appendAudit([{ kind: "t.quiet", actor: "gateway" }]);
          assert.equal(await store.commitMarker(), before);
          await store.transact((tx) => tx.putPairedDevice(fullDevice("dev-1")));
          assert.notEqual(await store.commitMarker(), before);
        }));

      it("pruning keeps the newest entries under a signed checkpoint, and the log still verifies (only with the signer trusted)", () =>
        withStore(async (store) => {
          const { privateKey, publicKey } = generateKeyPairSync("ed25519");
          const signer = { publicKey: publicKey.export({ format: "der", type: "spki" }).subarray(12).toString("base64url"), sign: (p: string) => edSign(null, Buffer.from(p), privateKey).toString("base64url") };
          await store.appendAudit(Array.from({ length: 12 }, (_v, i) => ({ kind: "t.n", actor: "gateway", fields: { i } })));
          const outcome = await pruneAudit(store, { nowMs: Date.now(), retention: { maxAgeMs: 86_400_000, maxEntries: 5 }, signer, trusted: (k) => k === signer.publicKey });
          assert.deepEqual(outcome, { pruned: 7, throughSeq: 7 });
          assert.deepEqual((await store.auditRows(0, 100)).map((r) => r.seq), [8, 9, 10, 11, 12]);
          const verdict = await verifyAuditLog(store, (k) => k === signer.publicKey);
          assert.ok(verdict.ok && verdict.checked === 5 && verdict.checkpoint?.throughSeq === 7, JSON.stringify(verdict));
          assert.equal((await verifyAuditLog(store, () => false)).ok, false);
          // Appends continue the chain from the newest row.
          await store.appendAudit([{ kind: "t.after", actor: "gateway" }]);
          assert.ok((await verifyAuditLog(store, (k) => k === signer.publicKey)).ok);
        }));

      it("pruning refuses to sign over a prefix that was tampered with, and prunes nothing", () =>
        withStore(async (store) => {
          const { privateKey, publicKey } = generateKeyPairSync("ed25519");
          const signer = { publicKey: publicKey.export({ format: "der", type: "spki" }).subarray(12).toString("base64url"), sign: (p: string) => edSign(null, Buffer.from(p), privateKey).toString("base64url") };
          await store.appendAudit(Array.from({ length: 6 }, (_v, i) => ({ kind: "t.n", actor: "gateway", fields: { i } })));
          const rows = await store.auditRows(0, 100);
          // Re-link row 2 onto a forged row 1 through the store's own audit-only path (as a store-level tamperer would).
          await store.auditTransact(async (tx) => {
            await tx.deleteAuditThrough(6);
            await tx.appendAuditRows(rows.map((r) => (r.seq === 2 ? { ...r, event: r.event.replace('"i":1', '"i":99') } : r)));
          });
          const outcome = await pruneAudit(store, { nowMs: Date.now(), retention: { maxAgeMs: 86_400_000, maxEntries: 2 }, signer, trusted: () => true });
          assert.ok("refused" in outcome && /entry #2 does not match its hash/.test(outcome.refused), JSON.stringify(outcome));
          assert.equal((await store.auditRows(0, 100)).length, 6);
        }));
    });

    describe("close", () => {
      it("after close, reads and transactions reject", async () => {
        const store = await open();
        await store.transact((tx) => tx.setSetting("k", "v"));
        await store.close();
        await assert.rejects(store.getSetting("k"));
        await assert.rejects(store.transact((tx) => tx.setSetting("k", "w")));
      });
    });
  });
}
