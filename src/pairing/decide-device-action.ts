import { normalizeScopes, scopeFitsRole, scopesWithin } from "../admission/scopes.js";
import type { Role, Scope } from "../protocol/enums.js";
import { err, ok, type Result } from "../result.js";
import type { PairedDeviceRecord } from "../store/records.js";
import { lackingToGrant, mayActOn, type Actor } from "./actor.js";
import type { Effect, Plan } from "./effects.js";
import { denied, unknownDevice, unknownDeviceRole } from "./errors.js";
import { roleGrant, setRoleGrant } from "./role-grant.js";

// Rotating, revoking and removing: actions on a paired device's grant. Each
// only keeps or narrows what the device holds; none restores anything. A
// device the actor may not act on is answered exactly as an unknown one.

/** Facts a device action is decided on, read in the transaction that carries it out. */
export interface DeviceActionFacts {
  readonly nowMs: number;
  readonly device: PairedDeviceRecord | undefined;
}

export interface Rotated {
  readonly deviceId: string;
  readonly role: Role;
  readonly token: string;
  readonly scopes: readonly Scope[];
  readonly rotatedAtMs: number;
}

/**
 * `device.token.rotate` (spec §9.5): a new secret for the role, with the same
 * or narrower scopes. It never widens the role's grant nor revives a revoked
 * one, and what it keeps the actor must be able to grant; a narrowing stays
 * until an approval restores it. Every refusal reads the same (spec).
 */
export function decideRotation(
  facts: DeviceActionFacts,
  actor: Actor,
  params: { readonly deviceId: string; readonly role: Role; readonly scopes?: readonly Scope[] },
): Result<Plan<Rotated>> {
  // "device token rotation denied" as upstream says it; to an actor that may act on the device, also why.
  const rotationDenied = (why?: string) => err(denied(why === undefined ? "device token rotation denied" : `device token rotation denied: ${why}`));
  const { device } = facts;
  if (!device || !mayActOn(actor, device.deviceId)) return rotationDenied();
  const grant = roleGrant(device, params.role);
  if (!grant) return rotationDenied(`the device has no ${params.role} role (it has ${device.roles.join(", ") || "none"})`);
  if (grant.revoked) return rotationDenied(`its ${params.role} token is revoked; only an approval of a new pairing request restores it`);
  const scopes = normalizeScopes(params.scopes ?? grant.scopes);
  const beyond = scopes.find((s) => !scopeFitsRole(s, params.role) || !scopesWithin([s], grant.scopes));
  if (beyond !== undefined) {
    return rotationDenied(`${beyond} is not within the role's grant (${grant.scopes.join(", ") || "no scopes"}); a rotation keeps or narrows, never widens`);
  }
  const lacking = lackingToGrant(actor, params.role, scopes, false);
  if (lacking !== undefined) return rotationDenied(`the token would carry ${lacking}, which you cannot grant`);
  const { deviceId } = device;
  const effects: Effect[] = [
    // The grant narrows with the token: a shared secret and the device key then admit no more than the token does.
    { kind: "put-device", device: setRoleGrant(device, params.role, { kind: "set", scopes }, facts.nowMs) },
    { kind: "mint-token", deviceId, role: params.role, scopes },
    { kind: "record-change", change: { kind: "device.token.changed", deviceId, role: params.role, change: "rotated" } },
  ];
  return ok({
    effects,
    reply: (issued) => ({ deviceId, role: params.role, token: issued?.token ?? "", scopes: issued?.scopes ?? scopes, rotatedAtMs: facts.nowMs }),
  });
}

/** `device.token.revoke`: the role grants nothing until an approval restores it (a role-upgrade request). */
export function decideRevocation(
  facts: DeviceActionFacts,
  actor: Actor,
  params: { readonly deviceId: string; readonly role: Role },
): Result<Plan<{ deviceId: string; role: Role; revokedAtMs: number }>> {
  const { device } = facts;
  if (!device || !mayActOn(actor, device.deviceId)) return err(unknownDeviceRole());
  const grant = roleGrant(device, params.role);
  if (grant === undefined) return err(unknownDeviceRole(`the device has no ${params.role} role (it has ${device.roles.join(", ") || "none"})`));
  const { deviceId } = device;
  // Already revoked: nothing to do, and the time it was revoked stays the one reported.
  const revokedAtMs = device.tokens[params.role]?.revokedAtMs;
  if (grant.revoked && revokedAtMs !== undefined) return ok({ effects: [], reply: () => ({ deviceId, role: params.role, revokedAtMs }) });
  const effects: Effect[] = [
    { kind: "put-device", device: setRoleGrant(device, params.role, { kind: "revoke" }, facts.nowMs) },
    { kind: "record-change", change: { kind: "device.token.changed", deviceId, role: params.role, change: "revoked" } },
  ];
  return ok({ effects, reply: () => ({ deviceId, role: params.role, revokedAtMs: facts.nowMs }) });
}

/** `device.pair.remove`: the record, its tokens and its pending requests go; live sockets close. */
export function decideRemoval(facts: DeviceActionFacts, actor: Actor): Result<Plan<{ deviceId: string }>> {
  const { device } = facts;
  if (!device || !mayActOn(actor, device.deviceId)) return err(unknownDevice());
  const { deviceId } = device;
  const effects: Effect[] = [
    { kind: "delete-device", deviceId },
    { kind: "delete-pending-for-device", deviceId },
    { kind: "record-change", change: { kind: "device.removed", deviceId } },
  ];
  return ok({ effects, reply: () => ({ deviceId }) });
}
