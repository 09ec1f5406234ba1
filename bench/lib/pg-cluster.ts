import { readdirSync, readFileSync } from "node:fs";
import { startPostgres } from "../../test/support/postgres.js";
import { cpuSeconds } from "./proc.js";

// The tests' PostgreSQL (test/support/postgres.ts) with the server's
// durability defaults (a commit, a revocation above all, waits for its WAL to
// reach the disk as in production), and the CPU its processes use.

export interface BenchPostgres {
  /** A new, empty database; its URL. */
  createDatabase(name: string): Promise<string>;
  /** CPU seconds each of the cluster's processes (postmaster, backends, background workers) has used so far. */
  cpuSnapshot(): Map<number, number>;
  readonly settings: string;
  /** The server's log file (for looking into what a phase asked of it). */
  readonly logFile: string;
  /** The URL of an existing database. */
  url(database: string): string;
  destroy(): Promise<void>;
}

/** The postmaster and its children (backends, background workers), from /proc. */
function clusterPids(postmaster: number): number[] {
  const pids = [postmaster];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === postmaster) pids.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

export async function startBenchPostgres(): Promise<BenchPostgres> {
  const server = await startPostgres({ durable: true });
  const postmaster = server.postmasterPid();
  return {
    settings: server.settings,
    logFile: server.logFile,
    url: (database) => server.url(database),
    createDatabase: (name) => server.createDatabase(name),
    cpuSnapshot() {
      const out = new Map<number, number>();
      for (const pid of clusterPids(postmaster)) {
        try {
          out.set(pid, cpuSeconds(pid));
        } catch {
          // a backend that ended between the listing and the read
        }
      }
      return out;
    },
    destroy: () => server.destroy(),
  };
}

/**
 * CPU seconds the cluster used between two snapshots: processes alive at the
 * end count from the first snapshot (or from their start); a backend that
 * ended meanwhile (the pool closes idle connections) is left out, so this
 * never goes below zero and may fall short by what such a backend used.
 */
export function cpuBetween(before: ReadonlyMap<number, number>, after: ReadonlyMap<number, number>): number {
  let total = 0;
  for (const [pid, cpu] of after) total += Math.max(0, cpu - (before.get(pid) ?? 0));
  return total;
}
