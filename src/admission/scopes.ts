import { isKnownScope, type Role, type Scope } from "../protocol/enums.js";

// Scope algebra (spec §10.1–10.2). `admin` satisfies every operator scope and
// `write` satisfies `read`; nothing else implies anything.

/** Does holding `held` satisfy a requirement for `needed`? */
export function satisfies(held: readonly string[], needed: string): boolean {
  if (held.includes(needed)) return true;
  if (needed.startsWith("operator.") && held.includes("operator.admin")) return true;
  if (needed === "operator.read" && held.includes("operator.write")) return true;
  return false;
}

/** Dedupe and sort, dropping nothing (callers validate first). */
export function normalizeScopes<S extends string>(scopes: readonly S[]): S[] {
  // Most requests carry one scope or none: no Set, no sort for those.
  if (scopes.length < 2) return scopes.slice();
  return [...new Set(scopes)].sort();
}

/** The part of `requested` that `allowed` satisfies: the one way scopes are granted. */
export function intersectScopes(requested: readonly Scope[], allowed: readonly Scope[]): Scope[] {
  return normalizeScopes(requested.filter((s) => satisfies(allowed, s)));
}

/** Every requested scope is satisfied by `allowed` (an empty request always is). */
export function scopesWithin(requested: readonly string[], allowed: readonly string[]): boolean {
  return requested.every((s) => satisfies(allowed, s));
}

export function scopeFitsRole(scope: string, role: Role): boolean {
  return scope.startsWith(role === "operator" ? "operator." : "node.");
}

export type ScopeValidation = { ok: true; scopes: Scope[] } | { ok: false; invalid: string };

/** Requested scopes must be known and belong to the requested role. */
export function validateRequestedScopes(scopes: readonly string[], role: Role): ScopeValidation {
  for (const s of scopes) {
    if (!isKnownScope(s) || !scopeFitsRole(s, role)) return { ok: false, invalid: s };
  }
  return { ok: true, scopes: scopes as Scope[] };
}

/** Upstream's stored-token normalization: admin adds read+write; write adds read. */
export function expandImplied(scopes: readonly Scope[]): Scope[] {
  const out = new Set<Scope>(scopes);
  if (out.has("operator.admin")) {
    out.add("operator.read");
    out.add("operator.write");
  } else if (out.has("operator.write")) {
    out.add("operator.read");
  }
  return normalizeScopes([...out]);
}

/** The scopes of an approved baseline that belong to one role (a token's scopes for that role). */
export function roleScopes(role: Role, baseline: readonly Scope[]): Scope[] {
  return normalizeScopes(baseline.filter((s) => scopeFitsRole(s, role)));
}
