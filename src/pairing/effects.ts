import { canonicalJson } from "../canonical-json.js";
import { secretDigestHex } from "../admission/secret-digest.js";
import { scopesWithin } from "../admission/scopes.js";
import { newSecret, systemRandom, type Random } from "../clock.js";
import type { Role, Scope } from "../protocol/enums.js";
import { GatewayError, invalidRequest } from "../protocol/gateway-error.js";
import type { BootstrapRecord, PairedDeviceRecord } from "../store/records.js";
import { err, ok, type Result } from "../result.js";
import type { ChangeInput, Store, StoreWriter, TransactOptions } from "../store/store.js";
import { liveRoleScopes, roleGrant, setRoleGrant } from "./role-grant.js";

/**
 * Everything a decision (admission or a management action) may do to the
 * store: a closed list, carried out by `applyEffects` in one transaction.
 * Decisions are pure and say *what*; the applier adds only what a pure
 * function cannot have: fresh secrets and the store itself.
 */
export type Effect =
  /** Guard: the device's record is still the one the decision was made on (`undefined`: still not paired). */
  | { readonly kind: "require-device"; readonly deviceId: string; readonly record: PairedDeviceRecord | undefined }
  /** Guard and write: the bootstrap token is unused and unexpired, and is used up now. */
  | { readonly kind: "consume-bootstrap"; readonly tokenHash: string; readonly deviceId: string }
  | { readonly kind: "put-device"; readonly device: PairedDeviceRecord }
  | { readonly kind: "delete-device"; readonly deviceId: string }
  | { readonly kind: "delete-pending"; readonly requestId: string }
  | { readonly kind: "delete-pending-for-device"; readonly deviceId: string }
  /** A new token secret for the role's current grant, handed out once in the outcome. */
  | { readonly kind: "mint-token"; readonly deviceId: string; readonly role: Role; readonly scopes?: readonly Scope[] }
  | { readonly kind: "record-change"; readonly change: ChangeInput };

/** A token minted by `mint-token`; the clear secret exists only here and in the reply that hands it out. */
export interface IssuedToken {
  readonly token: string;
  readonly role: Role;
  readonly scopes: readonly Scope[];
  readonly issuedAtMs: number;
}

/** Why effects were not carried out. `stale`: the facts changed since the decision; decide again on fresh ones. */
interface Refusal {
  readonly error: GatewayError;
  readonly stale: boolean;
}

export const NO_EFFECTS: readonly Effect[] = Object.freeze([]);

const STALE: Refusal = {
  stale: true,
  error: new GatewayError({ code: "UNAVAILABLE", detailCode: "AUTH_UNAUTHORIZED", message: "credentials changed meanwhile; retry", retryable: true, retryAfterMs: 250 }),
};

const bootstrapInvalid = (): GatewayError =>
  invalidRequest("AUTH_BOOTSTRAP_TOKEN_INVALID", "unauthorized: bootstrap token invalid or expired (scan a fresh setup code)");

async function checkGuards(tx: StoreWriter, effects: readonly Effect[], nowMs: number): Promise<Refusal | undefined> {
  for (const e of effects) {
    if (e.kind === "require-device") {
      const now = await tx.getPairedDevice(e.deviceId);
      if (canonicalJson(now) !== canonicalJson(e.record)) return STALE;
    } else if (e.kind === "consume-bootstrap") {
      const boot = await tx.getBootstrapByTokenHash(e.tokenHash);
      if (!boot || boot.consumedAtMs !== undefined || nowMs >= boot.expiresAtMs) return { stale: false, error: bootstrapInvalid() };
    }
  }
  return undefined;
}

/** Thrown inside a transaction so that the store rolls back what was written before the refusal. */
class Refused extends Error {
  constructor(readonly refusal: Refusal) {
    super(refusal.error.message);
  }
}

/**
 * Carry out a decision's effects inside a transaction: every guard first, then
 * every write, in order. A refusal throws `Refused`, so the enclosing
 * `transact` keeps nothing; `transactDecision` turns it back into a value.
 */
async function applyEffects(tx: StoreWriter, effects: readonly Effect[], opts: { readonly nowMs: number; readonly random: Random }): Promise<IssuedToken | undefined> {
  const { nowMs } = opts;
  const refused = await checkGuards(tx, effects, nowMs);
  if (refused) throw new Refused(refused);
  let issued: IssuedToken | undefined;
  for (const e of effects) {
    switch (e.kind) {
      case "require-device":
        break;
      case "consume-bootstrap": {
        const boot = (await tx.getBootstrapByTokenHash(e.tokenHash)) as BootstrapRecord;
        await tx.putBootstrap({ ...boot, consumedAtMs: nowMs, consumedByDeviceId: e.deviceId });
        break;
      }
      case "put-device":
        await tx.putPairedDevice(e.device);
        break;
      case "delete-device":
        await tx.deletePairedDevice(e.deviceId);
        break;
      case "delete-pending":
        await tx.deletePendingRequest(e.requestId);
        break;
      case "delete-pending-for-device":
        await tx.deletePendingForDevice(e.deviceId);
        break;
      case "mint-token": {
        const device = await tx.getPairedDevice(e.deviceId);
        const grant = device && roleGrant(device, e.role);
        // Defence in depth: a token never carries more than the role's live grant.
        if (!device || !grant || grant.revoked) throw new Refused(STALE);
        const scopes = e.scopes ?? grant.scopes;
        if (!scopesWithin(scopes, liveRoleScopes(device, e.role))) throw new Refused(STALE);
        const token = newSecret(opts.random);
        const updated = setRoleGrant(device, e.role, { kind: "mint", scopes, tokenHash: secretDigestHex(token) }, nowMs);
        await tx.putPairedDevice(updated);
        const record = updated.tokens[e.role];
        issued = { token, role: e.role, scopes: record?.scopes ?? [], issuedAtMs: record?.rotatedAtMs ?? record?.createdAtMs ?? nowMs };
        break;
      }
      case "record-change":
        await tx.appendChange(e.change, nowMs);
        break;
    }
  }
  return issued;
}

/** What a decision returns: its effects, and the reply built once they are carried out. */
export interface Plan<V> {
  readonly effects: readonly Effect[];
  readonly reply: (issued: IssuedToken | undefined) => V;
}

export type DecisionResult<V> = Result<V> & { readonly stale?: boolean };

/**
 * One decision, atomically: `decide` reads its facts from the transaction and
 * returns a plan (or a refusal, having written nothing); the plan's effects are
 * carried out in the same transaction. A refusal while carrying out rolls the
 * whole transaction back.
 */
export async function transactDecision<V>(
  store: Store,
  opts: { readonly nowMs: number; readonly random?: Random } & TransactOptions,
  decide: (tx: StoreWriter) => Promise<Result<Plan<V>>>,
): Promise<DecisionResult<V>> {
  try {
    return await store.transact(
      async (tx) => {
        const plan = await decide(tx);
        if (!plan.ok) return plan;
        if (opts.revocation && plan.value.effects.some((e) => e.kind === "mint-token")) {
          // The reserve is for taking authority away; a plan that mints is not that.
          throw new Error("a revocation plan may not mint a token");
        }
        return ok(plan.value.reply(await applyEffects(tx, plan.value.effects, { nowMs: opts.nowMs, random: opts.random ?? systemRandom })));
      },
      { revocation: opts.revocation ?? false, ...(opts.actor !== undefined ? { actor: opts.actor } : {}) },
    );
  } catch (e) {
    if (e instanceof Refused) return { ...err(e.refusal.error), stale: e.refusal.stale };
    throw e;
  }
}

/**
 * Carry out effects decided outside a transaction (an admission, decided on
 * facts read before it): their guards re-check those facts inside it, and a
 * `stale` refusal means "decide again".
 */
export function carryOut(store: Store, effects: readonly Effect[], opts: { readonly nowMs: number; readonly random: Random }): Promise<DecisionResult<IssuedToken | undefined>> {
  return transactDecision(store, opts, async () => ok({ effects, reply: (issued) => issued }));
}
