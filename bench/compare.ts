import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { LoadClient } from "./lib/client-process.js";
import { benchConfig, pairDevices } from "./lib/pairing.js";
import { cpuSeconds } from "./lib/proc.js";
import { canPin, killAllChildren, startBare, startGatewarden, type BareTemplates, type ServerHandle } from "./lib/servers.js";
import { median } from "./lib/stats.js";

// `npm run bench:compare -- [--rounds N] [--seconds S] [--concurrency C] TREE… [limit]`
//
// Server CPU per handshake for several builds of gatewarden, side by side:
// each TREE is a directory holding a built gatewarden (bin/, dist/,
// node_modules/), e.g. a `git worktree` of another commit after `npm ci &&
// npm run build`; `limit` is the bare ws server of this checkout. Devices are
// paired once (with this checkout's gatewarden), then every target serves the
// same load generator in turn, round after round, so a slow spell on a shared
// machine falls on all of them. Medians are printed; this is how
// bench/findings.md measured each change. Not part of `npm test`.

const ROOT = resolve(fileURLToPath(new URL("../../", import.meta.url)));

interface Options {
  readonly rounds: number;
  readonly durationMs: number;
  readonly concurrency: number;
  readonly targets: readonly string[];
}

function parseOptions(argv: readonly string[]): Options {
  const targets: string[] = [];
  let rounds = 4;
  let seconds = 3;
  let concurrency = 200;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const next = () => Number(argv[++i]);
    if (arg === "--rounds") rounds = next();
    else if (arg === "--seconds") seconds = next();
    else if (arg === "--concurrency") concurrency = next();
    else if (arg.startsWith("--")) throw new Error(`unknown flag ${arg}`);
    else targets.push(arg === "limit" ? arg : resolve(arg));
  }
  for (const [name, v] of [["--rounds", rounds], ["--seconds", seconds], ["--concurrency", concurrency]] as const) {
    if (!Number.isFinite(v) || v <= 0) throw new Error(`${name} takes a positive number`);
  }
  if (targets.length === 0) throw new Error("name at least one tree (a directory with a built gatewarden) or `limit`");
  return { rounds, durationMs: seconds * 1000, concurrency, targets };
}

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  const pinned = canPin();
  const tmp = mkdtempSync(join(tmpdir(), "gatewarden-compare-"));
  const stateDir = join(tmp, "state");
  mkdirSync(stateDir, { mode: 0o700 });
  writeFileSync(join(stateDir, "gatewarden.json"), JSON.stringify(benchConfig(0)), { mode: 0o600 });
  const client = LoadClient.start(ROOT, pinned ? 0 : undefined);
  try {
    const gw = await startGatewarden(ROOT, stateDir, pinned ? 1 : undefined, 0);
    await pairDevices(ROOT, client, gw, stateDir, 200);
    const templates: BareTemplates = await client.run({ cmd: "sample", url: gw.url });
    await gw.stop();

    const results = new Map<string, { rate: number; cpuUs: number; p99Ms: number }[]>(opts.targets.map((t) => [t, []]));
    for (let round = 1; round <= opts.rounds; round++) {
      for (const target of opts.targets) {
        const server: ServerHandle =
          target === "limit" ? await startBare(ROOT, pinned ? 1 : undefined, templates) : await startGatewarden(target, stateDir, pinned ? 1 : undefined, round);
        try {
          await client.run({ cmd: "handshakes", url: server.url, concurrency: opts.concurrency, durationMs: 3000 }); // warm-up: the optimizing compiler shares the server's core
          const cpu0 = cpuSeconds(server.pid);
          const r = await client.run({ cmd: "handshakes", url: server.url, concurrency: opts.concurrency, durationMs: opts.durationMs });
          const cpu = cpuSeconds(server.pid) - cpu0;
          const sample = { rate: (r.completed / r.elapsedMs) * 1000, cpuUs: r.completed > 0 ? (cpu / r.completed) * 1e6 : Number.NaN, p99Ms: r.p99Ms };
          results.get(target)?.push(sample);
          process.stdout.write(`round ${round} ${target}: ${sample.rate.toFixed(0)}/s, ${sample.cpuUs.toFixed(0)} µs CPU each, p99 ${sample.p99Ms.toFixed(1)} ms, errors ${r.errors}\n`);
        } finally {
          await server.stop();
        }
      }
    }
    process.stdout.write(`\nmedians over ${opts.rounds} rounds, ${opts.concurrency} concurrent:\n`);
    for (const [target, samples] of results) {
      const m = (f: (s: { rate: number; cpuUs: number; p99Ms: number }) => number) => median(samples.map(f));
      process.stdout.write(`${target}: ${m((s) => s.rate).toFixed(0)}/s, ${m((s) => s.cpuUs).toFixed(0)} µs CPU per handshake, p99 ${m((s) => s.p99Ms).toFixed(1)} ms\n`);
    }
  } finally {
    client.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    killAllChildren();
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
