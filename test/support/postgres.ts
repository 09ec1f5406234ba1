import { spawnSync } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { freePort } from "./free-port.js";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import pg from "pg";

// A real PostgreSQL server for the tests: Debian's server binaries, a fresh
// cluster in a temp dir, loopback only, trust auth (nothing else can reach it).
// PostgreSQL refuses to run as root, so as root the cluster belongs to
// `nobody` and every server command runs as that user. fsync is off: the
// tests need transactions and crash semantics of the server process, not of
// the machine.

export interface PostgresServer {
  readonly port: number;
  readonly dataDir: string;
  /** A new, empty database; its URL. */
  createDatabase(name?: string): Promise<string>;
  /** The URL of an existing database. */
  url(database: string): string;
  /** Stop the server (fast shutdown: sessions are cut), keeping the cluster for start(). */
  stop(): Promise<void>;
  /** Start it again after stop(), on the same port. */
  start(): Promise<void>;
  /** Stop it and remove the cluster. */
  destroy(): Promise<void>;
  /** The server settings it was started with, for reports. */
  readonly settings: string;
  /** The server's log file. */
  readonly logFile: string;
  /** The postmaster's process id (its children are the backends). */
  postmasterPid(): number;
}

export interface PostgresOptions {
  /**
   * The server's durability defaults (fsync, synchronous_commit and
   * full_page_writes on), so a commit waits for its WAL to reach the disk as
   * in production: for benchmarks. Tests leave them off.
   */
  readonly durable?: boolean;
}

const USER = "gatewarden";

/** The newest installed server's bin dir, or a one-line reason why there is none. */
export function postgresBinDir(): string {
  const fromEnv = process.env.GATEWARDEN_PG_BIN;
  if (fromEnv !== undefined && existsSync(join(fromEnv, "initdb"))) return fromEnv;
  const root = "/usr/lib/postgresql";
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => existsSync(join(root, v, "bin", "initdb")))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  const newest = versions[0];
  if (newest === undefined) {
    throw new Error("PostgreSQL's server is not installed (no /usr/lib/postgresql/*/bin/initdb): apt-get install -y postgresql, or set GATEWARDEN_PG_BIN");
  }
  return join(root, newest, "bin");
}

const asRoot = userInfo().uid === 0;

/** Run a server binary, as `nobody` when we are root. */
function run(bin: string, args: readonly string[]): void {
  const cmd = asRoot ? "setpriv" : bin;
  const argv = asRoot ? ["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--", bin, ...args] : [...args];
  const r = spawnSync(cmd, argv, { encoding: "utf8", timeout: 60_000, cwd: "/" });
  if (r.status !== 0) {
    throw new Error(`${bin} ${args.join(" ")} failed (${r.status ?? r.signal}): ${(r.stderr || r.stdout || String(r.error ?? "")).trim().slice(-800)}`);
  }
}

export async function startPostgres(opts: PostgresOptions = {}): Promise<PostgresServer> {
  const bin = postgresBinDir();
  const base = mkdtempSync(join(tmpdir(), "gatewarden-pg-"));
  const dataDir = join(base, "data");
  const socketDir = join(base, "sock");
  const logFile = join(base, "server.log");
  if (asRoot) {
    chmodSync(base, 0o755);
    chownSync(base, 65534, 65534);
  }
  run(join(bin, "initdb"), ["-D", dataDir, "-U", USER, "--auth=trust", "--encoding=UTF8", "--no-locale", "--no-sync"]);
  run("/bin/mkdir", ["-m", "0700", socketDir]);
  const port = await freePort();
  const settings = [...(opts.durable === true ? ["fsync=on", "synchronous_commit=on", "full_page_writes=on"] : ["fsync=off", "synchronous_commit=off", "full_page_writes=off"]), "max_connections=200"];
  const options = [`-c listen_addresses=127.0.0.1`, `-c port=${port}`, `-c unix_socket_directories=${socketDir}`, ...settings.map((o) => `-c ${o}`)].join(" ");
  const pgCtl = join(bin, "pg_ctl");
  const start = async (): Promise<void> => {
    run(pgCtl, ["-D", dataDir, "-l", logFile, "-o", options, "-w", "-t", "30", "start"]);
  };
  const stop = async (): Promise<void> => {
    run(pgCtl, ["-D", dataDir, "-m", "fast", "-w", "-t", "30", "stop"]);
  };
  await start();
  const url = (database: string): string => `postgres://${USER}@127.0.0.1:${port}/${database}`;
  let seq = 0;
  return {
    port,
    dataDir,
    url,
    settings: settings.join(", "),
    logFile,
    postmasterPid: () => Number(readFileSync(join(dataDir, "postmaster.pid"), "utf8").split("\n", 1)[0]),
    async createDatabase(name) {
      const db = name ?? `t${process.pid}_${++seq}_${Date.now().toString(36)}`;
      const client = new pg.Client({ connectionString: url("postgres") });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE "${db.replace(/"/g, "")}"`);
      } finally {
        await client.end();
      }
      return url(db);
    },
    stop,
    start,
    async destroy() {
      try {
        await stop();
      } catch {
        // already stopped
      }
      rmSync(base, { recursive: true, force: true });
    },
  };
}
