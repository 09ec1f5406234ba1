import type { AuthPolicy } from "../policy.js";
import { nonBlank, type PresentedSecrets } from "../presented.js";
import { digestsEqual, secretDigest } from "../secret-digest.js";
import { NOT_MINE, rejected, verified, type CredentialResult } from "../verified-credential.js";

/** The gateway's shared operator token or password (spec §6.2 steps 5–6). */
export function verifySharedSecret(auth: AuthPolicy, presented: PresentedSecrets): CredentialResult {
  if (auth.mode === "token") {
    const token = nonBlank(presented.token);
    if (token === undefined) return rejected("token_missing");
    return digestsEqual(secretDigest(token), auth.tokenDigest) ? verified({ kind: "shared-secret", method: "token" }) : rejected("token_mismatch");
  }
  if (auth.mode === "password") {
    const password = nonBlank(presented.password);
    if (password === undefined) return rejected("password_missing");
    return digestsEqual(secretDigest(password), auth.passwordDigest)
      ? verified({ kind: "shared-secret", method: "password" })
      : rejected("password_mismatch");
  }
  return NOT_MINE;
}
