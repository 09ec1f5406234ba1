import type { Grant } from "../admission/grant.js";
import { satisfies } from "../admission/scopes.js";
import { authorize, type Requirement } from "../methods/authorize.js";
import type { GatewayError } from "../protocol/gateway-error.js";
import type { UpstreamMethodTable } from "./upstream-method-tables.js";

// What a session must hold to have a method relayed to the upstream, decided
// by gatewarden before anything reaches the upstream: the upstream release's
// own table (admin satisfies every operator scope, write satisfies read, an
// unlisted method needs admin), `health` open to every session. The upstream
// session carries exactly the client's scopes, so the upstream checks again.

export function relayRequirement(table: UpstreamMethodTable, method: string): Requirement {
  if (method === "health") return { kind: "open" };
  const listed = table.methods.get(method);
  if (listed === "node") return { kind: "node" };
  return { kind: "scope", scope: listed ?? "operator.admin" };
}

/** A denial, or `undefined` when the session may have `method` relayed. */
export function authorizeRelay(grant: Grant, table: UpstreamMethodTable, method: string): GatewayError | undefined {
  const alternative = table.sessionAlternatives.get(method);
  if (alternative !== undefined && grant.role === "operator" && satisfies(grant.scopes, alternative)) return undefined;
  return authorize(grant, relayRequirement(table, method));
}

/** The table for the upstream release that answered: its own, else the newest one of its protocol. */
export function tableFor(tables: readonly UpstreamMethodTable[], serverVersion: string | undefined, protocol: number): UpstreamMethodTable | undefined {
  return tables.find((t) => t.openclaw === serverVersion) ?? [...tables].reverse().find((t) => t.protocol === protocol);
}
