import { isLoopback, type PeerEvidence } from "../locality.js";
import type { AuthPolicy } from "../policy.js";
import { NOT_MINE, rejected, verified, type CredentialResult } from "../verified-credential.js";

/**
 * Identity asserted by a configured trusted proxy (spec §6.2 step 1). The
 * proxy's headers are in `peer.proxyHeaders` only when the TCP peer is trusted;
 * a loopback peer is refused because any local process could pose as the proxy.
 */
export function verifyTrustedProxy(auth: AuthPolicy, peer: PeerEvidence): CredentialResult {
  if (auth.mode !== "trusted-proxy") return NOT_MINE;
  if (!peer.viaTrustedProxy) return rejected("trusted_proxy_untrusted_source");
  if (isLoopback(peer.remoteAddress)) {
    return rejected("trusted_proxy_loopback_source");
  }
  for (const name of auth.requiredHeaders) {
    if (!peer.proxyHeaders[name]?.trim()) return rejected("trusted_proxy_missing_header");
  }
  const user = peer.proxyHeaders[auth.userHeader]?.trim();
  if (!user) return rejected("trusted_proxy_user_missing");
  if (auth.allowUsers.length > 0 && !auth.allowUsers.includes(user)) return rejected("trusted_proxy_user_not_allowed");
  return verified({ kind: "trusted-proxy", user });
}
