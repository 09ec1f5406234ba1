export { DEFAULT_PAIRING_LIMITS, type PairingLimits } from "./limits.js";
export type { Approver } from "./approver.js";
export { requestPairing } from "./request-pairing.js";
export { approvePairing, rejectPairing, approveSilently, mergeApproval } from "./approve.js";
export { issueDeviceToken, rotateDeviceToken, revokeDeviceToken, removeDevice, type IssuedToken } from "./device-tokens.js";
export { addBackend, revokeBackend } from "./backends.js";
export { createBootstrapToken, setupCode, DEFAULT_BOOTSTRAP_TTL_MS } from "./bootstrap-tokens.js";
export { ensureSharedToken, rotateSharedToken } from "./shared-token.js";
