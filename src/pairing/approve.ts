import type { Scope } from "../protocol/enums.js";
import type { Store } from "../store/store.js";
import { auditLabel, type Actor } from "./actor.js";
import { decideApproval, decideRejection, type Approved } from "./decide-approval.js";
import { transactDecision, type DecisionResult } from "./effects.js";

/**
 * Approve a pending request (spec §9.4): decided by `decideApproval` on facts
 * read in the same transaction that carries it out, so concurrent approvals of
 * one request serialize and the second finds nothing to approve.
 */
export async function approvePairing(store: Store, requestId: string, actor: Actor, nowMs: number, narrowTo?: readonly Scope[]): Promise<DecisionResult<Approved>> {
  return transactDecision(store, { nowMs, actor: auditLabel(actor) }, async (tx) => {
    const pending = await tx.getPendingRequest(requestId);
    const device = pending ? await tx.getPairedDevice(pending.deviceId) : undefined;
    return decideApproval({ nowMs, pending, device }, actor, narrowTo);
  });
}

/** Reject a pending request; the device learns it at its next connect. */
export async function rejectPairing(store: Store, requestId: string, actor: Actor, nowMs: number): Promise<DecisionResult<{ requestId: string; deviceId: string }>> {
  return transactDecision(store, { nowMs, revocation: true, actor: auditLabel(actor) }, async (tx) => decideRejection({ nowMs, pending: await tx.getPendingRequest(requestId), device: undefined }, actor));
}
