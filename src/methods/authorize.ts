import type { Grant } from "../admission/grant.js";
import { satisfies } from "../admission/scopes.js";
import type { OperatorScope } from "../protocol/enums.js";
import { invalidRequest, type GatewayError } from "../protocol/gateway-error.js";
import { NODE_ONLY_METHODS, OPEN_METHODS, requiredScope } from "./method-scopes.js";

/** What a method requires: any session, a node session, or an operator scope. */
export type Requirement = { readonly kind: "open" } | { readonly kind: "node" } | { readonly kind: "scope"; readonly scope: OperatorScope };

/** The requirement of a method by name, from the table; unknown methods need admin. */
export function requirementOf(method: string): Requirement {
  if (OPEN_METHODS.has(method)) return { kind: "open" };
  if (NODE_ONLY_METHODS.has(method)) return { kind: "node" };
  return { kind: "scope", scope: requiredScope(method) };
}

/**
 * May this session call a method with this requirement? The one check every
 * call passes through (spec §12.1).
 */
export function authorize(grant: Grant, requirement: Requirement): GatewayError | undefined {
  if (requirement.kind === "open") return undefined;
  const needsNode = requirement.kind === "node";
  if (needsNode !== (grant.role === "node")) {
    return invalidRequest("UNAUTHORIZED_ROLE", `unauthorized role: ${grant.role}`);
  }
  if (requirement.kind === "node" || satisfies(grant.scopes, requirement.scope)) return undefined;
  return invalidRequest("MISSING_SCOPE", `missing scope: ${requirement.scope}`, { scope: requirement.scope });
}
