import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { machineInfo, type MachineInfo } from "./proc.js";
import { canPin, killAllChildren } from "./servers.js";

// What every side-by-side bench (bench/postgres.ts, bench/metrics.ts) does as a process:
// its common flags, and a main that leaves no child process or temp dir behind.

export interface BenchArgs {
  /** The word after `name` on the command line. */
  value(name: string): string | undefined;
  readonly quick: boolean;
  /** `--runs N`: 1 with --quick, else `fullRuns` (5 unless the bench says). */
  readonly runs: number;
  /** `--devices N`: 50 with --quick, else 200. */
  readonly devices: number;
  /** `--profile DIR`, resolved. */
  readonly profileDir: string | undefined;
}

export function benchArgs(argv: readonly string[], fullRuns = 5): BenchArgs {
  const value = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const quick = argv.includes("--quick");
  const runs = Number(value("--runs") ?? (quick ? 1 : fullRuns));
  const devices = Number(value("--devices") ?? (quick ? 50 : 200));
  if (!Number.isInteger(runs) || runs < 1 || !Number.isInteger(devices) || devices < 1) throw new Error("--runs and --devices take positive integers");
  const profile = value("--profile");
  return { value, quick, runs, devices, profileDir: profile === undefined ? undefined : resolve(profile) };
}

const tempDirs: string[] = [];

/** A new temp dir, removed when the process exits (see runBench). */
export function benchTempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

/** The machine, and whether the gateway under test goes on CPU 1 and the load generator on CPU 0 (two cores or more, with taskset). */
export function benchMachine(): { readonly machine: MachineInfo; readonly pinned: boolean; readonly pinning: string } {
  const machine = machineInfo("-");
  const pinned = machine.cores >= 2 && canPin();
  return { machine, pinned, pinning: pinned ? "gateway under test on CPU 1, load generator on CPU 0" : "no CPU pinning" };
}

/**
 * Run `main`, then exit 0 (1 on an error, printed under `tag`). Then, and at
 * any other exit (SIGINT, SIGTERM, the hard limit), the child processes are
 * killed, `cleanUp` runs and the temp dirs go; at an exit that does not wait
 * (a signal, process.exit) only what `cleanUp` does synchronously gets done.
 * After `hardLimitMs` the process gives up with exit 2.
 */
export function runBench(tag: string, main: () => Promise<void>, hardLimitMs: number, cleanUp: () => void | Promise<void> = () => {}): void {
  const all = async (): Promise<void> => {
    killAllChildren();
    const pending = cleanUp(); // its synchronous part runs now, even at an exit that does not wait
    for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
    await pending;
  };
  process.on("exit", () => void all());
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.on(signal, () => {
      void all();
      process.exit(130);
    });
  }
  setTimeout(() => {
    process.stderr.write(`[${tag}] aborted: still running after ${hardLimitMs / 60_000} minutes\n`);
    process.exit(2);
  }, hardLimitMs).unref();

  main()
    .then(
      () => 0,
      (e: unknown) => {
        process.stderr.write(`[${tag}] failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
        return 1;
      },
    )
    .then(async (code) => {
      await all().catch(() => undefined);
      process.exit(code);
    });
}
