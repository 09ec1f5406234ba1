import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import fc from "fast-check";
import type { Decision } from "../../src/admission/decide.js";
import type { PresentedSecrets } from "../../src/admission/presented.js";
import { satisfies } from "../../src/admission/scopes.js";
import { secretDigestHex } from "../../src/admission/secret-digest.js";
import { systemRandom } from "../../src/clock.js";
import type { Actor } from "../../src/pairing/actor.js";
import { approvePairing, rejectPairing } from "../../src/pairing/approve.js";
import { createBootstrapToken } from "../../src/pairing/bootstrap-tokens.js";
import { removeDevice, revokeDeviceToken, rotateDeviceToken } from "../../src/pairing/device-tokens.js";
import { carryOut } from "../../src/pairing/effects.js";
import { DEFAULT_PAIRING_LIMITS } from "../../src/pairing/limits.js";
import { requestPairing } from "../../src/pairing/request-pairing.js";
import { liveRoleScopes, roleGrant } from "../../src/pairing/role-grant.js";
import type { Role, Scope } from "../../src/protocol/enums.js";
import { createMemoryStore } from "../../src/store/memory-store.js";
import { openSqliteStore } from "../../src/store/sqlite-store.js";
import type { Store } from "../../src/store/store.js";
import { NOW_MS, SHARED_TOKEN, connectInput, remotePeer } from "../support/admission-fixtures.js";
import { decideAdmission } from "../../src/admission/decide.js";
import { createTestDevices, type TestDevice } from "../support/device.js";

// The management plane as a state machine (fast-check `commands`): random
// sequences of connects (first pairing, reconnects, role/scope/metadata
// upgrades), bootstrap pairings, approvals, rejections, rotations,
// revocations and removals, by actors holding random scope sets (the owner's
// CLI, operator sessions, the device itself), against the real decisions and
// a real store. The reference model knows only who vouched for what: a scope
// of a role is vouched for when an actor that may grant it approved it, and
// stays vouched until a revocation, a removal or a narrowing drops it. After
// every step no stored grant and no admitted session holds a scope the model
// does not vouch for, and every action that succeeded was one its actor had
// the authority for.

const DEVICES: readonly TestDevice[] = createTestDevices(3);
const OPERATOR_SCOPES: readonly Scope[] = ["operator.admin", "operator.read", "operator.write", "operator.pairing"];
const NODE_SCOPES: readonly Scope[] = ["node.camera", "node.screen"];

type Vouched = Partial<Record<Role, Set<Scope>>>;

interface Model {
  /** Per device index: the scopes each live role is vouched for; absent role = not live. */
  readonly vouched: Map<number, Vouched>;
  readonly paired: Set<number>;
}

interface Real {
  readonly store: Store;
  /** The tokens each device was handed, by role: what its client would keep. */
  readonly wallet: Map<number, Partial<Record<Role, string>>>;
  now: number;
  nonce: number;
}

type ActorSpec = { readonly kind: "owner" } | { readonly kind: "session"; readonly scopes: readonly Scope[]; readonly credential: "shared-secret" | "device-token" | "backend"; readonly device: number | undefined };

function actorOf(a: ActorSpec): Actor {
  if (a.kind === "owner") return { kind: "owner" };
  return { kind: "session", scopes: a.scopes, credential: a.credential, deviceId: a.device === undefined ? undefined : DEVICES[a.device]?.id };
}

function describeActor(a: ActorSpec): string {
  return a.kind === "owner" ? "owner" : `${a.credential}[${a.scopes.join(",")}]${a.device === undefined ? "" : `@dev${a.device}`}`;
}

const isAdminActor = (a: ActorSpec): boolean => a.kind === "owner" || a.scopes.includes("operator.admin");

/** The model's own reading of authority: an operator scope by its holder, the node role and node scopes by an admin. */
function mayGrant(a: ActorSpec, scope: Scope): boolean {
  if (a.kind === "owner") return true;
  return scope.startsWith("operator.") ? satisfies(a.scopes, scope) : isAdminActor(a);
}

/** A non-admin device-token session is confined to its own device. */
function confined(a: ActorSpec, dev: number): boolean {
  return a.kind === "session" && a.credential === "device-token" && !isAdminActor(a) && a.device !== dev;
}

const dev = (i: number): TestDevice => DEVICES[i] as TestDevice;
const scopesFor = (role: Role, scopes: readonly Scope[]): Scope[] => scopes.filter((s) => s.startsWith(role === "operator" ? "operator." : "node."));

function assertVouched(m: Model, i: number, role: Role, scopes: readonly Scope[], what: string): void {
  const v = m.vouched.get(i)?.[role];
  assert.ok(v !== undefined || scopes.length === 0, `${what}: dev${i} ${role} is not live in the model but holds [${scopes.join(",")}]`);
  for (const s of scopes) assert.ok(satisfies([...(v ?? [])], s), `${what}: dev${i} ${role} holds ${s}, vouched only [${[...(v ?? [])].join(",")}]`);
}

/** After every step: the store's grants are within what the model vouches for. */
async function checkStore(m: Model, r: Real, after: string): Promise<void> {
  for (let i = 0; i < DEVICES.length; i++) {
    const record = await r.store.getPairedDevice(dev(i).id);
    if (!m.paired.has(i)) {
      assert.equal(record, undefined, `${after}: dev${i} is paired in the store, not in the model`);
      continue;
    }
    assert.ok(record, `${after}: dev${i} is paired in the model, not in the store`);
    for (const role of ["operator", "node"] as const) {
      const g = roleGrant(record, role);
      if (g && !g.revoked) assert.ok(m.vouched.get(i)?.[role] !== undefined, `${after}: dev${i} ${role} is live in the store, revoked or never approved in the model`);
      assertVouched(m, i, role, liveRoleScopes(record, role), after);
    }
  }
}

function clearDevice(m: Model, r: Real, i: number): void {
  m.paired.delete(i);
  m.vouched.delete(i);
  r.wallet.delete(i);
}

/** Carry out an admission decision as the server does; returns the admitted scopes, or undefined. */
async function admit(r: Real, d: Decision, i: number): Promise<{ scopes: readonly Scope[]; minted: boolean } | undefined> {
  if (d.kind === "pairing-required") {
    await requestPairing(r.store, d.request, { limits: DEFAULT_PAIRING_LIMITS, nowMs: r.now, random: systemRandom });
    return undefined;
  }
  if (d.kind === "reject") return undefined;
  const applied = await carryOut(r.store, d.effects, { nowMs: r.now, random: systemRandom });
  if (!applied.ok) return undefined;
  const issued = applied.value;
  if (issued) {
    assert.deepEqual(issued.scopes, liveRoleScopes((await r.store.getPairedDevice(dev(i).id))!, d.grant.role), "a minted token carries exactly the role's grant");
    r.wallet.set(i, { ...r.wallet.get(i), [issued.role]: issued.token });
  }
  return { scopes: d.grant.scopes, minted: issued !== undefined };
}

function connectDecision(r: Real, i: number, role: Role, scopes: readonly Scope[], platform: string, presented: PresentedSecrets, facts: object): Decision {
  r.nonce++;
  return decideAdmission(
    connectInput({
      device: dev(i),
      claims: { requestedRole: role, requestedScopes: scopes, platform },
      presented,
      facts: { nowMs: r.now, challengeNonce: `nonce-${r.nonce}`, peer: remotePeer(), ...facts },
    }),
  );
}

class Connect implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly i: number,
    readonly role: Role,
    readonly scopes: readonly Scope[],
    readonly platform: string,
    readonly withToken: boolean,
  ) {}
  check = (): boolean => true;
  async run(m: Model, r: Real): Promise<void> {
    r.now += 1000;
    const token = this.withToken ? r.wallet.get(this.i)?.[this.role] : undefined;
    const presented: PresentedSecrets = token !== undefined ? { deviceToken: token } : { token: SHARED_TOKEN };
    const d = connectDecision(r, this.i, this.role, this.scopes, this.platform, presented, { pairedDevice: await r.store.getPairedDevice(dev(this.i).id) });
    const admitted = await admit(r, d, this.i);
    if (admitted) assertVouched(m, this.i, this.role, admitted.scopes, `${this.toString()} admitted`);
    await checkStore(m, r, this.toString());
  }
  toString = (): string => `connect(dev${this.i}, ${this.role}, [${this.scopes.join(",")}], ${this.platform}${this.withToken ? ", device token" : ""})`;
}

class BootstrapConnect implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly i: number,
    readonly role: Role,
    readonly scopes: readonly Scope[],
    readonly profileScopes: readonly Scope[],
  ) {}
  check = (): boolean => true;
  async run(m: Model, r: Real): Promise<void> {
    r.now += 1000;
    // The owner issues the token: the owner's CLI holds everything, and the profile is what it vouches for.
    const created = await createBootstrapToken(r.store, { roles: [this.role], scopes: [...this.profileScopes] }, { nowMs: r.now, random: systemRandom });
    assert.ok(created.ok);
    const { token } = created.value;
    const before = await r.store.getPairedDevice(dev(this.i).id);
    const d = connectDecision(r, this.i, this.role, this.scopes, "linux", { bootstrapToken: token }, {
      pairedDevice: before,
      bootstrap: await r.store.getBootstrapByTokenHash(secretDigestHex(token)),
    });
    const admitted = await admit(r, d, this.i);
    if (admitted) {
      for (const s of admitted.scopes) assert.ok(satisfies(this.profileScopes, s), `bootstrap admitted ${s} beyond its profile`);
      if (before === undefined) {
        m.paired.add(this.i);
        m.vouched.set(this.i, { [this.role]: new Set(admitted.scopes) });
      } else {
        assert.equal(admitted.minted, false, "a bootstrap token on a paired device mints nothing");
        assertVouched(m, this.i, this.role, admitted.scopes, this.toString());
      }
    }
    await checkStore(m, r, this.toString());
  }
  toString = (): string => `bootstrap(dev${this.i}, ${this.role}, [${this.scopes.join(",")}], profile [${this.profileScopes.join(",")}])`;
}

class Approve implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly i: number,
    readonly actor: ActorSpec,
    /** The approver's narrowing (`--scopes`), or undefined for what was asked. */
    readonly narrow: readonly Scope[] | undefined = undefined,
  ) {}
  check = (): boolean => true;
  async run(m: Model, r: Real): Promise<void> {
    r.now += 1000;
    const [pending] = await r.store.listPendingForDevice(dev(this.i).id);
    if (!pending) return;
    const result = await approvePairing(r.store, pending.requestId, actorOf(this.actor), r.now, this.narrow);
    const widens = this.narrow?.some((s) => !pending.scopes.includes(s)) ?? false;
    if (widens) assert.ok(!result.ok, "an approval granted a scope the request did not ask for");
    else if (this.actor.kind === "owner") assert.ok(result.ok, `the owner's approval failed: ${result.ok ? "" : result.error.message}`);
    if (result.ok) {
      assert.ok(!(this.actor.kind === "session" && this.actor.device === this.i), "a device approved its own request");
      assert.ok(!confined(this.actor, this.i), "a device-token session approved another device's request");
      const vouched: Vouched = m.paired.has(this.i) ? { ...m.vouched.get(this.i) } : {};
      for (const role of pending.roles) {
        const listed = scopesFor(role, this.narrow ?? pending.scopes);
        for (const s of listed) assert.ok(mayGrant(this.actor, s), `${describeActor(this.actor)} approved ${s}`);
        if (vouched[role] === undefined && role === "node") assert.ok(isAdminActor(this.actor), `${describeActor(this.actor)} granted the node role`);
        vouched[role] = new Set([...(vouched[role] ?? []), ...listed]);
      }
      m.paired.add(this.i);
      m.vouched.set(this.i, vouched);
    }
    await checkStore(m, r, this.toString());
  }
  toString = (): string => `approve(dev${this.i}, by ${describeActor(this.actor)}${this.narrow ? `, only [${this.narrow.join(",")}]` : ""})`;
}

class Reject implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly i: number,
    readonly actor: ActorSpec,
  ) {}
  check = (): boolean => true;
  async run(m: Model, r: Real): Promise<void> {
    r.now += 1000;
    const [pending] = await r.store.listPendingForDevice(dev(this.i).id);
    if (!pending) return;
    const result = await rejectPairing(r.store, pending.requestId, actorOf(this.actor), r.now);
    if (result.ok) assert.ok(!confined(this.actor, this.i), "a device-token session rejected another device's request");
    await checkStore(m, r, this.toString());
  }
  toString = (): string => `reject(dev${this.i}, by ${describeActor(this.actor)})`;
}

class Rotate implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly i: number,
    readonly role: Role,
    readonly scopes: readonly Scope[] | undefined,
    readonly actor: ActorSpec,
  ) {}
  check = (): boolean => true;
  async run(m: Model, r: Real): Promise<void> {
    r.now += 1000;
    const params = { deviceId: dev(this.i).id, role: this.role, ...(this.scopes ? { scopes: this.scopes } : {}) };
    const result = await rotateDeviceToken(r.store, params, actorOf(this.actor), { nowMs: r.now, random: systemRandom });
    const live = m.vouched.get(this.i)?.[this.role] !== undefined;
    if (this.actor.kind === "owner" && live && this.scopes === undefined) assert.ok(result.ok, "the owner's plain rotation of a live role failed");
    if (result.ok) {
      assert.ok(live, `rotation of dev${this.i} ${this.role}, which is revoked or never approved, succeeded`);
      assert.ok(!confined(this.actor, this.i), "a device-token session rotated another device's token");
      for (const s of result.value.scopes) assert.ok(mayGrant(this.actor, s), `${describeActor(this.actor)} rotated in ${s}`);
      assertVouched(m, this.i, this.role, result.value.scopes, this.toString());
      // A narrowing stays until an approval restores it.
      m.vouched.set(this.i, { ...m.vouched.get(this.i), [this.role]: new Set(result.value.scopes) });
      r.wallet.set(this.i, { ...r.wallet.get(this.i), [this.role]: result.value.token });
    }
    await checkStore(m, r, this.toString());
  }
  toString = (): string => `rotate(dev${this.i}, ${this.role}, ${this.scopes ? `[${this.scopes.join(",")}]` : "same scopes"}, by ${describeActor(this.actor)})`;
}

class Revoke implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly i: number,
    readonly role: Role,
    readonly actor: ActorSpec,
  ) {}
  check = (): boolean => true;
  async run(m: Model, r: Real): Promise<void> {
    r.now += 1000;
    const result = await revokeDeviceToken(r.store, { deviceId: dev(this.i).id, role: this.role }, actorOf(this.actor), r.now);
    if (result.ok) {
      assert.ok(!confined(this.actor, this.i), "a device-token session revoked another device's token");
      const v = { ...m.vouched.get(this.i) };
      delete v[this.role];
      m.vouched.set(this.i, v);
    }
    await checkStore(m, r, this.toString());
  }
  toString = (): string => `revoke(dev${this.i}, ${this.role}, by ${describeActor(this.actor)})`;
}

class Remove implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly i: number,
    readonly actor: ActorSpec,
  ) {}
  check = (): boolean => true;
  async run(m: Model, r: Real): Promise<void> {
    r.now += 1000;
    const result = await removeDevice(r.store, dev(this.i).id, actorOf(this.actor), r.now);
    if (this.actor.kind === "owner") assert.equal(result.ok, m.paired.has(this.i), "the owner removes exactly the paired devices");
    if (result.ok) {
      assert.ok(!confined(this.actor, this.i), "a device-token session removed another device");
      clearDevice(m, r, this.i);
    }
    await checkStore(m, r, this.toString());
  }
  toString = (): string => `remove(dev${this.i}, by ${describeActor(this.actor)})`;
}

const devIndex = fc.integer({ min: 0, max: DEVICES.length - 1 });
const role = fc.constantFrom<Role>("operator", "node");
const operatorScopes = fc.subarray([...OPERATOR_SCOPES]);
const nodeScopes = fc.subarray([...NODE_SCOPES]);
const roleAndScopes = fc.oneof(
  fc.record({ role: fc.constant<Role>("operator"), scopes: operatorScopes }),
  fc.record({ role: fc.constant<Role>("node"), scopes: nodeScopes }),
);
const actor: fc.Arbitrary<ActorSpec> = fc.oneof(
  { weight: 1, arbitrary: fc.constant<ActorSpec>({ kind: "owner" }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("session" as const),
      scopes: fc.subarray([...OPERATOR_SCOPES, "operator.approvals" as Scope]),
      credential: fc.constantFrom("shared-secret" as const, "device-token" as const, "backend" as const),
      device: fc.option(devIndex, { nil: undefined }),
    }),
  },
);

const commands = fc.commands(
  [
    fc.tuple(devIndex, roleAndScopes, fc.constantFrom("linux", "darwin"), fc.boolean()).map(([i, rs, p, t]) => new Connect(i, rs.role, rs.scopes, p, t)),
    fc.tuple(devIndex, roleAndScopes, fc.boolean()).map(([i, rs, t]) => new Connect(i, rs.role, rs.scopes, "linux", t)),
    fc.tuple(devIndex, roleAndScopes, fc.subarray([...OPERATOR_SCOPES])).map(([i, rs, p]) => new BootstrapConnect(i, rs.role, rs.scopes, rs.role === "operator" ? p : [])),
    fc.tuple(devIndex, actor).map(([i, a]) => new Approve(i, a)),
    fc.tuple(devIndex, actor, fc.subarray([...OPERATOR_SCOPES, "operator.approvals" as Scope])).map(([i, a, n]) => new Approve(i, a, n)),
    fc.tuple(devIndex, actor).map(([i, a]) => new Reject(i, a)),
    fc.tuple(devIndex, roleAndScopes, fc.boolean(), actor).map(([i, rs, same, a]) => new Rotate(i, rs.role, same ? undefined : rs.scopes, a)),
    fc.tuple(devIndex, role, actor).map(([i, r, a]) => new Revoke(i, r, a)),
    fc.tuple(devIndex, actor).map(([i, a]) => new Remove(i, a)),
  ],
  { maxCommands: 40, size: "max" },
);

async function runModel(open: () => { store: Store; cleanup: () => void }, numRuns: number): Promise<void> {
  await fc.assert(
    fc.asyncProperty(commands, async (cmds) => {
      const { store, cleanup } = open();
      try {
        const setup = () => ({ model: { vouched: new Map(), paired: new Set<number>() }, real: { store, wallet: new Map(), now: NOW_MS, nonce: 0 } });
        await fc.asyncModelRun(setup, cmds);
      } finally {
        await store.close();
        cleanup();
      }
    }),
    { numRuns },
  );
}

describe("management plane: no device ever holds a scope no sufficient actor vouched for (model-based)", () => {
  it("on the memory store", async () => {
    await runModel(() => ({ store: createMemoryStore(), cleanup: () => {} }), 400);
  });

  it("on the SQLite store", async () => {
    await runModel(() => {
      const dir = mkdtempSync(join(tmpdir(), "gw-model-"));
      return { store: openSqliteStore({ path: join(dir, "state.sqlite") }), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
    }, 80);
  });
});
