import type { VerifiedDevice } from "../../identity/verify-device-proof.js";
import type { Role } from "../../protocol/enums.js";
import type { DeviceTokenRecord, PairedDeviceRecord } from "../../store/records.js";
import { nonBlank, type PresentedSecrets } from "../presented.js";
import { matchesStoredDigest } from "../secret-digest.js";
import { NOT_MINE, rejected, verified, type CredentialResult } from "../verified-credential.js";

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
  const miss = explicit !== undefined ? rejected("device_token_mismatch") : NOT_MINE;
  if (!record || record.deviceId !== device.deviceId || record.publicKey !== device.publicKey) return miss;
  // The requested role's token first; every live token is compared, so timing says nothing.
  const roles = [role, ...record.roles.filter((r) => r !== role)];
  let match: { role: Role; scopes: DeviceTokenRecord["scopes"] } | undefined;
  for (const r of roles) {
    const token = record.tokens[r];
    if (!token || token.revokedAtMs !== undefined || !record.roles.includes(r)) continue;
    if (matchesStoredDigest(candidate, token.tokenHash) && !match) match = { role: r, scopes: token.scopes };
  }
  if (!match) return miss;
  return verified({ kind: "device-token", deviceId: device.deviceId, role: match.role, scopes: match.scopes });
}
