import { performance } from "node:perf_hooks";
import { setBounded } from "../bounded-map.js";
import type { PairedDeviceRecord } from "./records.js";
import type { Store } from "./store.js";

/** A store whose paired-device reads are served from memory until something changes. */
export interface DeviceReadCachingStore extends Store {
  /** Forget every cached record (something was, or may have been, committed). */
  invalidate(): void;
  /**
   * The record `getPairedDevice` would return now, if it is cached; `undefined`
   * means "not in memory: ask `getPairedDevice`", never "not paired".
   */
  cachedPairedDevice(deviceId: string): PairedDeviceRecord | undefined;
}

export const DEFAULT_DEVICE_CACHE_ENTRIES = 10_000;

/** Records are shared by every reader of the cache, so none may change one. */
function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/**
 * Every handshake of a paired device reads its record; in WAL mode each read
 * takes and drops a lock in the shared index (BENCHMARKS.md). This keeps the
 * records in memory, bounded, for the gateway process only.
 *
 * Staleness is bounded by who wrote:
 * - a transaction made through this store drops the cache before it commits
 *   and again before its caller resumes, so the gateway's own writes
 *   (device.token.revoke, approvals, issued tokens) are seen by the next read;
 * - a commit by another process (the admin CLI) is seen when the owner calls
 *   `invalidate()`, which the gateway does when `commitMarker()` moves and
 *   whenever the change feed shows a change, before it closes the sessions
 *   the change revoked;
 * - a store shared over a network (PostgreSQL) pushes every commit, and the
 *   gateway invalidates on each; while it cannot push (`notices.live()` is
 *   false) nothing is served from memory at all, so a lost notice can never
 *   leave a revoked record in use.
 * Only found records are kept (an unknown device id is read every time, so
 * garbage ids never occupy memory and a new pairing is seen at once), and a
 * read that overlapped an invalidation is not kept. Cached records are
 * frozen: the store promises that callers cannot change what it holds, and a
 * shared record keeps that promise by refusing changes rather than copying.
 */
export function cacheDeviceReads(
  store: Store,
  maxEntries = DEFAULT_DEVICE_CACHE_ENTRIES,
  /** Told how long each transaction, and each device read not served from memory, took (metrics). */
  observe?: (operation: "transact" | "read", seconds: number) => void,
): DeviceReadCachingStore {
  const records = new Map<string, PairedDeviceRecord>();
  let generation = 0;
  let closed = false;
  const trusted = (): boolean => store.notices?.live() ?? true;
  const invalidate = (): void => {
    records.clear();
    generation++;
  };
  // Delegated one by one rather than spread, so a store written as a class keeps its methods.
  return {
    kind: store.kind,
    ...(store.notices ? { notices: store.notices } : {}),
    ...(store.lockouts ? { lockouts: store.lockouts } : {}),
    async getPairedDevice(deviceId) {
      if (closed) return store.getPairedDevice(deviceId); // the store's own "closed" error
      // A shared store that cannot push its commits now: what is in memory may be revoked elsewhere.
      if (!trusted()) return store.getPairedDevice(deviceId);
      const hit = records.get(deviceId);
      if (hit) return hit;
      const readIn = generation;
      const started = observe ? performance.now() : 0;
      const record = await store.getPairedDevice(deviceId);
      if (observe) observe("read", (performance.now() - started) / 1000);
      if (!record || readIn !== generation) return record;
      const frozen = deepFreeze(record);
      setBounded(records, deviceId, frozen, maxEntries);
      return frozen;
    },
    cachedPairedDevice: (deviceId) => (closed || !trusted() ? undefined : records.get(deviceId)),
    listPairedDevices: () => store.listPairedDevices(),
    getPendingRequest: (requestId) => store.getPendingRequest(requestId),
    listPendingRequests: () => store.listPendingRequests(),
    listPendingForDevice: (deviceId) => store.listPendingForDevice(deviceId),
    countPendingRequests: (filter) => store.countPendingRequests(filter),
    getBackendBySecretHash: (secretHash) => store.getBackendBySecretHash(secretHash),
    getBackendByName: (name) => store.getBackendByName(name),
    listBackends: () => store.listBackends(),
    getBootstrapByTokenHash: (tokenHash) => store.getBootstrapByTokenHash(tokenHash),
    getSetting: (key) => store.getSetting(key),
    listBootstrapTokens: () => store.listBootstrapTokens(),
    listSettings: () => store.listSettings(),
    changesSince: (afterId, limit) => store.changesSince(afterId, limit),
    latestChangeId: () => store.latestChangeId(),
    auditRows: (afterSeq, limit) => store.auditRows(afterSeq, limit),
    newestAuditRow: () => store.newestAuditRow(),
    lastAuditSeqBefore: (beforeMs) => store.lastAuditSeqBefore(beforeMs),
    // Audit-only transactions touch no device: the cache stays.
    appendAudit: (events) => store.appendAudit(events),
    auditTransact: (fn) => store.auditTransact(fn),
    commitMarker: () => store.commitMarker(),
    lost: () => store.lost(),
    damage: () => store.damage(),
    async transact(fn, opts) {
      const started = observe ? performance.now() : 0;
      try {
        // Dropped before the commit too: a read between the commit and this
        // caller resuming then goes to the store instead of the cache.
        return await store.transact(async (tx) => {
          const result = await fn(tx);
          invalidate();
          return result;
        }, opts);
      } finally {
        invalidate();
        if (observe) observe("transact", (performance.now() - started) / 1000);
      }
    },
    async close() {
      closed = true;
      invalidate();
      await store.close();
    },
    invalidate,
  };
}
