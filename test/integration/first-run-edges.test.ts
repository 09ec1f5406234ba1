import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { BIN, startGatewayProcess } from "../support/gateway-process.js";
import { TestClient } from "../support/protocol-client.js";
import { createTestDevice } from "../support/device.js";
import { delay, detailCode, openConnect, pairDevice, SecretLedger } from "../support/adversarial.js";
import { openSqliteStore } from "../../src/store/sqlite-store.js";

// The first minutes of a new user, tried as one would: each mistake gets one
// clear line and a non-zero exit, never a stack trace, and leaves nothing
// behind that spoils the next start.

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function stateDir(): string {
  const d = mkdtempSync(join(tmpdir(), "gatewarden-first-run-"));
  dirs.push(d);
  return d;
}

function serve(dir: string, args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [BIN, "serve", "--state-dir", dir, ...args], { encoding: "utf8", env: { ...process.env, ...env }, timeout: 20_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** What `serve` on a free port prints until its token line (or 10 s), then it is stopped. */
async function firstOutput(dir: string): Promise<string> {
  const child = spawn(process.execPath, [BIN, "serve", "--state-dir", dir, "--port", "0"], { stdio: ["ignore", "pipe", "ignore"] });
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  const deadline = Date.now() + 10_000;
  while (!/Operator token[^\n]*\n\s+\S+/.test(out) && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 25));
  child.kill("SIGTERM");
  await new Promise((r) => child.once("exit", r));
  return out;
}

function assertOneLine(r: { code: number | null; stdout: string; stderr: string }, pattern: RegExp, code = 2): void {
  assert.equal(r.code, code, r.stderr);
  const lines = r.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, `one line, got:\n${r.stderr}`);
  assert.match(lines[0] ?? "", pattern);
  assert.doesNotMatch(r.stderr, /^\s+at /m, "no stack trace");
}

describe("first run: mistakes a new user makes", () => {
  it("a port already in use is said in one line, and the next start on a free port still shows the generated token once", async () => {
    const busy: Server = createServer();
    await new Promise<void>((r) => busy.listen(0, "127.0.0.1", () => r()));
    const port = (busy.address() as { port: number }).port;
    const dir = stateDir();
    try {
      const r = serve(dir, ["--port", String(port)]);
      assertOneLine(r, new RegExp(`^gatewarden: cannot listen on 127\\.0\\.0\\.1:${port}: the port is in use .*--port`));
      assert.doesNotMatch(r.stdout, /gwt_/, "no token shown for a start that failed");
    } finally {
      busy.close();
    }
    // The failed start stored no digest: this start generates the token and shows it.
    const shown = await firstOutput(dir);
    assert.match(shown, /listening on ws:\/\/127\.0\.0\.1:\d+/);
    assert.match(shown, /Operator token \(shown once; only its hash is stored\):\n\s+gwt_\S+/);
  });

  it("an unknown --log-level is refused in one line naming the levels", () => {
    assertOneLine(serve(stateDir(), ["--port", "0", "--log-level", "verbose"]), /^gatewarden: unknown log level "verbose" \(fatal, error, warn, info, debug, trace, silent\)$/);
  });

  it("a whitespace-only or whitespace-padded GATEWARDEN_TOKEN is refused in one line instead of refusing every client later", () => {
    for (const token of [" ".repeat(20), `  ${"t".repeat(20)}`, `${"t".repeat(20)}\n`]) {
      assertOneLine(serve(stateDir(), ["--port", "0"], { GATEWARDEN_TOKEN: token }), /^gatewarden: the shared token \(GATEWARDEN_TOKEN or auth\.token\) must not start or end with whitespace/);
    }
  });

  it("token rotate on a gateway that takes its token from GATEWARDEN_TOKEN is refused in one line, and the token in use keeps working", async () => {
    const token = "first-run-config-token-0123456789";
    const gw = await startGatewayProcess({ env: { GATEWARDEN_TOKEN: token } });
    try {
      const r = gw.cli(["token", "rotate"]);
      assertOneLine({ code: r.code, stdout: r.stdout, stderr: r.stderr }, /^gatewarden: the gateway takes its shared token from GATEWARDEN_TOKEN or auth\.token .* change it there and restart/, 1);
      assert.equal(r.stdout, "", "no token that clients would be refused with");
      const c = await TestClient.open(gw.url);
      assert.equal((await c.connect({ auth: { token } })).ok, true);
      c.close();
    } finally {
      await gw.stop();
    }
  });

  it("token bootstrap puts the running gateway's own address in the setup code, not the default port", async () => {
    const gw = await startGatewayProcess();
    try {
      const r = gw.cli(["token", "bootstrap", "--json"]);
      assert.equal(r.code, 0, r.stderr);
      const { setupCode } = JSON.parse(r.stdout) as { setupCode: string };
      const decoded = JSON.parse(Buffer.from(setupCode, "base64url").toString("utf8")) as { url: string };
      assert.equal(decoded.url, `ws://127.0.0.1:${gw.port}`);
      assert.notEqual(gw.port, 18789);
    } finally {
      await gw.stop();
    }
  });

  it("devices list shows when each request expires; approving an expired request says it expired, and approving one twice says what an unknown id may mean", async () => {
    const gw = await startGatewayProcess({ env: { GATEWARDEN_TOKEN: "first-run-expiry-token-0123456789" }, config: { pairing: { pendingTtlMs: 1500 } } });
    try {
      const ledger = new SecretLedger();
      const requestOf = async (): Promise<string> => {
        const r = await openConnect(gw, { device: createTestDevice(), scopes: ["operator.read"], auth: { token: gw.token! } }, ledger);
        assert.equal(detailCode(r.reply), "PAIRING_REQUIRED");
        return r.reply.error?.details?.requestId as string;
      };
      const late = await requestOf();
      const listed = gw.cli(["devices", "list"]);
      assert.match(listed.stdout, /EXPIRES/);
      assert.match(listed.stdout, /in [12]s/);
      await delay(1700);
      const expired = gw.cli(["devices", "approve", "--yes", late]);
      assertOneLine({ code: expired.code, stdout: expired.stdout, stderr: expired.stderr }, /^gatewarden: the request expired at \d{4}-\d\d-\d\dT[\d:.]+Z; the device asks again when it next connects/, 1);
      const twice = await requestOf();
      assert.equal(gw.cli(["devices", "approve", "--yes", twice]).code, 0);
      const again = gw.cli(["devices", "approve", "--yes", twice]);
      assertOneLine({ code: again.code, stdout: again.stdout, stderr: again.stderr }, /^gatewarden: unknown request: \S+ \(never made, already approved or rejected, or expired and cleared/, 1);
    } finally {
      await gw.stop();
    }
  });

  it("a listing piped into a reader that stops early (| head -1) ends quietly with exit 0, no EPIPE stack trace", async () => {
    const dir = stateDir();
    const store = openSqliteStore({ path: join(dir, "gatewarden.sqlite") });
    try {
      await store.transact(async (tx) => {
        for (let i = 0; i < 3000; i++) {
          await tx.putBackend({ id: `b${i}`, name: `backend-with-a-long-name-${i}`, secretHash: i.toString(16).padStart(64, "0"), scopes: ["operator.read"], createdAtMs: 1 });
        }
      });
    } finally {
      await store.close();
    }
    // A real shell pipeline: the reader exits after one line and the writer's next write meets a closed pipe.
    const r = spawnSync("bash", ["-c", `"$0" "$1" --state-dir "$2" backends list | head -1; echo "status \${PIPESTATUS[0]}" >&2`, process.execPath, BIN, dir], { encoding: "utf8", timeout: 30_000 });
    assert.match(r.stdout, /^NAME\s+SCOPES/);
    assert.equal(r.stderr, "status 0\n", "no EPIPE stack trace, exit 0");
  });

  it("with --json a failure is one JSON object on stdout with a stable code; revoking twice says it was already revoked; a refused rotation says why", async () => {
    const gw = await startGatewayProcess({ env: { GATEWARDEN_TOKEN: "first-run-json-token-0123456789" } });
    try {
      const missing = gw.cli(["devices", "approve", "--yes", "nosuchrequest", "--json"]);
      assert.equal(missing.code, 1);
      assert.equal(missing.stderr, "");
      const parsed = JSON.parse(missing.stdout) as { error: { code: string; message: string } };
      assert.equal(parsed.error.code, "CLI_ERROR");
      assert.match(parsed.error.message, /^unknown request: nosuchrequest/);

      const ledger = new SecretLedger();
      const device = createTestDevice();
      await pairDevice(gw, device, ledger, { scopes: ["operator.read"] });
      const first = gw.cli(["devices", "revoke", "--device", device.id, "--role", "operator"]);
      assert.equal(first.code, 0, first.stderr);
      assert.match(first.stdout, /^revoked operator token/);
      const second = gw.cli(["devices", "revoke", "--device", device.id, "--role", "operator"]);
      assert.equal(second.code, 0, second.stderr);
      assert.match(second.stdout, /was already revoked \(\d{4}-.*\); nothing changed/);

      const rotate = gw.cli(["devices", "rotate", "--device", device.id, "--role", "operator", "--json"]);
      assert.equal(rotate.code, 1);
      const refused = JSON.parse(rotate.stdout) as { error: { code: string; message: string } };
      assert.equal(refused.error.code, "FORBIDDEN");
      assert.match(refused.error.message, /^device token rotation denied: its operator token is revoked; only an approval/);
      const node = gw.cli(["devices", "revoke", "--device", device.id, "--role", "node"]);
      assert.match(node.stderr, /unknown deviceId\/role: the device has no node role \(it has operator\)/);
    } finally {
      await gw.stop();
    }
  });

  it("a request for operator.admin is not approved by a script without --yes: one line names the device and its code; with --yes it is", async () => {
    const gw = await startGatewayProcess({ env: { GATEWARDEN_TOKEN: "first-run-admin-token-0123456789" } });
    try {
      const ledger = new SecretLedger();
      const device = createTestDevice();
      const r = await openConnect(gw, { device, scopes: ["operator.admin", "operator.read"], displayName: "ops laptop", auth: { token: gw.token! } }, ledger);
      const requestId = r.reply.error?.details?.requestId as string;
      const code = r.reply.error?.details?.verificationCode as string;
      const refused = gw.cli(["devices", "approve", requestId]);
      assertOneLine({ code: refused.code, stdout: refused.stdout, stderr: refused.stderr }, new RegExp(`^gatewarden: request ${requestId} asks for operator\\.admin \\(full control of this gateway\\) for device \\S+ "ops laptop" .*verification code ${code}: check it .*approve with --yes`), 1);
      assert.match(gw.cli(["devices", "list"]).stdout, new RegExp(code), "still pending");
      const narrowed = gw.cli(["devices", "approve", requestId, "--scopes", "operator.read"]);
      assert.equal(narrowed.code, 0, "granting less needs no --yes");
      const again = await openConnect(gw, { device: createTestDevice(), scopes: ["operator.admin"], auth: { token: gw.token! } }, ledger);
      const approved = gw.cli(["devices", "approve", again.reply.error?.details?.requestId as string, "--yes"]);
      assert.equal(approved.code, 0, approved.stderr);
      assert.match(approved.stdout, /granted role operator with scopes operator\.admin/);
    } finally {
      await gw.stop();
    }
  });
});

