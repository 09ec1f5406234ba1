import { intersectScopes, normalizeScopes, roleScopes, scopeFitsRole } from "../admission/scopes.js";
import type { Role, Scope } from "../protocol/enums.js";
import type { DeviceTokenRecord, PairedDeviceRecord } from "../store/records.js";

// A paired device's grant, per role. The scopes a role may use are the role's
// part of `approvedScopes` (roles own disjoint scope prefixes), narrowed by the
// role's token record while it is live; a revoked token means the role grants
// nothing until an approval restores it. Every change to a device's grant goes
// through `setRoleGrant`, which keeps the three (roles, approvedScopes, token)
// saying the same thing, so no later reader can find a wider grant in one of
// them than in the others.

export type RoleGrant = { readonly revoked: false; readonly scopes: readonly Scope[] } | { readonly revoked: true };

/** The role's grant, or `undefined` when the role was never approved for the device. */
export function roleGrant(device: PairedDeviceRecord, role: Role): RoleGrant | undefined {
  if (!device.roles.includes(role)) return undefined;
  const token = device.tokens[role];
  if (token?.revokedAtMs !== undefined) return { revoked: true };
  const approved = roleScopes(role, device.approvedScopes);
  // Records written before grants were kept in step may hold a token narrower than the baseline.
  return { revoked: false, scopes: token ? intersectScopes(token.scopes, approved) : approved };
}

/** The scopes the role may use now: none when revoked or never approved. */
export function liveRoleScopes(device: PairedDeviceRecord, role: Role): readonly Scope[] {
  const g = roleGrant(device, role);
  return g && !g.revoked ? g.scopes : [];
}

/** Roles of a paired device that still hold a usable (not revoked) grant. */
export function effectiveRoles(device: PairedDeviceRecord): Role[] {
  return device.roles.filter((r) => roleGrant(device, r)?.revoked === false);
}

export type GrantChange =
  /** The role is granted exactly these scopes; a live token keeps its secret, a revoked one is dropped (a fresh one is minted at the next hello). */
  | { readonly kind: "set"; readonly scopes: readonly Scope[] }
  /** A new token secret (its digest) for exactly these scopes. */
  | { readonly kind: "mint"; readonly scopes: readonly Scope[]; readonly tokenHash: string }
  /** The role grants nothing until an approval restores it. */
  | { readonly kind: "revoke" };

/** The device with one role's grant changed, every representation in step. */
export function setRoleGrant(device: PairedDeviceRecord, role: Role, change: GrantChange, nowMs: number): PairedDeviceRecord {
  const previous = device.tokens[role];
  const others = device.approvedScopes.filter((s) => !scopeFitsRole(s, role));
  const scopes = change.kind === "revoke" ? [] : roleScopes(role, change.scopes);
  let token: DeviceTokenRecord | undefined;
  switch (change.kind) {
    case "revoke":
      // Approved but never handed out: the revocation is recorded all the same.
      token = previous
        ? { ...previous, scopes: [], revokedAtMs: nowMs }
        : { role, tokenHash: "", scopes: [], createdAtMs: nowMs, revokedAtMs: nowMs };
      break;
    case "mint":
      token = {
        role,
        tokenHash: change.tokenHash,
        scopes,
        createdAtMs: previous?.createdAtMs ?? nowMs,
        ...(previous ? { rotatedAtMs: nowMs } : {}),
      };
      break;
    case "set":
      token = previous && previous.revokedAtMs === undefined ? { ...previous, scopes } : undefined;
      break;
  }
  const tokens: Partial<Record<Role, DeviceTokenRecord>> = { ...device.tokens };
  if (token) tokens[role] = token;
  else delete tokens[role];
  return {
    ...device,
    roles: normalizeScopes<Role>([...device.roles, role]),
    approvedScopes: normalizeScopes<Scope>([...others, ...scopes]),
    tokens,
  };
}
