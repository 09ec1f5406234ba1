export { DEFAULT_PAIRING_LIMITS, type PairingLimits } from "./limits.js";
export { OWNER, type Actor } from "./actor.js";
export { requestPairing } from "./request-pairing.js";
export { approvePairing, rejectPairing } from "./approve.js";
export { rotateDeviceToken, revokeDeviceToken, removeDevice } from "./device-tokens.js";
export type { IssuedToken } from "./effects.js";
export { addBackend, revokeBackend } from "./backends.js";
export { createBootstrapToken, setupCode, DEFAULT_BOOTSTRAP_TTL_MS } from "./bootstrap-tokens.js";
export { ensureSharedToken, rotateSharedToken } from "./shared-token.js";
