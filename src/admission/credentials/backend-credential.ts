import type { BackendRecord } from "../../store/records.js";
import { nonBlank, type PresentedSecrets } from "../presented.js";
import { matchesStoredDigest } from "../secret-digest.js";
import { NOT_MINE, rejected, verified, type CredentialResult } from "../verified-credential.js";

/** Backend secrets carry this prefix, so they can never be mistaken for the shared token. */
export const BACKEND_SECRET_PREFIX = "gwb_";

export function isBackendSecret(token: string | undefined): token is string {
  return token !== undefined && token.startsWith(BACKEND_SECRET_PREFIX);
}

/**
 * A backend credential an operator registered (`gatewarden backends add`),
 * presented in `auth.token`. `record` is the store's match for its digest.
 */
export function verifyBackendCredential(presented: PresentedSecrets, record: BackendRecord | undefined): CredentialResult {
  const token = nonBlank(presented.token);
  if (!isBackendSecret(token)) return NOT_MINE;
  if (!record || record.revokedAtMs !== undefined || !matchesStoredDigest(token, record.secretHash)) {
    return rejected("backend_credential_invalid");
  }
  return verified({ kind: "backend", id: record.id, name: record.name, scopes: record.scopes });
}
