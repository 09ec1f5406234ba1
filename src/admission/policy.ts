import type { Role, Scope } from "../protocol/enums.js";
import type { Cidr } from "./locality.js";

export type AuthPolicy =
  | { readonly mode: "token"; readonly tokenDigest: Buffer }
  | { readonly mode: "password"; readonly passwordDigest: Buffer }
  | {
      readonly mode: "trusted-proxy";
      /** Lowercased header carrying the authenticated user. */
      readonly userHeader: string;
      readonly requiredHeaders: readonly string[];
      /** Empty: any user the proxy names. */
      readonly allowUsers: readonly string[];
    }
  | { readonly mode: "none" };

export interface SilentPairingPolicy {
  /**
   * Off by default. When on, a fresh device on a direct loopback connection
   * that proved the shared secret is approved without an operator, for at most
   * `scopeCeiling`. Upgrades of an existing pairing are never silent.
   */
  readonly enabled: boolean;
  readonly roles: readonly Role[];
  readonly scopeCeiling: readonly Scope[];
}

export interface AdmissionPolicy {
  readonly auth: AuthPolicy;
  readonly trustedProxies: readonly Cidr[];
  /** Lowercased `scheme://host[:port]` origins a browser may connect from. */
  readonly allowedOrigins: readonly string[];
  readonly silentLocalPairing: SilentPairingPolicy;
  readonly signatureSkewMs: number;
}

/** The default ceiling for silent local pairing: everything except admin. */
export const DEFAULT_SILENT_SCOPE_CEILING: readonly Scope[] = [
  "operator.read",
  "operator.write",
  "operator.approvals",
  "operator.pairing",
];
