import { existsSync } from "node:fs";
import { adminStoreLocation, ConfigError, databasePath, type StoreLocation } from "../config.js";
import { assertPrivatePath, UnsafePathError } from "../private-path.js";
import { openSqliteReader, openSqliteStore } from "../store/sqlite-store.js";
import { openPostgresStore } from "../store/postgres-store.js";
import type { Store, StoreReader } from "../store/store.js";
import type { StateDirOption } from "./state-dir-option.js";

export class CliError extends Error {
  override readonly name = "CliError";
  constructor(
    message: string,
    readonly exitCode = 1,
    /** Stable, for `--json` output: a protocol `details.code` where one applies, else CLI_USAGE / CLI_ERROR. */
    readonly code: string = exitCode === 2 ? "CLI_USAGE" : "CLI_ERROR",
  ) {
    super(message);
  }
}

/** The state dir's database path, once the dir and the file are found private to their owner (A55). */
export function privateDatabasePath(stateDir: string): string {
  const path = databasePath(stateDir);
  try {
    assertPrivatePath(stateDir, "state dir");
    assertPrivatePath(path, "database");
  } catch (e) {
    if (e instanceof UnsafePathError) throw new CliError(e.message);
    throw e;
  }
  return path;
}

/**
 * The admin commands act on the gateway's store directly. Opening it is the
 * owner's proof: the state dir is 0700 and the database 0600, so only the
 * machine's owner (or root) can; a PostgreSQL store takes its credentials.
 * A running gateway sees the change within its poll interval (SQLite) or at
 * once (PostgreSQL's notifications) and reacts (events, closed sessions).
 */
export async function withAdminStore<T>(opts: StateDirOption, fn: (store: Store) => Promise<T>): Promise<T> {
  const location = storeLocation(opts);
  let store: Store;
  if (location.kind === "postgres") {
    try {
      store = await openPostgresStore({ url: location.url, auditActor: "owner", warn: (message) => process.stderr.write(`gatewarden: ${message}\n`) });
    } catch (e) {
      throw new CliError(e instanceof Error ? e.message : String(e));
    }
  } else {
    const path = existingDatabasePath(opts.stateDir());
    try {
      // A full disk is said once, on stderr, when a revocation had to use the reserved space.
      store = openSqliteStore({ path, auditActor: "owner", warn: (message) => process.stderr.write(`gatewarden: ${message}\n`) });
    } catch (e) {
      throw new CliError(`cannot open ${path}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

/**
 * What the read-only commands (`devices list`, `backends list`) get: a reader,
 * so they cannot write, and (SQLite) never wait for the write lock or need
 * writable media.
 */
export async function withAdminReader<T>(opts: StateDirOption, fn: (reader: StoreReader) => Promise<T>): Promise<T> {
  const location = storeLocation(opts);
  if (location.kind === "postgres") return withAdminStore(opts, fn);
  const path = existingDatabasePath(opts.stateDir());
  let reader;
  try {
    reader = openSqliteReader(path);
  } catch (e) {
    throw new CliError(`cannot read ${path}: ${e instanceof Error ? e.message : String(e)}`);
  }
  try {
    return await fn(reader);
  } finally {
    reader.close();
  }
}

function storeLocation(opts: StateDirOption): StoreLocation {
  try {
    return adminStoreLocation(opts.stateDir(), opts.storeFlag(), process.env);
  } catch (e) {
    if (e instanceof ConfigError) throw new CliError(e.message, 2);
    throw e;
  }
}

function existingDatabasePath(stateDir: string): string {
  const path = privateDatabasePath(stateDir);
  if (!existsSync(path)) {
    throw new CliError(`no gateway state at ${stateDir} (start it once with "gatewarden serve", or pass --state-dir)`);
  }
  return path;
}
