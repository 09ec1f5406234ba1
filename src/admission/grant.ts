import type { Role, Scope } from "../protocol/enums.js";
import type { CredentialKind, VerifiedCredential } from "./verified-credential.js";

declare const grantBrand: unique symbol;

/** Wire `auth.method` values (protocol 4 hello-ok). */
export type AuthMethod = "none" | "token" | "password" | "device-token" | "bootstrap-token" | "trusted-proxy";

/** What an admitted session may do. Built only from a `VerifiedCredential`. */
export type Grant = {
  readonly role: Role;
  /** The effective scopes: requested ∩ what the credential allows. */
  readonly scopes: readonly Scope[];
  readonly credential: CredentialKind;
  readonly authMethod: AuthMethod;
  readonly deviceId: string | undefined;
  /** Backend name or trusted-proxy user, for audit and presence. */
  readonly principal: string | undefined;
  /** The backend credential's id, so revoking it can close this session. */
  readonly backendId: string | undefined;
  readonly [grantBrand]: true;
};

export function authMethodOf(credential: VerifiedCredential): AuthMethod {
  switch (credential.kind) {
    case "shared-secret":
      return credential.method;
    case "device-token":
      return "device-token";
    case "bootstrap-token":
      return "bootstrap-token";
    case "backend":
      return "token";
    case "trusted-proxy":
      return "trusted-proxy";
    case "open":
      return "none";
  }
}

export function grantFrom(
  credential: VerifiedCredential,
  role: Role,
  scopes: readonly Scope[],
  deviceId: string | undefined,
): Grant {
  const principal = credential.kind === "backend" ? credential.name : credential.kind === "trusted-proxy" ? credential.user : undefined;
  const backendId = credential.kind === "backend" ? credential.id : undefined;
  const grant = { role, scopes, credential: credential.kind, authMethod: authMethodOf(credential), deviceId, principal, backendId };
  return grant as Grant;
}
