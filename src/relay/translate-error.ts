import type { WireError } from "../protocol/gateway-error.js";
import type { UpstreamError } from "./upstream-link.js";

// An upstream error as the client's protocol spells it. Protocol 4 added the
// error code FORBIDDEN (a caller lacking permission) where protocol 3 says
// INVALID_REQUEST; details (details.code: MISSING_SCOPE, …) are the same in
// both and pass unchanged, as do the message and retry hints.

const PROTOCOL_3_CODES = new Set(["NOT_LINKED", "NOT_PAIRED", "AGENT_TIMEOUT", "INVALID_REQUEST", "APPROVAL_NOT_FOUND", "UNAVAILABLE"]);
const PERMISSION_DETAILS = new Set(["MISSING_SCOPE", "UNAUTHORIZED_ROLE", "FORBIDDEN"]);

export function errorForClient(error: UpstreamError, clientProtocol: number): WireError {
  const detail = typeof error.details?.code === "string" ? error.details.code : undefined;
  let code = typeof error.code === "string" ? error.code : "UNAVAILABLE";
  if (clientProtocol < 4 && !PROTOCOL_3_CODES.has(code)) code = "INVALID_REQUEST";
  if (clientProtocol >= 4 && code === "INVALID_REQUEST" && detail !== undefined && PERMISSION_DETAILS.has(detail)) code = "FORBIDDEN";
  return {
    code: code as WireError["code"],
    message: typeof error.message === "string" ? error.message : "upstream error",
    ...(error.details ? { details: error.details as WireError["details"] } : {}),
    ...(typeof error.retryable === "boolean" ? { retryable: error.retryable } : {}),
    ...(typeof error.retryAfterMs === "number" ? { retryAfterMs: error.retryAfterMs } : {}),
  };
}
