import { satisfies } from "../admission/scopes.js";
import type { Grant } from "../admission/grant.js";
import type { CredentialKind } from "../admission/verified-credential.js";
import type { Role, Scope } from "../protocol/enums.js";

/**
 * Who carries out a management action (approve, reject, rotate, revoke,
 * remove), with the authority the server verified for it: the machine's owner
 * (the local CLI, which proved itself by opening the 0600 store) or an admitted
 * session, whose authority is exactly its effective scopes and its device.
 * Every management decision takes an Actor: nothing an action grants can come
 * from anywhere else.
 */
export type Actor =
  | { readonly kind: "owner" }
  | {
      readonly kind: "session";
      readonly scopes: readonly Scope[];
      readonly credential: CredentialKind;
      readonly deviceId: string | undefined;
      /** Backend name or trusted-proxy user, for the audit log. */
      readonly principal?: string | undefined;
    };

export const OWNER: Actor = { kind: "owner" };

/** An admitted session's authority: its effective scopes and the device it proved, nothing it claimed. */
export function actorOf(grant: Grant): Actor {
  return { kind: "session", scopes: grant.scopes, credential: grant.credential, deviceId: grant.deviceId, principal: grant.principal };
}

/** How the audit log names an actor: "owner", "device:<id>", or the credential (and principal) of a session without a device. */
export function auditLabel(actor: Actor): string {
  if (actor.kind === "owner") return "owner";
  if (actor.deviceId !== undefined) return `device:${actor.deviceId}`;
  return actor.principal !== undefined ? `${actor.credential}:${actor.principal}` : actor.credential;
}

function isAdmin(actor: Actor): boolean {
  return actor.kind === "owner" || satisfies(actor.scopes, "operator.admin");
}

/**
 * The scope `actor` lacks to grant `scopes` of `role` to a device (and, when
 * `newRole`, the role itself); `undefined` when it lacks none. An operator
 * scope is granted only by an actor that holds it. The node role and `node.*`
 * scopes cannot be held by an operator session, so only the owner or an admin
 * grants them: a pairing operator never hands out what it could not use.
 */
export function lackingToGrant(actor: Actor, role: Role, scopes: readonly Scope[], newRole: boolean): Scope | undefined {
  if (actor.kind === "owner") return undefined;
  if (newRole && role !== "operator" && !isAdmin(actor)) return "operator.admin";
  for (const s of scopes) {
    if (!s.startsWith("operator.")) {
      if (!isAdmin(actor)) return "operator.admin";
    } else if (!satisfies(actor.scopes, s)) return s;
  }
  return undefined;
}

/**
 * A non-admin session authenticated by a device token acts only on its own
 * device (upstream's ownership rule, spec §9.5). Anything else it names does
 * not exist for it: callers answer as for an unknown id (no existence oracle),
 * list only what it may act on, and send it pairing events of its own device only.
 */
export function mayActOn(actor: Actor, deviceId: string): boolean {
  if (actor.kind === "owner" || isAdmin(actor)) return true;
  return actor.credential !== "device-token" || actor.deviceId === deviceId;
}

/** The actor is a session of this very device: it never approves its own request. */
export function isSelf(actor: Actor, deviceId: string): boolean {
  return actor.kind === "session" && actor.deviceId === deviceId;
}
