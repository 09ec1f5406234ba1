import type { PairingReason } from "../protocol/error-codes.js";
import type { Role, Scope } from "../protocol/enums.js";
import type { PeerEvidence } from "./locality.js";
import type { SilentPairingPolicy } from "./policy.js";
import { intersectScopes } from "./scopes.js";
import type { VerifiedCredential } from "./verified-credential.js";

/**
 * Silent local pairing: an explicit policy, off by default. Its basis is
 * verified: a direct loopback peer (no forwarding headers, no browser Origin)
 * *and* the shared secret. It applies to first pairings only, and approves at
 * most the configured ceiling, so a client never approves its own scopes
 * above what the operator configured.
 */
export function silentLocalApproval(
  policy: SilentPairingPolicy,
  peer: PeerEvidence,
  credential: VerifiedCredential,
  reason: PairingReason,
  role: Role,
  requested: readonly Scope[],
): { scopes: Scope[] } | undefined {
  if (!policy.enabled || reason !== "not-paired") return undefined;
  if (peer.locality !== "direct_local" || peer.origin !== undefined) return undefined;
  if (credential.kind !== "shared-secret") return undefined;
  if (!policy.roles.includes(role)) return undefined;
  return { scopes: intersectScopes(requested, policy.scopeCeiling) };
}
