import { chmodSync, closeSync, copyFileSync, existsSync, mkdirSync, openSync, realpathSync, readFileSync, renameSync, rmSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { Database } from "./sqlite-driver.js";
import { systemClock } from "../clock.js";
import { StoreConflictError, StoreUnavailableError } from "./errors.js";
import { assertTokenRolesMatch } from "./invariants.js";
import { AsyncMutex } from "./mutex.js";
import {
  decodeBackend,
  decodeBootstrap,
  decodeChange,
  decodeDevice,
  decodePending,
  encodeBackend,
  encodeBootstrap,
  encodeChangePayload,
  encodeDevice,
  encodePending,
  encodeToken,
  type BackendRow,
  type BootstrapRow,
  type ChangeRow,
  type DeviceParams,
  type DeviceRow,
  type PendingRow,
  type TokenParams,
} from "./row-codec.js";
import type { AuditRow } from "./audit-chain.js";
import { appendAuditEvents, assertAuditSetting } from "./audit-append.js";
import { auditedBody } from "./audited-writer.js";
import type { Store, StoreReader, StoreWriter, TransactOptions } from "./store.js";
import { diskReserve } from "./disk-reserve.js";

export interface SqliteStoreOptions {
  /** Database file; its directory is created (mode 0700) when missing. */
  readonly path: string;
  /**
   * How long one attempt at a lock may block the thread (SQLite's busy
   * timeout). Short: a lock held by another process is waited for by retrying
   * asynchronously, so the event loop never stalls for long.
   */
  readonly busyTimeoutMs?: number;
  /** How long a transaction waits in all for the write lock before failing with StoreUnavailableError. */
  readonly lockWaitMs?: number;
  /** Told when the space reserved for revocations is used or cannot be set aside. */
  readonly warn?: (message: string) => void;
  /** Who the audit log names for a transaction that names no actor (default "gateway"; the admin CLI: "owner"). */
  readonly auditActor?: string;
}

const DEFAULT_BUSY_TIMEOUT_MS = 20;
const DEFAULT_LOCK_WAIT_MS = 3000;
const OPEN_BUSY_TIMEOUT_MS = 5000;

function isFull(e: unknown): boolean {
  return (e as { code?: unknown } | null)?.code === "SQLITE_FULL";
}

function isBusy(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return code === "SQLITE_BUSY" || code === "SQLITE_LOCKED" || code === "SQLITE_BUSY_SNAPSHOT";
}

/**
 * BEGIN IMMEDIATE, retried with backoff while another process holds the write
 * lock: each attempt blocks for at most the busy timeout, the waits between
 * them are timers, and after `lockWaitMs` the transaction fails retryably.
 */
async function beginImmediate(db: Database.Database, path: string, lockWaitMs: number): Promise<void> {
  const deadline = Date.now() + lockWaitMs;
  for (let delay = 5; ; delay = Math.min(delay * 2, 200)) {
    try {
      db.exec("BEGIN IMMEDIATE");
      return;
    } catch (e) {
      if (!isBusy(e)) throw e;
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new StoreUnavailableError(`gatewarden store ${path} is locked by another process (waited ${lockWaitMs} ms); retry`, 1000, { cause: e });
      }
      await new Promise((resolve) => setTimeout(resolve, Math.min(delay, left)));
    }
  }
}
const FILE_MODE = 0o600;
const DIR_MODE = 0o700;

// ---------------------------------------------------------------------------
// Schema

interface Migration {
  readonly version: number;
  readonly sql: string;
}

const METADATA_COLUMNS = `
  display_name TEXT,
  platform TEXT,
  device_family TEXT,
  client_id TEXT,
  client_mode TEXT,
  remote_ip TEXT`;

/**
 * Ordered, append-only: a released migration is never edited, only followed
 * by a new one, because databases in the field have already applied it.
 * JSON columns hold arrays written only by this module.
 */
const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    sql: `
      CREATE TABLE paired_devices (
        device_id TEXT PRIMARY KEY,
        public_key TEXT NOT NULL,${METADATA_COLUMNS},
        roles TEXT NOT NULL,
        approved_scopes TEXT NOT NULL,
        created_at_ms INTEGER NOT NULL,
        approved_at_ms INTEGER NOT NULL
      ) STRICT;

      CREATE TABLE device_tokens (
        device_id TEXT NOT NULL REFERENCES paired_devices (device_id) ON DELETE CASCADE,
        role TEXT NOT NULL,
        token_hash TEXT NOT NULL,
        scopes TEXT NOT NULL,
        created_at_ms INTEGER NOT NULL,
        rotated_at_ms INTEGER,
        revoked_at_ms INTEGER,
        last_used_at_ms INTEGER,
        PRIMARY KEY (device_id, role)
      ) STRICT, WITHOUT ROWID;

      CREATE TABLE pending_requests (
        request_id TEXT PRIMARY KEY,
        device_id TEXT NOT NULL,
        public_key TEXT NOT NULL,
        role TEXT NOT NULL,
        roles TEXT NOT NULL,
        scopes TEXT NOT NULL,
        reason TEXT NOT NULL,
        is_repair INTEGER NOT NULL CHECK (is_repair IN (0, 1)),
        requester_ip TEXT NOT NULL,${METADATA_COLUMNS},
        ts INTEGER NOT NULL,
        expires_at_ms INTEGER NOT NULL
      ) STRICT;
      CREATE INDEX pending_requests_device_id ON pending_requests (device_id);
      CREATE INDEX pending_requests_requester_ip ON pending_requests (requester_ip);
      CREATE INDEX pending_requests_expires_at_ms ON pending_requests (expires_at_ms);

      CREATE TABLE backends (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        secret_hash TEXT NOT NULL UNIQUE,
        scopes TEXT NOT NULL,
        created_at_ms INTEGER NOT NULL,
        revoked_at_ms INTEGER,
        last_used_at_ms INTEGER
      ) STRICT;

      CREATE TABLE bootstrap_tokens (
        id TEXT PRIMARY KEY,
        token_hash TEXT NOT NULL UNIQUE,
        roles TEXT NOT NULL,
        scopes TEXT NOT NULL,
        created_at_ms INTEGER NOT NULL,
        expires_at_ms INTEGER NOT NULL,
        consumed_at_ms INTEGER,
        consumed_by_device_id TEXT
      ) STRICT;

      CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
      ) STRICT;

      -- AUTOINCREMENT so ids are never reused after pruning: a tailer's cursor stays valid.
      CREATE TABLE changes (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        ts INTEGER NOT NULL,
        kind TEXT NOT NULL,
        payload TEXT NOT NULL
      ) STRICT;
      CREATE INDEX changes_ts ON changes (ts);
    `,
  },
  {
    // The tamper-evident audit log (audit-chain.ts).
    version: 2,
    sql: `
      CREATE TABLE audit_log (
        seq INTEGER PRIMARY KEY,
        ts INTEGER NOT NULL,
        event TEXT NOT NULL,
        prev TEXT NOT NULL,
        hash TEXT NOT NULL
      ) STRICT;
      CREATE INDEX audit_log_ts ON audit_log (ts);
    `,
  },
];

/** The schema version this build creates and understands. */
export const SQLITE_SCHEMA_VERSION: number = MIGRATIONS.at(-1)?.version ?? 0;

/**
 * Brings the schema up to SQLITE_SCHEMA_VERSION. BEGIN IMMEDIATE makes a
 * server and a CLI opening the same fresh file at once apply each migration
 * exactly once.
 */
function migrate(db: Database.Database, path: string): void {
  // Up to date (the usual case): a read tells, and no write lock is taken, so
  // opening the store works while another process holds the lock.
  const known = db.prepare<[], { n: number }>("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'").get();
  if ((known?.n ?? 0) > 0) {
    const v = db.prepare<[], { version: number }>("SELECT COALESCE(MAX(version), 0) AS version FROM schema_migrations").get()?.version ?? 0;
    if (v === SQLITE_SCHEMA_VERSION) return;
  }
  db.exec("BEGIN IMMEDIATE");
  try {
    db.exec(
      "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at_ms INTEGER NOT NULL) STRICT",
    );
    const row = db.prepare<[], { version: number }>("SELECT COALESCE(MAX(version), 0) AS version FROM schema_migrations").get();
    const current = row?.version ?? 0;
    if (current > SQLITE_SCHEMA_VERSION) {
      throw new Error(
        `gatewarden store ${path} has schema version ${current}, newer than version ${SQLITE_SCHEMA_VERSION} ` +
          "that this build knows; refusing to open it. Upgrade gatewarden, or restore a backup made by this version.",
      );
    }
    const record = db.prepare<[number, number]>("INSERT INTO schema_migrations (version, applied_at_ms) VALUES (?, ?)");
    for (const migration of MIGRATIONS) {
      if (migration.version <= current) continue;
      db.exec(migration.sql);
      record.run(migration.version, systemClock.now());
    }
    db.exec("COMMIT");
  } catch (err) {
    if (db.inTransaction) db.exec("ROLLBACK");
    throw err;
  }
}

function isUniqueViolation(err: unknown): err is InstanceType<typeof Database.SqliteError> {
  return err instanceof Database.SqliteError && err.code === "SQLITE_CONSTRAINT_UNIQUE";
}

// ---------------------------------------------------------------------------
// Statements, prepared once per connection at open.

const DEVICE_SELECT = `
  SELECT d.device_id, d.public_key, d.display_name, d.platform, d.device_family, d.client_id,
         d.client_mode, d.remote_ip, d.roles, d.approved_scopes, d.created_at_ms, d.approved_at_ms,
         (SELECT json_group_array(json_object(
                   'role', t.role, 'token_hash', t.token_hash, 'scopes', json(t.scopes),
                   'created_at_ms', t.created_at_ms, 'rotated_at_ms', t.rotated_at_ms,
                   'revoked_at_ms', t.revoked_at_ms, 'last_used_at_ms', t.last_used_at_ms))
            FROM device_tokens t WHERE t.device_id = d.device_id) AS tokens
    FROM paired_devices d`;

// Ties are broken by primary key so listings are deterministic (the memory store matches).
const PENDING_ORDER = "ORDER BY ts DESC, request_id";

function prepareReads(db: Database.Database) {
  return {
    device: db.prepare<[string], DeviceRow>(`${DEVICE_SELECT} WHERE d.device_id = ?`),
    devices: db.prepare<[], DeviceRow>(`${DEVICE_SELECT} ORDER BY d.approved_at_ms DESC, d.device_id`),
    pending: db.prepare<[string], PendingRow>("SELECT * FROM pending_requests WHERE request_id = ?"),
    pendingAll: db.prepare<[], PendingRow>(`SELECT * FROM pending_requests ${PENDING_ORDER}`),
    pendingForDevice: db.prepare<[string], PendingRow>(
      `SELECT * FROM pending_requests WHERE device_id = ? ${PENDING_ORDER}`,
    ),
    countPending: db.prepare<[], { n: number }>("SELECT COUNT(*) AS n FROM pending_requests"),
    countPendingByIp: db.prepare<[string], { n: number }>(
      "SELECT COUNT(*) AS n FROM pending_requests WHERE requester_ip = ?",
    ),
    backendByHash: db.prepare<[string], BackendRow>("SELECT * FROM backends WHERE secret_hash = ?"),
    backendByName: db.prepare<[string], BackendRow>("SELECT * FROM backends WHERE name = ?"),
    backends: db.prepare<[], BackendRow>("SELECT * FROM backends ORDER BY name"),
    bootstrapByHash: db.prepare<[string], BootstrapRow>("SELECT * FROM bootstrap_tokens WHERE token_hash = ?"),
    setting: db.prepare<[string], { value: string }>("SELECT value FROM settings WHERE key = ?"),
    settings: db.prepare<[], { key: string; value: string }>("SELECT key, value FROM settings ORDER BY key"),
    bootstrapAll: db.prepare<[], BootstrapRow>("SELECT * FROM bootstrap_tokens ORDER BY id"),
    changesSince: db.prepare<[number, number], ChangeRow>("SELECT * FROM changes WHERE id > ? ORDER BY id LIMIT ?"),
    latestChange: db.prepare<[], { id: number }>("SELECT COALESCE(MAX(id), 0) AS id FROM changes"),
    auditRows: db.prepare<[number, number], AuditRow>("SELECT seq, ts, event, prev, hash FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?"),
    newestAudit: db.prepare<[], AuditRow>("SELECT seq, ts, event, prev, hash FROM audit_log ORDER BY seq DESC LIMIT 1"),
    lastAuditBefore: db.prepare<[number], { seq: number | null }>("SELECT MAX(seq) AS seq FROM audit_log WHERE ts < ?"),
  };
}

type ReadStatements = ReturnType<typeof prepareReads>;

function prepareWrites(db: Database.Database) {
  return {
    upsertDevice: db.prepare<DeviceParams>(`
      INSERT INTO paired_devices (device_id, public_key, display_name, platform, device_family, client_id,
                                  client_mode, remote_ip, roles, approved_scopes, created_at_ms, approved_at_ms)
      VALUES (@device_id, @public_key, @display_name, @platform, @device_family, @client_id,
              @client_mode, @remote_ip, @roles, @approved_scopes, @created_at_ms, @approved_at_ms)
      ON CONFLICT (device_id) DO UPDATE SET
        public_key = excluded.public_key, display_name = excluded.display_name, platform = excluded.platform,
        device_family = excluded.device_family, client_id = excluded.client_id, client_mode = excluded.client_mode,
        remote_ip = excluded.remote_ip, roles = excluded.roles, approved_scopes = excluded.approved_scopes,
        created_at_ms = excluded.created_at_ms, approved_at_ms = excluded.approved_at_ms`),
    deleteTokens: db.prepare<[string]>("DELETE FROM device_tokens WHERE device_id = ?"),
    insertToken: db.prepare<TokenParams>(`
      INSERT INTO device_tokens (device_id, role, token_hash, scopes, created_at_ms, rotated_at_ms,
                                 revoked_at_ms, last_used_at_ms)
      VALUES (@device_id, @role, @token_hash, @scopes, @created_at_ms, @rotated_at_ms,
              @revoked_at_ms, @last_used_at_ms)`),
    deleteDevice: db.prepare<[string]>("DELETE FROM paired_devices WHERE device_id = ?"),
    upsertPending: db.prepare<PendingRow>(`
      INSERT OR REPLACE INTO pending_requests (request_id, device_id, public_key, display_name, platform,
        device_family, client_id, client_mode, remote_ip, role, roles, scopes, reason, is_repair,
        requester_ip, ts, expires_at_ms)
      VALUES (@request_id, @device_id, @public_key, @display_name, @platform, @device_family, @client_id,
        @client_mode, @remote_ip, @role, @roles, @scopes, @reason, @is_repair, @requester_ip, @ts,
        @expires_at_ms)`),
    deletePending: db.prepare<[string]>("DELETE FROM pending_requests WHERE request_id = ?"),
    deletePendingForDevice: db.prepare<[string]>("DELETE FROM pending_requests WHERE device_id = ?"),
    expiredPending: db.prepare<[number], PendingRow>(
      `SELECT * FROM pending_requests WHERE expires_at_ms <= ? ${PENDING_ORDER}`,
    ),
    deleteExpiredPending: db.prepare<[number]>("DELETE FROM pending_requests WHERE expires_at_ms <= ?"),
    // ON CONFLICT (id) rather than OR REPLACE: a clash on name or secret_hash
    // with *another* backend must fail, not silently delete that backend.
    upsertBackend: db.prepare<BackendRow>(`
      INSERT INTO backends (id, name, secret_hash, scopes, created_at_ms, revoked_at_ms, last_used_at_ms)
      VALUES (@id, @name, @secret_hash, @scopes, @created_at_ms, @revoked_at_ms, @last_used_at_ms)
      ON CONFLICT (id) DO UPDATE SET
        name = excluded.name, secret_hash = excluded.secret_hash, scopes = excluded.scopes,
        created_at_ms = excluded.created_at_ms, revoked_at_ms = excluded.revoked_at_ms,
        last_used_at_ms = excluded.last_used_at_ms`),
    upsertBootstrap: db.prepare<BootstrapRow>(`
      INSERT INTO bootstrap_tokens (id, token_hash, roles, scopes, created_at_ms, expires_at_ms,
                                    consumed_at_ms, consumed_by_device_id)
      VALUES (@id, @token_hash, @roles, @scopes, @created_at_ms, @expires_at_ms, @consumed_at_ms,
              @consumed_by_device_id)
      ON CONFLICT (id) DO UPDATE SET
        token_hash = excluded.token_hash, roles = excluded.roles, scopes = excluded.scopes,
        created_at_ms = excluded.created_at_ms, expires_at_ms = excluded.expires_at_ms,
        consumed_at_ms = excluded.consumed_at_ms, consumed_by_device_id = excluded.consumed_by_device_id`),
    deleteStaleBootstrap: db.prepare<[number, number]>(
      "DELETE FROM bootstrap_tokens WHERE expires_at_ms < ? OR consumed_at_ms < ?",
    ),
    setSetting: db.prepare<[string, string]>(
      "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    ),
    insertChange: db.prepare<[number, string, string]>("INSERT INTO changes (ts, kind, payload) VALUES (?, ?, ?)"),
    pruneChanges: db.prepare<[number]>("DELETE FROM changes WHERE ts < ?"),
    insertAudit: db.prepare<[number, number, string, string, string]>("INSERT INTO audit_log (seq, ts, event, prev, hash) VALUES (?, ?, ?, ?, ?)"),
    deleteAuditThrough: db.prepare<[number]>("DELETE FROM audit_log WHERE seq <= ?"),
  };
}

type WriteStatements = ReturnType<typeof prepareWrites>;

// ---------------------------------------------------------------------------
// Store

function makeReader(s: ReadStatements, check: () => void): StoreReader {
  return {
    async getPairedDevice(deviceId) {
      check();
      const row = s.device.get(deviceId);
      return row && decodeDevice(row);
    },
    async listPairedDevices() {
      check();
      return s.devices.all().map(decodeDevice);
    },
    async getPendingRequest(requestId) {
      check();
      const row = s.pending.get(requestId);
      return row && decodePending(row);
    },
    async listPendingRequests() {
      check();
      return s.pendingAll.all().map(decodePending);
    },
    async listPendingForDevice(deviceId) {
      check();
      return s.pendingForDevice.all(deviceId).map(decodePending);
    },
    async countPendingRequests(filter) {
      check();
      const ip = filter?.requesterIp;
      const row = ip === undefined ? s.countPending.get() : s.countPendingByIp.get(ip);
      return row?.n ?? 0;
    },
    async getBackendBySecretHash(secretHash) {
      check();
      const row = s.backendByHash.get(secretHash);
      return row && decodeBackend(row);
    },
    async getBackendByName(name) {
      check();
      const row = s.backendByName.get(name);
      return row && decodeBackend(row);
    },
    async listBackends() {
      check();
      return s.backends.all().map(decodeBackend);
    },
    async getBootstrapByTokenHash(tokenHash) {
      check();
      const row = s.bootstrapByHash.get(tokenHash);
      return row && decodeBootstrap(row);
    },
    async getSetting(key) {
      check();
      return s.setting.get(key)?.value;
    },
    async listBootstrapTokens() {
      check();
      return s.bootstrapAll.all().map(decodeBootstrap);
    },
    async listSettings() {
      check();
      return s.settings.all();
    },
    async changesSince(afterId, limit) {
      check();
      // SQLite treats a negative LIMIT as "no limit".
      if (limit <= 0) return [];
      return s.changesSince.all(afterId, limit).map(decodeChange);
    },
    async latestChangeId() {
      check();
      return s.latestChange.get()?.id ?? 0;
    },
    async auditRows(afterSeq, limit) {
      check();
      if (limit <= 0) return [];
      return s.auditRows.all(afterSeq, limit);
    },
    async newestAuditRow() {
      check();
      return s.newestAudit.get();
    },
    async lastAuditSeqBefore(beforeMs) {
      check();
      return s.lastAuditBefore.get(beforeMs)?.seq ?? undefined;
    },
  };
}

function makeWriter(reads: ReadStatements, w: WriteStatements, check: () => void): StoreWriter {
  return {
    ...makeReader(reads, check),
    async putPairedDevice(record) {
      check();
      assertTokenRolesMatch(record);
      w.upsertDevice.run(encodeDevice(record));
      // The record's token map is the whole truth: tokens it no longer has go.
      w.deleteTokens.run(record.deviceId);
      for (const token of Object.values(record.tokens)) {
        if (token !== undefined) w.insertToken.run(encodeToken(record.deviceId, token));
      }
    },
    async deletePairedDevice(deviceId) {
      check();
      // device_tokens rows go with it (ON DELETE CASCADE).
      return w.deleteDevice.run(deviceId).changes > 0;
    },
    async putPendingRequest(record) {
      check();
      w.upsertPending.run(encodePending(record));
    },
    async deletePendingRequest(requestId) {
      check();
      return w.deletePending.run(requestId).changes > 0;
    },
    async deletePendingForDevice(deviceId) {
      check();
      return w.deletePendingForDevice.run(deviceId).changes;
    },
    async deleteExpiredPending(nowMs) {
      check();
      // Select then delete with the same predicate: atomic, we hold the write lock.
      const expired = w.expiredPending.all(nowMs).map(decodePending);
      w.deleteExpiredPending.run(nowMs);
      return expired;
    },
    async putBackend(record) {
      check();
      try {
        w.upsertBackend.run(encodeBackend(record));
      } catch (err) {
        if (!isUniqueViolation(err)) throw err;
        const what = err.message.includes("backends.name")
          ? `backend name "${record.name}" is already taken`
          : "backend secret hash is already in use";
        throw new StoreConflictError(what, { cause: err });
      }
    },
    async putBootstrap(record) {
      check();
      try {
        w.upsertBootstrap.run(encodeBootstrap(record));
      } catch (err) {
        if (!isUniqueViolation(err)) throw err;
        throw new StoreConflictError("bootstrap token hash is already in use", { cause: err });
      }
    },
    async deleteStaleBootstrap(beforeMs) {
      check();
      return w.deleteStaleBootstrap.run(beforeMs, beforeMs).changes;
    },
    async setSetting(key, value) {
      check();
      w.setSetting.run(key, value);
    },
    async appendChange(change, ts) {
      check();
      w.insertChange.run(ts, change.kind, encodeChangePayload(change));
    },
    async pruneChanges(beforeMs) {
      check();
      return w.pruneChanges.run(beforeMs).changes;
    },
    async appendAuditRows(rows) {
      check();
      for (const r of rows) w.insertAudit.run(r.seq, r.ts, r.event, r.prev, r.hash);
    },
    async deleteAuditThrough(seq) {
      check();
      return w.deleteAuditThrough.run(seq).changes;
    },
    async setAuditSetting(key, value) {
      check();
      assertAuditSetting(key);
      w.setSetting.run(key, value);
    },
  };
}

/**
 * One mutex per database file in this process, so that two Store instances
 * on the same file (server and an in-process CLI command, or tests) queue
 * behind each other instead of one blocking the event loop in BEGIN IMMEDIATE
 * while the other, holding the write lock across an await, can never finish.
 */
const fileMutexes = new Map<string, { readonly mutex: AsyncMutex; users: number }>();

function acquireFileMutex(file: string): AsyncMutex {
  let entry = fileMutexes.get(file);
  if (!entry) {
    entry = { mutex: new AsyncMutex(), users: 0 };
    fileMutexes.set(file, entry);
  }
  entry.users++;
  return entry.mutex;
}

function releaseFileMutex(file: string): void {
  const entry = fileMutexes.get(file);
  if (entry && --entry.users === 0) fileMutexes.delete(file);
}

/**
 * Creates the directory (0700) and the database file (0600) before SQLite
 * sees the path: SQLite creates -wal and -shm with the main file's mode, so
 * they are private too. An existing file is tightened to 0600 as well.
 */
function preparePrivateFile(path: string): void {
  const dir = dirname(path);
  if (!existsSync(dir)) {
    mkdirSync(dir, { recursive: true, mode: DIR_MODE });
    chmodSync(dir, DIR_MODE); // mkdir's mode is filtered by the umask
  }
  closeSync(openSync(path, "a", FILE_MODE));
  chmodSync(path, FILE_MODE);
}

function tightenSiblings(path: string): void {
  for (const suffix of ["-wal", "-shm"]) {
    if (existsSync(path + suffix)) chmodSync(path + suffix, FILE_MODE);
  }
}

export function openSqliteStore(opts: SqliteStoreOptions): Store {
  const timeout = opts.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS;
  const lockWaitMs = opts.lockWaitMs ?? DEFAULT_LOCK_WAIT_MS;
  preparePrivateFile(resolve(opts.path));
  const path = realpathSync(opts.path);

  // Two connections: `writer` runs transactions, `reader` serves reads made
  // outside them. A transaction stays open across awaits, and a read on its
  // connection would see its uncommitted writes; WAL gives the reader the
  // last committed snapshot instead.
  const connections: Database.Database[] = [];
  try {
    // Opening (WAL switch, a first migration) may wait as long as it used to: it
    // happens once, before anything is served; afterwards every lock wait is short.
    const writer = new Database(path, { timeout: OPEN_BUSY_TIMEOUT_MS });
    connections.push(writer);
    const mode = writer.pragma("journal_mode = WAL", { simple: true });
    if (mode !== "wal") throw new Error(`gatewarden store ${path}: could not enable WAL (journal_mode is ${String(mode)})`);
    writer.pragma("foreign_keys = ON");
    // WAL + NORMAL: a commit survives a process crash; an OS crash may lose the last few.
    writer.pragma("synchronous = NORMAL");
    migrate(writer, path);
    writer.pragma(`busy_timeout = ${timeout}`);
    tightenSiblings(path);

    const reader = new Database(path, { timeout });
    connections.push(reader);
    reader.pragma("query_only = ON");

    const reads = prepareReads(reader);
    // SQLite bumps a connection's data_version when *another* connection
    // commits. Read on the writer, it moves for every other process (the CLI,
    // even a hand edit) but not for this store's own commits; those are
    // counted here, except audit-only ones: a gateway appending admission
    // entries must not look to itself like a change to grants.
    const writerDataVersion = writer.prepare<[], number>("PRAGMA data_version").pluck();
    let lastDataVersion = writerDataVersion.get() ?? 0;
    let marker = 0;
    const txReads = prepareReads(writer);
    const writes = prepareWrites(writer);
    const mutex = acquireFileMutex(path);
    let closed = false;
    // The file this store opened: a file deleted or replaced under a running
    // gateway takes every later write into a file nobody will ever open again.
    const opened = statSync(path);
    const lostReason = (): string | undefined => {
      let now;
      try {
        now = statSync(path);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "ENOENT") return `the database ${path} was deleted while in use`;
        return `the database ${path} cannot be checked: ${(e as Error).message}`;
      }
      return now.ino !== opened.ino || now.dev !== opened.dev ? `the database ${path} was replaced while in use` : undefined;
    };


    const checkOpen = (): void => {
      if (closed) throw new Error(`gatewarden store ${path} is closed`);
    };

    const warn = opts.warn ?? (() => undefined);
    const defaultActor = opts.auditActor ?? "gateway";
    const reserve = diskReserve(`${path}-reserve`);
    const refillReserve = (): void => {
      const problem = reserve.refill(Date.now());
      if (problem !== undefined) warn(problem);
    };
    const diskFull = (e: unknown): StoreUnavailableError =>
      new StoreUnavailableError(`gatewarden store ${path}: the disk is full; free space and retry`, 5000, { cause: e });

    const attempt = <T>(fn: (tx: StoreWriter) => Promise<T>, counts = true): Promise<T> =>
      mutex.run(async () => {
        checkOpen();
        // IMMEDIATE takes the write lock now (retried asynchronously while
        // another process holds it), so fn never fails halfway on a lock upgrade.
        await beginImmediate(writer, path, lockWaitMs);
        // A tx handle that escapes fn must not write outside the transaction.
        let live = true;
        const tx = makeWriter(txReads, writes, () => {
          if (!live) throw new Error("transaction handle used after its transaction ended");
        });
        try {
          const result = await fn(tx);
          writer.exec("COMMIT");
          if (counts) marker++;
          return result;
        } catch (err) {
          // Some errors (e.g. SQLITE_FULL) already rolled back.
          if (writer.inTransaction) writer.exec("ROLLBACK");
          throw err;
        } finally {
          live = false;
        }
      });

    // Set aside now, while there is space: a full disk later must still take a revocation.
    refillReserve();

    return {
      kind: "sqlite",
      ...makeReader(reads, checkOpen),

      async transact<T>(fn: (tx: StoreWriter) => Promise<T>, opts?: TransactOptions): Promise<T> {
        checkOpen();
        const gone = lostReason();
        if (gone) throw new StoreUnavailableError(`${gone}: nothing more is written to it (restart gatewarden, or restore the file from a backup)`, 60_000);
        refillReserve();
        fn = auditedBody(fn, opts, defaultActor);
        try {
          return await attempt(fn);
        } catch (e) {
          if (!isFull(e)) throw e;
          // A full disk must not stop an owner from cutting a device off.
          if (opts?.revocation === true && reserve.release()) {
            warn(`the disk under ${path} is full: a revocation used the space reserved for it; free space soon`);
            try {
              return await attempt(fn);
            } catch (again) {
              if (!isFull(again)) throw again;
              throw diskFull(again);
            }
          }
          throw diskFull(e);
        }
      },

      async appendAudit(events) {
        checkOpen();
        await attempt((tx) => appendAuditEvents(tx, events, Date.now()), false);
      },

      async auditTransact(fn) {
        checkOpen();
        return attempt(fn, false);
      },

      lost: lostReason,

      async damage() {
        checkOpen();
        const problem = quickCheckOn(reader);
        return problem === undefined ? undefined : `the database ${path} is damaged (${problem})`;
      },

      async commitMarker() {
        checkOpen();
        const version = writerDataVersion.get() ?? 0;
        if (version !== lastDataVersion) {
          lastDataVersion = version;
          marker++;
        }
        return marker;
      },

      async close() {
        // Let a running transaction finish rather than cut it off.
        await mutex.run(async () => {
          if (closed) return;
          closed = true;
          reader.close();
          writer.close();
          releaseFileMutex(path);
        });
      },
    };
  } catch (err) {
    for (const db of connections) db.close();
    // Name the file: "database disk image is malformed" alone says nothing of where.
    if (err instanceof Error && (err as { code?: unknown }).code !== undefined && !err.message.includes(path)) {
      throw new Error(`cannot open the database ${path}: ${err.message} (${String((err as { code?: unknown }).code)})`, { cause: err });
    }
    throw err;
  }
}

/**
 * A consistent copy of the database at `path` into `dest` (SQLite's online
 * backup: safe while a gateway writes), 0600, checked before it is kept.
 */
export async function backupSqliteDatabase(path: string, dest: string): Promise<void> {
  const src = new Database(path, { readonly: true, fileMustExist: true });
  const tmp = `${dest}.${process.pid}.tmp`;
  try {
    closeSync(openSync(tmp, "w", FILE_MODE));
    await src.backup(tmp);
    const problem = quickCheck(tmp);
    if (problem) throw new Error(`the copy of ${path} fails its integrity check (${problem}); the database itself may be damaged`);
    renameSync(tmp, dest);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  } finally {
    src.close();
  }
}

/** `undefined` when SQLite's quick_check finds nothing wrong in the file at `path`. */
export function quickCheck(path: string): string | undefined {
  let db: Database.Database | undefined;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
    return quickCheckOn(db);
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  } finally {
    db?.close();
  }
}

function quickCheckOn(db: Database.Database): string | undefined {
  try {
    const rows = db.prepare<[], { quick_check: string }>("PRAGMA quick_check(5)").all();
    const problems = rows.map((r) => r.quick_check).filter((r) => r !== "ok");
    return problems.length === 0 ? undefined : problems.join("; ").slice(0, 300);
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

/**
 * Put a backup in place of the database at `path`: checked first, then
 * renamed over it (its -wal and -shm go: they belong to the file replaced).
 * A gateway still running on the old file sees it replaced and admits nobody
 * more until restarted.
 */
export function restoreSqliteDatabase(path: string, backup: string): void {
  const problem = quickCheck(backup);
  if (problem) throw new Error(`refusing to restore ${backup}: it fails its integrity check (${problem})`);
  const tmp = `${path}.restore.${process.pid}.tmp`;
  try {
    copyFileSync(backup, tmp);
    chmodSync(tmp, FILE_MODE);
    for (const suffix of ["-wal", "-shm"]) rmSync(path + suffix, { force: true });
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

export interface SqliteReader extends StoreReader {
  /**
   * Run `fn` inside one read transaction: every read it makes sees the same
   * committed state, whatever other processes commit meanwhile (a copy of
   * the whole store read list by list could otherwise catch a request
   * between "pending" and "paired" and lose it). Not reentrant.
   */
  consistentRead<T>(fn: (reader: StoreReader) => Promise<T>): Promise<T>;
  close(): void;
}

/**
 * The store opened for reading only: no write lock, no migration, no file
 * created or changed, so it works while another process holds the write lock
 * and on read-only media. There, a WAL database whose `-shm` file does not
 * exist cannot be opened in place (SQLite would have to create it); the
 * reader then reads a snapshot of the file into memory instead, which is the
 * whole committed state when no `-wal` file is beside it.
 */
export function openSqliteReader(path: string): SqliteReader {
  let db: Database.Database;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true, timeout: DEFAULT_BUSY_TIMEOUT_MS });
    db.prepare("SELECT count(*) FROM sqlite_master").get();
  } catch (e) {
    if ((e as { code?: unknown }).code !== "SQLITE_CANTOPEN" || existsSync(`${path}-wal`)) throw e;
    const image = readFileSync(path);
    // Bytes 18-19 say "WAL"; an in-memory copy has no WAL to read, and needs none.
    if (image.length >= 20 && image[18] === 2 && image[19] === 2) image[18] = image[19] = 1;
    db = new Database(image, { readonly: true });
  }
  try {
    const known = db.prepare<[], { n: number }>("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'").get();
    const version =
      (known?.n ?? 0) > 0 ? (db.prepare<[], { version: number }>("SELECT COALESCE(MAX(version), 0) AS version FROM schema_migrations").get()?.version ?? 0) : 0;
    if (version !== SQLITE_SCHEMA_VERSION) {
      throw new Error(
        `gatewarden store ${path} has schema version ${version}; this build reads version ${SQLITE_SCHEMA_VERSION} ` +
          "(start this gatewarden's gateway once to migrate it)",
      );
    }
    let closed = false;
    const reader = makeReader(prepareReads(db), () => {
      if (closed) throw new Error(`gatewarden store ${path} is closed`);
    });
    return {
      ...reader,
      async consistentRead(fn) {
        if (db.inTransaction) throw new Error(`a consistent read of ${path} is already running`);
        db.exec("BEGIN");
        try {
          // A deferred BEGIN takes its snapshot at the first read: take it now.
          db.prepare("SELECT count(*) FROM sqlite_master").get();
          return await fn(reader);
        } finally {
          if (db.open && db.inTransaction) db.exec("COMMIT");
        }
      },
      close() {
        closed = true;
        db.close();
      },
    };
  } catch (e) {
    db.close();
    throw e;
  }
}
