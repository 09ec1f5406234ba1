import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decideAdmission, type Decision } from "../../src/admission/decide.js";
import type { PresentedSecrets } from "../../src/admission/presented.js";
import { secretDigestHex } from "../../src/admission/secret-digest.js";
import { systemRandom } from "../../src/clock.js";
import { OWNER, type Actor } from "../../src/pairing/actor.js";
import { approvePairing } from "../../src/pairing/approve.js";
import { createBootstrapToken } from "../../src/pairing/bootstrap-tokens.js";
import { revokeDeviceToken, rotateDeviceToken } from "../../src/pairing/device-tokens.js";
import { carryOut } from "../../src/pairing/effects.js";
import { DEFAULT_PAIRING_LIMITS } from "../../src/pairing/limits.js";
import { requestPairing } from "../../src/pairing/request-pairing.js";
import { liveRoleScopes } from "../../src/pairing/role-grant.js";
import type { Role, Scope } from "../../src/protocol/enums.js";
import { createMemoryStore } from "../../src/store/memory-store.js";
import type { Store } from "../../src/store/store.js";
import { NOW_MS, SHARED_TOKEN, connectInput, remotePeer } from "../support/admission-fixtures.js";
import { createTestDevice, type TestDevice } from "../support/device.js";

// A49–A53 and issue 13's items 1–4, on the real decisions and a real store:
// after admission, no action leaves a device with more than its actor holds.

const PAIRING_ONLY: Actor = { kind: "session", scopes: ["operator.pairing"], credential: "shared-secret", deviceId: undefined };

class Harness {
  readonly store: Store = createMemoryStore();
  now = NOW_MS;
  private nonce = 0;

  async connect(device: TestDevice, opts: { role?: Role; scopes?: readonly Scope[]; platform?: string; presented?: PresentedSecrets; bootstrap?: string } = {}): Promise<Decision> {
    this.now += 1000;
    const presented = opts.presented ?? (opts.bootstrap ? { bootstrapToken: opts.bootstrap } : { token: SHARED_TOKEN });
    const d = decideAdmission(
      connectInput({
        device,
        claims: { requestedRole: opts.role ?? "operator", requestedScopes: opts.scopes ?? [], platform: opts.platform ?? "linux" },
        presented,
        facts: {
          nowMs: this.now,
          challengeNonce: `nonce-${++this.nonce}`,
          peer: remotePeer(),
          pairedDevice: await this.store.getPairedDevice(device.id),
          bootstrap: opts.bootstrap ? await this.store.getBootstrapByTokenHash(secretDigestHex(opts.bootstrap)) : undefined,
        },
      }),
    );
    if (d.kind === "pairing-required") await requestPairing(this.store, d.request, { limits: DEFAULT_PAIRING_LIMITS, nowMs: this.now, random: systemRandom });
    if (d.kind === "admit") assert.ok((await carryOut(this.store, d.effects, { nowMs: this.now, random: systemRandom })).ok);
    return d;
  }

  async pendingOf(device: TestDevice): Promise<string> {
    const [p] = await this.store.listPendingForDevice(device.id);
    assert.ok(p, "a pending request");
    return p.requestId;
  }

  /** The device asks for `scopes` and the owner approves them. */
  async pairWith(device: TestDevice, scopes: readonly Scope[], role: Role = "operator"): Promise<void> {
    await this.connect(device, { role, scopes });
    assert.ok((await approvePairing(this.store, await this.pendingOf(device), OWNER, this.now)).ok);
  }

  async scopesOf(device: TestDevice, role: Role = "operator"): Promise<readonly Scope[]> {
    const record = await this.store.getPairedDevice(device.id);
    return record ? liveRoleScopes(record, role) : [];
  }
}

describe("grants after admission: approvals restore nothing implicitly (A49, A50, A51)", () => {
  it("A49 a pairing-only approver of a role-upgrade after the owner revoked admin restores no scope (the request lists none)", async () => {
    const h = new Harness();
    const d = createTestDevice();
    await h.pairWith(d, ["operator.admin"]);
    assert.ok((await revokeDeviceToken(h.store, { deviceId: d.id, role: "operator" }, OWNER, h.now)).ok);
    const reconnect = await h.connect(d);
    assert.equal(reconnect.kind === "pairing-required" && reconnect.request.reason, "role-upgrade");
    const approved = await approvePairing(h.store, await h.pendingOf(d), PAIRING_ONLY, h.now);
    assert.ok(approved.ok, "the role itself may be restored");
    assert.deepEqual(await h.scopesOf(d), [], "admin stays revoked");
    const admin = await h.connect(d, { scopes: ["operator.admin"] });
    assert.equal(admin.kind === "pairing-required" && admin.request.reason, "scope-upgrade", "asking for admin again is an upgrade");
  });

  it("A49 a pairing-only approver cannot approve a role-upgrade that lists admin", async () => {
    const h = new Harness();
    const d = createTestDevice();
    await h.pairWith(d, ["operator.admin"]);
    await revokeDeviceToken(h.store, { deviceId: d.id, role: "operator" }, OWNER, h.now);
    await h.connect(d, { scopes: ["operator.admin"] });
    const r = await approvePairing(h.store, await h.pendingOf(d), PAIRING_ONLY, h.now);
    assert.equal(r.ok ? "approved" : r.error.detailCode, "MISSING_SCOPE");
    assert.deepEqual(await h.scopesOf(d), []);
  });

  it("A50 a metadata-upgrade approved by a pairing-only approver keeps the owner's narrowing to operator.read", async () => {
    const h = new Harness();
    const d = createTestDevice();
    await h.pairWith(d, ["operator.admin"]);
    const narrowed = await rotateDeviceToken(h.store, { deviceId: d.id, role: "operator", scopes: ["operator.read"] }, OWNER, { nowMs: h.now, random: systemRandom });
    assert.ok(narrowed.ok);
    const moved = await h.connect(d, { platform: "darwin" });
    assert.equal(moved.kind === "pairing-required" && moved.request.reason, "metadata-upgrade");
    assert.ok((await approvePairing(h.store, await h.pendingOf(d), PAIRING_ONLY, h.now)).ok);
    assert.deepEqual(await h.scopesOf(d), ["operator.read"]);
    const asAdmin = await h.connect(d, { platform: "darwin", scopes: ["operator.admin"] });
    assert.equal(asAdmin.kind === "pairing-required" && asAdmin.request.reason, "scope-upgrade");
  });

  it("A50 the narrowing also binds the shared secret with the device key: no wider session than the token", async () => {
    const h = new Harness();
    const d = createTestDevice();
    await h.pairWith(d, ["operator.admin"]);
    await rotateDeviceToken(h.store, { deviceId: d.id, role: "operator", scopes: ["operator.read"] }, OWNER, { nowMs: h.now, random: systemRandom });
    const again = await h.connect(d, { scopes: ["operator.admin"] });
    assert.equal(again.kind === "pairing-required" && again.request.reason, "scope-upgrade");
    const read = await h.connect(d, { scopes: ["operator.read"] });
    assert.deepEqual(read.kind === "admit" && read.grant.scopes, ["operator.read"]);
  });

  it("A51 a device narrowed to operator.pairing that changes its platform cannot approve its own request", async () => {
    const h = new Harness();
    const d = createTestDevice();
    await h.pairWith(d, ["operator.admin", "operator.pairing"]);
    await rotateDeviceToken(h.store, { deviceId: d.id, role: "operator", scopes: ["operator.pairing"] }, OWNER, { nowMs: h.now, random: systemRandom });
    await h.connect(d, { platform: "darwin" });
    const self: Actor = { kind: "session", scopes: ["operator.pairing"], credential: "device-token", deviceId: d.id };
    const r = await approvePairing(h.store, await h.pendingOf(d), self, h.now);
    assert.equal(r.ok ? "approved" : r.error.detailCode, "FORBIDDEN");
    assert.deepEqual(await h.scopesOf(d), ["operator.pairing"]);
    const selfViaShared: Actor = { kind: "session", scopes: ["operator.pairing"], credential: "shared-secret", deviceId: d.id };
    const r2 = await approvePairing(h.store, await h.pendingOf(d), selfViaShared, h.now);
    assert.equal(r2.ok ? "approved" : r2.error.detailCode, "FORBIDDEN", "whatever credential the device's session used");
  });
});

describe("grants after admission: rotation never un-revokes nor widens (A52)", () => {
  it("A52 device.token.rotate on a revoked token is refused, by a pairing-only session and by the owner alike; the revocation stays", async () => {
    const h = new Harness();
    const d = createTestDevice();
    await h.pairWith(d, ["operator.admin"]);
    await revokeDeviceToken(h.store, { deviceId: d.id, role: "operator" }, OWNER, h.now);
    for (const actor of [PAIRING_ONLY, OWNER]) {
      const r = await rotateDeviceToken(h.store, { deviceId: d.id, role: "operator" }, actor, { nowMs: h.now, random: systemRandom });
      assert.equal(r.ok ? "rotated" : r.error.detailCode, "FORBIDDEN");
    }
    const again = await h.connect(d, { scopes: ["operator.admin"] });
    assert.equal(again.kind === "pairing-required" && again.request.reason, "role-upgrade");
  });

  it("A52 rotation cannot widen a narrowed grant back, even by the owner (only an approval restores)", async () => {
    const h = new Harness();
    const d = createTestDevice();
    await h.pairWith(d, ["operator.admin"]);
    await rotateDeviceToken(h.store, { deviceId: d.id, role: "operator", scopes: ["operator.read"] }, OWNER, { nowMs: h.now, random: systemRandom });
    const r = await rotateDeviceToken(h.store, { deviceId: d.id, role: "operator", scopes: ["operator.admin"] }, OWNER, { nowMs: h.now, random: systemRandom });
    assert.equal(r.ok, false);
    assert.deepEqual(await h.scopesOf(d), ["operator.read"]);
  });

  it("a pairing-only session rotating an admin device's token must narrow it to what it holds", async () => {
    const h = new Harness();
    const d = createTestDevice();
    await h.pairWith(d, ["operator.admin"]);
    const same = await rotateDeviceToken(h.store, { deviceId: d.id, role: "operator" }, PAIRING_ONLY, { nowMs: h.now, random: systemRandom });
    assert.equal(same.ok, false, "keeping admin would be handing out admin");
    const narrowed = await rotateDeviceToken(h.store, { deviceId: d.id, role: "operator", scopes: ["operator.pairing"] }, PAIRING_ONLY, { nowMs: h.now, random: systemRandom });
    assert.ok(narrowed.ok);
    assert.deepEqual(await h.scopesOf(d), ["operator.pairing"]);
  });
});

describe("grants after admission: bootstrap tokens (A53)", () => {
  it("A53 a bootstrap token issued for operator.read, presented with an admin device's key, admits at most operator.read and mints nothing", async () => {
    const h = new Harness();
    const d = createTestDevice();
    await h.pairWith(d, ["operator.admin"]);
    const boot = await createBootstrapToken(h.store, { roles: ["operator"], scopes: ["operator.read"] }, { nowMs: h.now, random: systemRandom });
    assert.ok(boot.ok);
    const before = await h.store.getPairedDevice(d.id);
    const r = await h.connect(d, { scopes: ["operator.admin", "operator.read"], bootstrap: boot.value.token });
    assert.equal(r.kind, "admit");
    assert.deepEqual(r.kind === "admit" && r.grant.scopes, ["operator.read"]);
    assert.deepEqual(await h.store.getPairedDevice(d.id), before, "no token minted, nothing re-paired");
    assert.ok((await h.store.getBootstrapByTokenHash(secretDigestHex(boot.value.token)))?.consumedAtMs !== undefined, "and it is used up");
  });
});

describe("grants after admission: the node role and node scopes (item 4)", () => {
  it("a pairing-only (or pairing+write) approver grants neither the node role nor node.* scopes; an admin or the owner does", async () => {
    const h = new Harness();
    const d = createTestDevice();
    await h.connect(d, { role: "node", scopes: ["node.camera"] });
    const id = await h.pendingOf(d);
    for (const scopes of [["operator.pairing"], ["operator.pairing", "operator.write"]] as Scope[][]) {
      const r = await approvePairing(h.store, id, { kind: "session", scopes, credential: "shared-secret", deviceId: undefined }, h.now);
      assert.equal(r.ok ? "approved" : r.error.message, "missing scope: operator.admin");
    }
    const admin = await approvePairing(h.store, id, { kind: "session", scopes: ["operator.admin"], credential: "shared-secret", deviceId: undefined }, h.now);
    assert.ok(admin.ok);
    assert.deepEqual(await h.scopesOf(d, "node"), ["node.camera"]);
  });

  it("a node role request with no scopes still needs an admin: the role itself is a grant", async () => {
    const h = new Harness();
    const d = createTestDevice();
    await h.connect(d, { role: "node" });
    const r = await approvePairing(h.store, await h.pendingOf(d), PAIRING_ONLY, h.now);
    assert.equal(r.ok ? "approved" : r.error.message, "missing scope: operator.admin");
  });

  it("rotating a node token to node scopes needs an admin; narrowing it to none does not", async () => {
    const h = new Harness();
    const d = createTestDevice();
    await h.pairWith(d, ["node.camera"], "node");
    const keep = await rotateDeviceToken(h.store, { deviceId: d.id, role: "node" }, PAIRING_ONLY, { nowMs: h.now, random: systemRandom });
    assert.equal(keep.ok, false);
    const none = await rotateDeviceToken(h.store, { deviceId: d.id, role: "node", scopes: [] }, PAIRING_ONLY, { nowMs: h.now, random: systemRandom });
    assert.ok(none.ok);
    assert.deepEqual(await h.scopesOf(d, "node"), []);
  });
});
