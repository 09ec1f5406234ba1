import { spawn, spawnSync, type ChildProcess, type StdioOptions } from "node:child_process";
import { closeSync, existsSync, openSync } from "node:fs";
import { join } from "node:path";

// Starting and stopping the processes under test. Every process is spawned
// with a pipe on stdin or an IPC channel and tracked, so the orchestrator can
// stop all of them on exit, error or signal.

const children = new Set<ChildProcess>();

/** Kill every child still running (synchronous: safe in an 'exit' handler). */
export function killAllChildren(): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  }
  children.clear();
}

let tasksetChecked: boolean | undefined;

/** `taskset` pins a process to one core; without it, processes float. */
export function canPin(): boolean {
  tasksetChecked ??= spawnSync("taskset", ["-c", "0", "true"]).status === 0;
  return tasksetChecked;
}

/** Command and args for `node <args>`, pinned to `cpu` when possible (taskset execs node: same pid). */
export function nodeCommand(cpu: number | undefined, args: readonly string[]): { command: string; args: string[] } {
  if (cpu !== undefined && canPin()) return { command: "taskset", args: ["-c", String(cpu), process.execPath, ...args] };
  return { command: process.execPath, args: [...args] };
}

export function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once("exit", () => children.delete(child));
  return child;
}

export interface ServerHandle {
  readonly name: string;
  readonly pid: number;
  readonly url: string;
  /** The generated shared token (gatewarden's first start only). */
  readonly token: string | undefined;
  stop(): Promise<void>;
}

function waitForOutput(child: ChildProcess, ready: (stdout: string) => boolean, what: string, timeoutMs = 20_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let stdout = "";
    const timer = setTimeout(() => reject(new Error(`${what} did not start within ${timeoutMs} ms:\n${stdout}`)), timeoutMs);
    child.stdout?.on("data", (d: Buffer) => {
      stdout += d.toString("utf8");
      if (ready(stdout)) {
        clearTimeout(timer);
        resolve(stdout);
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited with ${String(code)} before it was ready:\n${stdout}`));
    });
  });
}

/** SIGTERM, then SIGKILL after 5 s; resolves once the process has exited. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
  await exited;
  clearTimeout(timer);
}

function stopper(child: ChildProcess): () => Promise<void> {
  return () => stopChild(child);
}

const LISTENING = /listening on ws:\/\/127\.0\.0\.1:(\d+)/;
const TOKEN = /Operator token[^\n]*\n\s+(\S+)/;

/**
 * `node bin/gatewarden.js serve --port 0`, a real process with its default
 * SQLite store in `stateDir` (config in <stateDir>/gatewarden.json). Logs
 * (JSON lines on stderr) go to <stateDir>/gatewarden-<n>.log, as a service
 * manager would redirect them.
 */
export async function startGatewarden(root: string, stateDir: string, cpu: number | undefined, logIndex: number, extraNodeArgs: readonly string[] = []): Promise<ServerHandle> {
  const log = openSync(join(stateDir, `gatewarden-${logIndex}.log`), "a");
  const expectToken = !existsSync(join(stateDir, "gatewarden.sqlite"));
  const { command, args } = nodeCommand(cpu, [...extraNodeArgs, join(root, "bin", "gatewarden.js"), "serve", "--port", "0"]);
  const stdio: StdioOptions = ["pipe", "pipe", log];
  const child = track(spawn(command, args, { env: { ...process.env, GATEWARDEN_STATE_DIR: stateDir }, stdio, cwd: root }));
  closeSync(log);
  const stdout = await waitForOutput(child, (out) => LISTENING.test(out) && (!expectToken || TOKEN.test(out)), "gatewarden");
  const port = Number(LISTENING.exec(stdout)?.[1]);
  return { name: "gatewarden", pid: child.pid ?? -1, url: `ws://127.0.0.1:${port}`, token: TOKEN.exec(stdout)?.[1], stop: stopper(child) };
}

/** gatewarden's own hello-ok and `health` payloads, which the bare server copies so frame sizes match. */
export interface BareTemplates {
  readonly hello: unknown;
  readonly health: unknown;
}

/** The bare `ws` server (bench/bare-server.ts); it also exits when its stdin closes. */
export async function startBare(root: string, cpu: number | undefined, templates: BareTemplates | undefined, extraNodeArgs: readonly string[] = []): Promise<ServerHandle> {
  const { command, args } = nodeCommand(cpu, [...extraNodeArgs, join(root, "dist", "bench", "bare-server.js"), "0"]);
  const env = { ...process.env, ...(templates ? { BARE_HELLO_TEMPLATE: JSON.stringify(templates.hello), BARE_HEALTH_TEMPLATE: JSON.stringify(templates.health) } : {}) };
  const child = track(spawn(command, args, { stdio: ["pipe", "pipe", "inherit"], cwd: root, env }));
  const stdout = await waitForOutput(child, (out) => /bare listening on (\d+)/.test(out), "bare server");
  const port = Number(/bare listening on (\d+)/.exec(stdout)?.[1]);
  return { name: "bare", pid: child.pid ?? -1, url: `ws://127.0.0.1:${port}`, token: undefined, stop: stopper(child) };
}

/** `node bin/gatewarden.js <args>` against `stateDir` (the admin CLI), asynchronously. */
export function gatewardenCli(root: string, stateDir: string, args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = track(spawn(process.execPath, [join(root, "bin", "gatewarden.js"), ...args], { env: { ...process.env, GATEWARDEN_STATE_DIR: stateDir }, stdio: ["ignore", "pipe", "pipe"] }));
    let stdout = "";
    let stderr = "";
    child.stdout?.on("data", (d: Buffer) => (stdout += d.toString("utf8")));
    child.stderr?.on("data", (d: Buffer) => (stderr += d.toString("utf8")));
    child.once("exit", (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}
