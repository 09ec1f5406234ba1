import { setBounded } from "../bounded-map.js";
import { parsePublicKey, type ParsedPublicKey } from "../identity/device-key.js";

/**
 * Parsed device keys by wire text, so a reconnecting device's key is parsed
 * once. Bounded; the oldest entry goes first. Misses are not cached (an
 * attacker's garbage keys never occupy it).
 */
export function createKeyCache(maxEntries = 10_000): (text: string) => ParsedPublicKey | undefined {
  const cache = new Map<string, ParsedPublicKey>();
  return (text) => {
    const hit = cache.get(text);
    if (hit) return hit;
    const parsed = parsePublicKey(text);
    if (!parsed) return undefined;
    setBounded(cache, text, parsed, maxEntries);
    return parsed;
  };
}
