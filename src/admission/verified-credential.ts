import type { Role, Scope } from "../protocol/enums.js";

declare const credentialBrand: unique symbol;

export type CredentialData =
  | { readonly kind: "shared-secret"; readonly method: "token" | "password" }
  | { readonly kind: "device-token"; readonly deviceId: string; readonly role: Role; readonly scopes: readonly Scope[] }
  | { readonly kind: "bootstrap-token"; readonly id: string; readonly tokenHash: string; readonly roles: readonly Role[]; readonly scopes: readonly Scope[] }
  | { readonly kind: "backend"; readonly id: string; readonly name: string; readonly scopes: readonly Scope[] }
  | { readonly kind: "trusted-proxy"; readonly user: string }
  | { readonly kind: "open" };

/**
 * A credential the server verified. Only the modules in `credentials/` build
 * these (via `verified`); the decision grants from nothing else.
 */
export type VerifiedCredential = CredentialData & { readonly [credentialBrand]: true };

export type CredentialKind = VerifiedCredential["kind"];

/** Reasons a presented credential failed; they map to `details.code` in auth-errors. */
export type AuthFailureReason =
  | "token_missing"
  | "token_mismatch"
  | "password_missing"
  | "password_mismatch"
  | "device_token_mismatch"
  | "bootstrap_token_invalid"
  | "backend_credential_invalid"
  | "trusted_proxy_untrusted_source"
  | "trusted_proxy_loopback_source"
  | "trusted_proxy_missing_header"
  | "trusted_proxy_user_missing"
  | "trusted_proxy_user_not_allowed"
  | "rate_limited"
  | "unauthorized";

export type CredentialResult =
  | { readonly status: "verified"; readonly credential: VerifiedCredential }
  | { readonly status: "not-mine" }
  | { readonly status: "rejected"; readonly reason: AuthFailureReason };

/** For the credential modules only. */
export function verified(credential: CredentialData): CredentialResult {
  return { status: "verified", credential: credential as VerifiedCredential };
}

export const NOT_MINE: CredentialResult = { status: "not-mine" };

export function rejected(reason: AuthFailureReason): CredentialResult {
  return { status: "rejected", reason };
}
