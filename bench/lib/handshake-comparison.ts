import { spawn } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { LoadClient } from "./client-process.js";
import { benchConfig } from "./pairing.js";
import { cpuSeconds, machineBusySeconds } from "./proc.js";
import type { HandshakeSample } from "./results.js";
import { nodeCommand, stopChild, track } from "./servers.js";
import { median } from "./stats.js";

// Handshakes/s and latency of two or more gatewarden processes side by side in
// one run (bench/postgres.ts, bench/metrics.ts): a paired device reconnecting
// with its device token, the same load generator (bench/load-client.ts, one per
// server) against each, phases alternating which server goes first, fresh
// processes every run. Ratios within the run are the result.

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export interface BenchGateway {
  readonly name: string;
  readonly url: string;
  readonly pid: number;
  readonly env: NodeJS.ProcessEnv;
  /** `http://…/metrics` when the process serves metrics (`--metrics-port`). */
  readonly metricsUrl: string | undefined;
  stop(): Promise<void>;
}

export interface BenchGatewayOptions {
  readonly root: string;
  /** Parent of the process's state dir, `<tmp>/<name>`. */
  readonly tmp: string;
  readonly name: string;
  /** Shared token (GATEWARDEN_TOKEN). */
  readonly token: string;
  /** GATEWARDEN_STORE (PostgreSQL); SQLite in the state dir without it. */
  readonly storeUrl?: string | undefined;
  readonly cpu?: number | undefined;
  readonly nodeArgs?: readonly string[];
  /** More `serve` flags, after `--port 0`. */
  readonly serveArgs?: readonly string[];
}

const LISTENING = /listening on ws:\/\/127\.0\.0\.1:(\d+)/;
const METRICS = /metrics: (http:\/\/\S+\/metrics)/;

/**
 * `node bin/gatewarden.js serve --port 0` with its own state dir, the shared
 * token from GATEWARDEN_TOKEN, the store from GATEWARDEN_STORE (PostgreSQL)
 * or SQLite in the state dir, log level info with its JSON lines in a file
 * (as bench/run.ts starts it), pinned to `cpu` when given.
 */
export async function startBenchGateway(o: BenchGatewayOptions): Promise<BenchGateway> {
  const stateDir = join(o.tmp, o.name);
  mkdirSync(stateDir, { mode: 0o700 });
  const base = benchConfig(1000) as { limits: object; pairing: object };
  // Silent local pairing pairs the benchmark's devices on their first connect (operator.read is within its default ceiling).
  const config = { ...base, pairing: { ...base.pairing, silentLocal: { enabled: true } } };
  writeFileSync(join(stateDir, "gatewarden.json"), JSON.stringify(config), { mode: 0o600 });
  const env: NodeJS.ProcessEnv = { ...process.env, GATEWARDEN_STATE_DIR: stateDir, GATEWARDEN_TOKEN: o.token, GATEWARDEN_LOG_LEVEL: "info" };
  delete env.GATEWARDEN_CONFIG;
  delete env.GATEWARDEN_METRICS_PORT;
  if (o.storeUrl !== undefined) env.GATEWARDEN_STORE = o.storeUrl;
  else delete env.GATEWARDEN_STORE;
  const logPath = join(stateDir, "gatewarden.log");
  const log = openSync(logPath, "a");
  const { command, args } = nodeCommand(o.cpu, [...(o.nodeArgs ?? []), join(o.root, "bin", "gatewarden.js"), "serve", "--port", "0", ...(o.serveArgs ?? [])]);
  const child = track(spawn(command, args, { env, stdio: ["ignore", "pipe", log], cwd: o.root }));
  closeSync(log);
  const stdout = await new Promise<string>((resolveOut, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`${o.name} did not start within 20 s:\n${out}`)), 20_000);
    child.stdout?.on("data", (d: Buffer) => {
      out += d.toString("utf8");
      // The lines come in one write; the last one printed before the token block is enough.
      if (LISTENING.test(out) && out.endsWith("\n")) {
        clearTimeout(timer);
        resolveOut(out);
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${o.name} exited with ${String(code)}:\n${out}\n${existsSync(logPath) ? readFileSync(logPath, "utf8").slice(-2000) : ""}`));
    });
  });
  const port = Number(LISTENING.exec(stdout)?.[1]);
  return { name: o.name, url: `ws://127.0.0.1:${port}`, pid: child.pid ?? -1, env, metricsUrl: METRICS.exec(stdout)?.[1], stop: () => stopChild(child) };
}

/** One phase of handshakes against one server. */
export interface HandshakeMeasure extends Pick<HandshakeSample, "rate" | "p50Ms" | "p99Ms" | "serverCpuUs" | "serverBusy" | "clientBusy"> {
  readonly completed: number;
  /** CPU seconds of the processes `otherCpu` watches (e.g. a PostgreSQL cluster) during the phase. */
  readonly otherCpuS: number;
  /** Share of the machine other processes used during the phase. */
  readonly foreign: number;
  readonly errors: number;
  readonly firstError: string | undefined;
}

/** Starts counting some processes' CPU; the function it returns gives the seconds used since. */
export type CpuProbe = () => () => number;

/** `concurrency` reconnect loops for `durationMs` from `load` against `server`, with the CPU each side and the rest of the machine used meanwhile. */
export async function measureHandshakes(
  load: LoadClient,
  server: { readonly url: string; readonly pid: number },
  concurrency: number,
  durationMs: number,
  cores: number,
  otherCpu?: CpuProbe,
): Promise<HandshakeMeasure> {
  const machine0 = machineBusySeconds();
  const server0 = cpuSeconds(server.pid);
  const client0 = cpuSeconds(load.pid);
  const other = otherCpu?.();
  const self0 = process.cpuUsage();
  const r = await load.run({ cmd: "handshakes", url: server.url, concurrency, durationMs });
  const serverS = cpuSeconds(server.pid) - server0;
  const clientS = cpuSeconds(load.pid) - client0;
  const otherS = other?.() ?? 0;
  const self = process.cpuUsage(self0);
  const wall = r.elapsedMs / 1000;
  const foreign = Math.max(0, (machineBusySeconds() - machine0 - serverS - clientS - otherS - (self.user + self.system) / 1e6) / (wall * cores));
  return {
    rate: r.completed / wall,
    p50Ms: r.p50Ms,
    p99Ms: r.p99Ms,
    serverCpuUs: r.completed > 0 ? (serverS / r.completed) * 1e6 : Number.NaN,
    serverBusy: serverS / wall,
    clientBusy: clientS / wall,
    completed: r.completed,
    otherCpuS: otherS,
    foreign,
    errors: r.errors,
    firstError: r.firstError,
  };
}

/** How many runs, devices and phases of what length. */
export interface HandshakeSchedule {
  readonly runs: number;
  /** Devices paired with each server. */
  readonly devices: number;
  readonly concurrencies: readonly number[];
  readonly phaseMs: (concurrency: number) => number;
  /** A warm-up phase at each concurrency on each server before the measured ones. */
  readonly warmupMs: number;
}

export interface HandshakeComparison<V extends string, S extends HandshakeMeasure> {
  readonly root: string;
  /** The servers' shared token, for silent local pairing. */
  readonly token: string;
  /** In the order of the first run's start-up and of pairing; phase order rotates through them. */
  readonly variants: readonly V[];
  readonly schedule: HandshakeSchedule;
  readonly cores: number;
  /** Servers on CPU 1 and load generators on CPU 0. */
  readonly pinned: boolean;
  /** A phase during which other processes used more than this share of the machine is run again (twice at most; the quietest kept). */
  readonly maxForeign: number;
  readonly otherCpu?: CpuProbe;
  beforeRun?(run: number): Promise<void>;
  afterRun?(run: number): Promise<void>;
  startServer(variant: V, run: number, cpu: number | undefined): Promise<BenchGateway>;
  /** One attempt at a phase: `measure` does the handshakes; what the bench adds around them (store counters, a scraper) goes here. */
  sample(variant: V, measure: () => Promise<HandshakeMeasure>, server: BenchGateway): Promise<S>;
  /** A kept (measured, not warm-up) phase. */
  kept?(variant: V, concurrency: number, run: number, sample: S): void;
}

export type HandshakeFigures<V extends string, S> = Record<V, Map<number, S[]>>;

/**
 * Fresh server and load generator processes for every run (which server starts
 * first rotates): two processes of the same build differ by a few per cent in
 * CPU per handshake for as long as they live (where the JIT and the heap
 * happened to put things), so a set kept for every run would repeat one draw
 * of that in every run.
 */
export async function compareHandshakes<V extends string, S extends HandshakeMeasure>(o: HandshakeComparison<V, S>): Promise<{ figures: HandshakeFigures<V, S>; pairingSeconds: number }> {
  const { runs, devices, concurrencies, phaseMs, warmupMs } = o.schedule;
  const serverCpu = o.pinned ? 1 : undefined;
  const clientCpu = o.pinned ? 0 : undefined;
  const rotated = (k: number): V[] => o.variants.map((_, i) => o.variants[(i + k) % o.variants.length] as V);
  const figures = Object.fromEntries(o.variants.map((v) => [v, new Map<number, S[]>()])) as HandshakeFigures<V, S>;
  const pairingTimes: number[] = [];
  let servers = new Map<V, BenchGateway>();
  let clients = new Map<V, LoadClient>();
  try {
    let turn = 0;
    for (let run = 0; run < runs; run++) {
      await o.beforeRun?.(run);
      servers = new Map();
      clients = new Map();
      for (const v of rotated(run)) {
        servers.set(v, await o.startServer(v, run, serverCpu));
        // One load generator per server (it holds its devices' tokens for that server), as fresh as the server; only one works at a time.
        const client = LoadClient.start(o.root, clientCpu);
        clients.set(v, client);
        await client.run({ cmd: "createDevices", n: devices });
      }
      const server = (v: V): BenchGateway => servers.get(v) as BenchGateway;
      const client = (v: V): LoadClient => clients.get(v) as LoadClient;
      const pairingStarted = performance.now();
      for (const v of o.variants) {
        // Silent local pairing: each device's first connect with the shared token pairs it and returns its device token.
        const { tokens } = await client(v).run({ cmd: "fetchDeviceTokens", url: server(v).url, token: o.token });
        if (tokens !== devices) throw new Error(`${v}: only ${tokens} of ${devices} devices got a device token`);
      }
      pairingTimes.push((performance.now() - pairingStarted) / 1000 / o.variants.length);

      const phase = async (v: V, concurrency: number, durationMs: number): Promise<S> => {
        const attempt = async (): Promise<S> => {
          const s = await o.sample(v, () => measureHandshakes(client(v), server(v), concurrency, durationMs, o.cores, o.otherCpu), server(v));
          await sleep(300); // closing sockets drain before the next phase
          return s;
        };
        // A shared machine: up to three attempts while others take more than maxForeign, keeping the quietest.
        let best = await attempt();
        for (let i = 1; i < 3 && best.foreign > o.maxForeign; i++) {
          const again = await attempt();
          if (again.foreign < best.foreign) best = again;
        }
        return best;
      };

      // Warm-up: every concurrency on every server, so all have compiled their hot paths and filled their device caches.
      for (const v of o.variants) for (const c of concurrencies) await phase(v, c, warmupMs);

      for (const c of concurrencies) {
        for (const v of rotated(turn++)) {
          const sample = await phase(v, c, phaseMs(c));
          const list = figures[v].get(c) ?? [];
          list.push(sample);
          figures[v].set(c, list);
          o.kept?.(v, c, run, sample);
        }
      }
      await o.afterRun?.(run);
      for (const v of o.variants) {
        client(v).stop();
        await server(v).stop();
      }
      servers = new Map();
      clients = new Map();
    }
    return { figures, pairingSeconds: median(pairingTimes) };
  } finally {
    for (const c of clients.values()) c.stop();
    for (const s of servers.values()) await s.stop();
  }
}

/** Median over the runs of `num`'s figure / `den`'s figure at `concurrency` (each run measures both, back to back). */
export function ratioOfRuns<V extends string, S>(figures: HandshakeFigures<V, S>, num: V, den: V, concurrency: number, pick: (s: S) => number): number {
  const under = figures[den].get(concurrency) ?? [];
  return median((figures[num].get(concurrency) ?? []).map((x, i) => pick(x) / pick(under[i] as S)));
}

// Report text.

export const fmt = (v: number, digits = 1): string => (Number.isFinite(v) ? v.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits }) : "–");
export const concurrencyLabel = (c: number): string => (c === 1 ? "sequential" : `${c} concurrent`);

/** A ratio to two decimals, or three where two would round it onto the other side of `target`. */
export function ratioText(r: number, target: number): string {
  return r < target && Number(r.toFixed(2)) >= target ? fmt(r, 3) : fmt(r, 2);
}

/** The schedule in words, for a report's setup paragraph: "pairs … kept; the gateway under test pinned … CPU 0" (or "no CPU pinning"). */
export function scheduleText(schedule: HandshakeSchedule, pairingSeconds: number, maxForeign: number, pinned: boolean): string {
  const { devices, concurrencies, phaseMs, warmupMs } = schedule;
  return (
    `pairs ${devices} devices with each by silent local pairing (${fmt(pairingSeconds, 1)} s per server); phases ${concurrencies.map((c) => `${concurrencyLabel(c)} ${phaseMs(c) / 1000} s`).join(", ")} after a ${warmupMs / 1000} s warm-up at each, ` +
    `a phase in which other processes took more than ${maxForeign * 100} % of the machine run up to twice more and the quietest kept; ` +
    (pinned ? "the gateway under test pinned to CPU 1 and the load generator (bench/load-client.ts, one per server, the same code) to CPU 0" : "no CPU pinning")
  );
}

/** One kept phase in the progress output: "run 2 on c200: 2500/s p50 … others 3%", with `extra` before the share of others. */
export function phaseLine(variant: string, concurrency: number, run: number, x: HandshakeMeasure, extra = ""): string {
  return (
    `run ${run + 1} ${variant} ${concurrency === 1 ? "seq" : `c${concurrency}`}: ${x.rate.toFixed(0)}/s p50 ${x.p50Ms.toFixed(2)} ms p99 ${x.p99Ms.toFixed(2)} ms, ` +
    `${x.serverCpuUs.toFixed(0)} µs CPU each, server busy ${x.serverBusy.toFixed(2)}, client busy ${x.clientBusy.toFixed(2)}, ${extra}` +
    `others ${(x.foreign * 100).toFixed(0)}%${x.errors ? `, ${x.errors} errors (${x.firstError})` : ""}`
  );
}
