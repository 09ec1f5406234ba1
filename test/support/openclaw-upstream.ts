import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { freePort } from "./free-port.js";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { WebSocket } from "ws";
import type { CompatTarget } from "../compat/openclaw-cli.js";

// A real OpenClaw gateway from npm (the versions test/compat installs), run as
// the upstream gatewarden fronts: loopback bind, token auth, state in a temp
// dir outside the repository (2026.4.24 installs plugin runtime dependencies
// into the nearest ancestor with a package.json), npm offline, channels,
// providers, cron and Bonjour off, the compat sandbox preloaded so that it
// never leaves loopback. Started in its own process group, stopped by
// signalling the group (2026.9.6's launcher is the gateway; 4.24 spawns helpers).

const SANDBOX_PRELOAD = fileURLToPath(new URL("../compat/sandbox-preload.js", import.meta.url));

export interface OpenclawUpstream {
  readonly url: string;
  readonly port: number;
  readonly token: string;
  readonly target: CompatTarget;
  readonly stateDir: string;
  /** What the gateway printed (the last 4 MB since its latest start), for failure messages and request logs. */
  output(): string;
  stop(): Promise<void>;
  /** Stop, then start again on the same port with the same state. */
  restart(): Promise<void>;
  /** Stop, keeping the state and the port for resume(). */
  halt(): Promise<void>;
  /** Start again after halt(), on the same port with the same state. */
  resume(): Promise<void>;
}

/**
 * Whether the gateway answers a connect for real: 2026.9.6 listens before it is
 * ready and refuses connects with "gateway starting; retry shortly" until then.
 * The probe is device-less (nothing is paired) and asks for no scopes.
 */
function ready(port: number, token: string): Promise<boolean> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}`);
    const done = (v: boolean) => {
      clearTimeout(timer);
      ws.terminate();
      resolve(v);
    };
    const timer = setTimeout(() => done(false), 5000);
    ws.on("error", () => done(false));
    ws.on("message", (data) => {
      const f = JSON.parse(data.toString()) as { type?: string; event?: string; id?: string; ok?: boolean; error?: { retryable?: boolean; message?: string } };
      if (f.type === "event" && f.event === "connect.challenge") {
        const params = { minProtocol: 3, maxProtocol: 4, client: { id: "cli", version: "probe", platform: "linux", mode: "probe" }, role: "operator", scopes: [], auth: { token } };
        ws.send(JSON.stringify({ type: "req", id: "c", method: "connect", params }));
      } else if (f.type === "res" && f.id === "c") {
        done(f.ok === true || !/starting/i.test(f.error?.message ?? ""));
      }
    });
  });
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = connect({ port, host: "127.0.0.1" });
    c.once("connect", () => {
      c.destroy();
      resolve(true);
    });
    c.once("error", () => resolve(false));
  });
}

export interface UpstreamStartOptions {
  readonly readyTimeoutMs?: number;
  /** Log every request the upstream receives (`--verbose --ws-log compact`): tests can prove what reached it. */
  readonly logRequests?: boolean;
}

export async function startOpenclawUpstream(target: CompatTarget, opts: UpstreamStartOptions = {}): Promise<OpenclawUpstream> {
  const home = mkdtempSync(join(tmpdir(), `gatewarden-upstream-${target.openclaw}-`));
  const stateDir = join(home, ".openclaw");
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const port = await freePort();
  const token = `upstream-${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;
  let child: ChildProcess | undefined;
  let out = "";

  const start = async (): Promise<void> => {
    out = "";
    const env: Record<string, string> = {
      PATH: `${dirname(target.nodeBin)}:/usr/bin:/bin`,
      HOME: home,
      OPENCLAW_STATE_DIR: stateDir,
      NO_COLOR: "1",
      FORCE_COLOR: "0",
      TZ: "UTC",
      LANG: "C.UTF-8",
      OPENCLAW_SKIP_CHANNELS: "1",
      OPENCLAW_SKIP_PROVIDERS: "1",
      OPENCLAW_SKIP_CRON: "1",
      OPENCLAW_SKIP_BONJOUR: "1",
      OPENCLAW_DISABLE_BONJOUR: "1",
      npm_config_offline: "true",
    };
    child = spawn(
      target.nodeBin,
      ["--import", pathToFileURL(SANDBOX_PRELOAD).href, target.entry, "gateway", "run", "--bind", "loopback", "--port", String(port), "--auth", "token", "--token", token, "--allow-unconfigured", ...(opts.logRequests ? ["--verbose", "--ws-log", "compact"] : [])],
      { cwd: home, env, stdio: ["ignore", "pipe", "pipe"], detached: true },
    );
    const keep = (d: Buffer) => {
      out = (out + d.toString()).slice(-4_000_000);
    };
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    const deadline = Date.now() + (opts.readyTimeoutMs ?? 90_000);
    let exited = false;
    child.once("exit", () => (exited = true));
    while (!(await listening(port)) || !(await ready(port, token))) {
      if (exited) throw new Error(`openclaw ${target.openclaw} gateway exited before listening:\n${out}`);
      if (Date.now() > deadline) {
        await stop();
        throw new Error(`openclaw ${target.openclaw} gateway did not listen on ${port} in time:\n${out}`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  };

  const stop = async (): Promise<void> => {
    const c = child;
    child = undefined;
    if (!c || c.pid === undefined || c.exitCode !== null) return;
    const exited = new Promise<void>((r) => c.once("exit", () => r()));
    try {
      process.kill(-c.pid, "SIGTERM");
    } catch {
      return;
    }
    const killed = await Promise.race([exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 8000))]);
    if (!killed) {
      try {
        process.kill(-c.pid, "SIGKILL");
      } catch {
        // gone meanwhile
      }
      await exited;
    }
    while (await listening(port)) await new Promise((r) => setTimeout(r, 100));
  };

  await start();
  return {
    url: `ws://127.0.0.1:${port}`,
    port,
    token,
    target,
    stateDir,
    output: () => out,
    async stop() {
      await stop();
      rmSync(home, { recursive: true, force: true });
    },
    async restart() {
      await stop();
      await start();
    },
    halt: stop,
    resume: start,
  };
}

/**
 * Pair gatewarden's own device with `upstream` (state in `stateDir`):
 * `gatewarden upstream pair`, and where the upstream holds the request for
 * its operator, `openclaw devices approve` on the upstream host, then pair
 * again to collect the device token.
 */
export function pairGatewardenWith(upstream: OpenclawUpstream, stateDir: string, gatewardenBin: string): void {
  const run = () =>
    spawnSync(process.execPath, [gatewardenBin, "--state-dir", stateDir, "upstream", "pair", "--url", upstream.url, "--wait", "0"], {
      encoding: "utf8",
      env: { ...process.env, GATEWARDEN_UPSTREAM_TOKEN: upstream.token },
      timeout: 60_000,
    });
  let pair = run();
  const id = /openclaw devices approve ([0-9a-f-]{36})/.exec(pair.stderr)?.[1];
  if (pair.status !== 0 && id) {
    const { nodeBin, entry } = upstream.target;
    spawnSync(nodeBin, [entry, "devices", "approve", id, "--url", upstream.url, "--token", upstream.token], {
      encoding: "utf8",
      env: { PATH: "/usr/bin:/bin", HOME: upstream.stateDir, OPENCLAW_STATE_DIR: upstream.stateDir, npm_config_offline: "true" },
      timeout: 60_000,
    });
    pair = run();
  }
  if (pair.status !== 0) throw new Error(`gatewarden upstream pair failed:\n${pair.stderr}`);
}

/**
 * Open TCP connections to `port` on this machine, by their local address
 * (the client side of each, from /proc/net/tcp{,6}): in front-door tests,
 * gatewarden's upstream sessions.
 */
export function connectionsTo(port: number): Set<string> {
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  const found = new Set<string>();
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const cols = line.trim().split(/\s+/);
      // cols[1] is the local address:port, cols[2] the remote one, cols[3] the state (01: established).
      if (cols[2]?.endsWith(`:${hexPort}`) && cols[3] === "01" && cols[1]) found.add(cols[1]);
    }
  }
  return found;
}
