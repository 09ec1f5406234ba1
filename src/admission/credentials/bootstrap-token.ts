import type { VerifiedDevice } from "../../identity/verify-device-proof.js";
import type { Role } from "../../protocol/enums.js";
import type { BootstrapRecord } from "../../store/records.js";
import { nonBlank, type PresentedSecrets } from "../presented.js";
import { matchesStoredDigest } from "../secret-digest.js";
import { NOT_MINE, rejected, verified, type CredentialResult } from "../verified-credential.js";

/**
 * A one-time, expiring bootstrap token (spec §6.4). Needs a device proof; the
 * store consumes it atomically when the admission is carried out.
 */
export function verifyBootstrapToken(
  presented: PresentedSecrets,
  device: VerifiedDevice | undefined,
  record: BootstrapRecord | undefined,
  role: Role,
  nowMs: number,
): CredentialResult {
  const candidate = nonBlank(presented.bootstrapToken);
  if (candidate === undefined || !device) return NOT_MINE;
  if (
    !record ||
    record.consumedAtMs !== undefined ||
    nowMs >= record.expiresAtMs ||
    !record.roles.includes(role) ||
    !matchesStoredDigest(candidate, record.tokenHash)
  ) {
    return rejected("bootstrap_token_invalid");
  }
  return verified({ kind: "bootstrap-token", id: record.id, tokenHash: record.tokenHash, roles: record.roles, scopes: record.scopes });
}
