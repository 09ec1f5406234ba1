import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import WebSocket from "ws";
import { identityPath } from "../src/config.js";
import { loadUpstreamIdentity } from "../src/relay/upstream-identity.js";
import { UpstreamLink } from "../src/relay/upstream-link.js";
import { compatTarget, unavailableReason } from "../test/compat/openclaw-cli.js";
import { BIN, startGatewayProcess, type GatewayProcess } from "../test/support/gateway-process.js";
import { pairGatewardenWith, startOpenclawUpstream, type OpenclawUpstream } from "../test/support/openclaw-upstream.js";
import { LatencyRecorder } from "./lib/stats.js";
import { writeBenchmarksBlock } from "./lib/benchmarks-block.js";

// `npm run bench:relay [-- --quick] [--upstream 2026.9.6]`: the cost of
// gatewarden in front of a real OpenClaw gateway, side by side in one run.
// The same requests go to the upstream directly (a session signed with
// gatewarden's own paired device, exactly what gatewarden itself opens) and
// through gatewarden (a backend credential with the same scope). Rounds
// alternate between the two paths so that drift in the machine hits both.
// Writes bench/relay-results.md and its block in BENCHMARKS.md.

const ROOT = resolve(fileURLToPath(new URL("../../", import.meta.url)));

interface Session {
  request(method: string): Promise<boolean>;
  close(): void;
}

type Path = "direct" | "gatewarden";
type Opener = () => Promise<Session>;

/** A session through gatewarden: token only (a backend credential), protocol 4, no device. */
function openThroughGatewarden(url: string, token: string): Promise<Session> {
  return new Promise((resolvePromise, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    const pending = new Map<string, (ok: boolean) => void>();
    let seq = 0;
    const timer = setTimeout(() => reject(new Error("gatewarden handshake timed out")), 15_000);
    ws.on("error", reject);
    ws.on("message", (data) => {
      const f = JSON.parse(data.toString()) as { type: string; event?: string; id?: string; ok?: boolean; error?: { message?: string } };
      if (f.type === "event" && f.event === "connect.challenge") {
        const params = { minProtocol: 4, maxProtocol: 4, client: { id: "cli", version: "bench", platform: "linux", mode: "cli" }, role: "operator", scopes: ["operator.read"], auth: { token } };
        ws.send(JSON.stringify({ type: "req", id: "connect", method: "connect", params }));
      } else if (f.type === "res" && f.id === "connect") {
        clearTimeout(timer);
        if (f.ok !== true) return reject(new Error(`gatewarden refused: ${f.error?.message ?? "?"}`));
        resolvePromise({
          request(method) {
            const id = `b${++seq}`;
            return new Promise((r) => {
              pending.set(id, r);
              ws.send(JSON.stringify({ type: "req", id, method, params: {} }));
            });
          },
          close: () => ws.close(),
        });
      } else if (f.type === "res" && f.id !== undefined) {
        const r = pending.get(f.id);
        pending.delete(f.id);
        r?.(f.ok === true);
      }
    });
  });
}

async function openDirect(upstreamUrl: string, stateDir: string): Promise<Session> {
  const { credentials, signer } = loadUpstreamIdentity(stateDir, identityPath(stateDir), upstreamUrl);
  const r = await UpstreamLink.open({ url: upstreamUrl, signer, role: "operator", scopes: ["operator.read"], auth: { deviceToken: credentials.deviceToken }, timeoutMs: 15_000 });
  if (!r.ok) throw new Error(`upstream refused: ${r.error.message}`);
  const link = r.link;
  return { request: async (method) => (await link.request(method, {}, 30_000)).ok, close: () => link.close() };
}

interface Figures {
  seq: Record<string, Record<Path, LatencyRecorder>>;
  pipelined: Record<Path, { requests: number; ms: number }>;
  handshakes: Record<Path, LatencyRecorder>;
}

async function sequential(session: Session, method: string, n: number, into: LatencyRecorder): Promise<void> {
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    if (!(await session.request(method))) throw new Error(`${method} failed`);
    into.record(performance.now() - t);
  }
}

async function pipelined(session: Session, window: number, ms: number): Promise<number> {
  const end = performance.now() + ms;
  let done = 0;
  const lane = async (): Promise<void> => {
    while (performance.now() < end) {
      if (!(await session.request("health"))) throw new Error("health failed");
      done++;
    }
  };
  await Promise.all(Array.from({ length: window }, lane));
  return done;
}

const fmt = (ms: number): string => ms.toFixed(3);

function render(f: Figures, meta: { upstream: string; quick: boolean; seconds: number }): string {
  const lines: string[] = [];
  lines.push(`## In front of an OpenClaw gateway: what the relay costs`, "");
  lines.push(
    `Generated by \`npm run bench:relay${meta.quick ? " -- --quick" : ""}\` (${new Date().toISOString().slice(0, 10)}, ${meta.seconds.toFixed(0)} s): OpenClaw ${meta.upstream} from npm as the upstream, ` +
      `${cpus().length} cores, load average ${loadavg()
        .map((l) => l.toFixed(1))
        .join(" ")} at the end. The same requests go to the upstream directly (a session signed with gatewarden's own paired device) ` +
      `and through gatewarden (a backend credential with the same scope, \`operator.read\`), in alternating rounds. Ratios, not absolute times, are the result.`,
    "",
  );
  lines.push("| sequential round trip | direct p50 / p99 ms | through gatewarden p50 / p99 ms | added p50 ms |", "|---|---|---|---|");
  for (const [method, byPath] of Object.entries(f.seq)) {
    const d = byPath.direct.summary();
    const g = byPath.gatewarden.summary();
    lines.push(`| \`${method}\` (${byPath.direct.count} each) | ${fmt(d.p50)} / ${fmt(d.p99)} | ${fmt(g.p50)} / ${fmt(g.p99)} | ${fmt(g.p50 - d.p50)} |`);
  }
  const rate = (p: Path) => (f.pipelined[p].requests * 1000) / f.pipelined[p].ms;
  lines.push("", "| pipelined `health`, 16 in flight | direct req/s | through gatewarden req/s | ratio (target ≥ 0.90) |", "|---|---|---|---|");
  lines.push(`| one session | ${rate("direct").toFixed(0)} | ${rate("gatewarden").toFixed(0)} | ${(rate("gatewarden") / rate("direct")).toFixed(2)} |`);
  const hd = f.handshakes.direct.summary();
  const hg = f.handshakes.gatewarden.summary();
  lines.push("", "| handshake to the first answer, sequential | direct p50 / p99 ms | through gatewarden p50 / p99 ms | ratio p50 |", "|---|---|---|---|");
  lines.push(`| connect + \`health\` (${f.handshakes.direct.count} each) | ${fmt(hd.p50)} / ${fmt(hd.p99)} | ${fmt(hg.p50)} / ${fmt(hg.p99)} | ${(hg.p50 / hd.p50).toFixed(2)} |`);
  const ratio = rate("gatewarden") / rate("direct");
  const added = Math.max(...Object.values(f.seq).map((b) => b.gatewarden.summary().p50 - b.direct.summary().p50));
  lines.push(
    "",
    `Targets: relayed throughput ≥ 0.90 of direct — ${ratio >= 0.9 ? "met" : "not met"} (${ratio.toFixed(2)}); added p50 ≤ 0.3 ms — ${added <= 0.3 ? "met" : "not met"} (${fmt(added)} at most). ` +
      "The upstream, gatewarden and the load generator share the machine's cores, so gatewarden's CPU per relayed request also slows the upstream in the pipelined run.",
  );
  lines.push(
    "",
    "A handshake through gatewarden is gatewarden's own admission plus a whole upstream handshake (challenge, " +
      "gatewarden's signature, the upstream's verification), made before `hello-ok`: no admission without a working upstream session.",
    "",
  );
  return lines.join("\n");
}

function writeBlock(section: string): void {
  writeBenchmarksBlock(ROOT, "relay-results.md", "relay-bench", section, (text) => {
    const at = text.indexOf("## What moved each figure");
    return at >= 0 ? at : undefined;
  });
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const quick = argv.includes("--quick");
  const version = argv[argv.indexOf("--upstream") + 1] && argv.includes("--upstream") ? (argv[argv.indexOf("--upstream") + 1] as string) : "2026.9.6";
  const target = compatTarget(version);
  const why = unavailableReason(target);
  if (why) throw new Error(why);
  const started = performance.now();
  const rounds = quick ? 2 : 4;
  const perRound = quick ? 250 : 500;
  const pipeMs = quick ? 1500 : 3000;
  const handshakesPerRound = quick ? 25 : 50;

  let upstream: OpenclawUpstream | undefined;
  let gw: GatewayProcess | undefined;
  const stateDir = mkdtempSync(join(tmpdir(), "gw-bench-relay-"));
  try {
    process.stdout.write(`[bench:relay] starting OpenClaw ${version}\n`);
    upstream = await startOpenclawUpstream(target);
    pairGatewardenWith(upstream, stateDir, BIN);
    gw = await startGatewayProcess({ stateDir, args: ["--upstream", upstream.url], env: { GATEWARDEN_TOKEN: "bench-relay-shared-token-0123456789", GATEWARDEN_LOG_LEVEL: "warn" } });
    const backend = gw.cli(["backends", "add", "bench", "--scopes", "operator.read", "--json"]);
    if (backend.code !== 0) throw new Error(backend.stderr);
    const secret = (JSON.parse(backend.stdout) as { secret: string }).secret;
    const upstreamUrl = upstream.url;
    const openers: Record<Path, Opener> = {
      direct: () => openDirect(upstreamUrl, stateDir),
      gatewarden: () => openThroughGatewarden(gw!.url, secret),
    };
    const figures: Figures = {
      seq: { health: { direct: new LatencyRecorder(), gatewarden: new LatencyRecorder() }, status: { direct: new LatencyRecorder(), gatewarden: new LatencyRecorder() } },
      pipelined: { direct: { requests: 0, ms: 0 }, gatewarden: { requests: 0, ms: 0 } },
      handshakes: { direct: new LatencyRecorder(), gatewarden: new LatencyRecorder() },
    };
    const sessions: Record<Path, Session> = { direct: await openers.direct(), gatewarden: await openers.gatewarden() };
    process.stdout.write("[bench:relay] warming up\n");
    for (const p of ["direct", "gatewarden"] as const) {
      await sequential(sessions[p], "health", 200, new LatencyRecorder());
      await sequential(sessions[p], "status", 50, new LatencyRecorder());
    }
    for (let round = 0; round < rounds; round++) {
      const order: Path[] = round % 2 === 0 ? ["direct", "gatewarden"] : ["gatewarden", "direct"];
      process.stdout.write(`[bench:relay] round ${round + 1}/${rounds}\n`);
      for (const p of order) {
        for (const method of ["health", "status"]) await sequential(sessions[p], method, perRound, figures.seq[method]![p]);
        const t = performance.now();
        figures.pipelined[p].requests += await pipelined(sessions[p], 16, pipeMs);
        figures.pipelined[p].ms += performance.now() - t;
        for (let i = 0; i < handshakesPerRound; i++) {
          const t0 = performance.now();
          const s = await openers[p]();
          if (!(await s.request("health"))) throw new Error("health failed");
          figures.handshakes[p].record(performance.now() - t0);
          s.close();
        }
      }
    }
    sessions.direct.close();
    sessions.gatewarden.close();
    const section = render(figures, { upstream: version, quick, seconds: (performance.now() - started) / 1000 });
    writeBlock(section);
    process.stdout.write(`\n${section}\n[bench:relay] wrote bench/relay-results.md and its block in BENCHMARKS.md\n`);
  } finally {
    await gw?.stop();
    await upstream?.stop();
    rmSync(stateDir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`bench:relay: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
