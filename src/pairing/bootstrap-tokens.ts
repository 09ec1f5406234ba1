import { secretDigestHex } from "../admission/secret-digest.js";
import { normalizeScopes, validateRequestedScopes } from "../admission/scopes.js";
import { newSecret, type Random } from "../clock.js";
import { isRole, type Role, type Scope } from "../protocol/enums.js";
import { invalidRequest } from "../protocol/gateway-error.js";
import { err, ok, type Result } from "../result.js";
import type { BootstrapRecord } from "../store/records.js";
import type { Store, StoreWriter } from "../store/store.js";

export const DEFAULT_BOOTSTRAP_TTL_MS = 10 * 60_000;
export const MAX_BOOTSTRAP_TTL_MS = 24 * 60 * 60_000;

/**
 * A one-time bootstrap token for pairing a new device without an operator at
 * the moment it connects (spec §6.4). It pairs one device, once, before it
 * expires, for at most the roles and scopes it was issued with.
 */
export async function createBootstrapToken(
  store: Store,
  params: { readonly roles: readonly string[]; readonly scopes: readonly string[]; readonly ttlMs?: number },
  opts: { readonly nowMs: number; readonly random: Random },
): Promise<Result<{ token: string; record: BootstrapRecord }>> {
  const roles = params.roles.filter(isRole);
  if (roles.length === 0 || roles.length !== params.roles.length) return err(invalidRequest("INVALID_ROLE", "roles must be operator and/or node"));
  for (const s of params.scopes) {
    if (!roles.some((r) => validateRequestedScopes([s], r).ok)) return err(invalidRequest("INVALID_SCOPE", `invalid scope: ${s}`));
  }
  const ttlMs = params.ttlMs ?? DEFAULT_BOOTSTRAP_TTL_MS;
  if (!Number.isInteger(ttlMs) || ttlMs <= 0 || ttlMs > MAX_BOOTSTRAP_TTL_MS) {
    return err(invalidRequest("INVALID_PARAMS", "ttl must be between 1 ms and 24 h"));
  }
  const token = newSecret(opts.random);
  const record: BootstrapRecord = {
    id: opts.random.uuid(),
    tokenHash: secretDigestHex(token),
    roles: normalizeScopes<Role>(roles),
    scopes: normalizeScopes<Scope>(params.scopes as Scope[]),
    createdAtMs: opts.nowMs,
    expiresAtMs: opts.nowMs + ttlMs,
  };
  await store.transact(async (tx) => {
    await tx.deleteStaleBootstrap(opts.nowMs);
    await tx.putBootstrap(record);
  });
  return ok({ token, record });
}

/** Setup code as upstream encodes it: base64url of `{"url","bootstrapToken"}`. */
export function setupCode(url: string, token: string): string {
  return Buffer.from(JSON.stringify({ url, bootstrapToken: token }), "utf8").toString("base64url");
}
