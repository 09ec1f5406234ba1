import type { Role } from "../protocol/enums.js";
import type { AuditActorLabel, AuditEventInput, AuditRow } from "./audit-chain.js";
import type { BackendRecord, BootstrapRecord, PairedDeviceRecord, PendingRequestRecord } from "./records.js";

/**
 * Changes other parts (and other processes: the CLI writes the same store)
 * must react to. Appended inside the transaction that made them, so a change
 * is visible exactly when its data is; the server tails them in id order.
 */
export type ChangeInput =
  | { readonly kind: "pairing.requested"; readonly request: PendingRequestRecord }
  | {
      readonly kind: "pairing.resolved";
      readonly requestId: string;
      readonly deviceId: string;
      readonly decision: "approved" | "rejected" | "expired";
    }
  | { readonly kind: "device.removed"; readonly deviceId: string }
  | { readonly kind: "device.token.changed"; readonly deviceId: string; readonly role: Role; readonly change: "rotated" | "revoked" }
  | { readonly kind: "backend.revoked"; readonly backendId: string }
  | { readonly kind: "shared-secret.rotated" };

export type ChangeRecord = ChangeInput & { readonly id: number; readonly ts: number };

export interface StoreReader {
  getPairedDevice(deviceId: string): Promise<PairedDeviceRecord | undefined>;
  /** Latest approval first. */
  listPairedDevices(): Promise<PairedDeviceRecord[]>;
  getPendingRequest(requestId: string): Promise<PendingRequestRecord | undefined>;
  /** Newest first. */
  listPendingRequests(): Promise<PendingRequestRecord[]>;
  listPendingForDevice(deviceId: string): Promise<PendingRequestRecord[]>;
  countPendingRequests(filter?: { readonly requesterIp?: string }): Promise<number>;
  getBackendBySecretHash(secretHash: string): Promise<BackendRecord | undefined>;
  getBackendByName(name: string): Promise<BackendRecord | undefined>;
  listBackends(): Promise<BackendRecord[]>;
  getBootstrapByTokenHash(tokenHash: string): Promise<BootstrapRecord | undefined>;
  getSetting(key: string): Promise<string | undefined>;
  /** Every bootstrap token record, by id (for copying a store whole). */
  listBootstrapTokens(): Promise<BootstrapRecord[]>;
  /** Every setting, by key (for copying a store whole). */
  listSettings(): Promise<Array<{ readonly key: string; readonly value: string }>>;
  /** Changes with id > afterId, oldest first, at most `limit`. */
  changesSince(afterId: number, limit: number): Promise<ChangeRecord[]>;
  /** 0 when there are none. */
  latestChangeId(): Promise<number>;
  /** Audit rows with seq > afterSeq, oldest first, at most `limit`. */
  auditRows(afterSeq: number, limit: number): Promise<AuditRow[]>;
  newestAuditRow(): Promise<AuditRow | undefined>;
  /** The highest seq of a row written before `beforeMs`, if any (for retention). */
  lastAuditSeqBefore(beforeMs: number): Promise<number | undefined>;
}

/**
 * What an audit-only transaction may do: read, append linked rows, prune, and
 * keep the chain's anchor and checkpoint (settings under `audit.`). Nothing
 * that grants or revokes, so it is not announced to other instances and does
 * not empty their caches.
 */
export interface AuditWriter extends StoreReader {
  appendAuditRows(rows: readonly AuditRow[]): Promise<void>;
  /** Deletes rows with seq <= `seq`; returns how many. */
  deleteAuditThrough(seq: number): Promise<number>;
  /** Only keys under `audit.`. */
  setAuditSetting(key: string, value: string): Promise<void>;
}

export interface StoreWriter extends AuditWriter {
  putPairedDevice(record: PairedDeviceRecord): Promise<void>;
  deletePairedDevice(deviceId: string): Promise<boolean>;
  putPendingRequest(record: PendingRequestRecord): Promise<void>;
  deletePendingRequest(requestId: string): Promise<boolean>;
  deletePendingForDevice(deviceId: string): Promise<number>;
  /** Removes and returns requests whose `expiresAtMs` ≤ now. */
  deleteExpiredPending(nowMs: number): Promise<PendingRequestRecord[]>;
  putBackend(record: BackendRecord): Promise<void>;
  putBootstrap(record: BootstrapRecord): Promise<void>;
  /** Removes bootstrap tokens expired or consumed before `beforeMs`. */
  deleteStaleBootstrap(beforeMs: number): Promise<number>;
  setSetting(key: string, value: string): Promise<void>;
  appendChange(change: ChangeInput, ts: number): Promise<void>;
  /** Drops changes older than `beforeMs` (they have been tailed long since). */
  pruneChanges(beforeMs: number): Promise<number>;
}

export type StoreKind = "memory" | "sqlite" | "postgres";

export interface TransactOptions {
  /**
   * The transaction only takes authority away (a revocation, a removal, a
   * rejection). When the disk is full it may use the space the store keeps in
   * reserve, so an owner can still cut a device off when nothing else can be
   * written. Never set for anything that grants.
   */
  readonly revocation?: boolean;
  /**
   * Who the audit log names for what this transaction changes (see
   * pairing/actor.ts): the store's default when absent ("owner" for the
   * admin CLI, "gateway" for the server).
   */
  readonly actor?: AuditActorLabel;
  /**
   * A whole store copied in (`store migrate`): rows, the audit log and its
   * settings are written as they are, with no entry per record (the command
   * appends one entry for the migration once the copy is checked).
   */
  readonly importing?: boolean;
}

/**
 * What a store shared by several gateway processes over a network pushes to
 * each of them (PostgreSQL: LISTEN/NOTIFY on a connection of its own).
 */
export type StoreNotice =
  /** Another transaction committed, in any process: cached reads are stale. */
  | { readonly kind: "commit" }
  /** An instance locked a key out after failures counted over every instance. */
  | { readonly kind: "lockout"; readonly key: string; readonly untilMs: number }
  /**
   * The store can no longer tell this process of commits (its connection was
   * lost). Until "resumed", nothing read earlier may be taken as current.
   */
  | { readonly kind: "interrupted"; readonly reason: string }
  /** Notices flow again; anything may have been committed meanwhile. */
  | { readonly kind: "resumed" };

export interface StoreNotices {
  subscribe(listener: (notice: StoreNotice) => void): () => void;
  /** Whether notices are being received now. */
  live(): boolean;
}

/** Failed-authentication counts kept in the store, so that several instances share one budget per key. */
export interface SharedLockouts {
  /**
   * Count a failure of `key` at `nowMs`. When the failures of the last
   * `windowMs`, over every instance, reach `maxFailures`, the key is locked
   * out until `nowMs + lockoutMs`, every instance is told (a "lockout"
   * notice), and that end is returned; so is the end of a lockout already
   * running (one this instance may have missed).
   */
  recordFailure(key: string, nowMs: number, rule: { readonly windowMs: number; readonly maxFailures: number; readonly lockoutMs: number }): Promise<number | undefined>;
  /** Lockouts still running at `nowMs`. */
  activeLockouts(nowMs: number): Promise<Array<{ readonly key: string; readonly untilMs: number }>>;
  /**
   * When the stored lockout of `key` ends, if it runs past `nowMs`. A
   * "lockout" notice is only a hint (any database role may send one): the
   * gateway believes what this reads from the table.
   */
  lockedUntil(key: string, nowMs: number): Promise<number | undefined>;
}

export interface Store extends StoreReader {
  readonly kind: StoreKind;
  /** Present when several processes share the store over a network and it pushes its commits to them. */
  readonly notices?: StoreNotices;
  /** Present when failed authentications are counted in the store (shared by every instance). */
  readonly lockouts?: SharedLockouts;
  /**
   * Run `fn` atomically and serialized with every other transaction on this
   * store (in this process and, for database stores, across processes).
   * If `fn` throws, nothing it wrote is kept.
   */
  transact<T>(fn: (tx: StoreWriter) => Promise<T>, opts?: TransactOptions): Promise<T>;
  /**
   * Append `events` to the audit log in a transaction of their own, linked
   * after the newest row. Not a commit others must react to: caches stay.
   */
  appendAudit(events: readonly AuditEventInput[]): Promise<void>;
  /** An audit-only transaction (pruning under a signed checkpoint). */
  auditTransact<T>(fn: (tx: AuditWriter) => Promise<T>): Promise<T>;
  /**
   * A number that differs once anything has been committed since it was
   * last read, by this process or another (the admin CLI writes the same
   * store). Cheap: the gateway polls it to know when cached reads are stale.
   */
  commitMarker(): Promise<number>;
  /**
   * Why the store can no longer be trusted to keep what is written to it (its
   * file was deleted or replaced under the running gateway), or `undefined`.
   * Cheap: the gateway asks on every change poll.
   */
  lost(): string | undefined;
  /** What an integrity check of the stored data found wrong (`PRAGMA quick_check` for SQLite), or `undefined`. */
  damage(): Promise<string | undefined>;
  close(): Promise<void>;
}

/** Keys of the settings table. */
export const SETTING_SHARED_TOKEN_HASH = "auth.sharedTokenHash";
/** Where the running gateway takes its shared token from ("store" or "config"), recorded at each start for the admin CLI. */
export const SETTING_SHARED_TOKEN_SOURCE = "gateway.sharedTokenSource";
/** The address the gateway last started listening on (ws://host:port), the default of `token bootstrap --url`. */
export const SETTING_LISTEN_URL = "gateway.listenUrl";
