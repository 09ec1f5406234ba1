import type { ClientId, ClientMode } from "../protocol/enums.js";
import type { DetailCode, PairingReason } from "../protocol/error-codes.js";
import { GatewayError, handshakeRejection } from "../protocol/gateway-error.js";
import { CloseCode } from "../protocol/close-codes.js";
import type { Role, Scope } from "../protocol/enums.js";
import type { AuthFailureReason } from "./verified-credential.js";

// Handshake rejections with upstream's wire shape (spec §11.2–11.4), so the
// published clients react as they do against the reference gateway.

type ClientKind = "cli" | "ui" | "other";

function clientKind(id: ClientId, mode: ClientMode): ClientKind {
  if (mode === "cli" || id === "cli") return "cli";
  if (id === "openclaw-control-ui" || id === "webchat-ui" || mode === "webchat") return "ui";
  return "other";
}

function hint(kind: ClientKind, secret: "token" | "password"): string {
  if (kind === "cli") return `set gateway.remote.${secret} to match gateway.auth.${secret}`;
  if (kind === "ui") {
    return secret === "token" ? "open the dashboard URL and paste the token in Control UI settings" : "enter the password in Control UI settings";
  }
  return `provide gateway auth ${secret}`;
}

const TABLE: Record<AuthFailureReason, { code: DetailCode; message: (k: ClientKind) => string; next: string }> = {
  token_missing: { code: "AUTH_TOKEN_MISSING", message: (k) => `unauthorized: gateway token missing (${hint(k, "token")})`, next: "update_auth_configuration" },
  token_mismatch: { code: "AUTH_TOKEN_MISMATCH", message: (k) => `unauthorized: gateway token mismatch (${hint(k, "token")})`, next: "update_auth_credentials" },
  password_missing: {
    code: "AUTH_PASSWORD_MISSING",
    message: (k) => `unauthorized: gateway password missing (${hint(k, "password")})`,
    next: "update_auth_configuration",
  },
  password_mismatch: {
    code: "AUTH_PASSWORD_MISMATCH",
    message: (k) => `unauthorized: gateway password mismatch (${hint(k, "password")})`,
    next: "update_auth_credentials",
  },
  device_token_mismatch: {
    code: "AUTH_DEVICE_TOKEN_MISMATCH",
    message: () => "unauthorized: device token mismatch (rotate/reissue device token)",
    next: "update_auth_credentials",
  },
  bootstrap_token_invalid: {
    code: "AUTH_BOOTSTRAP_TOKEN_INVALID",
    message: () => "unauthorized: bootstrap token invalid or expired (scan a fresh setup code)",
    next: "review_auth_configuration",
  },
  backend_credential_invalid: {
    code: "AUTH_BACKEND_CREDENTIAL_INVALID",
    message: () => "unauthorized: backend credential invalid or revoked (register one with gatewarden backends add)",
    next: "update_auth_credentials",
  },
  rate_limited: {
    code: "AUTH_RATE_LIMITED",
    message: () => "unauthorized: too many failed authentication attempts (retry later)",
    next: "wait_then_retry",
  },
  trusted_proxy_untrusted_source: { code: "AUTH_UNAUTHORIZED", message: () => "unauthorized", next: "review_auth_configuration" },
  trusted_proxy_loopback_source: { code: "AUTH_UNAUTHORIZED", message: () => "unauthorized", next: "review_auth_configuration" },
  trusted_proxy_missing_header: { code: "AUTH_UNAUTHORIZED", message: () => "unauthorized", next: "review_auth_configuration" },
  trusted_proxy_user_missing: { code: "AUTH_UNAUTHORIZED", message: () => "unauthorized", next: "review_auth_configuration" },
  trusted_proxy_user_not_allowed: { code: "AUTH_UNAUTHORIZED", message: () => "unauthorized", next: "review_auth_configuration" },
  unauthorized: { code: "AUTH_UNAUTHORIZED", message: () => "unauthorized", next: "review_auth_configuration" },
};

export interface UnauthorizedContext {
  readonly clientId: ClientId;
  readonly clientMode: ClientMode;
  /** A device was sent, `auth.token` was sent, no `auth.deviceToken` (upstream's retry hint). */
  readonly canRetryWithDeviceToken: boolean;
  readonly retryAfterMs?: number;
}

export function unauthorizedError(reason: AuthFailureReason, ctx: UnauthorizedContext): GatewayError {
  const row = TABLE[reason];
  const message = row.message(clientKind(ctx.clientId, ctx.clientMode));
  const next = reason === "token_mismatch" && ctx.canRetryWithDeviceToken ? "retry_with_device_token" : row.next;
  return new GatewayError({
    code: "INVALID_REQUEST",
    detailCode: row.code,
    message,
    details: { authReason: reason, canRetryWithDeviceToken: ctx.canRetryWithDeviceToken, recommendedNextStep: next },
    close: { code: CloseCode.policyViolation },
    ...(reason === "rate_limited" ? { retryable: true, retryAfterMs: ctx.retryAfterMs ?? 0 } : {}),
  });
}

const PAIRING_TEXT: Record<PairingReason, { suffix: string; hint: string }> = {
  "not-paired": { suffix: "device is not approved yet", hint: "Approve this device from the pending pairing requests." },
  "role-upgrade": {
    suffix: "device is asking for a higher role than currently approved",
    hint: "Review the requested role upgrade, then approve the pending request.",
  },
  "scope-upgrade": {
    suffix: "device is asking for more scopes than currently approved",
    hint: "Review the requested scopes, then approve the pending upgrade.",
  },
  "metadata-upgrade": {
    suffix: "device identity changed and must be re-approved",
    hint: "Review the refreshed device details, then approve the pending request.",
  },
};

export interface PairingErrorInput {
  readonly reason: PairingReason;
  readonly requestId: string;
  readonly deviceId: string;
  readonly requestedRole: Role;
  readonly requestedScopes: readonly Scope[];
  readonly approved?: { readonly roles: readonly Role[]; readonly scopes: readonly Scope[] };
  /** The code the approver sees for this request (an extra field: older clients ignore it). */
  readonly verificationCode: string;
}

export function pairingRequiredError(input: PairingErrorInput): GatewayError {
  const text = PAIRING_TEXT[input.reason];
  const message = `pairing required: ${text.suffix}`;
  return handshakeRejection(
    "NOT_PAIRED",
    "PAIRING_REQUIRED",
    message,
    {
      reason: input.reason,
      requestId: input.requestId,
      remediationHint: text.hint,
      deviceId: input.deviceId,
      requestedRole: input.requestedRole,
      requestedScopes: [...input.requestedScopes],
      verificationCode: input.verificationCode,
      ...(input.approved ? { approvedRoles: [...input.approved.roles], approvedScopes: [...input.approved.scopes] } : {}),
    },
    CloseCode.policyViolation,
    `${message} (requestId: ${input.requestId})`,
  );
}
