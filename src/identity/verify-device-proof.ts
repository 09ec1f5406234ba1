import { verify as edVerify } from "node:crypto";
import { handshakeRejection, type GatewayError } from "../protocol/gateway-error.js";
import type { DetailCode } from "../protocol/error-codes.js";
import { decodeBase64Loose, parsePublicKey, type ParsedPublicKey } from "./device-key.js";
import { buildV2Payload, buildV3Payload, type SignedFields } from "./signature-payload.js";

export const DEVICE_SIGNATURE_SKEW_MS = 120_000;

declare const verifiedDeviceBrand: unique symbol;

/**
 * A device whose key signed this socket's challenge. Only
 * `verifyDeviceProof` can produce one: the brand makes it evidence.
 */
export type VerifiedDevice = {
  readonly deviceId: string;
  readonly publicKey: string;
  readonly signatureVersion: "v2" | "v3";
  readonly [verifiedDeviceBrand]: true;
};

export interface DeviceProofClaim {
  readonly id: string;
  readonly publicKey: string;
  readonly signature: string;
  readonly signedAt: number;
  readonly nonce: string;
}

export type DeviceProofResult = { ok: true; device: VerifiedDevice } | { ok: false; error: GatewayError };

function fail(detailCode: DetailCode, message: string, reason: string): DeviceProofResult {
  return { ok: false, error: handshakeRejection("INVALID_REQUEST", detailCode, message, { reason }) };
}

export interface DeviceProofInput {
  readonly device: DeviceProofClaim;
  /** Everything else the client signed, taken from the connect params as sent. */
  readonly signed: Omit<SignedFields, "deviceId" | "signedAtMs" | "nonce">;
  /** The nonce this server sent on this socket. */
  readonly challengeNonce: string;
  readonly nowMs: number;
  readonly skewMs?: number;
  /** Optional parsed-key cache (the server shares one across sockets). */
  readonly parseKey?: (text: string) => ParsedPublicKey | undefined;
}

/**
 * Verify a device's proof of possession (spec §3 step 9), in upstream's order so
 * clients see the same codes: key, id, skew, nonce present, nonce matches, signature.
 */
export function verifyDeviceProof(input: DeviceProofInput): DeviceProofResult {
  const { device } = input;
  const key = (input.parseKey ?? parsePublicKey)(device.publicKey);
  if (!key) return fail("DEVICE_AUTH_PUBLIC_KEY_INVALID", "device public key invalid", "device-public-key");
  if (key.deviceId !== device.id) {
    return fail("DEVICE_AUTH_DEVICE_ID_MISMATCH", "device identity mismatch", "device-id-mismatch");
  }
  const skew = input.skewMs ?? DEVICE_SIGNATURE_SKEW_MS;
  // Written as !(… <= …) so a NaN (non-finite signedAt or clock) fails closed.
  if (!(Math.abs(input.nowMs - device.signedAt) <= skew)) {
    return fail("DEVICE_AUTH_SIGNATURE_EXPIRED", "device signature expired", "device-signature-stale");
  }
  const nonce = device.nonce.trim();
  if (nonce.length === 0) return fail("DEVICE_AUTH_NONCE_REQUIRED", "device nonce required", "device-nonce-missing");
  if (nonce !== input.challengeNonce) {
    return fail("DEVICE_AUTH_NONCE_MISMATCH", "device nonce mismatch", "device-nonce-mismatch");
  }
  const signature = decodeBase64Loose(device.signature);
  if (!signature || signature.length !== 64) {
    return fail("DEVICE_AUTH_SIGNATURE_INVALID", "device signature invalid", "device-signature");
  }
  // The payload carries the nonce the client sent (equal to ours after trim).
  const { signed } = input;
  const fields: SignedFields = {
    deviceId: device.id,
    clientId: signed.clientId,
    clientMode: signed.clientMode,
    role: signed.role,
    scopes: signed.scopes,
    signedAtMs: device.signedAt,
    token: signed.token,
    nonce: device.nonce,
    platform: signed.platform,
    deviceFamily: signed.deviceFamily,
  };
  const version = edVerify(null, Buffer.from(buildV3Payload(fields), "utf8"), key.keyObject, signature)
    ? "v3"
    : edVerify(null, Buffer.from(buildV2Payload(fields), "utf8"), key.keyObject, signature)
      ? "v2"
      : undefined;
  if (!version) return fail("DEVICE_AUTH_SIGNATURE_INVALID", "device signature invalid", "device-signature");
  const verified = { deviceId: key.deviceId, publicKey: key.canonical, signatureVersion: version };
  return { ok: true, device: verified as VerifiedDevice };
}
