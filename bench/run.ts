import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { LoadClient } from "./lib/client-process.js";
import { cpuSeconds, machineBusySeconds, machineInfo, rssBytes } from "./lib/proc.js";
import { renderReport } from "./lib/report.js";
import { emptyResults, pushTo, type HandshakeSample, type RoundTripSample, type RssSample, type TargetName, type TargetResults } from "./lib/results.js";
import { canPin, gatewardenCli, killAllChildren, startBare, startGatewarden, type BareTemplates, type ServerHandle } from "./lib/servers.js";
import { median } from "./lib/stats.js";
import { benchConfig, pairDevices } from "./lib/pairing.js";

// `npm run bench [-- --quick]`: gatewarden against the bare limit, same run,
// same machine, same load generator. See BENCHMARKS.md for the output.
//
// Flags: --quick (one short run), --runs N, --devices N, --only
// handshakes,rtt,rss (a subset), --no-rss,
// --out FILE (default BENCHMARKS.md), --profile DIR (gatewarden under
// --cpu-prof, profiles written to DIR; figures are then not comparable).

const ROOT = resolve(fileURLToPath(new URL("../../", import.meta.url)));
/** Everything stops by itself: the whole benchmark is aborted past this. */
const HARD_LIMIT_MS = 15 * 60_000;
/** A throughput phase during which other processes used more than this share of the machine is run again. */
const MAX_FOREIGN = 0.1;

interface Options {
  readonly quick: boolean;
  readonly runs: number;
  readonly devices: number;
  readonly concurrencies: readonly number[];
  readonly handshakeMs: (concurrency: number) => number;
  readonly warmupMs: number;
  readonly rttWindow: number;
  readonly rttMs: number;
  readonly rssRuns: number;
  readonly sessionCounts: readonly number[];
  readonly settleMs: number;
  /** Which parts run: handshakes, rtt, rss (all by default; --only picks). */
  readonly phases: ReadonlySet<string>;
  readonly out: string;
  readonly profileDir: string | undefined;
}

function parseOptions(argv: readonly string[]): Options {
  const flag = (name: string) => argv.includes(name);
  const value = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const quick = flag("--quick");
  const runs = Number(value("--runs") ?? (quick ? 1 : 5));
  const devices = Number(value("--devices") ?? (quick ? 50 : 200));
  if (!Number.isInteger(runs) || runs < 1 || !Number.isInteger(devices) || devices < 1) throw new Error("--runs and --devices take positive integers");
  const profile = value("--profile");
  return {
    quick,
    runs,
    devices,
    concurrencies: [1, 50, 200],
    handshakeMs: (c) => (quick ? 1500 : c === 1 ? 2000 : 3000),
    warmupMs: quick ? 1000 : 2000,
    rttWindow: 16,
    rttMs: quick ? 1000 : 2000,
    // Memory is steadier than throughput: three fresh processes each are enough.
    rssRuns: Math.min(runs, 3),
    sessionCounts: [1000, 10_000],
    settleMs: quick ? 1500 : 2500,
    phases: new Set((value("--only") ?? "handshakes,rtt,rss").split(",").filter((p) => !(p === "rss" && flag("--no-rss")))),
    out: resolve(ROOT, value("--out") ?? "BENCHMARKS.md"),
    profileDir: profile === undefined ? undefined : resolve(profile),
  };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function say(text: string): void {
  process.stdout.write(`[bench] ${text}\n`);
}

function loadAverage(): string {
  return readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
}

function openFilesLimit(): number {
  const r = spawnSync("sh", ["-c", "ulimit -n"], { encoding: "utf8" });
  const n = Number(r.stdout.trim());
  return r.stdout.trim() === "unlimited" ? Number.POSITIVE_INFINITY : Number.isFinite(n) ? n : 1024;
}

async function main(): Promise<void> {
  const started = Date.now();
  const opts = parseOptions(process.argv.slice(2));
  const limit = openFilesLimit();
  // Each side holds one fd per session, plus listeners, logs and the store.
  const sessionCounts = opts.sessionCounts.filter((n) => n + 512 <= limit);
  const setupNotes: string[] = [];
  if (sessionCounts.length < opts.sessionCounts.length) {
    setupNotes.push(`\`ulimit -n\` is ${limit}: session counts above ${limit - 512} were skipped.`);
  }
  const machine = machineInfo(String(limit));
  const twoCores = machine.cores >= 2;
  const pinned = twoCores && canPin();
  const serverCpu = pinned ? 1 : undefined;
  const clientCpu = pinned ? 0 : undefined;

  const tmp = mkdtempSync(join(tmpdir(), "gatewarden-bench-"));
  tempDirs.push(tmp);
  const stateDir = join(tmp, "state");
  mkdirSync(stateDir, { mode: 0o700 });
  writeFileSync(join(stateDir, "gatewarden.json"), JSON.stringify(benchConfig(Math.max(...opts.sessionCounts))), { mode: 0o600 });
  if (opts.profileDir) mkdirSync(opts.profileDir, { recursive: true });
  const gwNodeArgs = opts.profileDir ? ["--cpu-prof", "--cpu-prof-dir", opts.profileDir] : [];
  let logIndex = 0;

  const results: Record<TargetName, TargetResults> = { bare: emptyResults(), gatewarden: emptyResults() };
  const client = LoadClient.start(ROOT, clientCpu);
  let gw: ServerHandle | undefined;
  let bare: ServerHandle | undefined;
  try {
    say(`machine: ${machine.cpuModel}, ${machine.cores} cores, node ${machine.node}; ${pinned ? "server pinned to CPU 1, load generator to CPU 0" : "no CPU pinning"}`);
    gw = await startGatewarden(ROOT, stateDir, serverCpu, logIndex++, gwNodeArgs);

    say(`pairing ${opts.devices} devices`);
    const pairingStarted = Date.now();
    await pairDevices(ROOT, client, gw, stateDir, opts.devices);
    const pairingSeconds = (Date.now() - pairingStarted) / 1000;
    say(`paired in ${pairingSeconds.toFixed(1)} s`);
    // The limit sends gatewarden's own hello-ok and health payloads, so only the work differs.
    const templates: BareTemplates = await client.run({ cmd: "sample", url: gw.url });
    bare = await startBare(ROOT, serverCpu, templates, opts.profileDir ? gwNodeArgs : []);
    const loadBefore = loadAverage();

    // What other processes on the machine took during a phase: all CPU time
    // minus the server's, the load generator's and ours. A phase disturbed
    // by more than MAX_FOREIGN of the machine is run again (once), keeping
    // the quieter attempt; the report shows what was left.
    const cores = machine.cores;
    const observe = async <T extends { completed: number; elapsedMs: number }>(server: ServerHandle, work: () => Promise<T>) => {
      const machine0 = machineBusySeconds();
      const server0 = cpuSeconds(server.pid);
      const client0 = cpuSeconds(client.pid);
      const self0 = process.cpuUsage();
      const r = await work();
      const serverCpu = cpuSeconds(server.pid) - server0;
      const self = process.cpuUsage(self0);
      const ours = serverCpu + (cpuSeconds(client.pid) - client0) + (self.user + self.system) / 1e6;
      const foreign = Math.max(0, (machineBusySeconds() - machine0 - ours) / ((r.elapsedMs / 1000) * cores));
      return { r, serverCpu, foreign };
    };
    const quieter = async <S extends { foreign: number }>(attempt: () => Promise<S>): Promise<S> => {
      const first = await attempt();
      if (first.foreign <= MAX_FOREIGN) return first;
      const second = await attempt();
      return second.foreign < first.foreign ? second : first;
    };
    const handshakePhase = (server: ServerHandle, concurrency: number, durationMs: number): Promise<HandshakeSample> =>
      quieter(async () => {
        const { r, serverCpu: cpu, foreign } = await observe(server, () => client.run({ cmd: "handshakes", url: server.url, concurrency, durationMs }));
        await sleep(300); // let closing sockets drain before the next phase
        return {
          rate: (r.completed / r.elapsedMs) * 1000,
          p50Ms: r.p50Ms,
          p99Ms: r.p99Ms,
          serverCpuUs: r.completed > 0 ? (cpu / r.completed) * 1e6 : Number.NaN,
          serverBusy: cpu / (r.elapsedMs / 1000),
          clientBusy: r.clientCpuS / (r.elapsedMs / 1000),
          helloBytes: r.helloBytes,
          phases: r.phases,
          errors: r.errors,
          firstError: r.firstError,
          foreign,
        };
      });
    const roundTripPhase = (server: ServerHandle, window: number, durationMs: number): Promise<RoundTripSample> =>
      quieter(async () => {
        const { r, serverCpu: cpu, foreign } = await observe(server, () => client.run({ cmd: "roundTrips", url: server.url, window, durationMs }));
        return {
          rate: (r.completed / r.elapsedMs) * 1000,
          serverCpuUs: r.completed > 0 ? (cpu / r.completed) * 1e6 : Number.NaN,
          serverBusy: cpu / (r.elapsedMs / 1000),
          clientBusy: r.clientCpuS / (r.elapsedMs / 1000),
          replyBytes: r.replyBytes,
          errors: r.errors,
          foreign,
        };
      });

    // Warm-up, the same for both servers: every handshake concurrency and the
    // round trips, so the optimizing compiler (which shares the server's one
    // core) has compiled the hot paths and the heap has reached its working
    // size before anything is measured. With a single 2 s phase, gatewarden's
    // larger handshake path was still being compiled during the first runs
    // (twice as many functions as the limit's; BENCHMARKS.md).
    for (const server of [bare, gw]) {
      for (const c of opts.concurrencies) await handshakePhase(server, c, opts.warmupMs);
      await roundTripPhase(server, opts.rttWindow, Math.min(1000, opts.warmupMs));
    }

    const servers: Record<TargetName, ServerHandle> = { bare, gatewarden: gw };
    // Each phase runs on both servers back to back, alternating which goes
    // first, so drift in a shared machine's load hits both alike.
    const ordered = (i: number): TargetName[] => (i % 2 === 0 ? ["bare", "gatewarden"] : ["gatewarden", "bare"]);
    let turn = 0;
    for (let run = 0; run < opts.runs; run++) {
      if (opts.phases.has("handshakes")) {
        for (const c of opts.concurrencies) {
          for (const name of ordered(turn++)) {
            const s = await handshakePhase(servers[name], c, opts.handshakeMs(c));
            pushTo(results[name].handshakes, c, s);
            say(`run ${run + 1} ${name} handshakes ${c === 1 ? "seq" : `c${c}`}: ${s.rate.toFixed(0)}/s p50 ${s.p50Ms.toFixed(2)} ms p99 ${s.p99Ms.toFixed(2)} ms, ${s.serverCpuUs.toFixed(0)} µs CPU each, server busy ${s.serverBusy.toFixed(2)}, client busy ${s.clientBusy.toFixed(2)}, steps ${[s.phases.tcpMs, s.phases.challengeMs, s.phases.helloMs, s.phases.closeMs].map((v) => v.toFixed(1)).join("/")} ms, others ${(s.foreign * 100).toFixed(0)}%${s.errors ? `, ${s.errors} errors (${s.firstError})` : ""}`);
          }
        }
      }
      if (opts.phases.has("rtt")) {
        for (const w of [1, opts.rttWindow]) {
          for (const name of ordered(turn++)) {
            const s = await roundTripPhase(servers[name], w, opts.rttMs);
            pushTo(results[name].roundTrips, w, s);
            say(`run ${run + 1} ${name} health window ${w}: ${s.rate.toFixed(0)}/s, ${s.serverCpuUs.toFixed(1)} µs CPU each, others ${(s.foreign * 100).toFixed(0)}%${s.errors ? `, ${s.errors} errors` : ""}`);
          }
        }
      }
    }
    const loadAfter = loadAverage();
    await gw.stop();
    await bare.stop();
    gw = undefined;
    bare = undefined;

    if (opts.phases.has("rss") && sessionCounts.length > 0) {
      // A fresh process per run: a server that has just served thousands of
      // handshakes carries garbage and grown heaps that would blur the delta.
      for (let run = 0; run < opts.rssRuns; run++) {
        const names: TargetName[] = run % 2 === 0 ? ["bare", "gatewarden"] : ["gatewarden", "bare"];
        for (const name of names) {
          const server = name === "bare" ? await startBare(ROOT, serverCpu, templates) : await startGatewarden(ROOT, stateDir, serverCpu, logIndex++);
          try {
            // Load the handshake code paths, then let the process go idle.
            await client.run({ cmd: "handshakes", url: server.url, concurrency: 20, durationMs: 500 });
            await sleep(opts.settleMs);
            const baselineBytes = await rssMedian(server.pid);
            const at = new Map<number, number>();
            const openCpuUs = new Map<number, number>();
            let errors = 0;
            let firstError: string | undefined;
            let previous = 0;
            for (const n of sessionCounts) {
              const cpu0 = cpuSeconds(server.pid);
              const opened = await client.run({ cmd: "openSessions", url: server.url, total: n, concurrency: 100 });
              openCpuUs.set(n, ((cpuSeconds(server.pid) - cpu0) / Math.max(1, opened.open - previous)) * 1e6);
              previous = opened.open;
              errors += opened.errors;
              firstError ??= opened.firstError;
              await sleep(opts.settleMs);
              at.set(n, await rssMedian(server.pid));
              say(
                `run ${run + 1} ${name} ${opened.open} idle sessions (opened in ${(opened.elapsedMs / 1000).toFixed(1)} s): RSS ${(at.get(n)! / 2 ** 20).toFixed(1)} MiB, ` +
                  `baseline ${(baselineBytes / 2 ** 20).toFixed(1)} MiB, ${((at.get(n)! - baselineBytes) / n / 1024).toFixed(2)} KiB/session, ${openCpuUs.get(n)!.toFixed(0)} µs server CPU per session opened${opened.errors ? `, ${opened.errors} errors (${opened.firstError})` : ""}`,
              );
            }
            results[name].rss.push({ baselineBytes, at, openCpuUs, errors, firstError } satisfies RssSample);
            await client.run({ cmd: "closeSessions" });
          } finally {
            await server.stop();
          }
        }
      }
    }

    const totalSeconds = (Date.now() - started) / 1000;
    setupNotes.push(
      `Load average (1/5/15 min) before the throughput phases ${loadBefore}, after ${loadAfter}. On a shared machine other processes take CPU from both servers alike (phases alternate); server CPU per operation, also reported, is the figure least disturbed by that.`,
    );
    setupNotes.push(
      `Processes: gatewarden (\`node bin/gatewarden.js serve --port 0\`, default SQLite store in a temp GATEWARDEN_STATE_DIR, log level info with its JSON lines redirected to a file), ` +
        "the limit (`node dist/bench/bare-server.js`) and one load generator (`dist/bench/load-client.js`, one event loop, `ws` client) are separate processes, so each server's RSS and CPU (from /proc/<pid>/status and /proc/<pid>/stat) are its own.",
      pinned
        ? "With 2 cores, the server under test is pinned to CPU 1 and the load generator to CPU 0 (`taskset`): one core each, and both servers face the same client. More client processes than cores would only steal the server's core."
        : "No CPU pinning (taskset unavailable or fewer than 2 cores): server and load generator share the cores.",
      `Handshake: TCP connect → \`connect.challenge\` → \`connect\` signed with the device's Ed25519 key over the v3 payload, \`auth: { deviceToken }\`, client \`cli\`/\`cli\`, role operator, scopes [operator.read] → hello-ok → close; latency is TCP connect to hello-ok. ` +
        `Concurrent loop i uses device i of ${opts.devices} pre-paired devices${opts.devices < Math.max(...opts.concurrencies) ? " (fewer devices than loops in this mode: some devices have several sockets)" : ""}.`,
      `Phases: ${opts.concurrencies.map((c) => `${label(c)} ${opts.handshakeMs(c) / 1000} s`).join(", ")}; \`health\` ${opts.rttMs / 1000} s sequential and ${opts.rttMs / 1000} s with ${opts.rttWindow} requests in flight on one session; a warm-up of ${opts.warmupMs / 1000} s at each handshake concurrency and 1 s of round trips per server first; runs alternate which server goes first.`,
      `RSS: a fresh server process per run (${opts.rssRuns} runs); baseline after 0.5 s of handshakes and ${opts.settleMs / 1000} s idle; then ${sessionCounts.map((n) => n.toLocaleString("en-US")).join(" and ")} idle authenticated sessions (100 opened at a time), RSS read ${opts.settleMs / 1000} s after the last opened (median of 3 reads); per session = (RSS − baseline) / sessions. Kernel socket buffers are not in RSS.`,
      "Client source addresses are spread over 127.0.0.1–127.0.0.64 (`localAddress`), so short-lived connections never run out of ephemeral ports; gatewarden's config raises limits.maxPreauthPerIp, limits.maxConnectionsPerIp, limits.maxConnections and pairing.maxPendingPerIp for this.",
    );
    const report = renderReport({
      machine,
      date: new Date().toISOString().slice(0, 16).replace("T", " ") + " UTC",
      mode: opts.quick ? "quick" : "default",
      runs: opts.runs,
      rssRuns: opts.rssRuns,
      devices: opts.devices,
      concurrencies: opts.concurrencies,
      sessionCounts: opts.phases.has("rss") ? sessionCounts : [],
      rttWindow: opts.rttWindow,
      pinned,
      pairingSeconds,
      totalSeconds,
      bare: results.bare,
      gatewarden: results.gatewarden,
      setupNotes,
    });
    const findings = join(ROOT, "bench", "findings.md");
    // The relay and PostgreSQL figures come from `npm run bench:relay` and `bench:postgres`, kept between their markers.
    const block = (name: string, marker: string): string => {
      const file = join(ROOT, "bench", name);
      return existsSync(file) ? `\n<!-- ${marker}:start -->\n${readFileSync(file, "utf8")}<!-- ${marker}:end -->\n` : "";
    };
    const text = report + block("relay-results.md", "relay-bench") + block("postgres-results.md", "postgres-bench") + block("metrics-results.md", "metrics-bench") + (existsSync(findings) ? "\n" + readFileSync(findings, "utf8") : "");
    writeFileSync(opts.out, text);
    process.stdout.write("\n" + report + "\n");
    say(`wrote ${opts.out} in ${totalSeconds.toFixed(0)} s`);
  } finally {
    client.stop();
    await gw?.stop();
    await bare?.stop();
  }
}

async function rssMedian(pid: number): Promise<number> {
  const reads: number[] = [];
  for (let i = 0; i < 3; i++) {
    if (i > 0) await sleep(250);
    reads.push(rssBytes(pid));
  }
  return median(reads);
}

function label(concurrency: number): string {
  return concurrency === 1 ? "sequential" : `${concurrency} concurrent`;
}

const tempDirs: string[] = [];
process.on("exit", () => {
  killAllChildren();
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    killAllChildren();
    process.exit(130);
  });
}
const watchdog = setTimeout(() => {
  process.stderr.write(`[bench] aborted: still running after ${HARD_LIMIT_MS / 60_000} minutes\n`);
  process.exit(2);
}, HARD_LIMIT_MS);
watchdog.unref();

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`[bench] failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);
