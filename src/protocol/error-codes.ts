// Wire error codes (spec §2, §11). `ErrorCode` is `error.code`; `DetailCode` is
// `error.details.code`, the stable value clients branch on.

export const ERROR_CODES = [
  "NOT_LINKED",
  "NOT_PAIRED",
  "AGENT_TIMEOUT",
  "INVALID_REQUEST",
  "APPROVAL_NOT_FOUND",
  "UNAVAILABLE",
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export const DETAIL_CODES = [
  "AUTH_REQUIRED",
  "AUTH_UNAUTHORIZED",
  "AUTH_TOKEN_MISSING",
  "AUTH_TOKEN_MISMATCH",
  "AUTH_TOKEN_NOT_CONFIGURED",
  "AUTH_PASSWORD_MISSING",
  "AUTH_PASSWORD_MISMATCH",
  "AUTH_PASSWORD_NOT_CONFIGURED",
  "AUTH_BOOTSTRAP_TOKEN_INVALID",
  "AUTH_DEVICE_TOKEN_MISMATCH",
  "AUTH_BACKEND_CREDENTIAL_INVALID",
  "AUTH_RATE_LIMITED",
  "CONTROL_UI_ORIGIN_NOT_ALLOWED",
  "CONTROL_UI_DEVICE_IDENTITY_REQUIRED",
  "DEVICE_IDENTITY_REQUIRED",
  "DEVICE_AUTH_INVALID",
  "DEVICE_AUTH_DEVICE_ID_MISMATCH",
  "DEVICE_AUTH_SIGNATURE_EXPIRED",
  "DEVICE_AUTH_NONCE_REQUIRED",
  "DEVICE_AUTH_NONCE_MISMATCH",
  "DEVICE_AUTH_SIGNATURE_INVALID",
  "DEVICE_AUTH_PUBLIC_KEY_INVALID",
  "PAIRING_REQUIRED",
  "PAIRING_CAPACITY",
  "PROTOCOL_MISMATCH",
  "INVALID_ROLE",
  "INVALID_SCOPE",
  "INVALID_FRAME",
  "INVALID_PARAMS",
  "HANDSHAKE_REQUIRED",
  "ALREADY_CONNECTED",
  "UNKNOWN_METHOD",
  "MISSING_SCOPE",
  "UNAUTHORIZED_ROLE",
  "TOO_MANY_PENDING_REQUESTS",
  "NOT_FOUND",
  // a pairing request the actor may act on, past its expiry (gatewarden's own: upstream says "unknown requestId")
  "REQUEST_EXPIRED",
  "FORBIDDEN",
  "INTERNAL",
  // upstream mode: the OpenClaw gateway behind gatewarden did not give this session an upstream session
  "UPSTREAM_UNAVAILABLE",
  // the store could not be written in bounded time (locked by another process); retryable
  "STORE_UNAVAILABLE",
] as const;
export type DetailCode = (typeof DETAIL_CODES)[number];

/** Pairing reasons (spec §11.4). */
export const PAIRING_REASONS = ["not-paired", "role-upgrade", "scope-upgrade", "metadata-upgrade"] as const;
export type PairingReason = (typeof PAIRING_REASONS)[number];
