import { secretDigestHex } from "../admission/secret-digest.js";
import { newSecret, type Random } from "../clock.js";
import { SETTING_SHARED_TOKEN_HASH, type Store, type StoreReader } from "../store/store.js";

// The gateway's shared operator token. Generated on first start, shown once,
// stored only as a digest; rotating it closes every session it admitted.

const SHARED_TOKEN_PREFIX = "gwt_";

/**
 * A new shared token for a store that has none: its clear text (shown once)
 * and digest. Nothing is stored yet: the gateway stores it with
 * `claimSharedToken` only once it listens, so a start that fails (a port in
 * use) never leaves behind a digest whose token nobody saw.
 */
export function newSharedToken(random: Random): { readonly token: string; readonly digestHex: string } {
  const token = newSecret(random, SHARED_TOKEN_PREFIX);
  return { token, digestHex: secretDigestHex(token) };
}

/** The stored token's digest, if there is one. */
export function storedSharedTokenDigest(store: StoreReader): Promise<string | undefined> {
  return store.getSetting(SETTING_SHARED_TOKEN_HASH);
}

/**
 * Store `digestHex` as the shared token unless one is stored already (another
 * instance on a shared store claimed first); the digest in force is returned.
 */
export async function claimSharedToken(store: Store, digestHex: string): Promise<string> {
  return store.transact(async (tx) => {
    const existing = await tx.getSetting(SETTING_SHARED_TOKEN_HASH);
    if (existing) return existing;
    await tx.setSetting(SETTING_SHARED_TOKEN_HASH, digestHex);
    return digestHex;
  });
}

/** The stored digest, creating a token first if there is none (its clear text is returned once). */
export async function ensureSharedToken(
  store: Store,
  opts: { readonly nowMs: number; readonly random: Random },
): Promise<{ digestHex: string; generated: string | undefined }> {
  const existing = await storedSharedTokenDigest(store);
  if (existing) return { digestHex: existing, generated: undefined };
  const fresh = newSharedToken(opts.random);
  const inForce = await claimSharedToken(store, fresh.digestHex);
  return inForce === fresh.digestHex ? { digestHex: inForce, generated: fresh.token } : { digestHex: inForce, generated: undefined };
}

export async function rotateSharedToken(store: Store, opts: { readonly nowMs: number; readonly random: Random }): Promise<string> {
  const token = newSecret(opts.random, SHARED_TOKEN_PREFIX);
  await store.transact(async (tx) => {
    await tx.setSetting(SETTING_SHARED_TOKEN_HASH, secretDigestHex(token));
    await tx.appendChange({ kind: "shared-secret.rotated" }, opts.nowMs);
  });
  return token;
}
