import type { VerifiedDevice } from "../../identity/verify-device-proof.js";
import type { Role } from "../../protocol/enums.js";
import type { DeviceTokenRecord, PairedDeviceRecord } from "../../store/records.js";
import { nonBlank, type PresentedSecrets } from "../presented.js";
import { matchesStoredDigest } from "../secret-digest.js";
import { NOT_MINE, rejected, verified, type CredentialResult } from "../verified-credential.js";

/** The device's live token for `role` if `candidate` is it (its digest is compared whatever the outcome). */
function tokenMatch(candidate: string, record: PairedDeviceRecord, role: Role): { role: Role; scopes: DeviceTokenRecord["scopes"] } | undefined {
  const token = record.tokens[role];
  if (!token || token.revokedAtMs !== undefined || !record.roles.includes(role)) return undefined;
  return matchesStoredDigest(candidate, token.tokenHash) ? { role, scopes: token.scopes } : undefined;
}

/** An explicit device token that does not verify is a failed authentication; one from `auth.token` may be the shared token. */
function miss(explicit: string | undefined): CredentialResult {
  return explicit !== undefined ? rejected("device_token_mismatch") : NOT_MINE;
}

/**
 * A device token (spec §6.3): valid only together with a proof by the key it
 * was issued to, while not revoked. The verified credential names the role the
 * token was issued for; the decision admits only that role (a token of another
 * role of the same device can ask for a role upgrade, nothing more).
 * A candidate taken from `auth.token` may be the shared token instead, so a
 * mismatch there is "not mine" and the shared-secret module decides.
 */
export function verifyDeviceToken(
  presented: PresentedSecrets,
  device: VerifiedDevice | undefined,
  record: PairedDeviceRecord | undefined,
  role: Role,
): CredentialResult {
  const explicit = nonBlank(presented.deviceToken);
  const candidate = explicit ?? nonBlank(presented.token);
  if (!device || candidate === undefined) return NOT_MINE;
  if (!record || record.deviceId !== device.deviceId || record.publicKey !== device.publicKey) return miss(explicit);
  // The requested role's token first; every live token is compared, so timing says nothing.
  let match = tokenMatch(candidate, record, role);
  for (const r of record.roles) {
    if (r === role) continue;
    const other = tokenMatch(candidate, record, r);
    match ??= other;
  }
  if (!match) return miss(explicit);
  return verified({ kind: "device-token", deviceId: device.deviceId, role: match.role, scopes: match.scopes });
}
