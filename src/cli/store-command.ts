import { existsSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { Command } from "commander";
import { assertPrivatePath, UnsafePathError } from "../private-path.js";
import { openPostgresStore, postgresUrlHasPassword, redactPostgresUrl, type PostgresStore } from "../store/postgres-store.js";
import { backupSqliteDatabase, openSqliteReader, restoreSqliteDatabase, type SqliteReader } from "../store/sqlite-store.js";
import { copyStoreContents, CopyMismatchError, describeCounts, differingLists, readStoreContents, TargetNotEmptyError, type StoreContents } from "../store/store-migrate.js";
import { adminStoreLocation, type StoreLocation } from "../config.js";
import { CliError, privateDatabasePath, withAdminStore } from "./admin-store.js";
import type { StateDirOption } from "./state-dir-option.js";

// Backups of the gateway's state with SQLite's online backup API: consistent
// while the gateway runs, checked before they are kept or put back.

export function storeCommand(opts: StateDirOption): Command {
  const cmd = new Command("store").description("back up and restore the gateway's state");

  cmd
    .command("backup")
    .description("write a consistent, checked copy of the state database to <file> (0600); safe while the gateway runs")
    .argument("<file>", "where to write the copy (must not exist)")
    .action(async (file: string) => {
      sqliteOnly(opts, "backup");
      const path = privateDatabasePath(opts.stateDir());
      if (!existsSync(path)) throw new CliError(`no gateway state at ${opts.stateDir()}`);
      const dest = resolve(file);
      if (existsSync(dest)) throw new CliError(`${dest} already exists; choose a new file`);
      await backupSqliteDatabase(path, dest);
      process.stdout.write(`backed up ${path} to ${dest}\n`);
    });

  cmd
    .command("restore")
    .description("replace the state database with a checked backup; stop the gateway first (a running one sees its file replaced and admits nobody until restarted)")
    .argument("<file>", "a file written by `gatewarden store backup`")
    .action(async (file: string) => {
      sqliteOnly(opts, "restore");
      const path = privateDatabasePath(opts.stateDir());
      const backup = resolve(file);
      if (!existsSync(backup)) throw new CliError(`no such backup: ${backup}`);
      restoreSqliteDatabase(path, backup);
      // The audit log is now the backup's: what was written after it is gone, and the log says why.
      await withAdminStore(opts, (store) => store.appendAudit([{ kind: "store.restored", actor: "owner", fields: { from: backup.slice(-256) } }]));
      process.stdout.write(`restored ${path} from ${backup}; start the gateway (gatewarden serve)\n`);
    });

  cmd
    .command("migrate")
    .description("copy the whole state from a SQLite database into an empty PostgreSQL database, checked after the copy")
    .requiredOption("--from <sqlite:PATH>", "the gateway's SQLite database (<state-dir>/gatewarden.sqlite), as sqlite:PATH or a plain path")
    .option("--to <postgres://…>", "an empty PostgreSQL database: postgres://user@host:port/db, no password (use PGPASSWORD); default: the configured store (--store, GATEWARDEN_STORE, config store.url)")
    .addHelpText(
      "after",
      "\nStop the gateway first: the source is only read (it works while a gateway runs on it), so anything the\n" +
        "gateway changes after the copy is lost. The target must hold nothing (never a merge); one transaction,\n" +
        "so a failed migrate leaves it as it was. The changes feed (what running gateways tail) is not copied.\n" +
        "A password never goes in --to (other local users can read a command line): set PGPASSWORD, or leave\n" +
        "--to out and put the URL, password and all, in GATEWARDEN_STORE or the config file's store.url.",
    )
    .action(async (o: { from: string; to?: string }) => {
      const source = sqliteSource(o.from);
      const target = postgresTarget(o.to, opts);
      await migrateStore(source, target);
    });

  return cmd;
}

/** backup and restore work on the SQLite file; a PostgreSQL store has the server's own tools. */
function sqliteOnly(opts: StateDirOption, what: "backup" | "restore"): void {
  let location: StoreLocation;
  try {
    location = adminStoreLocation(opts.stateDir(), opts.storeFlag(), process.env);
  } catch (e) {
    throw new CliError(e instanceof Error ? e.message : String(e), 2);
  }
  if (location.kind === "postgres") {
    throw new CliError(`the store is PostgreSQL (${redactPostgresUrl(location.url)}): ${what === "backup" ? "back it up with pg_dump" : "restore it with pg_restore"}; gatewarden store ${what} is for the SQLite file`, 2);
  }
}

/** `sqlite:PATH` or a plain path, to an existing database file whose owner is us (A55: a planted one would be trusted). */
function sqliteSource(text: string): string {
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(text)?.[1];
  const raw = scheme?.toLowerCase() === "sqlite" ? text.slice("sqlite:".length) : text;
  if (scheme !== undefined && scheme.toLowerCase() !== "sqlite" && text.slice(scheme.length + 1).startsWith("//")) {
    throw new CliError(`--from must be sqlite:PATH or the path of the gateway's database file, not ${scheme}://…`, 2);
  }
  if (raw.trim() === "") throw new CliError("--from needs a path: sqlite:PATH (the state dir's gatewarden.sqlite)", 2);
  const path = resolve(raw);
  const st = statSync(path, { throwIfNoEntry: false });
  if (st === undefined) throw new CliError(`no SQLite database at ${path}`);
  if (st.isDirectory()) throw new CliError(`${path} is a directory; --from takes the database file (e.g. ${resolve(path, "gatewarden.sqlite")})`, 2);
  try {
    assertPrivatePath(path, "database");
  } catch (e) {
    if (e instanceof UnsafePathError) throw new CliError(e.message);
    throw e;
  }
  return path;
}

interface PostgresTarget {
  readonly url: string;
  /** The URL with its password hidden: the only form ever printed. */
  readonly shown: string;
  /** A message of the driver's with the password removed, should it ever echo one. */
  scrub(message: string): string;
}

function postgresTarget(flag: string | undefined, opts: StateDirOption): PostgresTarget {
  let text = flag;
  if (text === undefined) {
    let configured: StoreLocation;
    try {
      configured = adminStoreLocation(opts.stateDir(), opts.storeFlag(), process.env);
    } catch (e) {
      throw new CliError(e instanceof Error ? e.message : String(e), 2);
    }
    if (configured.kind !== "postgres") throw new CliError("--to is needed: no PostgreSQL store is configured (--store, GATEWARDEN_STORE or the config's store.url)", 2);
    text = configured.url;
  }
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new CliError("--to must be a postgres:// URL (postgres://user@host:port/database)", 2);
  }
  if (u.protocol !== "postgres:" && u.protocol !== "postgresql:") {
    throw new CliError(`--to must be a postgres:// or postgresql:// URL, not ${u.protocol}//…`, 2);
  }
  if (flag !== undefined && postgresUrlHasPassword(u)) {
    throw new CliError("--to must not carry a password (other local users can read a command line): set PGPASSWORD, or leave --to out and use GATEWARDEN_STORE", 2);
  }
  const given = [u.password, u.searchParams.get("password") ?? "", u.searchParams.get("sslpassword") ?? ""];
  const secrets = given.flatMap((p) => [p, safeDecode(p)]).filter((p) => p.length > 0);
  return {
    url: text,
    shown: redactPostgresUrl(text),
    scrub: (message) => secrets.reduce((m, p) => m.split(p).join("***"), message),
  };
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/**
 * Read the source in one snapshot, open the target (which migrates its
 * schema), copy in one transaction that first checks the target is empty,
 * then read the committed target back and compare. The changes feed is not
 * copied: it is transient (what running gateways tail), and a gateway
 * starting on the target reads the state itself.
 */
async function migrateStore(sourcePath: string, target: PostgresTarget): Promise<void> {
  const message = (e: unknown): string => target.scrub((e instanceof Error ? e.message : String(e)).split("\n")[0] ?? "");
  let contents: StoreContents;
  let reader: SqliteReader;
  try {
    reader = openSqliteReader(sourcePath);
  } catch (e) {
    throw new CliError(`cannot read ${sourcePath}: ${message(e)}`);
  }
  try {
    contents = await reader.consistentRead(readStoreContents);
  } catch (e) {
    throw new CliError(`cannot read ${sourcePath}: ${message(e)}`);
  } finally {
    reader.close();
  }

  let store: PostgresStore;
  try {
    store = await openPostgresStore({ url: target.url, warn: (m) => process.stderr.write(`gatewarden: ${target.scrub(m)}\n`) });
  } catch (e) {
    throw new CliError(message(e));
  }
  try {
    try {
      await copyStoreContents(store, contents);
    } catch (e) {
      if (e instanceof TargetNotEmptyError) {
        throw new CliError(`the target ${target.shown} is not empty (${e.message}); nothing was written: migrate into an empty database`);
      }
      if (e instanceof CopyMismatchError) throw new CliError(`${e.message} when read back from ${target.shown}; nothing was written`);
      throw new CliError(`migrating to ${target.shown} failed, nothing was written: ${message(e)}`);
    }
    let committed: StoreContents;
    try {
      committed = await readStoreContents(store);
    } catch (e) {
      throw new CliError(`copied to ${target.shown}, but reading it back failed: ${message(e)}; check it before use`);
    }
    const differ = differingLists(contents, committed);
    if (differ.length > 0) {
      throw new CliError(`copied to ${target.shown}, but after the commit it differs from ${sourcePath} in ${differ.join(", ")}; do not use it`);
    }
    // The migration itself goes on the record, linked after the copied chain.
    await store.appendAudit([{ kind: "store.migrated", actor: "owner", fields: { from: "sqlite" } }]);
  } finally {
    await store.close();
  }
  process.stdout.write(`migrated ${describeCounts(contents)} from ${sourcePath} to ${target.shown}\n`);
}
