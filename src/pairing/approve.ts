import { normalizeScopes, roleScopes, scopeFitsRole } from "../admission/scopes.js";
import type { PairingRequestSpec } from "../admission/decide.js";
import type { Role, Scope } from "../protocol/enums.js";
import { err, ok, type Result } from "../result.js";
import type { DeviceTokenRecord, PairedDeviceRecord, PendingRequestRecord } from "../store/records.js";
import type { Store, StoreWriter } from "../store/store.js";
import { approverMayActOn, firstScopeBeyond, type Approver } from "./approver.js";
import { consumeBootstrapIn } from "./bootstrap-tokens.js";
import { denied, missingScope, unknownRequest } from "./errors.js";
import { invalidRequest } from "../protocol/gateway-error.js";

type Grantable = Pick<PendingRequestRecord, "deviceId" | "publicKey" | "roles" | "scopes"> & Partial<PairedDeviceRecord>;

/**
 * Merge an approval into the device's record. Approved roles and scopes are
 * unions; a live token keeps its secret and takes the new role scopes; a
 * revoked one is dropped so that a fresh token is minted at the next hello.
 */
export function mergeApproval(existing: PairedDeviceRecord | undefined, approved: Grantable, nowMs: number): PairedDeviceRecord {
  const base = existing && existing.publicKey === approved.publicKey ? existing : undefined;
  const roles = normalizeScopes<Role>([...(base?.roles ?? []), ...approved.roles]);
  const approvedScopes = normalizeScopes<Scope>([...(base?.approvedScopes ?? []), ...approved.scopes]);
  const tokens: Partial<Record<Role, DeviceTokenRecord>> = {};
  for (const role of roles) {
    const token = base?.tokens[role];
    if (!token) continue;
    if (token.revokedAtMs !== undefined && approved.roles.includes(role)) continue;
    tokens[role] = approved.roles.includes(role) ? { ...token, scopes: roleScopes(role, approvedScopes) } : token;
  }
  const metadata = {
    displayName: approved.displayName ?? base?.displayName,
    platform: approved.platform ?? base?.platform,
    deviceFamily: approved.deviceFamily ?? base?.deviceFamily,
    clientId: approved.clientId ?? base?.clientId,
    clientMode: approved.clientMode ?? base?.clientMode,
    remoteIp: approved.remoteIp ?? base?.remoteIp,
  };
  const record: PairedDeviceRecord = {
    deviceId: approved.deviceId,
    publicKey: approved.publicKey,
    roles,
    approvedScopes,
    tokens,
    createdAtMs: base?.createdAtMs ?? nowMs,
    approvedAtMs: nowMs,
  };
  return Object.assign(record, Object.fromEntries(Object.entries(metadata).filter(([, v]) => v !== undefined)));
}

async function livePending(tx: StoreWriter, requestId: string, nowMs: number): Promise<PendingRequestRecord | undefined> {
  const pending = await tx.getPendingRequest(requestId);
  return pending && pending.expiresAtMs > nowMs ? pending : undefined;
}

/**
 * Approve a pending request (spec §9.4). The approver must hold every
 * operator scope it approves; concurrent approvals of one request serialize in
 * the store, and the second finds nothing to approve.
 */
export async function approvePairing(
  store: Store,
  requestId: string,
  approver: Approver,
  nowMs: number,
): Promise<Result<{ requestId: string; device: PairedDeviceRecord }>> {
  return store.transact(async (tx) => {
    const pending = await livePending(tx, requestId, nowMs);
    if (!pending) return err(unknownRequest());
    if (!approverMayActOn(approver, pending.deviceId)) return err(denied("device pairing approval denied"));
    const beyond = firstScopeBeyond(approver, pending.scopes);
    if (beyond !== undefined) return err(missingScope(beyond));
    for (const s of pending.scopes) {
      if (!pending.roles.some((r) => scopeFitsRole(s, r))) return err(invalidRequest("INVALID_SCOPE", `invalid scope for requested roles: ${s}`));
    }
    const device = mergeApproval(await tx.getPairedDevice(pending.deviceId), pending, nowMs);
    await tx.putPairedDevice(device);
    await tx.deletePendingRequest(requestId);
    await tx.appendChange({ kind: "pairing.resolved", requestId, deviceId: pending.deviceId, decision: "approved" }, nowMs);
    return ok({ requestId, device });
  });
}

/** Reject a pending request; the device learns it at its next connect. */
export async function rejectPairing(
  store: Store,
  requestId: string,
  approver: Approver,
  nowMs: number,
): Promise<Result<{ requestId: string; deviceId: string }>> {
  return store.transact(async (tx) => {
    const pending = await livePending(tx, requestId, nowMs);
    if (!pending) return err(unknownRequest());
    if (!approverMayActOn(approver, pending.deviceId)) return err(denied("device pairing rejection denied"));
    await tx.deletePendingRequest(requestId);
    await tx.appendChange({ kind: "pairing.resolved", requestId, deviceId: pending.deviceId, decision: "rejected" }, nowMs);
    return ok({ requestId, deviceId: pending.deviceId });
  });
}

/**
 * A first pairing approved without an operator, by the documented local
 * policy or a one-time bootstrap token (consumed here, atomically: a second use
 * of the same token finds it consumed and fails).
 */
export async function approveSilently(
  store: Store,
  spec: PairingRequestSpec,
  via: { readonly kind: "local-policy" } | { readonly kind: "bootstrap"; readonly tokenHash: string },
  opts: { readonly nowMs: number; readonly requestId: string },
): Promise<Result<{ device: PairedDeviceRecord }>> {
  const { nowMs } = opts;
  return store.transact(async (tx) => {
    if (via.kind === "bootstrap") {
      const consumed = await consumeBootstrapIn(tx, via.tokenHash, spec.deviceId, nowMs);
      if (!consumed.ok) return consumed;
    }
    const existing = await tx.getPairedDevice(spec.deviceId);
    if (existing && existing.publicKey === spec.publicKey) {
      // Raced with an operator's approval: keep theirs, add nothing.
      return ok({ device: existing });
    }
    const device = mergeApproval(undefined, { ...spec.metadata, deviceId: spec.deviceId, publicKey: spec.publicKey, roles: [spec.role], scopes: spec.scopes }, nowMs);
    await tx.putPairedDevice(device);
    await tx.deletePendingForDevice(spec.deviceId);
    await tx.appendChange({ kind: "pairing.resolved", requestId: opts.requestId, deviceId: spec.deviceId, decision: "approved" }, nowMs);
    return ok({ device });
  });
}
