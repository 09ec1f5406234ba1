import { secretDigestHex } from "../admission/secret-digest.js";
import { normalizeScopes, roleScopes, scopesWithin, satisfies } from "../admission/scopes.js";
import { newSecret, type Random } from "../clock.js";
import type { Role, Scope } from "../protocol/enums.js";
import { err, ok, type Result } from "../result.js";
import type { DeviceTokenRecord, PairedDeviceRecord } from "../store/records.js";
import type { Store } from "../store/store.js";
import { approverMayActOn, type Approver } from "./approver.js";
import { denied, unknownDevice, unknownDeviceRole } from "./errors.js";

// Device tokens (spec §10): 32 random bytes, base64url, one per (device, role),
// stored as SHA-256 digests. The clear token exists only in the reply that
// hands it out.

export interface IssuedToken {
  readonly token: string;
  readonly role: Role;
  readonly scopes: readonly Scope[];
  readonly issuedAtMs: number;
}

function mint(previous: DeviceTokenRecord | undefined, role: Role, scopes: readonly Scope[], nowMs: number, random: Random) {
  const token = newSecret(random);
  const record: DeviceTokenRecord = {
    role,
    tokenHash: secretDigestHex(token),
    scopes: normalizeScopes(scopes),
    createdAtMs: previous?.createdAtMs ?? nowMs,
    ...(previous ? { rotatedAtMs: nowMs } : {}),
  };
  return { token, record };
}

function withToken(device: PairedDeviceRecord, role: Role, record: DeviceTokenRecord): PairedDeviceRecord {
  return { ...device, tokens: { ...device.tokens, [role]: record } };
}

/**
 * Mint the token handed out in hello-ok to an admitted, paired device. Its
 * scopes never exceed the device's approved baseline for the role.
 */
export async function issueDeviceToken(
  store: Store,
  deviceId: string,
  role: Role,
  scopes: readonly Scope[],
  opts: { readonly nowMs: number; readonly random: Random },
): Promise<Result<IssuedToken>> {
  return store.transact(async (tx) => {
    const device = await tx.getPairedDevice(deviceId);
    if (!device || !device.roles.includes(role)) return err(unknownDeviceRole());
    const previous = device.tokens[role];
    if (previous?.revokedAtMs !== undefined) return err(denied("device token revoked"));
    const allowed = roleScopes(role, device.approvedScopes);
    const granted = normalizeScopes(scopes.filter((s) => satisfies(allowed, s)));
    const { token, record } = mint(previous, role, granted, opts.nowMs, opts.random);
    await tx.putPairedDevice(withToken(device, role, record));
    return ok({ token, role, scopes: record.scopes, issuedAtMs: record.rotatedAtMs ?? record.createdAtMs });
  });
}

/**
 * `device.token.rotate` (spec §9.5): a new secret, optionally narrower scopes,
 * within both the approver's scopes and the device's baseline. The old token
 * stops working at once and the device's live sessions for the role are closed.
 */
export async function rotateDeviceToken(
  store: Store,
  params: { readonly deviceId: string; readonly role: Role; readonly scopes?: readonly Scope[] },
  approver: Approver,
  opts: { readonly nowMs: number; readonly random: Random },
): Promise<Result<{ deviceId: string; role: Role; token: string; scopes: readonly Scope[]; rotatedAtMs: number }>> {
  return store.transact(async (tx) => {
    const device = await tx.getPairedDevice(params.deviceId);
    const rotationDenied = denied("device token rotation denied");
    if (!device || !device.roles.includes(params.role) || !approverMayActOn(approver, device.deviceId)) return err(rotationDenied);
    const previous = device.tokens[params.role];
    const scopes = normalizeScopes(params.scopes ?? previous?.scopes ?? roleScopes(params.role, device.approvedScopes));
    if (!scopesWithin(scopes, roleScopes(params.role, device.approvedScopes))) return err(rotationDenied);
    if (approver.kind === "session" && !scopesWithin(scopes, approver.scopes)) return err(rotationDenied);
    const { token, record } = mint(previous, params.role, scopes, opts.nowMs, opts.random);
    const rotated = { ...record, rotatedAtMs: opts.nowMs };
    await tx.putPairedDevice(withToken(device, params.role, rotated));
    await tx.appendChange({ kind: "device.token.changed", deviceId: device.deviceId, role: params.role, change: "rotated" }, opts.nowMs);
    return ok({ deviceId: device.deviceId, role: params.role, token, scopes: rotated.scopes, rotatedAtMs: opts.nowMs });
  });
}

/**
 * `device.token.revoke`: the role stops being effective for the device, so a
 * reconnect with that role needs a new approval (role-upgrade).
 */
export async function revokeDeviceToken(
  store: Store,
  params: { readonly deviceId: string; readonly role: Role },
  approver: Approver,
  nowMs: number,
): Promise<Result<{ deviceId: string; role: Role; revokedAtMs: number }>> {
  return store.transact(async (tx) => {
    const device = await tx.getPairedDevice(params.deviceId);
    if (!device || !device.roles.includes(params.role)) return err(unknownDeviceRole());
    if (!approverMayActOn(approver, device.deviceId)) return err(denied("device token revocation denied"));
    const previous = device.tokens[params.role];
    const record: DeviceTokenRecord = previous
      ? { ...previous, revokedAtMs: nowMs }
      : // Approved but never handed out: record the revocation all the same.
        { role: params.role, tokenHash: "", scopes: [], createdAtMs: nowMs, revokedAtMs: nowMs };
    await tx.putPairedDevice(withToken(device, params.role, record));
    await tx.appendChange({ kind: "device.token.changed", deviceId: device.deviceId, role: params.role, change: "revoked" }, nowMs);
    return ok({ deviceId: device.deviceId, role: params.role, revokedAtMs: nowMs });
  });
}

/** `device.pair.remove`: the record, its tokens and its pending requests go; live sockets close. */
export async function removeDevice(
  store: Store,
  deviceId: string,
  approver: Approver,
  nowMs: number,
): Promise<Result<{ deviceId: string }>> {
  return store.transact(async (tx) => {
    const device = await tx.getPairedDevice(deviceId);
    if (!device) return err(unknownDevice());
    if (!approverMayActOn(approver, deviceId)) return err(denied("device pairing removal denied"));
    await tx.deletePairedDevice(deviceId);
    await tx.deletePendingForDevice(deviceId);
    await tx.appendChange({ kind: "device.removed", deviceId }, nowMs);
    return ok({ deviceId });
  });
}
