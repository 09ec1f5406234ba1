import type { PairingRequestSpec } from "../admission/decide.js";
import { normalizeScopes } from "../admission/scopes.js";
import type { Random } from "../clock.js";
import type { Role } from "../protocol/enums.js";
import { err, ok, type Result } from "../result.js";
import type { PendingRequestRecord } from "../store/records.js";
import type { Store } from "../store/store.js";
import { pendingCapacity } from "./errors.js";
import type { PairingLimits } from "./limits.js";

const sameSet = (a: readonly string[], b: readonly string[]): boolean =>
  a.length === b.length && normalizeScopes(a).every((v, i) => v === normalizeScopes(b)[i]);

/**
 * Create or refresh the pending request for a device (spec §9.2). One device
 * has at most one pending request: an identical one is refreshed in place, a
 * different one replaces all of them with their union. New requests count
 * against per-IP and total caps after expired ones are pruned.
 */
export async function requestPairing(
  store: Store,
  spec: PairingRequestSpec,
  opts: { readonly limits: PairingLimits; readonly nowMs: number; readonly random: Random },
): Promise<Result<{ request: PendingRequestRecord; created: boolean }>> {
  const { limits, nowMs } = opts;
  return store.transact(async (tx) => {
    await tx.deleteExpiredPending(nowMs);
    const existing = await tx.listPendingForDevice(spec.deviceId);
    const only = existing.length === 1 ? existing[0] : undefined;
    if (only && only.publicKey === spec.publicKey && only.role === spec.role && sameSet(only.roles, [spec.role]) && sameSet(only.scopes, spec.scopes)) {
      const refreshed: PendingRequestRecord = { ...only, ...spec.metadata, reason: spec.reason, isRepair: spec.isRepair };
      await tx.putPendingRequest(refreshed);
      return ok({ request: refreshed, created: false });
    }

    const replacing = existing.filter((p) => p.publicKey === spec.publicKey);
    const replacingFromIp = replacing.filter((p) => p.requesterIp === spec.requesterIp).length;
    const oldestExpiry = async (): Promise<number> => {
      const all = await tx.listPendingRequests();
      const soonest = Math.min(...all.map((p) => p.expiresAtMs));
      return Number.isFinite(soonest) ? Math.max(0, soonest - nowMs) : limits.pendingTtlMs;
    };
    if ((await tx.countPendingRequests({ requesterIp: spec.requesterIp })) - replacingFromIp >= limits.maxPendingPerIp) {
      return err(pendingCapacity("ip", await oldestExpiry()));
    }
    if ((await tx.countPendingRequests()) - existing.length >= limits.maxPendingTotal) {
      return err(pendingCapacity("total", await oldestExpiry()));
    }

    const roles = normalizeScopes<Role>([spec.role, ...replacing.flatMap((p) => p.roles)]);
    const scopes = normalizeScopes([...spec.scopes, ...replacing.flatMap((p) => p.scopes)]);
    await tx.deletePendingForDevice(spec.deviceId);
    const request: PendingRequestRecord = {
      requestId: opts.random.uuid(),
      deviceId: spec.deviceId,
      publicKey: spec.publicKey,
      ...spec.metadata,
      role: spec.role,
      roles,
      scopes,
      reason: spec.reason,
      isRepair: spec.isRepair,
      requesterIp: spec.requesterIp,
      ts: nowMs,
      expiresAtMs: nowMs + limits.pendingTtlMs,
    };
    await tx.putPendingRequest(request);
    await tx.appendChange({ kind: "pairing.requested", request }, nowMs);
    return ok({ request, created: true });
  });
}
