import { GatewayError, invalidRequest } from "../protocol/gateway-error.js";

// Method-level errors of the pairing state machine (spec §9.5 messages).

export const unknownRequest = (): GatewayError =>
  invalidRequest("NOT_FOUND", "unknown requestId (never made, already approved or rejected, or expired and cleared; `devices list` shows what is pending)");
export const requestExpired = (expiresAtMs: number): GatewayError =>
  invalidRequest("REQUEST_EXPIRED", `the request expired at ${new Date(expiresAtMs).toISOString()}; the device asks again when it next connects`);
export const unknownDevice = (): GatewayError => invalidRequest("NOT_FOUND", "unknown deviceId");
export const unknownDeviceRole = (why?: string): GatewayError => invalidRequest("NOT_FOUND", why === undefined ? "unknown deviceId/role" : `unknown deviceId/role: ${why}`);
export const denied = (what: string): GatewayError => invalidRequest("FORBIDDEN", what);
export const missingScope = (scope: string): GatewayError => invalidRequest("MISSING_SCOPE", `missing scope: ${scope}`, { scope });

export function pendingCapacity(which: "ip" | "total", retryAfterMs: number): GatewayError {
  return new GatewayError({
    code: "UNAVAILABLE",
    detailCode: "TOO_MANY_PENDING_REQUESTS",
    message:
      which === "ip"
        ? "too many pending pairing requests from this address (approve or reject some, or wait for them to expire)"
        : "too many pending pairing requests (approve or reject some, or wait for them to expire)",
    details: { limit: which },
    retryable: true,
    retryAfterMs,
    close: { code: 1013 },
  });
}
