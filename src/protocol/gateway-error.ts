import type { DetailCode, ErrorCode } from "./error-codes.js";
import { CloseCode, type CloseCodeValue, truncateCloseReason } from "./close-codes.js";

/** JSON-safe detail values; never a secret (see logging redaction). */
export type DetailValue = string | number | boolean | null | readonly string[] | { readonly [k: string]: DetailValue };
export type Details = { readonly [k: string]: DetailValue };

export interface GatewayErrorInit {
  readonly code: ErrorCode;
  readonly detailCode: DetailCode;
  readonly message: string;
  /** Extra `details` fields besides `code` (which is always `detailCode`). */
  readonly details?: Details;
  /** When set, the socket is closed after the error is sent (handshake errors). */
  readonly close?: { readonly code: CloseCodeValue; readonly reason?: string };
  readonly retryable?: boolean;
  readonly retryAfterMs?: number;
}

/**
 * The one error value of the gateway. Code paths branch on `detailCode`, never
 * on message text; `toWireError` is the only mapping to the protocol's shape.
 */
export class GatewayError extends Error {
  readonly code: ErrorCode;
  readonly detailCode: DetailCode;
  readonly details: Details | undefined;
  readonly close: { readonly code: CloseCodeValue; readonly reason: string } | undefined;
  readonly retryable: boolean | undefined;
  readonly retryAfterMs: number | undefined;

  constructor(init: GatewayErrorInit) {
    super(init.message);
    this.name = "GatewayError";
    this.code = init.code;
    this.detailCode = init.detailCode;
    this.details = init.details;
    this.close = init.close
      ? { code: init.close.code, reason: truncateCloseReason(init.close.reason ?? init.message) }
      : undefined;
    this.retryable = init.retryable;
    this.retryAfterMs = init.retryAfterMs;
  }
}

export interface WireError {
  code: ErrorCode;
  message: string;
  details?: { code: DetailCode } & Details;
  retryable?: boolean;
  retryAfterMs?: number;
}

export function toWireError(err: GatewayError): WireError {
  const wire: WireError = { code: err.code, message: err.message, details: { ...err.details, code: err.detailCode } };
  if (err.retryable !== undefined) wire.retryable = err.retryable;
  if (err.retryAfterMs !== undefined) wire.retryAfterMs = Math.max(0, Math.ceil(err.retryAfterMs));
  return wire;
}

/** Shorthands for the common shapes. */
export function invalidRequest(detailCode: DetailCode, message: string, details?: Details): GatewayError {
  return new GatewayError({ code: "INVALID_REQUEST", detailCode, message, ...(details ? { details } : {}) });
}

export function handshakeRejection(
  code: ErrorCode,
  detailCode: DetailCode,
  message: string,
  details?: Details,
  closeCode: CloseCodeValue = CloseCode.policyViolation,
  closeReason?: string,
): GatewayError {
  return new GatewayError({
    code,
    detailCode,
    message,
    ...(details ? { details } : {}),
    close: { code: closeCode, ...(closeReason !== undefined ? { reason: closeReason } : {}) },
  });
}
