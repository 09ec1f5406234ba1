import { normalizeScopes, roleScopes, scopeFitsRole } from "../admission/scopes.js";
import type { Role, Scope } from "../protocol/enums.js";
import { invalidRequest } from "../protocol/gateway-error.js";
import { err, ok, type Result } from "../result.js";
import type { DeviceMetadata, PairedDeviceRecord, PendingRequestRecord } from "../store/records.js";
import { lackingToGrant, isSelf, mayActOn, type Actor } from "./actor.js";
import type { Effect, Plan } from "./effects.js";
import { denied, missingScope, requestExpired, unknownRequest } from "./errors.js";
import { roleGrant, setRoleGrant } from "./role-grant.js";

/** Facts an approval or rejection is decided on, read in the transaction that carries it out. */
export interface ApprovalFacts {
  readonly nowMs: number;
  /** The request named by the actor, if it exists. */
  readonly pending: PendingRequestRecord | undefined;
  /** The request's device as paired now, if it is. */
  readonly device: PairedDeviceRecord | undefined;
}

export interface Approved {
  readonly requestId: string;
  readonly device: PairedDeviceRecord;
  /** What this approval granted, per role: the scopes listed in the request, nothing implied. */
  readonly granted: { readonly roles: readonly Role[]; readonly scopes: readonly Scope[] };
}

function metadataOf(m: DeviceMetadata): DeviceMetadata {
  const out: { -readonly [K in keyof DeviceMetadata]: DeviceMetadata[K] } = {};
  for (const k of ["displayName", "platform", "deviceFamily", "clientId", "clientMode", "remoteIp"] as const) {
    if (m[k] !== undefined) out[k] = m[k];
  }
  return out;
}

/**
 * The request the actor may see, live. One the actor may not act on is
 * answered like one that does not exist, so ids are no oracle; one it may
 * act on but that has expired says so.
 */
function visibleRequest(facts: ApprovalFacts, actor: Actor): Result<PendingRequestRecord> {
  const { pending } = facts;
  if (!pending || !mayActOn(actor, pending.deviceId)) return err(unknownRequest());
  // Said as it is to whoever may act on it: an expired request is not "unknown".
  if (pending.expiresAtMs <= facts.nowMs) return err(requestExpired(pending.expiresAtMs));
  return ok(pending);
}

/**
 * Approving a pending request (spec §9.4, hardened). What the device may use
 * afterwards is what it may use now plus exactly the scopes the request lists,
 * each of which the actor must be able to grant. A revoked role is restored
 * with the listed scopes only: an approval never restores anything implicitly,
 * so a request that lists no scopes (a role or metadata upgrade) restores none.
 * A device never approves its own request. `narrowTo`, when given, replaces
 * the request's scopes with a subset of them (the approver's choice).
 */
export function decideApproval(facts: ApprovalFacts, actor: Actor, narrowTo?: readonly Scope[]): Result<Plan<Approved>> {
  const visible = visibleRequest(facts, actor);
  if (!visible.ok) return visible;
  const pending = visible.value;
  if (isSelf(actor, pending.deviceId)) return err(denied("device pairing approval denied: a device cannot approve its own request"));
  // The approver may grant less than was asked, never more or other.
  const extra = narrowTo?.find((s) => !pending.scopes.includes(s));
  if (extra !== undefined) return err(invalidRequest("INVALID_SCOPE", `scope not requested: ${extra} (an approval can only narrow the request)`));
  const asked = narrowTo === undefined ? pending.scopes : normalizeScopes(narrowTo);
  for (const s of asked) {
    if (!pending.roles.some((r) => scopeFitsRole(s, r))) return err(invalidRequest("INVALID_SCOPE", `invalid scope for requested roles: ${s}`));
  }
  const existing = facts.device && facts.device.publicKey === pending.publicKey ? facts.device : undefined;
  let device: PairedDeviceRecord = {
    ...metadataOf(existing ?? {}),
    ...metadataOf(pending),
    deviceId: pending.deviceId,
    publicKey: pending.publicKey,
    roles: existing?.roles ?? [],
    approvedScopes: existing?.approvedScopes ?? [],
    tokens: existing?.tokens ?? {},
    createdAtMs: existing?.createdAtMs ?? facts.nowMs,
    approvedAtMs: facts.nowMs,
  };
  for (const role of pending.roles) {
    const current = existing ? roleGrant(existing, role) : undefined;
    const live = current !== undefined && !current.revoked;
    const listed = roleScopes(role, asked);
    // The role itself is a grant when the device does not hold it live now.
    const lacking = lackingToGrant(actor, role, listed, !live);
    if (lacking !== undefined) return err(missingScope(lacking));
    const kept = live ? current.scopes : [];
    device = setRoleGrant(device, role, { kind: "set", scopes: normalizeScopes([...kept, ...listed]) }, facts.nowMs);
  }
  const effects: Effect[] = [
    { kind: "put-device", device },
    { kind: "delete-pending", requestId: pending.requestId },
    { kind: "record-change", change: { kind: "pairing.resolved", requestId: pending.requestId, deviceId: pending.deviceId, decision: "approved" } },
  ];
  const granted = { roles: [...pending.roles], scopes: [...asked] };
  return ok({ effects, reply: () => ({ requestId: pending.requestId, device, granted }) });
}

/** Rejecting a pending request grants nothing; the device learns it at its next connect. */
export function decideRejection(facts: ApprovalFacts, actor: Actor): Result<Plan<{ requestId: string; deviceId: string }>> {
  const visible = visibleRequest(facts, actor);
  if (!visible.ok) return visible;
  const { requestId, deviceId } = visible.value;
  const effects: Effect[] = [
    { kind: "delete-pending", requestId },
    { kind: "record-change", change: { kind: "pairing.resolved", requestId, deviceId, decision: "rejected" } },
  ];
  return ok({ effects, reply: () => ({ requestId, deviceId }) });
}
