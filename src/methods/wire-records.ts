import { verificationCode } from "../pairing/verification-code.js";
import type { PairedDeviceRecord, PendingRequestRecord } from "../store/records.js";

// Store records as the protocol shows them (spec §9.1, §9.5): secrets never
// leave; token digests become token metadata.

export function pendingToWire(p: PendingRequestRecord): Record<string, unknown> {
  const { requesterIp, expiresAtMs, reason, ...rest } = p;
  return { ...rest, ...(rest.remoteIp === undefined ? { remoteIp: requesterIp } : {}), silent: false, reason, expiresAtMs, verificationCode: verificationCode(p) };
}

export function pairedToWire(d: PairedDeviceRecord): Record<string, unknown> {
  const { tokens, approvedScopes, ...rest } = d;
  const tokenList = Object.values(tokens)
    .filter((t) => t !== undefined)
    .map((t) => ({
      role: t.role,
      scopes: [...t.scopes],
      createdAtMs: t.createdAtMs,
      ...(t.rotatedAtMs !== undefined ? { rotatedAtMs: t.rotatedAtMs } : {}),
      ...(t.revokedAtMs !== undefined ? { revokedAtMs: t.revokedAtMs } : {}),
      ...(t.lastUsedAtMs !== undefined ? { lastUsedAtMs: t.lastUsedAtMs } : {}),
    }))
    .sort((a, b) => a.role.localeCompare(b.role));
  return {
    ...rest,
    role: d.roles[0],
    roles: [...d.roles],
    scopes: [...approvedScopes],
    ...(tokenList.length > 0 ? { tokens: tokenList } : {}),
  };
}
