import { spawn } from "node:child_process";
import { loadavg } from "node:os";
import { join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { createTestDevice, type TestDevice } from "../test/support/device.js";
import { TestClient } from "../test/support/protocol-client.js";
import { benchArgs, benchMachine, benchTempDir, runBench } from "./lib/bench-process.js";
import { compareHandshakes, concurrencyLabel, fmt, phaseLine, ratioOfRuns, ratioText, scheduleText, startBenchGateway, type BenchGateway, type HandshakeMeasure, type HandshakeSchedule } from "./lib/handshake-comparison.js";
import { cpuBetween, startBenchPostgres, type BenchPostgres } from "./lib/pg-cluster.js";
import { publishSection } from "./lib/benchmarks-block.js";
import { machineInfo } from "./lib/proc.js";
import { track } from "./lib/servers.js";
import { median, percentileSorted } from "./lib/stats.js";

// `npm run bench:postgres [-- --quick] [--runs N] [--devices N] [--only handshakes|revoke]
// [--profile DIR] [--control]`: gatewarden
// on PostgreSQL against gatewarden on SQLite, side by side in one run (issue 17).
//
// 1. Handshakes: one gatewarden per store, the same load generator
//    (bench/load-client.ts, a separate process) reconnecting paired devices
//    with their device tokens; phases alternate which store goes first.
// 2. Revocation: the time from a revoke to the close (4001) of the revoked
//    device's session. On PostgreSQL the revoke is made on instance A and the
//    session is on instance B (the commit reaches B by LISTEN/NOTIFY); on
//    SQLite the revoke comes from the admin CLI (another process, seen by the
//    250 ms change poll) or from a session on the same instance. Rounds
//    alternate between the paths.
// Ratios within the run are the result, never timed assertions. Writes
// bench/postgres-results.md and its block in BENCHMARKS.md.

const ROOT = resolve(fileURLToPath(new URL("../../", import.meta.url)));
const BIN = join(ROOT, "bin", "gatewarden.js");
const AFTER_BLOCK = "<!-- relay-bench:end -->";
const TOKEN = "bench-postgres-shared-token-0123456789";
const HARD_LIMIT_MS = 10 * 60_000;
/** A handshake phase during which other processes used more than this share of the machine is run again (once). */
const MAX_FOREIGN = 0.1;
const ADMIN_SCOPES = ["operator.admin", "operator.pairing"];

type StoreName = "sqlite" | "postgres";
const STORES: readonly StoreName[] = ["sqlite", "postgres"];

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const say = (text: string): void => void process.stdout.write(`[bench:postgres] ${text}\n`);

interface Options extends HandshakeSchedule {
  readonly quick: boolean;
  /** Revocations per path that goes through an RPC, and per path that starts a CLI process. */
  readonly rpcRevokes: number;
  readonly cliRevokes: number;
  readonly revokeRounds: number;
  /** `--only handshakes|revoke`: one part, nothing written (for looking into a figure). */
  readonly only: "handshakes" | "revoke" | undefined;
  /** `--profile DIR`: the handshake servers run under --cpu-prof (figures are then not comparable; nothing written). */
  readonly profileDir: string | undefined;
  /** `--control`: the "postgres" handshake server on SQLite too (an A/A run: the noise floor between two processes; nothing written). */
  readonly control: boolean;
}

function parseOptions(argv: readonly string[]): Options {
  const { value, quick, runs, devices, profileDir } = benchArgs(argv);
  const only = value("--only");
  if (only !== undefined && only !== "handshakes" && only !== "revoke") throw new Error("--only takes handshakes or revoke");
  return {
    only,
    control: argv.includes("--control"),
    profileDir,
    quick,
    runs,
    devices,
    concurrencies: [1, 50, 200],
    phaseMs: (c) => (quick ? 1500 : c === 1 ? 2000 : 3000),
    warmupMs: quick ? 1000 : 2000,
    rpcRevokes: quick ? 40 : 200,
    cliRevokes: quick ? 20 : 100,
    revokeRounds: quick ? 2 : 4,
  };
}

// ---------------------------------------------------------------------------
// Gateway processes and the admin CLI

type Instance = BenchGateway;

/** gatewarden on PostgreSQL (`storeUrl`) or on SQLite in its state dir (bench/lib/handshake-comparison.ts). */
function startInstance(tmp: string, name: string, storeUrl: string | undefined, cpu: number | undefined, nodeArgs: readonly string[] = []): Promise<Instance> {
  return startBenchGateway({ root: ROOT, tmp, name, token: TOKEN, storeUrl, cpu, nodeArgs });
}

interface CliRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly spawnedAt: number;
  /** When the first line of output arrived: the CLI prints it after its transaction committed. */
  readonly printedAt: number;
}

/** The admin CLI on an instance's store (same state dir and environment), asynchronously. */
function cli(instance: Instance, args: readonly string[]): Promise<CliRun> {
  return new Promise((resolveRun) => {
    const spawnedAt = performance.now();
    let printedAt = Number.NaN;
    const child = track(spawn(process.execPath, [BIN, ...args], { env: instance.env, stdio: ["ignore", "pipe", "pipe"], cwd: ROOT }));
    let stdout = "";
    let stderr = "";
    child.stdout?.on("data", (d: Buffer) => {
      if (Number.isNaN(printedAt)) printedAt = performance.now();
      stdout += d.toString("utf8");
    });
    child.stderr?.on("data", (d: Buffer) => (stderr += d.toString("utf8")));
    child.once("close", (code) => resolveRun({ code: code ?? -1, stdout, stderr, spawnedAt, printedAt }));
  });
}

// ---------------------------------------------------------------------------
// Part 1: handshakes/s and latency, SQLite vs PostgreSQL

interface HandshakeSample extends HandshakeMeasure {
  /** CPU seconds the PostgreSQL cluster used during the phase (/proc: 10 ms resolution). */
  readonly pgCpuS: number;
  /**
   * PostgreSQL phases: commits to the store since the end of this server's
   * previous phase (its commit_counter moved). Each drops every instance's
   * device cache, so the phase refills it from the database.
   */
  readonly commits: number;
}

type HandshakeFigures = Record<StoreName, Map<number, HandshakeSample[]>>;

/** Both stores side by side (bench/lib/handshake-comparison.ts), each run on a new database and state dir. */
async function handshakePart(opts: Options, tmp: string, pgServer: BenchPostgres, cores: number, pinned: boolean): Promise<{ figures: HandshakeFigures; pairingSeconds: number }> {
  let storeUrl = "";
  let counter: pg.Client | undefined;
  let counterAfterLastPhase = Number.NaN;
  const commitCount = async (): Promise<number> => (counter ? Number((await counter.query<{ n: string }>("SELECT n FROM commit_counter")).rows[0]?.n ?? Number.NaN) : Number.NaN);
  const result = await compareHandshakes<StoreName, HandshakeSample>({
    root: ROOT,
    token: TOKEN,
    variants: STORES,
    schedule: opts,
    cores,
    pinned,
    maxForeign: MAX_FOREIGN,
    otherCpu: () => {
      const pg0 = pgServer.cpuSnapshot();
      return () => cpuBetween(pg0, pgServer.cpuSnapshot());
    },
    async beforeRun(run) {
      storeUrl = await pgServer.createDatabase(`bench_handshakes_${run + 1}`);
      counter = opts.control ? undefined : new pg.Client({ connectionString: storeUrl });
      await counter?.connect();
      counterAfterLastPhase = Number.NaN;
    },
    async afterRun() {
      await counter?.end();
      counter = undefined;
    },
    startServer(s, run, cpu) {
      const prof = opts.profileDir ? ["--cpu-prof", "--cpu-prof-dir", opts.profileDir, "--cpu-prof-name", `${s}-${run + 1}.cpuprofile`] : [];
      return startInstance(tmp, `hs-${s}-${run + 1}`, s === "postgres" && !opts.control ? storeUrl : undefined, cpu, prof);
    },
    async sample(s, measure) {
      const commits0 = s !== "postgres" ? Number.NaN : Number.isNaN(counterAfterLastPhase) ? await commitCount() : counterAfterLastPhase;
      const m = await measure();
      const commitsAfter = s === "postgres" ? await commitCount() : Number.NaN;
      if (s === "postgres") counterAfterLastPhase = commitsAfter;
      return { ...m, pgCpuS: m.otherCpuS, commits: commitsAfter - commits0 };
    },
    kept(s, c, run, sample) {
      say(phaseLine(s, c, run, sample, `PostgreSQL ${(sample.pgCpuS * 1000).toFixed(0)} ms CPU${sample.commits > 0 ? `, ${sample.commits} commit(s) since its previous phase` : ""}, `));
    },
  });
  const { figures } = result;
  for (const c of opts.concurrencies) {
    const per = (pick: (x: HandshakeSample) => number) => ratioOfRuns(figures, "postgres", "sqlite", c, pick).toFixed(3);
    say(`${label(c)}: postgres / sqlite handshakes/s ${per((x) => x.rate)}, CPU per handshake ${per((x) => x.serverCpuUs)} (medians of per-run ratios)`);
  }
  return result;
}

// ---------------------------------------------------------------------------
// Part 2: revoke → close

type RevokePath = "pg-rpc" | "pg-cli" | "sqlite-cli" | "sqlite-rpc";
const REVOKE_PATHS: readonly RevokePath[] = ["pg-rpc", "pg-cli", "sqlite-cli", "sqlite-rpc"];

interface Watched {
  readonly device: TestDevice;
  readonly client: TestClient;
  /** Resolves with the close's time and code. */
  readonly closed: Promise<{ at: number; code: number }>;
}

interface RevokeFigures {
  /** Revoke (RPC sent, or the CLI's line after its commit) → the session's close, ms. */
  latency: number[];
  /** RPC: sent → reply on the revoking instance. CLI: process spawned → the session's close. */
  secondary: number[];
  /** Closes that were not 4001, revokes that failed, sessions that did not close within 5 s. */
  errors: number;
  firstError: string | undefined;
}

function emptyRevokes(): Record<RevokePath, RevokeFigures> {
  return Object.fromEntries(REVOKE_PATHS.map((p) => [p, { latency: [], secondary: [], errors: 0, firstError: undefined }])) as unknown as Record<RevokePath, RevokeFigures>;
}

/** Pair a fresh device by silent local pairing (its first connect, from loopback) and return its device token. */
async function pairSilently(url: string, device: TestDevice): Promise<string> {
  const c = await TestClient.open(url);
  const reply = await c.connect({ device, role: "operator", scopes: ["operator.read"], auth: { token: TOKEN } });
  c.close();
  const token = (reply.payload as { auth?: { deviceToken?: string } } | undefined)?.auth?.deviceToken;
  if (reply.ok !== true || token === undefined) throw new Error(`silent pairing failed: ${JSON.stringify(reply.error ?? reply.payload).slice(0, 300)}`);
  return token;
}

/** `n` devices paired through `pairAt`, each with a session open on `sessionAt` authenticated by its device token. */
async function watchedSessions(pairAt: Instance, sessionAt: Instance, n: number): Promise<Watched[]> {
  const out: Watched[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < n) {
        next++;
        const device = createTestDevice();
        const deviceToken = await pairSilently(pairAt.url, device);
        const client = await TestClient.open(sessionAt.url);
        const closed = new Promise<{ at: number; code: number }>((r) => client.ws.once("close", (code) => r({ at: performance.now(), code })));
        const reply = await client.connect({ device, role: "operator", scopes: ["operator.read"], auth: { deviceToken } });
        if (reply.ok !== true) throw new Error(`device-token session refused on ${sessionAt.name}: ${JSON.stringify(reply.error)}`);
        out.push({ device, client, closed });
      }
    }),
  );
  return out;
}

async function adminSession(instance: Instance): Promise<TestClient> {
  const added = await cli(instance, ["backends", "add", `bench-admin-${instance.name}`, "--scopes", ADMIN_SCOPES.join(","), "--json"]);
  if (added.code !== 0) throw new Error(`backends add on ${instance.name}: ${added.stderr}`);
  const { secret } = JSON.parse(added.stdout) as { secret: string };
  const c = await TestClient.open(instance.url);
  const reply = await c.connect({ scopes: ADMIN_SCOPES, auth: { token: secret } });
  if (reply.ok !== true) throw new Error(`admin session on ${instance.name} refused: ${JSON.stringify(reply.error)}`);
  return c;
}

const CLOSE_TIMEOUT_MS = 5000;

function closedWithin(w: Watched): Promise<{ at: number; code: number } | undefined> {
  return Promise.race([w.closed, sleep(CLOSE_TIMEOUT_MS).then(() => undefined)]);
}

async function revokePart(opts: Options, tmp: string, pgServer: BenchPostgres): Promise<Record<RevokePath, RevokeFigures>> {
  const storeUrl = await pgServer.createDatabase("bench_revoke");
  const a = await startInstance(tmp, "pg-a", storeUrl, undefined);
  const b = await startInstance(tmp, "pg-b", storeUrl, undefined);
  const s = await startInstance(tmp, "sqlite", undefined, undefined);
  const toClose: TestClient[] = [];
  try {
    const adminA = await adminSession(a);
    const adminS = await adminSession(s);
    toClose.push(adminA, adminS);
    const counts: Record<RevokePath, number> = { "pg-rpc": opts.rpcRevokes, "pg-cli": opts.cliRevokes, "sqlite-cli": opts.cliRevokes, "sqlite-rpc": opts.rpcRevokes };
    const setupStarted = performance.now();
    // PostgreSQL: paired through A, the session on B (B learns of the pairing by NOTIFY, like any commit).
    const watched: Record<RevokePath, Watched[]> = {
      "pg-rpc": await watchedSessions(a, b, counts["pg-rpc"]),
      "pg-cli": await watchedSessions(a, b, counts["pg-cli"]),
      "sqlite-cli": await watchedSessions(s, s, counts["sqlite-cli"]),
      "sqlite-rpc": await watchedSessions(s, s, counts["sqlite-rpc"]),
    };
    for (const list of Object.values(watched)) toClose.push(...list.map((w) => w.client));
    say(`opened ${Object.values(watched).reduce((n, l) => n + l.length, 0)} device sessions in ${((performance.now() - setupStarted) / 1000).toFixed(1)} s`);
    await sleep(500);

    const figures = emptyRevokes();
    const fail = (p: RevokePath, why: string) => {
      figures[p].errors++;
      figures[p].firstError ??= why;
    };

    const viaRpc = async (p: RevokePath, admin: TestClient, w: Watched): Promise<void> => {
      const t0 = performance.now();
      const reply = admin.request("device.token.revoke", { deviceId: w.device.id, role: "operator" }).then((f) => ({ f, at: performance.now() }));
      const [closed, r] = await Promise.all([closedWithin(w), reply]);
      if (r.f.ok !== true) return fail(p, `revoke refused: ${JSON.stringify(r.f.error)}`);
      if (closed === undefined) return fail(p, `no close within ${CLOSE_TIMEOUT_MS} ms`);
      if (closed.code !== 4001) return fail(p, `closed ${closed.code}, not 4001`);
      figures[p].latency.push(closed.at - t0);
      figures[p].secondary.push(r.at - t0);
    };
    const viaCli = async (p: RevokePath, instance: Instance, w: Watched): Promise<void> => {
      const [closed, run] = await Promise.all([closedWithin(w), cli(instance, ["devices", "revoke", "--device", w.device.id, "--role", "operator"])]);
      if (run.code !== 0 || !run.stdout.startsWith("revoked")) return fail(p, `devices revoke: ${run.stderr.trim() || run.stdout.trim()}`);
      if (closed === undefined) return fail(p, `no close within ${CLOSE_TIMEOUT_MS} ms`);
      if (closed.code !== 4001) return fail(p, `closed ${closed.code}, not 4001`);
      figures[p].latency.push(closed.at - run.printedAt);
      figures[p].secondary.push(closed.at - run.spawnedAt);
    };
    const revokeOne: Record<RevokePath, (w: Watched) => Promise<void>> = {
      "pg-rpc": (w) => viaRpc("pg-rpc", adminA, w),
      "pg-cli": (w) => viaCli("pg-cli", a, w),
      "sqlite-cli": (w) => viaCli("sqlite-cli", s, w),
      "sqlite-rpc": (w) => viaRpc("sqlite-rpc", adminS, w),
    };

    for (let round = 0; round < opts.revokeRounds; round++) {
      // Rotate which path goes first, so drift in the machine's load hits all of them.
      const order = REVOKE_PATHS.map((_, i) => REVOKE_PATHS[(i + round) % REVOKE_PATHS.length] as RevokePath);
      for (const p of order) {
        const per = Math.ceil(counts[p] / opts.revokeRounds);
        const slice = watched[p].slice(round * per, (round + 1) * per);
        for (const w of slice) {
          await revokeOne[p](w);
          await sleep(10); // one revocation at a time: none rides on another's notice or poll
        }
      }
      say(`revoke round ${round + 1}/${opts.revokeRounds}: ${REVOKE_PATHS.map((p) => `${p} p50 ${median(figures[p].latency).toFixed(1)} ms`).join(", ")}`);
    }
    return figures;
  } finally {
    for (const c of toClose) c.close();
    await Promise.all([a.stop(), b.stop(), s.stop()]);
  }
}

// ---------------------------------------------------------------------------
// Report

const label = concurrencyLabel;

function pct(values: readonly number[], p: number): number {
  return percentileSorted([...values].sort((x, y) => x - y), p);
}

interface Meta {
  readonly quick: boolean;
  readonly seconds: number;
  readonly pairingSeconds: number;
  readonly pinned: boolean;
  readonly pgSettings: string;
  readonly opts: Options;
}

function render(hs: HandshakeFigures, rv: Record<RevokePath, RevokeFigures>, meta: Meta): string {
  const m = machineInfo("-");
  const { opts } = meta;
  const lines: string[] = [];
  const samples = (s: StoreName, c: number) => hs[s].get(c) ?? [];
  /** Median of per-run ratios postgres / sqlite (each run measures both back to back). */
  const ratio = (c: number, pick: (x: HandshakeSample) => number) => ratioOfRuns(hs, "postgres", "sqlite", c, pick);
  const med = (s: StoreName, c: number, pick: (x: HandshakeSample) => number) => median(samples(s, c).map(pick));
  /** PostgreSQL's CPU over all of a store's measured phases at `c`, ms per 1,000 handshakes (summed: /proc counts in 10 ms ticks). */
  /** Runs whose PostgreSQL phase at `c` saw a commit to the store. */
  const withCommit = (c: number): number[] => samples("postgres", c).flatMap((x, i) => (x.commits > 0 ? [i] : []));
  /** Median of per-run ratios postgres / sqlite over the runs `runs`. */
  const ratioOver = (c: number, runs: readonly number[], pick: (x: HandshakeSample) => number) =>
    median(runs.map((i) => pick(samples("postgres", c)[i] as HandshakeSample) / pick(samples("sqlite", c)[i] as HandshakeSample)));
  const pgPerK = (s: StoreName, c: number) => {
    const list = samples(s, c);
    return (list.reduce((n, x) => n + x.pgCpuS, 0) * 1e6) / list.reduce((n, x) => n + x.completed, 0);
  };

  lines.push("## On PostgreSQL: handshakes, and a revocation reaching another instance", "");
  lines.push(
    `Generated by \`npm run bench:postgres${meta.quick ? " -- --quick" : ""}\` (${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC, ${meta.seconds.toFixed(0)} s): ` +
      `${m.cpuModel}, ${m.cores} cores, Node ${m.node}, load average ${loadavg()
        .map((l) => l.toFixed(1))
        .join(" ")} at the end. PostgreSQL 15 on the same machine, a fresh cluster over loopback TCP with its durability defaults (${meta.pgSettings}); ` +
      "SQLite is gatewarden's default store in its state dir. Both stores are measured in the same run, in alternating phases; ratios, not absolute figures, are the result.",
    "",
  );

  const minRatio = Math.min(...opts.concurrencies.map((c) => ratio(c, (x) => x.rate)));
  lines.push(
    `### Handshakes: a paired device reconnecting with its device token (medians of ${opts.runs} run${opts.runs > 1 ? "s" : ""}, each with fresh server processes and stores)`,
    "",
    "| Concurrency | SQLite /s | PostgreSQL /s | ratio (target ≥ 0.90) | SQLite p50 / p99 ms | PostgreSQL p50 / p99 ms | p99 ratio, PostgreSQL / SQLite | server CPU µs per handshake, SQLite / PostgreSQL | PostgreSQL phases refilling the device cache after a commit | PostgreSQL server's CPU, ms per 1,000 handshakes, in PostgreSQL / SQLite phases |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  );
  for (const c of opts.concurrencies) {
    const r = ratio(c, (x) => x.rate);
    lines.push(
      `| ${label(c)} | ${fmt(med("sqlite", c, (x) => x.rate), 0)} | ${fmt(med("postgres", c, (x) => x.rate), 0)} | ${ratioText(r, 0.9)} — ${r >= 0.9 ? "met" : "not met"} ` +
        `| ${fmt(med("sqlite", c, (x) => x.p50Ms), 2)} / ${fmt(med("sqlite", c, (x) => x.p99Ms), 2)} | ${fmt(med("postgres", c, (x) => x.p50Ms), 2)} / ${fmt(med("postgres", c, (x) => x.p99Ms), 2)} ` +
        `| ${fmt(ratio(c, (x) => x.p99Ms), 2)} | ${fmt(med("sqlite", c, (x) => x.serverCpuUs), 0)} / ${fmt(med("postgres", c, (x) => x.serverCpuUs), 0)} | ${withCommit(c).length} of ${samples("postgres", c).length} | ${fmt(pgPerK("postgres", c), 2)} / ${fmt(pgPerK("sqlite", c), 2)} |`,
    );
  }
  const errors = STORES.map((s) => [...hs[s].values()].flat().reduce((n, x) => n + x.errors, 0));
  const top = Math.max(...opts.concurrencies);
  const perRun = (s: StoreName) => samples(s, top).map((x) => fmt(x.rate, 0)).join(" / ");
  lines.push(
    "",
    `Per-run handshakes/s @${top}: SQLite ${perRun("sqlite")}; PostgreSQL ${perRun("postgres")}. Errors: SQLite ${errors[0]}, PostgreSQL ${errors[1]}. ` +
      `Server busy @${top} (CPU time / wall time): SQLite ${fmt(med("sqlite", top, (x) => x.serverBusy), 2)}, PostgreSQL ${fmt(med("postgres", top, (x) => x.serverBusy), 2)}; ` +
      `load generator ${fmt(med("sqlite", top, (x) => x.clientBusy), 2)} / ${fmt(med("postgres", top, (x) => x.clientBusy), 2)}. ` +
      `Other processes took ${fmt(Math.max(...STORES.flatMap((s) => [...hs[s].values()].flat().map((x) => x.foreign))) * 100, 0)} % of the machine at most in a kept phase.`,
    "",
  );

  const paths: [RevokePath, string, string, string][] = [
    ["pg-rpc", "PostgreSQL: `device.token.revoke` on instance A → the session on instance B", "NOTIFY from A's commit", "revoke sent → A's reply"],
    ["pg-cli", "PostgreSQL: `gatewarden devices revoke` (another process) → the session on instance B", "NOTIFY from the CLI's commit", "CLI spawned → closed"],
    ["sqlite-cli", "SQLite: `gatewarden devices revoke` (another process) → the session", `change poll (every ${250} ms)`, "CLI spawned → closed"],
    ["sqlite-rpc", "SQLite: `device.token.revoke` on the same instance → the session", "in process", "revoke sent → reply"],
  ];
  lines.push(
    `### Revoke → the revoked device's session closed (4001), one revocation at a time, ${opts.revokeRounds} alternating rounds`,
    "",
    "| Path | how the change arrives | n | p50 ms | p95 ms | p99 ms | max ms | also, p50 ms | errors |",
    "|---|---|---:|---:|---:|---:|---:|---|---:|",
  );
  for (const [p, name, how, also] of paths) {
    const f = rv[p];
    lines.push(
      `| ${name} | ${how} | ${f.latency.length} | ${fmt(pct(f.latency, 50), 1)} | ${fmt(pct(f.latency, 95), 1)} | ${fmt(pct(f.latency, 99), 1)} | ${fmt(Math.max(...f.latency), 1)} ` +
        `| ${also} ${fmt(pct(f.secondary, 50), 1)} | ${f.errors}${f.firstError ? ` (${f.firstError})` : ""} |`,
    );
  }
  const p99 = pct(rv["pg-rpc"].latency, 99);
  const cpuRatios = opts.concurrencies.map((c) => `${fmt(ratio(c, (x) => x.serverCpuUs), 2)} ${c === 1 ? "sequential" : `@${c}`}`).join(", ");
  const sqliteCliP99 = pct(rv["sqlite-cli"].latency, 99);
  lines.push(
    "",
    "Measured on the benchmark's clock: for an RPC, from just before the `device.token.revoke` request is sent; for the CLI, from the moment its `revoked …` line arrives " +
      "(printed right after its transaction committed, so the process's start-up and its own connection to the store are not counted; the column \"CLI spawned → closed\" includes them); " +
      "until the `close` event of the device's WebSocket.",
    "",
    `Targets: handshakes/s on PostgreSQL ≥ 0.90 × SQLite at every concurrency — ${minRatio >= 0.9 ? "met" : "not met"} (${ratioText(minRatio, 0.9)} at worst); ` +
      `revoke on instance A → close on instance B p99 < 100 ms — ${p99 < 100 ? "met" : "not met"} (${fmt(p99, 1)} ms, against ${fmt(sqliteCliP99, 1)} ms for a CLI revoke on SQLite).`,
    "",
  );
  const allRuns = (c: number) => samples("postgres", c).map((_, i) => i);
  const commitParts = opts.concurrencies.flatMap((c) => {
    const w = withCommit(c);
    if (w.length === 0) return [];
    const wo = allRuns(c).filter((i) => !w.includes(i));
    const part = (runs: number[]) =>
      `CPU per handshake ${fmt(ratioOver(c, runs, (x) => x.serverCpuUs), 2)}, handshakes/s ${fmt(ratioOver(c, runs, (x) => x.rate), 2)}, p99 ${fmt(ratioOver(c, runs, (x) => x.p99Ms), 2)}`;
    return [`${label(c)}, ${w.length} of ${allRuns(c).length} phases refilling: ${part(w)}${wo.length > 0 ? `; the others: ${part(wo)}` : ""}`];
  });
  const commitText =
    commitParts.length === 0
      ? "No PostgreSQL phase followed a commit to the store."
      : "What PostgreSQL adds is a refill of the device cache after a commit, and gatewarden's housekeeping is a store transaction every 30 s even when it deletes nothing (`housekeeping`, src/server/gateway.ts). " +
        "On PostgreSQL every transaction bumps `commit_counter` and sends NOTIFY (`transact`, src/store/postgres-store.ts), and a commit drops the whole device cache of every instance, the committing one included " +
        "(`transact` in src/store/device-read-cache.ts, then `onStoreNotice` and `pollCommits` in src/server/gateway.ts), so the next reconnect of each paired device misses `factsInMemory` " +
        `and waits for a PostgreSQL read (\`gatherFacts\`, src/server/connection.ts): ${opts.devices} reads, each a round trip on a saturated event loop, where SQLite's re-reads are local. ` +
        `A server's first housekeeping comes 30 s after it starts, which in this schedule is around the last phases of a run. PostgreSQL / SQLite per run — ${commitParts.join("; ")}. ` +
        "The refill's reads wait for the pool's connections (10) behind one another, which shows most in p99. One refill per 30 s of steady load weighs about a tenth of what it does in a 3 s phase.";
  lines.push(
    "What this shows: on both stores a paired device's reconnect takes its record from the gateway's in-memory device cache " +
      "(`factsInMemory`, src/server/connection.ts), which on PostgreSQL is trusted only while the LISTEN connection is live (src/store/device-read-cache.ts); between commits the hot path sends no query " +
      "(with `log_statement = all`, a PostgreSQL-backed gateway under 200 concurrent reconnects sends only the change poll's `commit_counter` read, four a second, and the listener's ping). " +
      `gatewarden's CPU per handshake, PostgreSQL / SQLite: ${cpuRatios}. ${commitText}`,
    "",
    `A revocation on instance A reaches instance B as a NOTIFY sent with A's commit and is applied at once (\`onStoreNotice\`, src/server/gateway.ts → the change feed → close 4001): ` +
      `p50 ${fmt(pct(rv["pg-rpc"].latency, 50), 1)} ms, of which ${fmt(pct(rv["pg-rpc"].secondary, 50), 1)} ms is A's own commit (its reply; the commit waits for the WAL's fsync); ` +
      `from a CLI's committed revoke to the close on B it is ${fmt(pct(rv["pg-cli"].latency, 50), 1)} ms. On SQLite a CLI revoke waits for the next change poll (every 250 ms): ` +
      `p50 ${fmt(pct(rv["sqlite-cli"].latency, 50), 1)} ms, p99 ${fmt(sqliteCliP99, 1)} ms.`,
    "",
    `Setup: each run starts both handshake servers afresh (which first alternates), SQLite in a new state dir and PostgreSQL on a new database, ` +
      `and ${scheduleText(opts, meta.pairingSeconds, MAX_FOREIGN, meta.pinned)}${meta.pinned ? ", PostgreSQL unpinned" : ""}; ` +
      "gatewarden logs at info to a file, with bench/lib/pairing.ts's raised connection limits. The revocation part runs unpinned: PostgreSQL instances A and B on one database, one SQLite instance, " +
      "sessions opened by this process, one revocation at a time, 10 ms apart.",
    "",
  );
  return lines.join("\n");
}

// ---------------------------------------------------------------------------

let pgServer: BenchPostgres | undefined;

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  const started = performance.now();
  const { machine: m, pinned, pinning } = benchMachine();
  const tmp = benchTempDir("gatewarden-bench-pg-");
  say(`machine: ${m.cpuModel}, ${m.cores} cores, node ${m.node}; ${pinning}`);
  say("starting PostgreSQL");
  pgServer = await startBenchPostgres();
  if (opts.only !== "revoke") say("handshakes");
  const { figures, pairingSeconds } = opts.only === "revoke" ? { figures: { sqlite: new Map(), postgres: new Map() }, pairingSeconds: Number.NaN } : await handshakePart(opts, tmp, pgServer, m.cores, pinned);
  if (opts.only !== "handshakes") say("revoke → close");
  const revokes = opts.only === "handshakes" ? emptyRevokes() : await revokePart(opts, tmp, pgServer);
  if (opts.only !== undefined || opts.profileDir !== undefined || opts.control) {
    say("--only, --profile or --control: nothing written");
    return;
  }
  const section = render(figures, revokes, { quick: opts.quick, seconds: (performance.now() - started) / 1000, pairingSeconds, pinned, pgSettings: pgServer.settings, opts });
  publishSection(ROOT, "postgres", section, AFTER_BLOCK, say);
}

runBench("bench:postgres", main, HARD_LIMIT_MS, () => {
  const server = pgServer;
  pgServer = undefined;
  return server?.destroy(); // pg_ctl stop runs with spawnSync, so even an exit that does not wait stops the cluster
});
