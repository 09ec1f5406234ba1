import { hash, timingSafeEqual } from "node:crypto";

// Secrets are compared as SHA-256 digests with timingSafeEqual: equal lengths
// always, so neither length nor content leaks through timing.

export function secretDigest(secret: string): Buffer {
  // One-shot hash (node >= 20.12): no Hash object per digest, and one runs per handshake.
  return hash("sha256", secret, "buffer");
}

export function secretDigestHex(secret: string): string {
  return secretDigest(secret).toString("hex");
}

export function digestsEqual(a: Buffer, b: Buffer): boolean {
  if (a.length !== 32 || b.length !== 32) return false;
  return timingSafeEqual(a, b);
}

/** Compare a presented secret with a stored hex digest in constant time. */
export function matchesStoredDigest(presented: string, storedHex: string): boolean {
  const stored = Buffer.from(storedHex, "hex");
  return digestsEqual(secretDigest(presented), stored);
}
