import { BACKEND_SECRET_PREFIX } from "../admission/credentials/backend-credential.js";
import { secretDigestHex } from "../admission/secret-digest.js";
import { normalizeScopes, validateRequestedScopes } from "../admission/scopes.js";
import { newSecret, type Random } from "../clock.js";
import type { Scope } from "../protocol/enums.js";
import { invalidRequest } from "../protocol/gateway-error.js";
import { err, ok, type Result } from "../result.js";
import type { BackendRecord } from "../store/records.js";
import type { Store } from "../store/store.js";

// Backend credentials: the only way a service is admitted without device
// pairing. An operator registers one; its secret is shown once and stored as
// a digest; revoking it closes the sessions it admitted.

const NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;

export async function addBackend(
  store: Store,
  params: { readonly name: string; readonly scopes: readonly string[] },
  opts: { readonly nowMs: number; readonly random: Random },
): Promise<Result<{ backend: BackendRecord; secret: string }>> {
  if (!NAME.test(params.name)) {
    return err(invalidRequest("INVALID_PARAMS", "backend name must be 1-63 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit"));
  }
  const scopes = validateRequestedScopes(params.scopes, "operator");
  if (!scopes.ok) return err(invalidRequest("INVALID_SCOPE", `invalid scope: ${scopes.invalid}`));
  return store.transact(async (tx) => {
    if (await tx.getBackendByName(params.name)) return err(invalidRequest("INVALID_PARAMS", `a backend named ${params.name} already exists`));
    const secret = newSecret(opts.random, BACKEND_SECRET_PREFIX);
    const backend: BackendRecord = {
      id: opts.random.uuid(),
      name: params.name,
      secretHash: secretDigestHex(secret),
      scopes: normalizeScopes<Scope>(scopes.scopes),
      createdAtMs: opts.nowMs,
    };
    await tx.putBackend(backend);
    return ok({ backend, secret });
  });
}

export async function revokeBackend(store: Store, name: string, nowMs: number): Promise<Result<{ backend: BackendRecord }>> {
  return store.transact(async (tx) => {
    const found = await tx.getBackendByName(name);
    if (!found) return err(invalidRequest("NOT_FOUND", `unknown backend: ${name}`));
    if (found.revokedAtMs !== undefined) return ok({ backend: found });
    const backend = { ...found, revokedAtMs: nowMs };
    await tx.putBackend(backend);
    await tx.appendChange({ kind: "backend.revoked", backendId: backend.id }, nowMs);
    return ok({ backend });
  }, { revocation: true });
}
