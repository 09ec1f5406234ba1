import { secretDigestHex } from "../admission/secret-digest.js";
import { newSecret, type Random } from "../clock.js";
import { SETTING_SHARED_TOKEN_HASH, type Store } from "../store/store.js";

// The gateway's shared operator token. Generated on first start, shown once,
// stored only as a digest; rotating it closes every session it admitted.

const SHARED_TOKEN_PREFIX = "gwt_";

/** The stored digest, creating a token first if there is none (its clear text is returned once). */
export async function ensureSharedToken(
  store: Store,
  opts: { readonly nowMs: number; readonly random: Random },
): Promise<{ digestHex: string; generated: string | undefined }> {
  return store.transact(async (tx) => {
    const existing = await tx.getSetting(SETTING_SHARED_TOKEN_HASH);
    if (existing) return { digestHex: existing, generated: undefined };
    const token = newSecret(opts.random, SHARED_TOKEN_PREFIX);
    const digestHex = secretDigestHex(token);
    await tx.setSetting(SETTING_SHARED_TOKEN_HASH, digestHex);
    return { digestHex, generated: token };
  });
}

export async function rotateSharedToken(store: Store, opts: { readonly nowMs: number; readonly random: Random }): Promise<string> {
  const token = newSecret(opts.random, SHARED_TOKEN_PREFIX);
  await store.transact(async (tx) => {
    await tx.setSetting(SETTING_SHARED_TOKEN_HASH, secretDigestHex(token));
    await tx.appendChange({ kind: "shared-secret.rotated" }, opts.nowMs);
  });
  return token;
}
