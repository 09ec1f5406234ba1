import type { HandshakePhases } from "./ipc.js";
import type { MachineInfo } from "./proc.js";
import type { HandshakeSample, RoundTripSample, TargetResults } from "./results.js";
import { median } from "./stats.js";

// The report: one table of medians over runs, gatewarden against the limit,
// then the facts needed to trust it (machine, setup, per-run values).

export interface ReportInput {
  readonly machine: MachineInfo;
  readonly date: string;
  readonly mode: string;
  readonly runs: number;
  readonly rssRuns: number;
  readonly devices: number;
  readonly concurrencies: readonly number[];
  readonly sessionCounts: readonly number[];
  readonly rttWindow: number;
  readonly pinned: boolean;
  readonly pairingSeconds: number;
  readonly totalSeconds: number;
  readonly bare: TargetResults;
  readonly gatewarden: TargetResults;
  readonly setupNotes: readonly string[];
}

const MiB = 1024 * 1024;
const KiB = 1024;

function fmt(n: number, digits = 0): string {
  if (!Number.isFinite(n)) return "n/a";
  return n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function med<T>(samples: readonly T[] | undefined, pick: (s: T) => number): number {
  return median((samples ?? []).map(pick));
}

function all<T>(samples: readonly T[] | undefined, pick: (s: T) => number): number[] {
  return (samples ?? []).map(pick);
}

function label(concurrency: number): string {
  return concurrency === 1 ? "sequential" : `${concurrency} concurrent`;
}

interface Row {
  readonly measure: string;
  /** One value per run; the table shows medians. */
  readonly bare: readonly number[];
  readonly gw: readonly number[];
  readonly digits: number;
  /** Shown in the target column; `check` says whether the ratio meets it. */
  readonly target?: string;
  readonly check?: (ratio: number, gw: number) => boolean;
}

/**
 * gatewarden / limit: the median of per-run ratios when the runs pair up
 * (each run measures both servers back to back, so a pair shares the
 * machine's state), else the ratio of the medians.
 */
function ratioOf(row: Row): number {
  if (row.bare.length === row.gw.length && row.bare.length > 0) return median(row.gw.map((g, i) => g / (row.bare[i] as number)));
  return median([...row.gw]) / median([...row.bare]);
}

export function renderReport(input: ReportInput): string {
  const { bare, gatewarden: gw } = input;
  const rows: Row[] = [];
  for (const c of input.concurrencies) {
    rows.push({
      measure: `Handshakes/s, ${label(c)}`,
      bare: all(bare.handshakes.get(c), (s) => s.rate),
      gw: all(gw.handshakes.get(c), (s) => s.rate),
      digits: 0,
      ...(c > 1 ? { target: "ratio ≥ 0.80", check: (r: number) => r >= 0.8 } : {}),
    });
  }
  const top = Math.max(...input.concurrencies);
  rows.push({ measure: `Handshake latency p50 @${top} (ms)`, bare: all(bare.handshakes.get(top), (s) => s.p50Ms), gw: all(gw.handshakes.get(top), (s) => s.p50Ms), digits: 1 });
  rows.push({
    measure: `Handshake latency p99 @${top} (ms)`,
    bare: all(bare.handshakes.get(top), (s) => s.p99Ms),
    gw: all(gw.handshakes.get(top), (s) => s.p99Ms),
    digits: 1,
    target: "ratio ≤ 1.50",
    check: (r) => r <= 1.5,
  });
  rows.push({ measure: `Server CPU per handshake @${top} (µs)`, bare: all(bare.handshakes.get(top), (s) => s.serverCpuUs), gw: all(gw.handshakes.get(top), (s) => s.serverCpuUs), digits: 0 });
  rows.push({
    measure: `Handshakes per second of server CPU @${top} (one saturated core)`,
    bare: all(bare.handshakes.get(top), (s) => 1e6 / s.serverCpuUs),
    gw: all(gw.handshakes.get(top), (s) => 1e6 / s.serverCpuUs),
    digits: 0,
  });
  rows.push({ measure: "`health` round trips/s, sequential", bare: all(bare.roundTrips.get(1), (s) => s.rate), gw: all(gw.roundTrips.get(1), (s) => s.rate), digits: 0 });
  rows.push({
    measure: `\`health\` round trips/s, pipelined (window ${input.rttWindow})`,
    bare: all(bare.roundTrips.get(input.rttWindow), (s) => s.rate),
    gw: all(gw.roundTrips.get(input.rttWindow), (s) => s.rate),
    digits: 0,
  });
  rows.push({ measure: "`health` server CPU per call, pipelined (µs)", bare: all(bare.roundTrips.get(input.rttWindow), (s) => s.serverCpuUs), gw: all(gw.roundTrips.get(input.rttWindow), (s) => s.serverCpuUs), digits: 1 });
  if (input.sessionCounts.length > 0) {
    rows.push({ measure: "Server RSS before sessions (MiB)", bare: all(bare.rss, (s) => s.baselineBytes / MiB), gw: all(gw.rss, (s) => s.baselineBytes / MiB), digits: 1 });
    for (const n of input.sessionCounts) {
      const per = (s: { baselineBytes: number; at: ReadonlyMap<number, number> }) => ((s.at.get(n) ?? Number.NaN) - s.baselineBytes) / n / KiB;
      rows.push({ measure: `RSS per idle authenticated session @${fmt(n)} (KiB)`, bare: all(bare.rss, per), gw: all(gw.rss, per), digits: 1 });
    }
    const most = Math.max(...input.sessionCounts);
    if (input.sessionCounts.length > 1) {
      rows.push({
        measure: `Server CPU per session opened while ${fmt(Math.min(...input.sessionCounts))} → ${fmt(most)} are open (µs)`,
        bare: all(bare.rss, (s) => s.openCpuUs.get(most) ?? Number.NaN),
        gw: all(gw.rss, (s) => s.openCpuUs.get(most) ?? Number.NaN),
        digits: 0,
      });
    }
    rows.push({
      measure: `Server RSS with ${fmt(most)} idle sessions (MiB)`,
      bare: all(bare.rss, (s) => (s.at.get(most) ?? Number.NaN) / MiB),
      gw: all(gw.rss, (s) => (s.at.get(most) ?? Number.NaN) / MiB),
      digits: 1,
      ...(most >= 10_000 ? { target: "gatewarden ≤ 300 MiB", check: (_r: number, g: number) => g <= 300 } : {}),
    });
  }

  const lines: string[] = [];
  lines.push("# Benchmarks: handshake throughput, latency and memory against the bare limit", "");
  lines.push(
    "Generated by `npm run bench`" + (input.mode === "quick" ? " -- --quick" : "") + ` on ${input.date}. ` +
      "Each figure is the median of " + `${input.runs} run${input.runs === 1 ? "" : "s"} (memory: ${input.rssRuns}); ` +
      "\"limit\" is `bench/bare-server.ts`, a bare `ws` server doing the same frames (challenge → connect → one Ed25519 verify → hello-ok) with no store, no policy. " +
      "Ratios are medians of per-run ratios (each run measures both servers back to back).",
    "",
  );
  lines.push(`**Machine:** ${input.machine.cpuModel}, ${input.machine.cores} cores, ${fmt(input.machine.memoryGiB, 1)} GiB RAM, Linux ${input.machine.kernel}, Node ${input.machine.node}, \`ulimit -n\` ${input.machine.openFilesLimit}.`, "");
  lines.push("| Measure | limit (bare ws) | gatewarden | gatewarden / limit | target |", "|---|---:|---:|---:|---|");
  for (const r of rows) {
    const ratio = ratioOf(r);
    const gwValue = median([...r.gw]);
    const verdict = r.check ? (r.check(ratio, gwValue) ? " — met" : " — **missed**") : "";
    lines.push(`| ${r.measure} | ${fmt(median([...r.bare]), r.digits)} | ${fmt(gwValue, r.digits)} | ${fmt(ratio, 2)} | ${r.target ?? ""}${verdict} |`);
  }
  lines.push("");

  lines.push("## Who was the bottleneck", "");
  lines.push(
    "Busy = CPU time / wall time of the process during the phase (1.00 = its core was saturated). " +
      "When the server is busy ≈ 1 the figure is the server's; when the load generator is the busier one, both servers were measured against the same client ceiling. " +
      "Others = the share of the machine's CPU used by other processes during the phase (median); a phase above 10 % is run once more and the quieter attempt kept.",
    "",
  );
  lines.push(
    "| Phase | limit: server busy | limit: client busy | limit: others | gatewarden: server busy | gatewarden: client busy | gatewarden: others |",
    "|---|---:|---:|---:|---:|---:|---:|",
  );
  const pct = (v: number) => `${fmt(v * 100)} %`;
  const busyRow = (name: string, b: readonly (HandshakeSample | RoundTripSample)[] | undefined, g: readonly (HandshakeSample | RoundTripSample)[] | undefined) =>
    lines.push(
      `| ${name} | ${fmt(med(b, (s) => s.serverBusy), 2)} | ${fmt(med(b, (s) => s.clientBusy), 2)} | ${pct(med(b, (s) => s.foreign))} ` +
        `| ${fmt(med(g, (s) => s.serverBusy), 2)} | ${fmt(med(g, (s) => s.clientBusy), 2)} | ${pct(med(g, (s) => s.foreign))} |`,
    );
  for (const c of input.concurrencies) busyRow(`handshakes, ${label(c)}`, bare.handshakes.get(c), gw.handshakes.get(c));
  busyRow("`health`, sequential", bare.roundTrips.get(1), gw.roundTrips.get(1));
  busyRow(`\`health\`, window ${input.rttWindow}`, bare.roundTrips.get(input.rttWindow), gw.roundTrips.get(input.rttWindow));
  lines.push("");

  const barePhases = bare.handshakes.get(top) ?? [];
  const gwPhases = gw.handshakes.get(top) ?? [];
  if (barePhases.length > 0 && gwPhases.length > 0) {
    lines.push(`## Where a handshake's time goes @${top}`, "");
    lines.push(
      "Median milliseconds per step, on the load generator's clock (medians of per-run medians). The latency window is the first three steps; the close comes after it. " +
        "\"TCP up → challenge\" includes the time a connection waits in the server's accept queue before the server takes it: Node's event loop (libuv ≥ 1.45) accepts one connection per iteration, " +
        "so when a server's core is saturated most of the waiting connections wait there, and the latency approaches concurrency ÷ throughput.",
      "",
    );
    lines.push("| Step | limit (bare ws) | gatewarden |", "|---|---:|---:|");
    const steps: [string, (p: HandshakePhases) => number][] = [
      ["`connect()` → TCP up (the load generator's own wait)", (p) => p.tcpMs],
      ["TCP up → 101 and challenge received (accept queue, upgrade)", (p) => p.challengeMs],
      ["challenge → hello-ok received (sign, verify, admit)", (p) => p.helloMs],
      ["close sent → closed (after the latency window)", (p) => p.closeMs],
    ];
    for (const [name, pick] of steps) {
      lines.push(`| ${name} | ${fmt(med(barePhases, (s) => pick(s.phases)), 1)} | ${fmt(med(gwPhases, (s) => pick(s.phases)), 1)} |`);
    }
    lines.push("");
  }

  lines.push("## Setup", "");
  for (const note of input.setupNotes) lines.push(`- ${note}`);
  lines.push(
    `- Frame sizes: hello-ok \`res\` ${fmt(med(bare.handshakes.get(top), (s) => s.helloBytes))} B (limit) vs ${fmt(med(gw.handshakes.get(top), (s) => s.helloBytes))} B (gatewarden); ` +
      `\`health\` reply ${fmt(med(bare.roundTrips.get(1), (s) => s.replyBytes))} B vs ${fmt(med(gw.roundTrips.get(1), (s) => s.replyBytes))} B.`,
  );
  lines.push(`- Pairing ${input.devices} devices (connect → NOT_PAIRED → \`gatewarden devices approve\` → reconnect for the device token) took ${fmt(input.pairingSeconds, 1)} s; the whole run ${fmt(input.totalSeconds, 0)} s.`);
  lines.push("");

  lines.push("## Per-run values", "");
  lines.push("| Measure | limit runs | gatewarden runs |", "|---|---|---|");
  const runs = (values: number[], digits: number) => values.map((v) => fmt(v, digits)).join(" / ");
  for (const c of input.concurrencies) {
    lines.push(`| handshakes/s, ${label(c)} | ${runs((bare.handshakes.get(c) ?? []).map((s) => s.rate), 0)} | ${runs((gw.handshakes.get(c) ?? []).map((s) => s.rate), 0)} |`);
  }
  lines.push(`| p99 @${top} (ms) | ${runs((bare.handshakes.get(top) ?? []).map((s) => s.p99Ms), 1)} | ${runs((gw.handshakes.get(top) ?? []).map((s) => s.p99Ms), 1)} |`);
  for (const w of [1, input.rttWindow]) {
    lines.push(`| health/s, window ${w} | ${runs((bare.roundTrips.get(w) ?? []).map((s) => s.rate), 0)} | ${runs((gw.roundTrips.get(w) ?? []).map((s) => s.rate), 0)} |`);
  }
  if (input.sessionCounts.length > 0) {
    const most = Math.max(...input.sessionCounts);
    lines.push(`| RSS @${fmt(most)} (MiB) | ${runs(bare.rss.map((s) => (s.at.get(most) ?? Number.NaN) / MiB), 1)} | ${runs(gw.rss.map((s) => (s.at.get(most) ?? Number.NaN) / MiB), 1)} |`);
  }
  lines.push(
    `| CPU µs per handshake @${top} | ${runs((bare.handshakes.get(top) ?? []).map((s) => s.serverCpuUs), 0)} | ${runs((gw.handshakes.get(top) ?? []).map((s) => s.serverCpuUs), 0)} |`,
  );
  lines.push(
    `| others' share @${top} | ${(bare.handshakes.get(top) ?? []).map((s) => `${fmt(s.foreign * 100)} %`).join(" / ")} | ${(gw.handshakes.get(top) ?? []).map((s) => `${fmt(s.foreign * 100)} %`).join(" / ")} |`,
  );
  const errors = (t: TargetResults) =>
    [...t.handshakes.values()].flat().reduce((n, s) => n + s.errors, 0) + [...t.roundTrips.values()].flat().reduce((n, s) => n + s.errors, 0) + t.rss.reduce((n, s) => n + s.errors, 0);
  lines.push(`| errors (all phases) | ${errors(bare)} | ${errors(gw)} |`);
  lines.push("");
  return lines.join("\n");
}
