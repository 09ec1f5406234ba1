import { createHash, generateKeyPairSync, sign as edSign, type KeyObject } from "node:crypto";
import { verifyDeviceProof, type DeviceProofClaim, type VerifiedDevice } from "../../src/identity/verify-device-proof.js";

// Test devices: real Ed25519 keys, encoded and signed the way the official
// clients do it (spec §5). The payload builder here is written from the spec,
// independently of src/identity, so tests do not trust the code under test.

/** DER prefix of an Ed25519 SubjectPublicKeyInfo; the raw key is the 32 bytes after it. */
export const SPKI_ED25519_PREFIX = Buffer.from("302a300506032b6570032100", "hex");

export interface TestDevice {
  /** Lowercase hex SHA-256 of the raw public key (the wire `device.id`). */
  readonly id: string;
  /** Unpadded base64url of the raw 32-byte public key (the wire `device.publicKey`). */
  readonly publicKey: string;
  readonly publicKeyRaw: Buffer;
  /** SPKI PEM of the public key (also accepted on the wire). */
  readonly publicKeyPem: string;
  readonly privateKey: KeyObject;
  readonly publicKeyObject: KeyObject;
}

/** The raw 32 bytes of an Ed25519 public key (SPKI DER minus its 12-byte prefix). */
export function rawPublicKeyOf(publicKey: KeyObject): Buffer {
  const der = publicKey.export({ format: "der", type: "spki" });
  if (der.length !== 44 || !der.subarray(0, 12).equals(SPKI_ED25519_PREFIX)) {
    throw new Error("not an Ed25519 SPKI public key");
  }
  return Buffer.from(der.subarray(12));
}

/** Lowercase hex SHA-256 of the raw key bytes (spec §5.1). */
export function deviceIdOf(raw: Uint8Array): string {
  return createHash("sha256").update(raw).digest("hex");
}

/** A fresh Ed25519 device identity. */
export function createTestDevice(): TestDevice {
  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  const raw = rawPublicKeyOf(publicKey);
  return {
    id: deviceIdOf(raw),
    publicKey: raw.toString("base64url"),
    publicKeyRaw: raw,
    publicKeyPem: publicKey.export({ format: "pem", type: "spki" }).toString(),
    privateKey,
    publicKeyObject: publicKey,
  };
}

/** `n` fresh devices (property tests draw from a small pool instead of generating keys per run). */
export function createTestDevices(n: number): TestDevice[] {
  return Array.from({ length: n }, () => createTestDevice());
}

export type SignatureVersion = "v2" | "v3";

/** Everything a client signs in `connect` (spec §5.2), as it will send it. */
export interface SignConnectInput {
  readonly clientId: string;
  readonly clientMode: string;
  /** Defaults to `"operator"` (the server defaults a missing role the same way). */
  readonly role?: string;
  /** In the order sent; defaults to `[]`. */
  readonly scopes?: readonly string[];
  /** `auth.token ?? auth.deviceToken ?? auth.bootstrapToken ?? ""`; defaults to `""`. */
  readonly token?: string;
  readonly nonce: string;
  /** v3 only; normalized before signing. Defaults to `""`. */
  readonly platform?: string;
  /** v3 only; normalized before signing. */
  readonly deviceFamily?: string;
  readonly signedAt: number;
  /** Defaults to `"v3"`. */
  readonly version?: SignatureVersion;
  /** The device id written into the payload; defaults to the device's own id. */
  readonly deviceId?: string;
}

/** Spec §5.2 metadata normalization: trim, then lowercase ASCII A–Z only. */
export function normalizeSignedMetadata(value: string | undefined): string {
  return (value ?? "").trim().replace(/[A-Z]/g, (c) => c.toLowerCase());
}

/** The exact payload string the client signs (spec §5.2 table). */
export function connectPayload(deviceId: string, input: SignConnectInput): string {
  const common = [
    deviceId,
    input.clientId,
    input.clientMode,
    input.role ?? "operator",
    (input.scopes ?? []).join(","),
    String(input.signedAt),
    input.token ?? "",
    input.nonce,
  ];
  if ((input.version ?? "v3") === "v2") return ["v2", ...common].join("|");
  return ["v3", ...common, normalizeSignedMetadata(input.platform), normalizeSignedMetadata(input.deviceFamily)].join("|");
}

/** Ed25519 signature over the UTF-8 bytes of `text`, unpadded base64url. */
export function signText(device: TestDevice, text: string): string {
  return edSign(null, Buffer.from(text, "utf8"), device.privateKey).toString("base64url");
}

/** The `device.signature` a client sends for these connect params. */
export function signConnect(device: TestDevice, input: SignConnectInput): string {
  return signText(device, connectPayload(input.deviceId ?? device.id, input));
}

/** A complete, valid `connect.params.device` block for these connect params. */
export function deviceProof(device: TestDevice, input: SignConnectInput): DeviceProofClaim {
  return {
    id: device.id,
    publicKey: device.publicKey,
    signature: signConnect(device, input),
    signedAt: input.signedAt,
    nonce: input.nonce,
  };
}

/**
 * A `VerifiedDevice` for credential-module tests, obtained the only way the
 * code allows: by a proof that verifies. Throws if it does not.
 */
export function verifiedDeviceFor(device: TestDevice, nowMs = 1_737_264_000_000, nonce = "test-nonce"): VerifiedDevice {
  const signed = { clientId: "cli", clientMode: "cli", role: "operator", scopes: [] as string[], token: "", platform: "linux", deviceFamily: undefined };
  const result = verifyDeviceProof({
    device: deviceProof(device, { ...signed, nonce, signedAt: nowMs }),
    signed,
    challengeNonce: nonce,
    nowMs,
  });
  if (!result.ok) throw new Error(`test device did not verify: ${result.error.detailCode}`);
  return result.device;
}

/** Hex encodings of the Ed25519 small-order points (libsodium's blocklist, sign bit clear). */
export const SMALL_ORDER_POINTS_HEX: readonly string[] = [
  "0000000000000000000000000000000000000000000000000000000000000000", // y = 0 (order 4)
  "0100000000000000000000000000000000000000000000000000000000000000", // identity (order 1)
  "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05", // order 8
  "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a", // order 8
  "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // y = p - 1 (order 2)
  "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // y = p (non-canonical 0)
  "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // y = p + 1 (non-canonical 1)
];

/** A PEM SPKI wrapping arbitrary 32 "key" bytes (createPublicKey does not check the point). */
export function pemForRawKey(raw: Uint8Array): string {
  const der = Buffer.concat([SPKI_ED25519_PREFIX, Buffer.from(raw)]);
  const body = der.toString("base64").replace(/(.{64})/g, "$1\n").trimEnd();
  return `-----BEGIN PUBLIC KEY-----\n${body}\n-----END PUBLIC KEY-----\n`;
}
