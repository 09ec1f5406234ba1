// Signed payloads (spec §5.2): fields joined with "|", no escaping.

export interface SignedFields {
  readonly deviceId: string;
  readonly clientId: string;
  readonly clientMode: string;
  readonly role: string;
  /** In the order sent; no sort, no dedupe. */
  readonly scopes: readonly string[];
  readonly signedAtMs: number;
  /** `auth.token ?? auth.deviceToken ?? auth.bootstrapToken ?? ""`. */
  readonly token: string;
  readonly nonce: string;
  readonly platform: string;
  readonly deviceFamily: string | undefined;
}

const ASCII_UPPER = /[A-Z]/;
const ASCII_UPPER_ALL = /[A-Z]/g;

/** Trim, then lowercase ASCII A–Z only (upstream's metadata normalization). */
export function normalizeMetadata(value: string | undefined): string {
  if (value === undefined) return "";
  const trimmed = value.trim();
  // Most values ("linux", "darwin") are already lowercase: no replace, no callback.
  return ASCII_UPPER.test(trimmed) ? trimmed.replace(ASCII_UPPER_ALL, (c) => c.toLowerCase()) : trimmed;
}

export function buildV2Payload(f: SignedFields): string {
  return ["v2", f.deviceId, f.clientId, f.clientMode, f.role, f.scopes.join(","), String(f.signedAtMs), f.token, f.nonce].join("|");
}

export function buildV3Payload(f: SignedFields): string {
  return [
    "v3",
    f.deviceId,
    f.clientId,
    f.clientMode,
    f.role,
    f.scopes.join(","),
    String(f.signedAtMs),
    f.token,
    f.nonce,
    normalizeMetadata(f.platform),
    normalizeMetadata(f.deviceFamily),
  ].join("|");
}

/** The token field of the signed payload, exactly as upstream resolves it (`??`). */
export function signatureToken(auth: { token?: string; deviceToken?: string; bootstrapToken?: string } | undefined): string {
  return auth?.token ?? auth?.deviceToken ?? auth?.bootstrapToken ?? "";
}
