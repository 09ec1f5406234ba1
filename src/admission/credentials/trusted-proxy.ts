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
  // Own string properties only: a header name like "constructor" or "__proto__"
  // must read as absent, not as an inherited Object.prototype member.
  const header = (name: string): string | undefined => {
    const value: unknown = Object.hasOwn(peer.proxyHeaders, name) ? peer.proxyHeaders[name] : undefined;
    return typeof value === "string" ? value.trim() : undefined;
  };
  for (const name of auth.requiredHeaders) {
    if (!header(name)) return rejected("trusted_proxy_missing_header");
  }
  const user = header(auth.userHeader);
  if (!user) return rejected("trusted_proxy_user_missing");
  if (auth.allowUsers.length > 0 && !auth.allowUsers.includes(user)) return rejected("trusted_proxy_user_not_allowed");
  return verified({ kind: "trusted-proxy", user });
}
