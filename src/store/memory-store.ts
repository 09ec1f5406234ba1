import { StoreConflictError } from "./errors.js";
import { assertTokenRolesMatch, withoutUndefined } from "./invariants.js";
import { AsyncMutex } from "./mutex.js";
import type { BackendRecord, BootstrapRecord, PairedDeviceRecord, PendingRequestRecord } from "./records.js";
import type { AuditRow } from "./audit-chain.js";
import { appendAuditEvents, assertAuditSetting } from "./audit-append.js";
import { auditedBody } from "./audited-writer.js";
import type { AuditWriter, ChangeInput, ChangeRecord, Store, StoreReader, StoreWriter, TransactOptions } from "./store.js";

// An in-process Store for unit tests. It mirrors the SQLite store's observable
// behaviour (orderings, uniqueness rules, absent optional fields, isolation of
// uncommitted writes) so the shared contract suite holds for both.

interface State {
  readonly paired: Map<string, PairedDeviceRecord>;
  readonly pending: Map<string, PendingRequestRecord>;
  readonly backends: Map<string, BackendRecord>;
  readonly bootstrap: Map<string, BootstrapRecord>;
  readonly settings: Map<string, string>;
  /** Ascending id order: appended with ever-increasing ids. */
  readonly changes: ChangeRecord[];
  /** Never reused, even after pruning, like SQLite's AUTOINCREMENT. */
  nextChangeId: number;
  /** Ascending seq order. */
  readonly audit: AuditRow[];
}

function emptyState(): State {
  return {
    paired: new Map(),
    pending: new Map(),
    backends: new Map(),
    bootstrap: new Map(),
    settings: new Map(),
    changes: [],
    nextChangeId: 1,
    audit: [],
  };
}

/**
 * Copy-on-write: a transaction works on a fork and the fork replaces the
 * committed state only if the transaction succeeds. Stored records are private
 * copies that are never mutated in place, so copying the containers suffices.
 */
function forkState(state: State): State {
  return {
    paired: new Map(state.paired),
    pending: new Map(state.pending),
    backends: new Map(state.backends),
    bootstrap: new Map(state.bootstrap),
    settings: new Map(state.settings),
    changes: [...state.changes],
    nextChangeId: state.nextChangeId,
    audit: [...state.audit],
  };
}

// Orderings shared with the SQLite store's ORDER BY clauses; ties are broken by
// primary key so listings are deterministic.
function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
function byApprovalDesc(a: PairedDeviceRecord, b: PairedDeviceRecord): number {
  return b.approvedAtMs - a.approvedAtMs || compareText(a.deviceId, b.deviceId);
}
function byTsDesc(a: PendingRequestRecord, b: PendingRequestRecord): number {
  return b.ts - a.ts || compareText(a.requestId, b.requestId);
}
function byName(a: BackendRecord, b: BackendRecord): number {
  return compareText(a.name, b.name);
}

function copyOut<T>(value: T | undefined): T | undefined {
  return value === undefined ? undefined : structuredClone(value);
}

function makeReader(state: () => State, check: () => void): StoreReader {
  return {
    async getPairedDevice(deviceId) {
      check();
      return copyOut(state().paired.get(deviceId));
    },
    async listPairedDevices() {
      check();
      return structuredClone([...state().paired.values()].sort(byApprovalDesc));
    },
    async getPendingRequest(requestId) {
      check();
      return copyOut(state().pending.get(requestId));
    },
    async listPendingRequests() {
      check();
      return structuredClone([...state().pending.values()].sort(byTsDesc));
    },
    async listPendingForDevice(deviceId) {
      check();
      const matching = [...state().pending.values()].filter((r) => r.deviceId === deviceId);
      return structuredClone(matching.sort(byTsDesc));
    },
    async countPendingRequests(filter) {
      check();
      const ip = filter?.requesterIp;
      if (ip === undefined) return state().pending.size;
      let count = 0;
      for (const r of state().pending.values()) if (r.requesterIp === ip) count++;
      return count;
    },
    async getBackendBySecretHash(secretHash) {
      check();
      for (const b of state().backends.values()) if (b.secretHash === secretHash) return structuredClone(b);
      return undefined;
    },
    async getBackendByName(name) {
      check();
      for (const b of state().backends.values()) if (b.name === name) return structuredClone(b);
      return undefined;
    },
    async listBackends() {
      check();
      return structuredClone([...state().backends.values()].sort(byName));
    },
    async getBootstrapByTokenHash(tokenHash) {
      check();
      for (const b of state().bootstrap.values()) if (b.tokenHash === tokenHash) return structuredClone(b);
      return undefined;
    },
    async getSetting(key) {
      check();
      return state().settings.get(key);
    },
    async listBootstrapTokens() {
      check();
      return structuredClone([...state().bootstrap.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)));
    },
    async listSettings() {
      check();
      return [...state().settings].map(([key, value]) => ({ key, value })).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    },
    async changesSince(afterId, limit) {
      check();
      if (limit <= 0) return [];
      const out: ChangeRecord[] = [];
      for (const c of state().changes) {
        if (c.id <= afterId) continue;
        out.push(structuredClone(c));
        if (out.length >= limit) break;
      }
      return out;
    },
    async latestChangeId() {
      check();
      return state().changes.at(-1)?.id ?? 0;
    },
    async auditRows(afterSeq, limit) {
      check();
      if (limit <= 0) return [];
      const rows = state().audit;
      const from = rows.findIndex((r) => r.seq > afterSeq);
      return from < 0 ? [] : rows.slice(from, from + limit);
    },
    async newestAuditRow() {
      check();
      return state().audit.at(-1);
    },
    async lastAuditSeqBefore(beforeMs) {
      check();
      let last: number | undefined;
      for (const r of state().audit) if (r.ts < beforeMs) last = r.seq;
      return last;
    },
  };
}

function makeWriter(draft: State, check: () => void): StoreWriter {
  return {
    ...makeReader(() => draft, check),
    async putPairedDevice(record) {
      check();
      assertTokenRolesMatch(record);
      draft.paired.set(record.deviceId, withoutUndefined(record));
    },
    async deletePairedDevice(deviceId) {
      check();
      return draft.paired.delete(deviceId);
    },
    async putPendingRequest(record) {
      check();
      draft.pending.set(record.requestId, withoutUndefined(record));
    },
    async deletePendingRequest(requestId) {
      check();
      return draft.pending.delete(requestId);
    },
    async deletePendingForDevice(deviceId) {
      check();
      let removed = 0;
      for (const r of [...draft.pending.values()]) {
        if (r.deviceId === deviceId && draft.pending.delete(r.requestId)) removed++;
      }
      return removed;
    },
    async deleteExpiredPending(nowMs) {
      check();
      const expired = [...draft.pending.values()].filter((r) => r.expiresAtMs <= nowMs).sort(byTsDesc);
      for (const r of expired) draft.pending.delete(r.requestId);
      return structuredClone(expired);
    },
    async putBackend(record) {
      check();
      for (const other of draft.backends.values()) {
        if (other.id === record.id) continue;
        if (other.name === record.name) throw new StoreConflictError(`backend name "${record.name}" is already taken`);
        if (other.secretHash === record.secretHash) throw new StoreConflictError("backend secret hash is already in use");
      }
      draft.backends.set(record.id, withoutUndefined(record));
    },
    async putBootstrap(record) {
      check();
      for (const other of draft.bootstrap.values()) {
        if (other.id !== record.id && other.tokenHash === record.tokenHash) {
          throw new StoreConflictError("bootstrap token hash is already in use");
        }
      }
      draft.bootstrap.set(record.id, withoutUndefined(record));
    },
    async deleteStaleBootstrap(beforeMs) {
      check();
      let removed = 0;
      for (const b of [...draft.bootstrap.values()]) {
        const stale = b.expiresAtMs < beforeMs || (b.consumedAtMs !== undefined && b.consumedAtMs < beforeMs);
        if (stale && draft.bootstrap.delete(b.id)) removed++;
      }
      return removed;
    },
    async setSetting(key, value) {
      check();
      draft.settings.set(key, value);
    },
    async appendChange(change: ChangeInput, ts: number) {
      check();
      draft.changes.push({ ...withoutUndefined(change), id: draft.nextChangeId++, ts });
    },
    async pruneChanges(beforeMs) {
      check();
      const kept = draft.changes.filter((c) => c.ts >= beforeMs);
      const removed = draft.changes.length - kept.length;
      draft.changes.splice(0, draft.changes.length, ...kept);
      return removed;
    },
    ...makeAuditWriter(draft, check),
  };
}

function makeAuditWriter(draft: State, check: () => void): Pick<AuditWriter, "appendAuditRows" | "deleteAuditThrough" | "setAuditSetting"> {
  return {
    async appendAuditRows(rows) {
      check();
      for (const r of rows) {
        const last = draft.audit.at(-1);
        if (last && r.seq <= last.seq) throw new StoreConflictError(`audit seq ${r.seq} is already taken`);
        draft.audit.push({ ...r });
      }
    },
    async deleteAuditThrough(seq) {
      check();
      const from = draft.audit.findIndex((r) => r.seq > seq);
      const removed = from < 0 ? draft.audit.length : from;
      draft.audit.splice(0, removed);
      return removed;
    },
    async setAuditSetting(key, value) {
      check();
      assertAuditSetting(key);
      draft.settings.set(key, value);
    },
  };
}

export function createMemoryStore(opts: { readonly auditActor?: string } = {}): Store {
  let committed = emptyState();
  let closed = false;
  const mutex = new AsyncMutex();
  let commits = 0;

  const checkOpen = (): void => {
    if (closed) throw new Error("memory store is closed");
  };

  return {
    kind: "memory",
    ...makeReader(() => committed, checkOpen),

    // Memory never fills a disk: a revocation needs no reserve here.
    async transact<T>(fn: (tx: StoreWriter) => Promise<T>, txOpts?: TransactOptions): Promise<T> {
      return run(auditedBody(fn, txOpts, opts.auditActor ?? "gateway"), true);
    },
    async appendAudit(events) {
      await run((tx) => appendAuditEvents(tx, events, Date.now()), false);
    },
    async auditTransact(fn) {
      return run(fn, false);
    },

    lost: () => undefined,
    damage: async () => undefined,
    async commitMarker() {
      checkOpen();
      return commits;
    },

    async close() {
      // Let a running transaction finish rather than cut it off.
      await mutex.run(async () => {
        closed = true;
      });
    },
  };

  /** One transaction; `counts`: it moves the commit marker (audit-only ones do not). */
  function run<T>(fn: (tx: StoreWriter) => Promise<T>, counts: boolean): Promise<T> {
      checkOpen();
      return mutex.run(async () => {
        checkOpen();
        const draft = forkState(committed);
        // A tx handle that escapes `fn` must not write outside the transaction.
        let live = true;
        const tx = makeWriter(draft, () => {
          if (!live) throw new Error("transaction handle used after its transaction ended");
          checkOpen();
        });
        try {
          const result = await fn(tx);
          committed = draft;
          if (counts) commits++;
          return result;
        } finally {
          live = false;
        }
      });
  }
}
