import { createRequire } from "node:module";
import type BetterSqlite3 from "better-sqlite3";

// Why two better-sqlite3 versions under two names: no one release runs on every
// Node gatewarden supports.
// - 13.x (`better-sqlite3`) is an N-API add-on whose npm package carries
//   prebuilt binaries, so Node 22/24 need no compiler; it requires Node >= 22
//   and crashes on Node 20.
// - 12.x (`better-sqlite3-node20`, an optional dependency, built from source
//   for the Node that installs it) runs on Node 20 but aborts on Node 24
//   (`(env) != nullptr` in Database::~Database).
// The running major picks one, here and nowhere else.

export type SqliteDriver = typeof BetterSqlite3;

/** The installed package (a name in package.json) that this Node major can load. */
export function sqliteDriverPackage(nodeVersion: string): "better-sqlite3" | "better-sqlite3-node20" {
  return Number(nodeVersion.split(".")[0]) >= 22 ? "better-sqlite3" : "better-sqlite3-node20";
}

const HOW_TO_FIX = {
  "better-sqlite3": "prebuilt for Linux, macOS and Windows on x64 and arm64; reinstall gatewarden with this Node",
  "better-sqlite3-node20":
    "built from source when gatewarden is installed, which needs python3, make and a C++ compiler; reinstall gatewarden with this Node and a compiler, or run it on Node 22 or 24",
} as const;

/**
 * The driver for `nodeVersion`, or, when it cannot be loaded, a stand-in whose
 * constructor throws one line saying why: only opening a SQLite database fails,
 * through the CLI's usual error path, while --help, --version and a PostgreSQL
 * store keep working.
 */
export function loadSqliteDriver(nodeVersion: string, load: (id: string) => unknown): SqliteDriver {
  const pkg = sqliteDriverPackage(nodeVersion);
  try {
    return load(pkg) as SqliteDriver;
  } catch (e) {
    const reason = (e instanceof Error ? e.message : String(e)).split("\n")[0];
    const message = `the SQLite driver for Node ${nodeVersion} (${pkg}) did not load: ${reason} (${HOW_TO_FIX[pkg]})`;
    class Unavailable {
      static SqliteError = class SqliteError extends Error {};
      constructor() {
        throw new Error(message);
      }
    }
    // Only ever constructed (which throws) or used for `instanceof SqliteError` (never true).
    return Unavailable as unknown as SqliteDriver;
  }
}

/** better-sqlite3 for the running Node: use it as the package's default export. */
export const Database: SqliteDriver = loadSqliteDriver(process.versions.node, createRequire(import.meta.url));
// So that `Database.Database` names the connection type, as with the package's default import.
export declare namespace Database {
  export type Database = BetterSqlite3.Database;
}
