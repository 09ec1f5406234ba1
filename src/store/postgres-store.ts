import pg from "pg";
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
  type DeviceRow,
  type PendingRow,
} from "./row-codec.js";
import type { AuditRow } from "./audit-chain.js";
import { appendAuditEvents, assertAuditSetting } from "./audit-append.js";
import { auditedBody } from "./audited-writer.js";
import type { SharedLockouts, Store, StoreNotice, StoreNotices, StoreReader, StoreWriter, TransactOptions } from "./store.js";

// The store on PostgreSQL, for several gateway instances sharing one state.
//
// - Every transaction takes one advisory lock first (pg_advisory_xact_lock):
//   writes are serialized across instances exactly as SQLite serializes them
//   on one machine, so a decision read inside a transaction (is this request
//   still pending?) cannot be raced by another instance, and change ids are
//   handed out in commit order (a tailer never skips one that commits late).
// - Every transaction bumps a commit counter and sends NOTIFY in the same
//   transaction; PostgreSQL delivers it on commit to every instance's
//   listening connection, which drops cached reads at once. While that
//   connection is down, the instance is told ("interrupted") and must not
//   trust what it read before.
// - Failed authentications are counted in a table so a budget holds over all
//   instances; a lockout is announced with NOTIFY.

export interface PostgresStoreOptions {
  /** postgres://user:password@host:port/database (libpq URL; sslmode etc. as pg understands them). */
  readonly url: string;
  /** How long a transaction waits for the write lock before failing retryably. */
  readonly lockWaitMs?: number;
  /** How long to wait for a connection before a query fails retryably. */
  readonly connectTimeoutMs?: number;
  /** Any one statement is cancelled after this long. */
  readonly statementTimeoutMs?: number;
  readonly poolSize?: number;
  /** Keep a listening connection and push notices (the gateway). The CLI needs none. */
  readonly listen?: boolean;
  /** How often the listening connection is checked (a network partition closes nothing by itself). */
  readonly pingMs?: number;
  readonly warn?: (message: string) => void;
  /** Who the audit log names for a transaction that names no actor (default "gateway"; the admin CLI: "owner"). */
  readonly auditActor?: string;
}

const DEFAULT_LOCK_WAIT_MS = 3000;
const DEFAULT_CONNECT_TIMEOUT_MS = 2000;
const DEFAULT_STATEMENT_TIMEOUT_MS = 5000;
const DEFAULT_PING_MS = 500;
/** How many ping intervals without an answer the listener is still taken to hear everything (a busy event loop delays answers too). */
const LIVE_WITHOUT_ANSWER_PINGS = 3;
const COMMIT_CHANNEL = "gatewarden_commit";
const LOCKOUT_CHANNEL = "gatewarden_lockout";
/** Advisory lock keys: any constant both sides agree on ("gwdn" and "gwdm"). */
const WRITE_LOCK_KEY = 0x6777646e;
const MIGRATION_LOCK_KEY = 0x6777646d;
/** int8 (BIGINT) as a JS number: every BIGINT here is a millisecond time, a count or an id, far below 2^53. */
const INT8_OID = 20;

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

/** The SQLite store's tables, in PostgreSQL types; append-only like its migrations. */
const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    sql: `
      CREATE TABLE paired_devices (
        device_id TEXT PRIMARY KEY,
        public_key TEXT NOT NULL,${METADATA_COLUMNS},
        roles TEXT NOT NULL,
        approved_scopes TEXT NOT NULL,
        created_at_ms BIGINT NOT NULL,
        approved_at_ms BIGINT NOT NULL
      );
      CREATE TABLE device_tokens (
        device_id TEXT NOT NULL REFERENCES paired_devices (device_id) ON DELETE CASCADE,
        role TEXT NOT NULL,
        token_hash TEXT NOT NULL,
        scopes TEXT NOT NULL,
        created_at_ms BIGINT NOT NULL,
        rotated_at_ms BIGINT,
        revoked_at_ms BIGINT,
        last_used_at_ms BIGINT,
        PRIMARY KEY (device_id, role)
      );
      CREATE TABLE pending_requests (
        request_id TEXT PRIMARY KEY,
        device_id TEXT NOT NULL,
        public_key TEXT NOT NULL,
        role TEXT NOT NULL,
        roles TEXT NOT NULL,
        scopes TEXT NOT NULL,
        reason TEXT NOT NULL,
        is_repair SMALLINT NOT NULL CHECK (is_repair IN (0, 1)),
        requester_ip TEXT NOT NULL,${METADATA_COLUMNS},
        ts BIGINT NOT NULL,
        expires_at_ms BIGINT NOT NULL
      );
      CREATE INDEX pending_requests_device_id ON pending_requests (device_id);
      CREATE INDEX pending_requests_requester_ip ON pending_requests (requester_ip);
      CREATE INDEX pending_requests_expires_at_ms ON pending_requests (expires_at_ms);
      CREATE TABLE backends (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL CONSTRAINT backends_name_key UNIQUE,
        secret_hash TEXT NOT NULL CONSTRAINT backends_secret_hash_key UNIQUE,
        scopes TEXT NOT NULL,
        created_at_ms BIGINT NOT NULL,
        revoked_at_ms BIGINT,
        last_used_at_ms BIGINT
      );
      CREATE TABLE bootstrap_tokens (
        id TEXT PRIMARY KEY,
        token_hash TEXT NOT NULL UNIQUE,
        roles TEXT NOT NULL,
        scopes TEXT NOT NULL,
        created_at_ms BIGINT NOT NULL,
        expires_at_ms BIGINT NOT NULL,
        consumed_at_ms BIGINT,
        consumed_by_device_id TEXT
      );
      CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
      );
      -- Identity values are never reused, so a tailer's cursor stays valid after pruning.
      CREATE TABLE changes (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        ts BIGINT NOT NULL,
        kind TEXT NOT NULL,
        payload TEXT NOT NULL
      );
      CREATE INDEX changes_ts ON changes (ts);
      CREATE TABLE commit_counter (
        singleton BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
        n BIGINT NOT NULL
      );
      INSERT INTO commit_counter (singleton, n) VALUES (TRUE, 0);
      CREATE TABLE auth_failures (
        key TEXT NOT NULL,
        at_ms BIGINT NOT NULL
      );
      CREATE INDEX auth_failures_key_at ON auth_failures (key, at_ms);
      CREATE TABLE auth_lockouts (
        key TEXT PRIMARY KEY,
        until_ms BIGINT NOT NULL
      );
    `,
  },
  {
    // The tamper-evident audit log (audit-chain.ts).
    version: 2,
    sql: `
      CREATE TABLE audit_log (
        seq BIGINT PRIMARY KEY,
        ts BIGINT NOT NULL,
        event TEXT NOT NULL,
        prev TEXT NOT NULL,
        hash TEXT NOT NULL
      );
      CREATE INDEX audit_log_ts ON audit_log (ts);
    `,
  },
];

/** Rows per INSERT when appending audit rows (5 parameters each, far below PostgreSQL's 65535). */
const AUDIT_INSERT_CHUNK = 500;

export const POSTGRES_SCHEMA_VERSION: number = MIGRATIONS.at(-1)?.version ?? 0;

const DEVICE_SELECT = `
  SELECT d.device_id, d.public_key, d.display_name, d.platform, d.device_family, d.client_id,
         d.client_mode, d.remote_ip, d.roles, d.approved_scopes, d.created_at_ms, d.approved_at_ms,
         (SELECT COALESCE(json_agg(json_build_object(
                   'role', t.role, 'token_hash', t.token_hash, 'scopes', t.scopes::json,
                   'created_at_ms', t.created_at_ms, 'rotated_at_ms', t.rotated_at_ms,
                   'revoked_at_ms', t.revoked_at_ms, 'last_used_at_ms', t.last_used_at_ms)), '[]')::text
            FROM device_tokens t WHERE t.device_id = d.device_id) AS tokens
    FROM paired_devices d`;
// COLLATE "C": byte order, as SQLite and the memory store sort.
const PENDING_ORDER = `ORDER BY ts DESC, request_id COLLATE "C"`;

/** The URL parameters pg reads a secret from, besides user:password@. */
const PASSWORD_PARAMS = ["password", "sslpassword"] as const;

/** Whether a postgres:// URL carries a secret (user:password@, ?password=, ?sslpassword=). */
export function postgresUrlHasPassword(u: URL): boolean {
  return u.password !== "" || PASSWORD_PARAMS.some((name) => u.searchParams.has(name));
}

/** Hides the password of a postgres:// URL, for messages and logs. */
export function redactPostgresUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== "") u.password = "***";
    for (const name of PASSWORD_PARAMS) if (u.searchParams.has(name)) u.searchParams.set(name, "***");
    return u.toString().replace(/=\*\*\*/g, "=***").replace(/%2A%2A%2A/g, "***");
  } catch {
    return "postgres://(unparsable URL)";
  }
}

const UNAVAILABLE_SQLSTATE_CLASSES = new Set(["08", "53", "57", "58"]);
const UNAVAILABLE_SQLSTATES = new Set(["55P03", "40001", "40P01"]);

/** The database could not be reached or the statement could not finish in bounded time: retryable. */
function isUnavailable(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code === "string") {
    if (code.length === 5 && (UNAVAILABLE_SQLSTATE_CLASSES.has(code.slice(0, 2)) || UNAVAILABLE_SQLSTATES.has(code))) return true;
    if (/^E[A-Z]+$/.test(code)) return true; // ECONNREFUSED, ECONNRESET, ETIMEDOUT, EPIPE, EHOSTUNREACH…
  }
  const message = e instanceof Error ? e.message : "";
  return /Connection terminated|connection timeout|timeout exceeded|Query read timeout|Client has encountered a connection error|not queryable|Connection ended/i.test(message);
}

function isUniqueViolation(e: unknown): e is Error & { constraint?: string } {
  return (e as { code?: unknown } | null)?.code === "23505";
}

type Queryable = Pick<pg.PoolClient, "query">;

function makeReader(db: () => Queryable, check: () => void, fail: (e: unknown) => never): StoreReader {
  const rows = async <R extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<R[]> => {
    check();
    try {
      return (await db().query<R>(sql, params)).rows;
    } catch (e) {
      return fail(e);
    }
  };
  const one = async <R extends pg.QueryResultRow>(sql: string, params: unknown[]): Promise<R | undefined> => (await rows<R>(sql, params))[0];
  return {
    async getPairedDevice(deviceId) {
      const row = await one<DeviceRow>(`${DEVICE_SELECT} WHERE d.device_id = $1`, [deviceId]);
      return row && decodeDevice(row);
    },
    async listPairedDevices() {
      return (await rows<DeviceRow>(`${DEVICE_SELECT} ORDER BY d.approved_at_ms DESC, d.device_id COLLATE "C"`)).map(decodeDevice);
    },
    async getPendingRequest(requestId) {
      const row = await one<PendingRow>("SELECT * FROM pending_requests WHERE request_id = $1", [requestId]);
      return row && decodePending(row);
    },
    async listPendingRequests() {
      return (await rows<PendingRow>(`SELECT * FROM pending_requests ${PENDING_ORDER}`)).map(decodePending);
    },
    async listPendingForDevice(deviceId) {
      return (await rows<PendingRow>(`SELECT * FROM pending_requests WHERE device_id = $1 ${PENDING_ORDER}`, [deviceId])).map(decodePending);
    },
    async countPendingRequests(filter) {
      const ip = filter?.requesterIp;
      const row =
        ip === undefined
          ? await one<{ n: number }>("SELECT COUNT(*) AS n FROM pending_requests", [])
          : await one<{ n: number }>("SELECT COUNT(*) AS n FROM pending_requests WHERE requester_ip = $1", [ip]);
      return row?.n ?? 0;
    },
    async getBackendBySecretHash(secretHash) {
      const row = await one<BackendRow>("SELECT * FROM backends WHERE secret_hash = $1", [secretHash]);
      return row && decodeBackend(row);
    },
    async getBackendByName(name) {
      const row = await one<BackendRow>("SELECT * FROM backends WHERE name = $1", [name]);
      return row && decodeBackend(row);
    },
    async listBackends() {
      return (await rows<BackendRow>(`SELECT * FROM backends ORDER BY name COLLATE "C"`)).map(decodeBackend);
    },
    async getBootstrapByTokenHash(tokenHash) {
      const row = await one<BootstrapRow>("SELECT * FROM bootstrap_tokens WHERE token_hash = $1", [tokenHash]);
      return row && decodeBootstrap(row);
    },
    async getSetting(key) {
      return (await one<{ value: string }>("SELECT value FROM settings WHERE key = $1", [key]))?.value;
    },
    async listBootstrapTokens() {
      return (await rows<BootstrapRow>(`SELECT * FROM bootstrap_tokens ORDER BY id COLLATE "C"`)).map(decodeBootstrap);
    },
    async listSettings() {
      return rows<{ key: string; value: string }>(`SELECT key, value FROM settings ORDER BY key COLLATE "C"`);
    },
    async changesSince(afterId, limit) {
      if (limit <= 0) return [];
      return (await rows<ChangeRow>("SELECT * FROM changes WHERE id > $1 ORDER BY id LIMIT $2", [afterId, limit])).map(decodeChange);
    },
    async latestChangeId() {
      return (await one<{ id: number }>("SELECT COALESCE(MAX(id), 0)::int8 AS id FROM changes", []))?.id ?? 0;
    },
    async auditRows(afterSeq, limit) {
      if (limit <= 0) return [];
      return rows<AuditRow>("SELECT seq, ts, event, prev, hash FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2", [afterSeq, limit]);
    },
    async newestAuditRow() {
      return one<AuditRow>("SELECT seq, ts, event, prev, hash FROM audit_log ORDER BY seq DESC LIMIT 1", []);
    },
    async lastAuditSeqBefore(beforeMs) {
      return (await one<{ seq: number | null }>("SELECT MAX(seq) AS seq FROM audit_log WHERE ts < $1", [beforeMs]))?.seq ?? undefined;
    },
  };
}

/** `wrote()` tells whether any statement changed a row (a transaction that changed none is not announced). */
function makeWriter(client: Queryable, check: () => void, fail: (e: unknown) => never): StoreWriter & { wrote(): boolean } {
  let changed = false;
  const quiet = async (sql: string, params: unknown[]): Promise<number> => {
    check();
    try {
      return (await client.query(sql, params)).rowCount ?? 0;
    } catch (e) {
      return fail(e);
    }
  };
  const run = async (sql: string, params: unknown[]): Promise<number> => {
    const n = await quiet(sql, params);
    if (n > 0) changed = true;
    return n;
  };
  return {
    ...makeReader(() => client, check, fail),
    async putPairedDevice(record) {
      assertTokenRolesMatch(record);
      const d = encodeDevice(record);
      await run(
        `INSERT INTO paired_devices (device_id, public_key, display_name, platform, device_family, client_id,
                                     client_mode, remote_ip, roles, approved_scopes, created_at_ms, approved_at_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         ON CONFLICT (device_id) DO UPDATE SET
           public_key = excluded.public_key, display_name = excluded.display_name, platform = excluded.platform,
           device_family = excluded.device_family, client_id = excluded.client_id, client_mode = excluded.client_mode,
           remote_ip = excluded.remote_ip, roles = excluded.roles, approved_scopes = excluded.approved_scopes,
           created_at_ms = excluded.created_at_ms, approved_at_ms = excluded.approved_at_ms`,
        [d.device_id, d.public_key, d.display_name, d.platform, d.device_family, d.client_id, d.client_mode, d.remote_ip, d.roles, d.approved_scopes, d.created_at_ms, d.approved_at_ms],
      );
      // The record's token map is the whole truth: tokens it no longer has go.
      await run("DELETE FROM device_tokens WHERE device_id = $1", [record.deviceId]);
      for (const token of Object.values(record.tokens)) {
        if (token === undefined) continue;
        const t = encodeToken(record.deviceId, token);
        await run(
          `INSERT INTO device_tokens (device_id, role, token_hash, scopes, created_at_ms, rotated_at_ms, revoked_at_ms, last_used_at_ms)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
          [t.device_id, t.role, t.token_hash, t.scopes, t.created_at_ms, t.rotated_at_ms, t.revoked_at_ms, t.last_used_at_ms],
        );
      }
    },
    async deletePairedDevice(deviceId) {
      // device_tokens rows go with it (ON DELETE CASCADE).
      return (await run("DELETE FROM paired_devices WHERE device_id = $1", [deviceId])) > 0;
    },
    async putPendingRequest(record) {
      const r = encodePending(record);
      await run(
        `INSERT INTO pending_requests (request_id, device_id, public_key, display_name, platform, device_family, client_id,
           client_mode, remote_ip, role, roles, scopes, reason, is_repair, requester_ip, ts, expires_at_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
         ON CONFLICT (request_id) DO UPDATE SET
           device_id = excluded.device_id, public_key = excluded.public_key, display_name = excluded.display_name,
           platform = excluded.platform, device_family = excluded.device_family, client_id = excluded.client_id,
           client_mode = excluded.client_mode, remote_ip = excluded.remote_ip, role = excluded.role, roles = excluded.roles,
           scopes = excluded.scopes, reason = excluded.reason, is_repair = excluded.is_repair,
           requester_ip = excluded.requester_ip, ts = excluded.ts, expires_at_ms = excluded.expires_at_ms`,
        [r.request_id, r.device_id, r.public_key, r.display_name, r.platform, r.device_family, r.client_id, r.client_mode, r.remote_ip, r.role, r.roles, r.scopes, r.reason, r.is_repair, r.requester_ip, r.ts, r.expires_at_ms],
      );
    },
    async deletePendingRequest(requestId) {
      return (await run("DELETE FROM pending_requests WHERE request_id = $1", [requestId])) > 0;
    },
    async deletePendingForDevice(deviceId) {
      return run("DELETE FROM pending_requests WHERE device_id = $1", [deviceId]);
    },
    async deleteExpiredPending(nowMs) {
      check();
      try {
        const res = await client.query<PendingRow>("DELETE FROM pending_requests WHERE expires_at_ms <= $1 RETURNING *", [nowMs]);
        if (res.rows.length > 0) changed = true;
        return res.rows.map(decodePending).sort((a, b) => b.ts - a.ts || (a.requestId < b.requestId ? -1 : a.requestId > b.requestId ? 1 : 0));
      } catch (e) {
        return fail(e);
      }
    },
    async putBackend(record) {
      const b = encodeBackend(record);
      try {
        // ON CONFLICT (id) only: a clash on name or secret_hash with another backend must fail.
        await run(
          `INSERT INTO backends (id, name, secret_hash, scopes, created_at_ms, revoked_at_ms, last_used_at_ms)
           VALUES ($1, $2, $3, $4, $5, $6, $7)
           ON CONFLICT (id) DO UPDATE SET
             name = excluded.name, secret_hash = excluded.secret_hash, scopes = excluded.scopes,
             created_at_ms = excluded.created_at_ms, revoked_at_ms = excluded.revoked_at_ms, last_used_at_ms = excluded.last_used_at_ms`,
          [b.id, b.name, b.secret_hash, b.scopes, b.created_at_ms, b.revoked_at_ms, b.last_used_at_ms],
        );
      } catch (err) {
        if (!isUniqueViolation(err)) throw err;
        const what = err.constraint === "backends_name_key" ? `backend name "${record.name}" is already taken` : "backend secret hash is already in use";
        throw new StoreConflictError(what, { cause: err });
      }
    },
    async putBootstrap(record) {
      const b = encodeBootstrap(record);
      try {
        await run(
          `INSERT INTO bootstrap_tokens (id, token_hash, roles, scopes, created_at_ms, expires_at_ms, consumed_at_ms, consumed_by_device_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
           ON CONFLICT (id) DO UPDATE SET
             token_hash = excluded.token_hash, roles = excluded.roles, scopes = excluded.scopes,
             created_at_ms = excluded.created_at_ms, expires_at_ms = excluded.expires_at_ms,
             consumed_at_ms = excluded.consumed_at_ms, consumed_by_device_id = excluded.consumed_by_device_id`,
          [b.id, b.token_hash, b.roles, b.scopes, b.created_at_ms, b.expires_at_ms, b.consumed_at_ms, b.consumed_by_device_id],
        );
      } catch (err) {
        if (!isUniqueViolation(err)) throw err;
        throw new StoreConflictError("bootstrap token hash is already in use", { cause: err });
      }
    },
    async deleteStaleBootstrap(beforeMs) {
      return run("DELETE FROM bootstrap_tokens WHERE expires_at_ms < $1 OR consumed_at_ms < $1", [beforeMs]);
    },
    async setSetting(key, value) {
      await run("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value", [key, value]);
    },
    async appendChange(change, ts) {
      await run("INSERT INTO changes (ts, kind, payload) VALUES ($1, $2, $3)", [ts, change.kind, encodeChangePayload(change)]);
    },
    async pruneChanges(beforeMs) {
      return run("DELETE FROM changes WHERE ts < $1", [beforeMs]);
    },
    // Audit writes do not count as a change other instances must react to.
    async appendAuditRows(list) {
      for (let i = 0; i < list.length; i += AUDIT_INSERT_CHUNK) {
        const chunk = list.slice(i, i + AUDIT_INSERT_CHUNK);
        const values = chunk.map((_r, j) => `($${j * 5 + 1}, $${j * 5 + 2}, $${j * 5 + 3}, $${j * 5 + 4}, $${j * 5 + 5})`).join(", ");
        await quiet(`INSERT INTO audit_log (seq, ts, event, prev, hash) VALUES ${values}`, chunk.flatMap((r) => [r.seq, r.ts, r.event, r.prev, r.hash]));
      }
    },
    async deleteAuditThrough(seq) {
      return quiet("DELETE FROM audit_log WHERE seq <= $1", [seq]);
    },
    async setAuditSetting(key, value) {
      assertAuditSetting(key);
      await quiet("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value", [key, value]);
    },
    wrote: () => changed,
  };
}

/** Bring the schema up to POSTGRES_SCHEMA_VERSION, once, however many instances start at the same time. */
async function migrate(client: pg.PoolClient, where: string): Promise<void> {
  await client.query("BEGIN");
  try {
    await client.query("SELECT pg_advisory_xact_lock($1)", [MIGRATION_LOCK_KEY]);
    await client.query("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at_ms BIGINT NOT NULL)");
    const current = (await client.query<{ v: number }>("SELECT COALESCE(MAX(version), 0)::int8 AS v FROM schema_migrations")).rows[0]?.v ?? 0;
    if (current > POSTGRES_SCHEMA_VERSION) {
      throw new Error(
        `gatewarden store ${where} has schema version ${current}, newer than version ${POSTGRES_SCHEMA_VERSION} that this build knows; ` +
          "refusing to use it. Upgrade gatewarden on every instance.",
      );
    }
    for (const m of MIGRATIONS) {
      if (m.version <= current) continue;
      await client.query(m.sql);
      await client.query("INSERT INTO schema_migrations (version, applied_at_ms) VALUES ($1, $2)", [m.version, systemClock.now()]);
    }
    await client.query("COMMIT");
  } catch (e) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw e;
  }
}

export interface PostgresStore extends Store {
  readonly kind: "postgres";
}

/** The pg type parsers, with int8 as a number (see INT8_OID), for this store's connections only. */
const TYPES = {
  getTypeParser: ((oid: number, format?: "text" | "binary") =>
    oid === INT8_OID && format !== "binary" ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format ?? "text")) as typeof pg.types.getTypeParser,
};

/**
 * Connect, migrate, and (with `listen`) start the listening connection. Fails
 * with one line naming the database (password hidden) when it cannot be reached.
 */
export async function openPostgresStore(opts: PostgresStoreOptions): Promise<PostgresStore> {
  const where = redactPostgresUrl(opts.url);
  const lockWaitMs = opts.lockWaitMs ?? DEFAULT_LOCK_WAIT_MS;
  const connectTimeoutMs = opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const statementTimeoutMs = opts.statementTimeoutMs ?? DEFAULT_STATEMENT_TIMEOUT_MS;
  const warn = opts.warn ?? (() => undefined);
  const clientConfig: pg.ClientConfig = {
    connectionString: opts.url,
    connectionTimeoutMillis: connectTimeoutMs,
    statement_timeout: statementTimeoutMs,
    // A partitioned server answers nothing: the client gives up a little after the server would.
    query_timeout: statementTimeoutMs + 1000,
    application_name: "gatewarden",
    keepAlive: true,
    types: TYPES,
  };
  const pool = new pg.Pool({ ...clientConfig, max: opts.poolSize ?? 10, idleTimeoutMillis: 30_000 });
  // An idle connection that dies (server restart) is reported here; the pool replaces it on demand.
  pool.on("error", (e) => warn(`PostgreSQL connection lost (${e.message}); it is replaced on next use`));

  const unavailable = (e: unknown): StoreUnavailableError =>
    new StoreUnavailableError(`gatewarden store ${where} is unavailable (${e instanceof Error ? e.message : String(e)}); retry`, 1000, { cause: e });
  const fail = (e: unknown): never => {
    if (e instanceof StoreUnavailableError || !isUnavailable(e)) throw e;
    throw unavailable(e);
  };

  let first: pg.PoolClient;
  try {
    first = await pool.connect();
  } catch (e) {
    await pool.end().catch(() => undefined);
    throw new Error(`cannot connect to the PostgreSQL store ${where}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  try {
    await migrate(first, where);
  } catch (e) {
    first.release();
    await pool.end().catch(() => undefined);
    throw e instanceof Error && e.message.includes(where) ? e : new Error(`cannot prepare the PostgreSQL store ${where}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  first.release();

  let closed = false;
  const checkOpen = (): void => {
    if (closed) throw new Error(`gatewarden store ${where} is closed`);
  };
  const mutex = new AsyncMutex();
  const listeners = new Set<(n: StoreNotice) => void>();
  const emit = (n: StoreNotice): void => {
    for (const l of [...listeners]) l(n);
  };

  // --- The listening connection -------------------------------------------
  let listener: pg.Client | undefined;
  let live = false;
  let reconnectTimer: NodeJS.Timeout | undefined;
  let pingTimer: NodeJS.Timeout | undefined;
  let reconnectDelay = 100;
  let lastAnswerAt = 0;
  const pingMs = opts.pingMs ?? DEFAULT_PING_MS;

  const dropListener = (reason: string): void => {
    const old = listener;
    listener = undefined;
    if (pingTimer) clearInterval(pingTimer);
    pingTimer = undefined;
    old?.removeAllListeners("notification");
    old?.removeAllListeners("end");
    old?.on("error", () => undefined);
    void old?.end().catch(() => undefined);
    if (live) {
      live = false;
      emit({ kind: "interrupted", reason });
    }
    if (!closed && opts.listen === true && reconnectTimer === undefined) {
      reconnectTimer = setTimeout(() => {
        reconnectTimer = undefined;
        void connectListener();
      }, reconnectDelay);
      reconnectTimer.unref();
      reconnectDelay = Math.min(reconnectDelay * 2, 2000);
    }
  };

  const connectListener = async (): Promise<void> => {
    if (closed) return;
    const client = new pg.Client({ ...clientConfig, query_timeout: 2 * pingMs });
    client.on("error", (e) => {
      if (listener === client) dropListener(`connection to ${where} lost: ${e.message}`);
    });
    client.on("end", () => {
      if (listener === client) dropListener(`connection to ${where} closed`);
    });
    client.on("notification", (msg) => {
      if (msg.channel === COMMIT_CHANNEL) {
        emit({ kind: "commit" });
      } else if (msg.channel === LOCKOUT_CHANNEL && msg.payload !== undefined) {
        const lockout = parseLockout(msg.payload);
        if (lockout) emit({ kind: "lockout", ...lockout });
      }
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${COMMIT_CHANNEL}`);
      await client.query(`LISTEN ${LOCKOUT_CHANNEL}`);
    } catch (e) {
      client.removeAllListeners("end");
      void client.end().catch(() => undefined);
      listener = undefined;
      dropListener(`cannot listen on ${where}: ${e instanceof Error ? e.message : String(e)}`);
      return;
    }
    if (closed) {
      void client.end().catch(() => undefined);
      return;
    }
    listener = client;
    live = true;
    reconnectDelay = 100;
    lastAnswerAt = Date.now();
    pingTimer = setInterval(() => {
      // A partitioned network closes nothing: a ping that gets no answer does.
      client.query("SELECT 1").then(
        () => {
          if (listener === client) lastAnswerAt = Date.now();
        },
        (e: unknown) => {
          if (listener === client) dropListener(`${where} does not answer: ${e instanceof Error ? e.message : String(e)}`);
        },
      );
    }, pingMs);
    pingTimer.unref();
    emit({ kind: "resumed" });
  };

  if (opts.listen === true) {
    await connectListener();
    if (!live) {
      await pool.end().catch(() => undefined);
      throw new Error(`cannot listen for changes on the PostgreSQL store ${where}`);
    }
  }

  const notices: StoreNotices = {
    subscribe(l) {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    // A listener that has not answered a ping lately may be cut off without knowing:
    // what it would have been told is not trusted to have arrived.
    live: () => live && Date.now() - lastAnswerAt <= LIVE_WITHOUT_ANSWER_PINGS * pingMs,
  };

  const withClient = async <T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> => {
    let client: pg.PoolClient;
    try {
      client = await pool.connect();
    } catch (e) {
      throw unavailable(e);
    }
    let broken: Error | undefined;
    try {
      return await fn(client);
    } catch (e) {
      if (isUnavailable(e) || e instanceof StoreUnavailableError) broken = e instanceof Error ? e : new Error(String(e));
      throw e;
    } finally {
      // A connection that failed mid-transaction is not given to anyone else.
      client.release(broken);
    }
  };

  const lockouts: SharedLockouts = {
    async recordFailure(key, nowMs, rule) {
      checkOpen();
      try {
        return await withClient(async (c) => {
          await c.query("BEGIN");
          try {
            // Serialized per key, so two instances counting at once cannot both miss the limit.
            await c.query("SELECT pg_advisory_xact_lock(hashtext($1))", [`gatewarden-auth:${key}`]);
            await c.query("DELETE FROM auth_failures WHERE key = $1 AND at_ms <= $2", [key, nowMs - rule.windowMs]);
            await c.query("INSERT INTO auth_failures (key, at_ms) VALUES ($1, $2)", [key, nowMs]);
            const n = (await c.query<{ n: number }>("SELECT COUNT(*) AS n FROM auth_failures WHERE key = $1", [key])).rows[0]?.n ?? 0;
            const running = (await c.query<{ until_ms: number }>("SELECT until_ms FROM auth_lockouts WHERE key = $1 AND until_ms > $2", [key, nowMs])).rows[0]?.until_ms;
            let untilMs: number | undefined = running;
            if (running === undefined && n >= rule.maxFailures) {
              untilMs = nowMs + rule.lockoutMs;
              await c.query("DELETE FROM auth_failures WHERE key = $1", [key]);
              await c.query(
                "INSERT INTO auth_lockouts (key, until_ms) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET until_ms = GREATEST(auth_lockouts.until_ms, excluded.until_ms)",
                [key, untilMs],
              );
              await c.query("SELECT pg_notify($1, $2)", [LOCKOUT_CHANNEL, JSON.stringify({ key, untilMs })]);
            }
            await c.query("COMMIT");
            return untilMs;
          } catch (e) {
            await c.query("ROLLBACK").catch(() => undefined);
            throw e;
          }
        });
      } catch (e) {
        return fail(e);
      }
    },
    async lockedUntil(key, nowMs) {
      checkOpen();
      try {
        return (await pool.query<{ until_ms: number }>("SELECT until_ms FROM auth_lockouts WHERE key = $1 AND until_ms > $2", [key, nowMs])).rows[0]?.until_ms;
      } catch (e) {
        return fail(e);
      }
    },
    async activeLockouts(nowMs) {
      checkOpen();
      try {
        const res = await pool.query<{ key: string; until_ms: number }>("SELECT key, until_ms FROM auth_lockouts WHERE until_ms > $1", [nowMs]);
        return res.rows.map((r) => ({ key: r.key, untilMs: r.until_ms }));
      } catch (e) {
        return fail(e);
      }
    },
  };

  /** One transaction; `announce`: a commit that changed rows bumps the counter and is announced (audit-only ones are not). */
  function runTx<T>(fn: (tx: StoreWriter) => Promise<T>, announce: boolean): Promise<T> {
    checkOpen();
    return mutex.run(() =>
      withClient(async (client) => {
        checkOpen();
        try {
          await client.query("BEGIN");
          await client.query(`SET LOCAL lock_timeout = ${Math.max(1, Math.floor(lockWaitMs))}`);
          await client.query("SELECT pg_advisory_xact_lock($1)", [WRITE_LOCK_KEY]);
        } catch (e) {
          await client.query("ROLLBACK").catch(() => undefined);
          if ((e as { code?: unknown }).code === "55P03") {
            throw new StoreUnavailableError(`gatewarden store ${where} is locked by another writer (waited ${lockWaitMs} ms); retry`, 1000, { cause: e });
          }
          return fail(e);
        }
        let liveTx = true;
        const tx = makeWriter(
          client,
          () => {
            if (!liveTx) throw new Error("transaction handle used after its transaction ended");
          },
          fail,
        );
        try {
          const result = await fn(tx);
          // Every commit that changed something is announced: other instances drop what
          // they cached. One that changed nothing (housekeeping with nothing to clear,
          // every 30 s on every instance) would only empty every instance's cache.
          if (announce && tx.wrote()) {
            await client.query("UPDATE commit_counter SET n = n + 1");
            await client.query(`NOTIFY ${COMMIT_CHANNEL}`);
          }
          await client.query("COMMIT");
          return result;
        } catch (e) {
          await client.query("ROLLBACK").catch(() => undefined);
          return fail(e);
        } finally {
          liveTx = false;
        }
      }),
    );
  }

  return {
    kind: "postgres",
    ...(opts.listen === true ? { notices } : {}),
    lockouts,
    ...makeReader(() => pool, checkOpen, fail),

    async transact<T>(fn: (tx: StoreWriter) => Promise<T>, txOpts?: TransactOptions): Promise<T> {
      return runTx(auditedBody(fn, txOpts, opts.auditActor ?? "gateway"), true);
    },

    async appendAudit(events) {
      await runTx((tx) => appendAuditEvents(tx, events, Date.now()), false);
    },

    async auditTransact(fn) {
      return runTx(fn, false);
    },

    async commitMarker() {
      checkOpen();
      try {
        return (await pool.query<{ n: number }>("SELECT n FROM commit_counter")).rows[0]?.n ?? 0;
      } catch (e) {
        return fail(e);
      }
    },

    lost: () => undefined,

    async damage() {
      checkOpen();
      // The server keeps its own data whole; what can be wrong here is a schema another version changed.
      try {
        const v = (await pool.query<{ v: number }>("SELECT COALESCE(MAX(version), 0)::int8 AS v FROM schema_migrations")).rows[0]?.v ?? 0;
        return v === POSTGRES_SCHEMA_VERSION ? undefined : `the PostgreSQL store ${where} has schema version ${v}, this build uses ${POSTGRES_SCHEMA_VERSION}`;
      } catch (e) {
        if (isUnavailable(e)) return undefined; // unreachable is not damaged; the outage path handles it
        return e instanceof Error ? e.message : String(e);
      }
    },

    async close() {
      await mutex.run(async () => {
        if (closed) return;
        closed = true;
        if (reconnectTimer) clearTimeout(reconnectTimer);
        if (pingTimer) clearInterval(pingTimer);
        const l = listener;
        listener = undefined;
        live = false;
        listeners.clear();
        if (l) {
          l.removeAllListeners("end");
          await l.end().catch(() => undefined);
        }
        await pool.end().catch(() => undefined);
      });
    },
  };
}

function parseLockout(payload: string): { key: string; untilMs: number } | undefined {
  try {
    const v = JSON.parse(payload) as { key?: unknown; untilMs?: unknown };
    return typeof v.key === "string" && typeof v.untilMs === "number" ? { key: v.key, untilMs: v.untilMs } : undefined;
  } catch {
    return undefined;
  }
}
