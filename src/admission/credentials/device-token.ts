import type { VerifiedDevice } from "../../identity/verify-device-proof.js";
import type { Role } from "../../protocol/enums.js";
import type { PairedDeviceRecord } from "../../store/records.js";
import { nonBlank, type PresentedSecrets } from "../presented.js";
import { matchesStoredDigest } from "../secret-digest.js";
import { NOT_MINE, rejected, verified, type CredentialResult } from "../verified-credential.js";

/**
 * A device token (spec §6.3): valid only together with a proof by the key it
 * was issued to, for the role it was issued for, while not revoked.
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
  const token = record.tokens[role];
  if (!token || token.revokedAtMs !== undefined || !record.roles.includes(role)) return miss;
  if (!matchesStoredDigest(candidate, token.tokenHash)) return miss;
  return verified({ kind: "device-token", deviceId: device.deviceId, role, scopes: token.scopes });
}
