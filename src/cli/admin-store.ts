import { existsSync } from "node:fs";
import { databasePath } from "../config.js";
import { assertPrivatePath, UnsafePathError } from "../private-path.js";
import { openSqliteReader, openSqliteStore } from "../store/sqlite-store.js";
import type { Store, StoreReader } from "../store/store.js";

export class CliError extends Error {
  override readonly name = "CliError";
  constructor(
    message: string,
    readonly exitCode = 1,
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
 * machine's owner (or root) can. A running gateway sees the change within its
 * poll interval and reacts (events, closed sessions).
 */
export async function withAdminStore<T>(stateDir: string, fn: (store: Store) => Promise<T>): Promise<T> {
  const path = existingDatabasePath(stateDir);
  let store: Store;
  try {
    // A full disk is said once, on stderr, when a revocation had to use the reserved space.
    store = openSqliteStore({ path, warn: (message) => process.stderr.write(`gatewarden: ${message}\n`) });
  } catch (e) {
    throw new CliError(`cannot open ${path}: ${e instanceof Error ? e.message : String(e)}`);
  }
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

/**
 * What the read-only commands (`devices list`, `backends list`) get: a reader,
 * so they cannot write, and never wait for the write lock or need writable
 * media.
 */
export async function withAdminReader<T>(stateDir: string, fn: (reader: StoreReader) => Promise<T>): Promise<T> {
  const path = existingDatabasePath(stateDir);
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

function existingDatabasePath(stateDir: string): string {
  const path = privateDatabasePath(stateDir);
  if (!existsSync(path)) {
    throw new CliError(`no gateway state at ${stateDir} (start it once with "gatewarden serve", or pass --state-dir)`);
  }
  return path;
}
