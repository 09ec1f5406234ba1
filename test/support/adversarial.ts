import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import type { TestDevice } from "./device.js";
import { BIN, type GatewayProcess } from "./gateway-process.js";
import { TestClient, type ConnectOptions, type Frame, type OpenOptions } from "./protocol-client.js";

// Helpers for the adversarial suite (test/adversarial/): what the gateway
// persisted, what it logged, and what a connect returned, so every attack test
// can assert the secure outcome *and* that nothing else happened.

export interface PendingWire {
  readonly requestId: string;
  readonly deviceId: string;
  readonly role: string;
  readonly roles: readonly string[];
  readonly scopes: readonly string[];
  readonly reason: string;
  readonly requesterIp?: string;
  readonly remoteIp?: string;
}

export interface PairedWire {
  readonly deviceId: string;
  readonly roles: readonly string[];
  readonly scopes: readonly string[];
  readonly tokens?: readonly { role: string; scopes: readonly string[]; createdAtMs: number; rotatedAtMs?: number; revokedAtMs?: number }[];
}

export interface DeviceListing {
  readonly pending: readonly PendingWire[];
  readonly paired: readonly PairedWire[];
}

/** `gatewarden devices list --json`: the operator's view of pairing state. */
export function listDevices(gw: GatewayProcess): DeviceListing {
  const r = gw.cli(["devices", "list", "--json"]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as DeviceListing;
}

/** Assert the pairing state (pending requests, paired devices and their token metadata) is exactly `before`. */
export function assertDevicesUnchanged(gw: GatewayProcess, before: DeviceListing, why = "nothing may be persisted"): void {
  assert.deepEqual(listDevices(gw), before, why);
}

/** Assert there is no pending request and no pairing for any of these device ids. */
export function assertNoTraceOf(gw: GatewayProcess, ...deviceIds: string[]): void {
  const { pending, paired } = listDevices(gw);
  for (const id of deviceIds) {
    assert.equal(pending.filter((p) => p.deviceId === id).length, 0, `no pending request for ${id.slice(0, 12)}`);
    assert.equal(paired.filter((p) => p.deviceId === id).length, 0, `no pairing for ${id.slice(0, 12)}`);
  }
}

/**
 * Every secret a test presented (tokens, passwords, backend secrets, bootstrap
 * tokens, device signatures), so the test can prove none of them was logged
 * or echoed back in an error (A47).
 */
export class SecretLedger {
  private readonly secrets = new Set<string>();

  add(...values: (string | undefined)[]): void {
    for (const v of values) if (v !== undefined && v.trim().length >= 8) this.secrets.add(v);
  }

  /** The auth fields and the device signature of connect params as they were sent. */
  addConnectParams(params: Record<string, unknown>): void {
    const auth = params.auth as Record<string, unknown> | undefined;
    if (auth && typeof auth === "object") for (const v of Object.values(auth)) if (typeof v === "string") this.add(v);
    const device = params.device as { signature?: unknown } | undefined;
    if (device && typeof device.signature === "string") this.add(device.signature);
  }

  get size(): number {
    return this.secrets.size;
  }

  assertAbsentFrom(text: string, where: string): void {
    for (const s of this.secrets) {
      assert.equal(text.includes(s), false, `${where} contains a presented secret (${s.slice(0, 6)}…)`);
    }
  }
}

/**
 * Connect the way `TestClient.connect` does, recording what was presented in
 * `ledger` and checking a refusal does not echo any presented secret.
 */
export async function connectRecorded(client: TestClient, opts: ConnectOptions, ledger: SecretLedger): Promise<Frame> {
  const params = client.buildConnect(opts);
  ledger.addConnectParams(params);
  const reply = await client.request("connect", params);
  if (reply.ok === false) ledger.assertAbsentFrom(JSON.stringify(reply), "the error reply");
  return reply;
}

/** Open a socket, connect, and return the reply with the client (the socket stays open if admitted). */
export async function openConnect(
  gw: Pick<GatewayProcess, "url">,
  opts: ConnectOptions,
  ledger: SecretLedger,
  open: OpenOptions = {},
): Promise<{ client: TestClient; reply: Frame }> {
  const client = await TestClient.open(gw.url, open);
  const reply = await connectRecorded(client, opts, ledger);
  return { client, reply };
}

export interface HelloAuth {
  readonly role: string;
  readonly scopes: readonly string[];
  readonly method?: string;
  readonly deviceToken?: string;
}

/** `hello-ok.auth` of a successful connect reply; fails the test otherwise. */
export function helloAuth(reply: Frame): HelloAuth {
  assert.equal(reply.ok, true, `expected hello-ok, got ${JSON.stringify(reply.error)}`);
  return (reply.payload as { auth: HelloAuth }).auth;
}

/** The `details.code` of an error reply. */
export function detailCode(reply: Frame): unknown {
  return reply.error?.details?.code;
}

/** One method per operator scope; an unregistered one still passes or fails the scope check first. */
export const SCOPE_PROBES: readonly (readonly [scope: string, method: string])[] = [
  ["operator.read", "status"],
  ["operator.write", "send"],
  ["operator.approvals", "exec.approval.list"],
  ["operator.pairing", "device.pair.list"],
  ["operator.admin", "gatewarden.admin.probe"],
];

/** The probed scopes an admitted session's method calls actually honour (not refused with MISSING_SCOPE). */
export async function honouredScopes(client: TestClient): Promise<string[]> {
  const honoured: string[] = [];
  for (const [scope, method] of SCOPE_PROBES) {
    const r = await client.request(method, {});
    assert.notEqual(detailCode(r), "INTERNAL", `${method} must not fail internally`);
    if (detailCode(r) !== "MISSING_SCOPE") honoured.push(scope);
  }
  return honoured;
}

/** Assert a refused connect: the error's `details.code`, then the close code. */
export async function assertRefused(client: TestClient, reply: Frame, code: string, closeCode = 1008): Promise<void> {
  assert.equal(reply.ok, false, "the connect must be refused");
  assert.equal(detailCode(reply), code, `got ${JSON.stringify(reply.error)}`);
  const closed = await client.closed;
  assert.equal(closed.code, closeCode);
}

/**
 * Pair `device` for `role`/`scopes` the way an operator does: connect with the
 * shared token, take the request id from PAIRING_REQUIRED, approve with the CLI,
 * then connect again to receive the device token. (With silent local pairing
 * on, the first connect pairs it within the ceiling.)
 */
export async function pairDevice(
  gw: GatewayProcess,
  device: TestDevice,
  ledger: SecretLedger,
  opts: { role?: string; scopes?: string[]; localAddress?: string } = {},
): Promise<{ deviceToken: string }> {
  const base: ConnectOptions = { device, role: opts.role ?? "operator", scopes: opts.scopes ?? [], auth: { token: gw.token! } };
  const open = opts.localAddress ? { localAddress: opts.localAddress } : {};
  const first = await openConnect(gw, base, ledger, open);
  if (first.reply.ok) {
    // Silent local pairing is on: the first connect already paired it.
    const silent = helloAuth(first.reply);
    first.client.close();
    assert.ok(silent.deviceToken, "a silently paired device is handed a device token");
    ledger.add(silent.deviceToken);
    return { deviceToken: silent.deviceToken };
  }
  assert.equal(detailCode(first.reply), "PAIRING_REQUIRED", JSON.stringify(first.reply.error));
  const approved = gw.cli(["devices", "approve", "--yes", first.reply.error?.details?.requestId as string]);
  assert.equal(approved.code, 0, approved.stderr);
  const second = await openConnect(gw, base, ledger, open);
  const auth = helloAuth(second.reply);
  second.client.close();
  assert.ok(auth.deviceToken, "a paired device proving the shared token is handed a device token");
  ledger.add(auth.deviceToken);
  return { deviceToken: auth.deviceToken };
}

/** Register a backend credential with the CLI; returns its secret (recorded in the ledger). */
export function addBackend(gw: GatewayProcess, name: string, scopes: readonly string[], ledger: SecretLedger): string {
  const r = gw.cli(["backends", "add", name, ...(scopes.length > 0 ? ["--scopes", scopes.join(",")] : []), "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const { secret } = JSON.parse(r.stdout) as { secret: string };
  ledger.add(secret);
  return secret;
}

export const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Wait until `check` is true (polling), or fail after `timeoutMs`. */
export async function eventually(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for: ${what}`);
    await delay(20);
  }
}

/**
 * Stop the gateway so its asynchronous log stream is flushed, then assert no
 * presented secret appears anywhere in what it logged (A47).
 */
export async function assertLogsHoldNoSecret(gw: GatewayProcess, ledger: SecretLedger): Promise<void> {
  await gw.stop();
  await delay(50);
  const logs = gw.logs();
  assert.ok(logs.includes('"audit":"admission"'), "the gateway logged admissions (the check looked at real logs)");
  assert.ok(ledger.size > 0, "the test presented secrets");
  ledger.assertAbsentFrom(logs, "the gateway's logs");
}

/** Resident set size of a process in KiB, from /proc (Linux). */
export function rssKiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const m = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  assert.ok(m, "VmRSS in /proc/<pid>/status");
  return Number(m[1]);
}

/** Is the process still running? */
export function alive(gw: GatewayProcess): boolean {
  return gw.proc.exitCode === null && gw.proc.signalCode === null;
}

/** A good client still gets in and `health` answers: the server survived. */
export async function assertGatewayServes(gw: GatewayProcess, localAddress = "127.0.0.1"): Promise<void> {
  assert.ok(alive(gw), "the gateway process is running");
  const c = await TestClient.open(gw.url, { localAddress });
  const hello = await c.connect({ auth: { token: gw.token! } });
  assert.equal(hello.ok, true, `a good client is admitted: ${JSON.stringify(hello.error)}`);
  assert.equal((await c.request("health", {})).ok, true);
  c.close();
}

/** Run an admin CLI command without blocking (to race several against each other). */
export function cliAsync(gw: GatewayProcess, args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, GATEWARDEN_STATE_DIR: gw.stateDir }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.once("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}
