import { setBounded } from "../bounded-map.js";
import { classifyTcpPeer, type Cidr, type TcpPeer } from "../admission/locality.js";

/**
 * `classifyTcpPeer` kept per address text, bounded (the oldest goes first),
 * and dropped whole when the trusted-proxy list changes. Every upgrade judged
 * its peer's address from scratch; a client reconnects from the same one.
 */
export function createTcpPeerCache(maxEntries = 4096): (address: string, trustedProxies: readonly Cidr[]) => TcpPeer {
  const peers = new Map<string, TcpPeer>();
  let judgedWith: readonly Cidr[] | undefined;
  return (address, trustedProxies) => {
    if (trustedProxies !== judgedWith) {
      peers.clear();
      judgedWith = trustedProxies;
    }
    const hit = peers.get(address);
    if (hit) return hit;
    const peer = classifyTcpPeer(address, trustedProxies);
    setBounded(peers, address, peer, maxEntries);
    return peer;
  };
}
