export { parsePublicKey, deriveDeviceId, decodeBase64Loose, type ParsedPublicKey } from "./device-key.js";
export { buildV2Payload, buildV3Payload, normalizeMetadata, signatureToken, type SignedFields } from "./signature-payload.js";
export {
  verifyDeviceProof,
  DEVICE_SIGNATURE_SKEW_MS,
  type VerifiedDevice,
  type DeviceProofClaim,
  type DeviceProofInput,
  type DeviceProofResult,
} from "./verify-device-proof.js";
