import { satisfies } from "../admission/scopes.js";
import type { CredentialKind } from "../admission/verified-credential.js";
import type { Scope } from "../protocol/enums.js";

/**
 * Who approves, rejects, rotates or removes: the machine's owner (the local
 * CLI, which proved itself by opening the 0600 store) or a session with scopes.
 */
export type Approver =
  | { readonly kind: "owner" }
  | {
      readonly kind: "session";
      readonly scopes: readonly Scope[];
      readonly credential: CredentialKind;
      readonly deviceId: string | undefined;
    };

export function approverHolds(approver: Approver, scope: Scope): boolean {
  return approver.kind === "owner" || satisfies(approver.scopes, scope);
}

/**
 * A non-admin session authenticated by a device token acts only on its own
 * device (upstream's ownership rule, spec §9.5).
 */
export function approverMayActOn(approver: Approver, deviceId: string): boolean {
  if (approver.kind === "owner" || satisfies(approver.scopes, "operator.admin")) return true;
  return approver.credential !== "device-token" || approver.deviceId === deviceId;
}

/** The scopes an approver can hand out: an approver never grants more than it holds. */
export function firstScopeBeyond(approver: Approver, scopes: readonly Scope[]): Scope | undefined {
  if (approver.kind === "owner") return undefined;
  return scopes.find((s) => s.startsWith("operator.") && !satisfies(approver.scopes, s));
}
