import { GatewayError } from "../protocol/gateway-error.js";
import { CloseCode } from "../protocol/close-codes.js";
import { StoreUnavailableError } from "../store/errors.js";

/**
 * What a client is told when the store failed under its request: a store
 * that could not be written in bounded time is a retryable UNAVAILABLE with
 * the time to come back, not an internal error; anything else stays INTERNAL.
 */
export function storeFailureError(e: unknown, closeSocket: boolean): GatewayError {
  if (e instanceof StoreUnavailableError) {
    return new GatewayError({
      code: "UNAVAILABLE",
      detailCode: "STORE_UNAVAILABLE",
      message: "gateway state temporarily unavailable; retry",
      retryable: true,
      retryAfterMs: e.retryAfterMs,
      ...(closeSocket ? { close: { code: CloseCode.tryAgainLater } } : {}),
    });
  }
  return new GatewayError({ code: "UNAVAILABLE", detailCode: "INTERNAL", message: "internal error", ...(closeSocket ? { close: { code: CloseCode.internalError } } : {}) });
}
