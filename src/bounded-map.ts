/**
 * `map.set(key, value)`, then drop the oldest entries past `maxEntries`.
 * Maps iterate in insertion order, so the first key is the oldest.
 */
export function setBounded<K, V>(map: Map<K, V>, key: K, value: V, maxEntries: number): void {
  map.set(key, value);
  while (map.size > maxEntries) {
    const oldest = map.keys().next();
    if (oldest.done) return;
    map.delete(oldest.value);
  }
}
