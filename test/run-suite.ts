import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { compatNodeBin, compatNodeVersions } from "./compat/openclaw-cli.js";

// `npm test` ends here: the whole suite under each Node gatewarden supports, one
// runtime after the other (each run alone keeps two cores busy), so a failure
// says which runtime it belongs to. The running Node (20 on CI and for
// developers) is one; the others are the runtimes test/compat/install.sh puts
// in its cache (test/compat/versions.json), which OpenClaw users run.
//
// Usage: node dist/test/run-suite.js [file or directory under dist/test …]
// Env:   GATEWARDEN_TEST_NODES="20" or "22,24"   only these majors (default: all)

const DIST_TEST = fileURLToPath(new URL("./", import.meta.url));
const ROOT = resolve(DIST_TEST, "..", "..");

interface Runtime {
  readonly version: string;
  readonly bin: string;
}

interface Outcome {
  readonly runtime: Runtime;
  readonly ok: boolean;
  readonly line: string;
}

const major = (version: string): number => Number(version.split(".")[0]);

function testFiles(paths: readonly string[]): string[] {
  const found: string[] = [];
  const walk = (path: string): void => {
    if (statSync(path).isDirectory()) for (const entry of readdirSync(path)) walk(join(path, entry));
    else if (path.endsWith(".test.js")) found.push(path);
  };
  for (const p of paths.length > 0 ? paths : [DIST_TEST]) walk(resolve(p));
  // Node 22+ takes only files or globs (a directory is read as a file), so every runtime gets the same list.
  return found.sort().map((f) => relative(ROOT, f));
}

/** The runtimes to run, in ascending order; one that is not installed is said (and fails the run under CI). */
function runtimes(): { run: Runtime[]; problems: string[] } {
  const known = new Map<number, Runtime>([[major(process.versions.node), { version: process.versions.node, bin: process.execPath }]]);
  for (const version of compatNodeVersions()) {
    if (!known.has(major(version))) known.set(major(version), { version, bin: compatNodeBin(version) });
  }
  const wanted = (process.env.GATEWARDEN_TEST_NODES ?? "").split(/[\s,]+/).filter(Boolean);
  const problems: string[] = [];
  const run: Runtime[] = [];
  for (const m of wanted.length > 0 ? wanted.map(Number) : [...known.keys()].sort((a, b) => a - b)) {
    const rt = known.get(m);
    if (!rt) throw new Error(`GATEWARDEN_TEST_NODES names Node ${String(m)}; the suite runs under Node ${[...known.keys()].join(", ")}`);
    if (!existsSync(rt.bin)) problems.push(`Node ${rt.version} is not installed at ${rt.bin}: run \`bash test/compat/install.sh\``);
    else run.push(rt);
  }
  return { run, problems };
}

function formatMs(ms: number): string {
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
}

/** The run's totals from its TAP summary (`# tests 12` …), as one phrase. */
function totals(tap: string): string {
  const count = (name: string): number => Number([...tap.matchAll(new RegExp(`^# ${name} (\\d+)$`, "gm"))].at(-1)?.[1] ?? 0);
  const extra = (["fail", "cancelled", "skipped", "todo"] as const).filter((n) => count(n) > 0).map((n) => `${count(n)} ${n}`);
  return `${count("tests")} tests, ${count("pass")} passed${extra.length > 0 ? `, ${extra.join(", ")}` : ""}`;
}

async function runUnder(rt: Runtime, files: readonly string[]): Promise<Outcome> {
  const tmp = mkdtempSync(join(tmpdir(), "gatewarden-suite-"));
  const tapFile = join(tmp, "summary.tap");
  // The console gets the reporter Node 20 picks by itself (spec on a terminal, TAP in CI logs), whatever the runtime.
  const reporter = process.stdout.isTTY ? "spec" : "tap";
  const args = ["--test", "--test-concurrency=2", `--test-reporter=${reporter}`, "--test-reporter-destination=stdout", "--test-reporter=tap", `--test-reporter-destination=${tapFile}`, ...files];
  // Its directory first on PATH: anything a test starts by name (`npm`, a `#!/usr/bin/env node` bin) runs on this runtime too.
  const env = { ...process.env, PATH: `${dirname(rt.bin)}${delimiter}${process.env.PATH ?? ""}` };
  console.log(`\n=== gatewarden suite under Node ${rt.version} (${rt.bin}) ===\n`);
  const started = performance.now();
  const status = await new Promise<number | string>((done) => {
    const child = spawn(rt.bin, args, { cwd: ROOT, env, stdio: "inherit" });
    child.once("error", (e) => done(e.message));
    child.once("close", (code, signal) => done(code ?? `killed by ${signal ?? "a signal"}`));
  });
  const took = formatMs(performance.now() - started);
  const summary = existsSync(tapFile) ? totals(readFileSync(tapFile, "utf8")) : "no summary";
  rmSync(tmp, { recursive: true, force: true });
  const ok = status === 0;
  return { runtime: rt, ok, line: `Node ${rt.version}: ${ok ? "passed" : `FAILED (${typeof status === "number" ? `exit ${status}` : status})`}: ${summary}, ${took}` };
}

async function main(): Promise<void> {
  const files = testFiles(process.argv.slice(2));
  const { run, problems } = runtimes();
  const ci = process.env.CI === "true";
  for (const p of problems) console.error(`gatewarden suite: ${ci ? "" : "skipping: "}${p}`);
  const outcomes: Outcome[] = [];
  for (const rt of run) outcomes.push(await runUnder(rt, files));
  console.log(`\n=== gatewarden suite, ${files.length} files ===`);
  for (const o of outcomes) console.log(o.line);
  for (const p of problems) console.log(`not run: ${p}`);
  const failed = outcomes.filter((o) => !o.ok).map((o) => `Node ${o.runtime.version}`);
  if (failed.length > 0) console.log(`failed under: ${failed.join(", ")}`);
  if (failed.length > 0 || run.length === 0 || (ci && problems.length > 0)) process.exitCode = 1;
}

await main().catch((e: unknown) => {
  console.error(`gatewarden suite: ${e instanceof Error ? e.message : String(e)}`);
  process.exitCode = 2;
});
