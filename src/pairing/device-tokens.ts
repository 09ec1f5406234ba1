import type { Random } from "../clock.js";
import type { Role, Scope } from "../protocol/enums.js";
import type { Store } from "../store/store.js";
import { auditLabel, type Actor } from "./actor.js";
import { decideRemoval, decideRevocation, decideRotation, type Rotated } from "./decide-device-action.js";
import { transactDecision, type DecisionResult } from "./effects.js";

// Device tokens (spec §10): 32 random bytes, base64url, one per (device, role),
// stored as SHA-256 digests. The clear token exists only in the reply that
// hands it out. Each action is decided (decide-device-action.ts) on facts read
// in the transaction that carries it out.

/** `device.token.rotate` (spec §9.5); the device's live sessions for the role are closed. */
export async function rotateDeviceToken(
  store: Store,
  params: { readonly deviceId: string; readonly role: Role; readonly scopes?: readonly Scope[] },
  actor: Actor,
  opts: { readonly nowMs: number; readonly random: Random },
): Promise<DecisionResult<Rotated>> {
  return transactDecision(store, { ...opts, actor: auditLabel(actor) }, async (tx) => decideRotation({ nowMs: opts.nowMs, device: await tx.getPairedDevice(params.deviceId) }, actor, params));
}

/** `device.token.revoke`: a reconnect with that role needs a new approval (role-upgrade). */
export async function revokeDeviceToken(
  store: Store,
  params: { readonly deviceId: string; readonly role: Role },
  actor: Actor,
  nowMs: number,
): Promise<DecisionResult<{ deviceId: string; role: Role; revokedAtMs: number }>> {
  return transactDecision(store, { nowMs, revocation: true, actor: auditLabel(actor) }, async (tx) => decideRevocation({ nowMs, device: await tx.getPairedDevice(params.deviceId) }, actor, params));
}

/** `device.pair.remove`: the record, its tokens and its pending requests go; live sockets close. */
export async function removeDevice(store: Store, deviceId: string, actor: Actor, nowMs: number): Promise<DecisionResult<{ deviceId: string }>> {
  return transactDecision(store, { nowMs, revocation: true, actor: auditLabel(actor) }, async (tx) => decideRemoval({ nowMs, device: await tx.getPairedDevice(deviceId) }, actor));
}
