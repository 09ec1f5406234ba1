import { createHash } from "node:crypto";

// A short code shown on both sides of a pairing (the device, in its
// PAIRING_REQUIRED details; the approver, in `devices list`,
// `device.pair.list`), so that a person approving a request can check with
// the device's owner that it is the request their device made, not one an
// attacker sent at the same moment.
//
// The code is SHA-256 over a domain tag, the request id and the device's
// public key, read as a number modulo 10^6. The request id is a random UUID
// the server picks after the device's key is fixed, so nobody can search for
// a key or request whose code collides with another's in advance: each try
// is a new pending request, which the per-IP and total pending caps and the
// connection limits bound, for a one-in-a-million chance each.

export const VERIFICATION_CODE_DIGITS = 6;
const MODULUS = 10 ** VERIFICATION_CODE_DIGITS;
const DOMAIN = "gatewarden pairing verification code v1";
const CODE_SHAPE = new RegExp(`^[0-9]{${VERIFICATION_CODE_DIGITS}}$`);

export function verificationCode(request: { readonly requestId: string; readonly publicKey: string }): string {
  const digest = createHash("sha256").update(`${DOMAIN}\0${request.requestId}\0${request.publicKey}`, "utf8").digest();
  // 48 bits modulo 10^6: the bias is below 4e-9.
  return String(digest.readUIntBE(0, 6) % MODULUS).padStart(VERIFICATION_CODE_DIGITS, "0");
}

/** Whether `text` has the shape of a code (six digits), for one-line input errors before any lookup. */
export function isVerificationCode(text: string): boolean {
  return CODE_SHAPE.test(text);
}
