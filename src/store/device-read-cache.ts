import type { PairedDeviceRecord } from "./records.js";
import type { Store } from "./store.js";

/** A store whose paired-device reads are served from memory until something changes. */
export interface DeviceReadCachingStore extends Store {
  /** Forget every cached record (something was, or may have been, committed). */
  invalidate(): void;
}

export const DEFAULT_DEVICE_CACHE_ENTRIES = 10_000;

/**
 * Every handshake of a paired device reads its record; in WAL mode each read
 * takes and drops a lock in the shared index (BENCHMARKS.md). This keeps the
 * records in memory, bounded, for the gateway process only.
 *
 * Staleness is bounded by who wrote:
 * - a transaction made through this store drops the cache before it commits
 *   and again before its caller resumes, so the gateway's own writes (device.token.revoke, approvals,
 *   issued tokens) are seen by the next read;
 * - a commit by another process (the admin CLI) is seen when the owner calls
 *   `invalidate()`, which the gateway does when `commitMarker()` moves, in
 *   the same poll that closes the sessions the change revoked.
 * Only found records are kept (an unknown device id is read every time, so
 * garbage ids never occupy memory and a new pairing is seen at once), and a
 * read that overlapped an invalidation is not kept.
 */
export function cacheDeviceReads(store: Store, maxEntries = DEFAULT_DEVICE_CACHE_ENTRIES): DeviceReadCachingStore {
  const records = new Map<string, PairedDeviceRecord>();
  let generation = 0;
  const invalidate = (): void => {
    records.clear();
    generation++;
  };
  return {
    ...store,
    kind: store.kind,
    async getPairedDevice(deviceId) {
      const hit = records.get(deviceId);
      if (hit) return hit;
      const readIn = generation;
      const record = await store.getPairedDevice(deviceId);
      if (record && readIn === generation) {
        records.set(deviceId, record);
        if (records.size > maxEntries) {
          const oldest = records.keys().next().value;
          if (oldest !== undefined) records.delete(oldest);
        }
      }
      return record;
    },
    async transact(fn) {
      try {
        // Dropped before the commit too: a read between the commit and this
        // caller resuming then goes to the store instead of the cache.
        return await store.transact(async (tx) => {
          const result = await fn(tx);
          invalidate();
          return result;
        });
      } finally {
        invalidate();
      }
    },
    invalidate,
  };
}
