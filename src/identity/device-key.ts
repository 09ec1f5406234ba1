import { createHash, createPublicKey, type KeyObject } from "node:crypto";

// Ed25519 device keys (spec §5.1): raw 32-byte keys as unpadded base64url;
// device id = lowercase hex SHA-256 of the raw key.

const SPKI_ED25519_PREFIX = Buffer.from("302a300506032b6570032100", "hex");
const B64URL = /^[A-Za-z0-9_-]+$/;
const B64STD = /^[A-Za-z0-9+/]+={0,2}$/;

export interface ParsedPublicKey {
  /** The raw 32 key bytes. */
  readonly raw: Buffer;
  /** Canonical wire form: unpadded base64url of `raw`. */
  readonly canonical: string;
  /** Lowercase hex SHA-256 of `raw`. */
  readonly deviceId: string;
  readonly keyObject: KeyObject;
}

/** Decode unpadded base64url, tolerating standard base64; `undefined` if neither. */
export function decodeBase64Loose(text: string): Buffer | undefined {
  const trimmed = text.trim();
  if (trimmed.length === 0) return undefined;
  if (B64URL.test(trimmed)) return Buffer.from(trimmed, "base64url");
  if (B64STD.test(trimmed)) return Buffer.from(trimmed, "base64");
  return undefined;
}

export function deriveDeviceId(raw: Uint8Array): string {
  return createHash("sha256").update(raw).digest("hex");
}

/** Encodings of small-order points (libsodium's list); the sign bit is ignored. */
const SMALL_ORDER: readonly Buffer[] = [
  "0000000000000000000000000000000000000000000000000000000000000000",
  "0100000000000000000000000000000000000000000000000000000000000000",
  "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
  "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
  "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
].map((h) => Buffer.from(h, "hex"));

export function isSmallOrderEncoding(raw: Uint8Array): boolean {
  return SMALL_ORDER.some((bad) => {
    let diff = 0;
    for (let i = 0; i < 31; i++) diff |= (raw[i] ?? 0) ^ (bad[i] ?? 0);
    diff |= ((raw[31] ?? 0) & 0x7f) ^ (bad[31] ?? 0);
    return diff === 0;
  });
}

/** y ≥ p = 2^255 − 19 is a non-canonical encoding. */
export function isNonCanonicalY(raw: Uint8Array): boolean {
  if (((raw[31] ?? 0) & 0x7f) !== 0x7f) return false;
  for (let i = 1; i < 31; i++) if (raw[i] !== 0xff) return false;
  return (raw[0] ?? 0) >= 0xed;
}

function rawFromPem(pem: string): Buffer | undefined {
  try {
    const key = createPublicKey(pem);
    if (key.asymmetricKeyType !== "ed25519") return undefined;
    const der = key.export({ format: "der", type: "spki" });
    if (der.length !== 44 || !der.subarray(0, 12).equals(SPKI_ED25519_PREFIX)) return undefined;
    return der.subarray(12);
  } catch {
    return undefined;
  }
}

/**
 * Parse a wire public key: unpadded base64url (standard base64 tolerated) of
 * 32 raw bytes, or an Ed25519 SPKI PEM. Rejects small-order and non-canonical
 * points, which would let one signature verify for many messages or keys.
 */
export function parsePublicKey(text: string): ParsedPublicKey | undefined {
  const raw = text.includes("BEGIN") ? rawFromPem(text) : decodeBase64Loose(text);
  if (!raw || raw.length !== 32) return undefined;
  if (isSmallOrderEncoding(raw) || isNonCanonicalY(raw)) return undefined;
  let keyObject: KeyObject;
  try {
    keyObject = createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, raw]), format: "der", type: "spki" });
  } catch {
    return undefined;
  }
  return { raw: Buffer.from(raw), canonical: raw.toString("base64url"), deviceId: deriveDeviceId(raw), keyObject };
}
