import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

// A real gateway process for integration tests: `gatewarden serve` on an
// ephemeral loopback port with its own state dir, plus the admin CLI on it.

const ROOT = resolve(fileURLToPath(new URL("../../../", import.meta.url)));
export const BIN = join(ROOT, "bin", "gatewarden.js");

export interface GatewayProcess {
  readonly url: string;
  readonly port: number;
  readonly token: string | undefined;
  readonly stateDir: string;
  readonly proc: ChildProcess;
  /** Everything the gateway logged (JSON lines on stderr). */
  logs(): string;
  logLines(): Record<string, unknown>[];
  cli(args: readonly string[]): { code: number; stdout: string; stderr: string };
  stop(): Promise<void>;
}

export interface StartOptions {
  args?: string[];
  env?: Record<string, string>;
  /** Written to <stateDir>/gatewarden.json. */
  config?: Record<string, unknown>;
  /** Reuse a state dir (restart tests). */
  stateDir?: string;
}

/**
 * Every test gateway trusts this loopback address as a reverse proxy, so a test
 * can stand for remote clients with addresses of their own (`viaProxy`): all of
 * loopback is one failed-auth budget, so loopback source addresses cannot.
 */
export const TEST_PROXY = "127.0.250.1";

/** Open options for a client at `clientIp` (e.g. 203.0.113.7) behind the test proxy. */
export function viaProxy(clientIp: string): { localAddress: string; headers: Record<string, string> } {
  return { localAddress: TEST_PROXY, headers: { "x-forwarded-for": clientIp } };
}

export async function startGatewayProcess(opts: StartOptions = {}): Promise<GatewayProcess> {
  const stateDir = opts.stateDir ?? mkdtempSync(join(tmpdir(), "gatewarden-test-"));
  if (opts.config) writeFileSync(join(stateDir, "gatewarden.json"), JSON.stringify(opts.config), { mode: 0o600 });
  // The test proxy is trusted by flag (flags replace the file's list, so the file's proxies are repeated).
  const configFile = join(stateDir, "gatewarden.json");
  const fileProxies = existsSync(configFile) ? ((JSON.parse(readFileSync(configFile, "utf8")) as { trustedProxies?: string[] }).trustedProxies ?? []) : [];
  const proxyArgs = [...fileProxies, TEST_PROXY].flatMap((p) => ["--trusted-proxy", p]);
  const env = { ...process.env, GATEWARDEN_STATE_DIR: stateDir, GATEWARDEN_LOG_LEVEL: "debug", ...opts.env };
  const proc = spawn(process.execPath, [BIN, "serve", "--port", "0", ...proxyArgs, ...(opts.args ?? [])], { env, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  proc.stdout?.on("data", (d: Buffer) => (stdout += d.toString()));
  proc.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number>((r) => proc.once("exit", (code) => r(code ?? -1)));

  const started = Date.now();
  for (;;) {
    const m = /listening on ws:\/\/([^:\s]+|\[[^\]]+\]):(\d+)/.exec(stdout);
    const tokenLine = /Operator token[^\n]*\n\s+(\S+)/.exec(stdout);
    const tokenExpected = !/auth: (password|none|trusted-proxy)/.test(stdout) && !opts.env?.GATEWARDEN_TOKEN && opts.stateDir === undefined;
    if (m && (!tokenExpected || tokenLine)) {
      const port = Number(m[2]);
      const url = `ws://127.0.0.1:${port}`;
      const cli = (args: readonly string[]) => {
        const r = spawnSync(process.execPath, [BIN, ...args], { env, encoding: "utf8", timeout: 20_000 });
        return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
      };
      return {
        url,
        port,
        token: opts.env?.GATEWARDEN_TOKEN ?? tokenLine?.[1],
        stateDir,
        proc,
        logs: () => stderr,
        logLines: () =>
          stderr
            .split("\n")
            .filter(Boolean)
            .map((l) => {
              try {
                return JSON.parse(l) as Record<string, unknown>;
              } catch {
                return { raw: l };
              }
            }),
        cli,
        async stop() {
          if (proc.exitCode === null) {
            proc.kill("SIGTERM");
            await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
            if (proc.exitCode === null) proc.kill("SIGKILL");
          }
          if (!opts.stateDir) rmSync(stateDir, { recursive: true, force: true });
        },
      };
    }
    if (proc.exitCode !== null) throw new Error(`gateway exited with ${proc.exitCode}: ${stdout}\n${stderr}`);
    if (Date.now() - started > 15_000) {
      proc.kill("SIGKILL");
      throw new Error(`gateway did not start: ${stdout}\n${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}
