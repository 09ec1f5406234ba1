import type { GatewayError } from "./protocol/gateway-error.js";

/** Operations that can fail return their error as a value, with a stable code. */
export type Result<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: GatewayError };

export function ok<T>(value: T): Result<T> {
  return { ok: true, value };
}

export function err<T = never>(error: GatewayError): Result<T> {
  return { ok: false, error };
}
