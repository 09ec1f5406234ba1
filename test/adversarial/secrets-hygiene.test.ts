import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Database } from "../../src/store/sqlite-driver.js";
import {
  SecretLedger,
  addBackend,
  assertLogsHoldNoSecret,
  cliAsync,
  connectRecorded,
  delay,
  helloAuth,
  listDevices,
  openConnect,
  pairDevice,
} from "../support/adversarial.js";
import { createTestDevice } from "../support/device.js";
import { startGatewayProcess, viaProxy, type GatewayProcess } from "../support/gateway-process.js";
import { TestClient } from "../support/protocol-client.js";

// A47: no token, password, backend secret, bootstrap token or signature ever
// appears in logs, error replies, audit entries or admin listings.
// A48: the state dir is private to its owner, and the database holds digests,
// never a usable secret.

const sha256Hex = (s: string) => createHash("sha256").update(s, "utf8").digest("hex");

/** Every regular file under `dir`, recursively. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? filesUnder(join(dir, e.name)) : e.isFile() ? [join(dir, e.name)] : []));
}

/** Run every kind of attack and legitimate use once, recording each secret presented or issued. */
async function exerciseEverySecret(gw: GatewayProcess, ledger: SecretLedger): Promise<{ deviceTokens: string[]; backend: string; bootstrap: string; revokedBackend: string }> {
  const deviceTokens: string[] = [];
  // Distinct clients behind the trusted test proxy: all of loopback is one failed-auth budget (A57).
  const at = (n: number) => viaProxy(`203.0.113.${47 + n}`);
  // shared token: right, wrong, as password, as device token, as bootstrap token
  for (const auth of [{ token: gw.token! }, { token: "gwt_wrong-shared-token-0a9b8c7d" }, { password: "a-wrong-password-5e6f" }, { deviceToken: gw.token! }, { bootstrapToken: gw.token! }]) {
    const { client } = await openConnect(gw, { auth }, ledger, at(1));
    client.close();
  }
  // a device paired by an operator, its token used right and wrong, rotated, revoked
  const device = createTestDevice();
  const paired = await pairDevice(gw, device, ledger, { scopes: ["operator.read"] });
  deviceTokens.push(paired.deviceToken);
  for (const auth of [{ deviceToken: paired.deviceToken }, { token: paired.deviceToken }, { deviceToken: "wrong-device-token-1f2e3d4c" }]) {
    const { client } = await openConnect(gw, { device, scopes: ["operator.read"], auth }, ledger, at(2));
    client.close();
  }
  const rotated = gw.cli(["devices", "rotate", "--device", device.id, "--role", "operator", "--json"]);
  const rotatedToken = (JSON.parse(rotated.stdout) as { token: string }).token;
  ledger.add(rotatedToken);
  deviceTokens.push(rotatedToken);
  for (const token of [paired.deviceToken, rotatedToken]) {
    const { client } = await openConnect(gw, { device, scopes: ["operator.read"], auth: { deviceToken: token } }, ledger, at(3));
    client.close();
  }
  // another device's token with this key, signatures over the wrong nonce
  const thief = createTestDevice();
  for (const opts of [{ auth: { deviceToken: rotatedToken } }, { auth: { token: gw.token! }, signNonce: "00000000-0000-4000-8000-00000000beef" }]) {
    const { client } = await openConnect(gw, { device: thief, ...opts }, ledger, at(4));
    client.close();
  }
  // backend credentials: right, revoked, unknown
  const backend = addBackend(gw, "a47-backend", ["operator.read", "operator.pairing"], ledger);
  const revokedBackend = addBackend(gw, "a47-revoked", ["operator.read"], ledger);
  assert.equal(gw.cli(["backends", "revoke", "a47-revoked"]).code, 0);
  for (const token of [backend, revokedBackend, "gwb_unknown-backend-secret-6d5c4b3a"]) {
    const { client, reply } = await openConnect(gw, { scopes: ["operator.read", "operator.pairing"], auth: { token } }, ledger, at(5));
    if (reply.ok) {
      // an approver at work: list, approve an unknown id, rotate a token
      await client.request("device.pair.list", {});
      await client.request("device.pair.approve", { requestId: "00000000-0000-4000-8000-000000000001" });
    }
    client.close();
  }
  // bootstrap tokens: used once (consumed), reused, unknown
  const boot = JSON.parse(gw.cli(["token", "bootstrap", "--scopes", "operator.read", "--json"]).stdout) as { token: string; setupCode: string };
  ledger.add(boot.token, boot.setupCode);
  const newcomer = createTestDevice();
  const first = await openConnect(gw, { device: newcomer, scopes: ["operator.read"], auth: { bootstrapToken: boot.token } }, ledger, at(6));
  const issued = helloAuth(first.reply).deviceToken;
  ledger.add(issued);
  if (issued) deviceTokens.push(issued);
  first.client.close();
  for (const bootstrapToken of [boot.token, "unknown-bootstrap-token-9a8b7c6d"]) {
    const { client } = await openConnect(gw, { device: createTestDevice(), auth: { bootstrapToken } }, ledger, at(6));
    client.close();
  }
  const spare = JSON.parse(gw.cli(["token", "bootstrap", "--json"]).stdout) as { token: string; setupCode: string };
  ledger.add(spare.token, spare.setupCode);
  // a replayed connect, a second connect after admission
  const a = await TestClient.open(gw.url, at(7));
  const params = a.buildConnect({ device, scopes: ["operator.read"], auth: { deviceToken: rotatedToken } });
  ledger.addConnectParams(params);
  const b = await TestClient.open(gw.url, at(7));
  await b.request("connect", params);
  await a.request("connect", params);
  await connectRecorded(a, { auth: { token: gw.token! } }, ledger);
  a.close();
  // the shared token rotated while a session it admitted is open
  const live = await openConnect(gw, { auth: { token: gw.token! } }, ledger, at(8));
  const rotatedShared = (JSON.parse((await cliAsync(gw, ["token", "rotate", "--json"])).stdout) as { token: string }).token;
  ledger.add(rotatedShared);
  await live.client.closed;
  const withNew = await openConnect(gw, { auth: { token: rotatedShared } }, ledger, at(8));
  withNew.client.close();
  return { deviceTokens, backend, bootstrap: spare.token, revokedBackend };
}

describe("A47 secrets never reach logs, error replies, audit entries or listings", () => {
  const ledger = new SecretLedger();
  let gw: GatewayProcess;

  before(async () => {
    // trace: the most verbose level logs no more secrets than the default
    gw = await startGatewayProcess({ env: { GATEWARDEN_LOG_LEVEL: "trace" } });
    ledger.add(gw.token);
  });
  after(async () => {
    await gw.stop();
  });

  it("A47 after every kind of credential use and attack, no presented or issued secret appears in the logs, the audit log, the change feed or the admin listings", async () => {
    await exerciseEverySecret(gw, ledger);
    // admin listings an operator (or a script) reads
    for (const args of [["devices", "list", "--json"], ["devices", "list"], ["backends", "list", "--json"], ["backends", "list"]]) {
      const r = gw.cli(args);
      assert.equal(r.code, 0, r.stderr);
      ledger.assertAbsentFrom(r.stdout + r.stderr, `gatewarden ${args.join(" ")}`);
    }
    // the change feed (the store's audit trail of pairing and token events)
    const db = new Database(join(gw.stateDir, "gatewarden.sqlite"), { readonly: true, fileMustExist: true });
    try {
      const changes = db.prepare("SELECT kind, payload FROM changes").all() as { kind: string; payload: string }[];
      assert.ok(changes.length > 0);
      ledger.assertAbsentFrom(JSON.stringify(changes), "the change feed");
    } finally {
      db.close();
    }
    // the store's tamper-evident audit log: neither the secrets nor the digests stored for them
    await delay(400); // admission entries are written in batches (every 200 ms)
    const auditDb = new Database(join(gw.stateDir, "gatewarden.sqlite"), { readonly: true, fileMustExist: true });
    try {
      const rows = auditDb.prepare("SELECT event FROM audit_log ORDER BY seq").all() as { event: string }[];
      const kinds = new Set(rows.map((r) => (JSON.parse(r.event) as { kind: string }).kind));
      for (const kind of ["admission.admit", "admission.reject", "device.paired", "device.token.rotated", "backend.added", "backend.revoked"]) assert.ok(kinds.has(kind), `the audit log has ${kind} entries`);
      const text = rows.map((r) => r.event).join("\n");
      ledger.assertAbsentFrom(text, "the store's audit log");
      const digests = auditDb.prepare("SELECT token_hash AS h FROM device_tokens UNION ALL SELECT secret_hash FROM backends UNION ALL SELECT token_hash FROM bootstrap_tokens UNION ALL SELECT value FROM settings WHERE key = 'auth.sharedTokenHash'").all() as { h: string }[];
      assert.ok(digests.length > 0);
      for (const { h } of digests) assert.ok(!text.includes(h), "no stored secret digest is in the audit log");
    } finally {
      auditDb.close();
    }
    const audit = gw.logLines().filter((l) => l.audit === "admission");
    assert.ok(audit.some((l) => l.decision === "reject") && audit.some((l) => l.decision === "admit"), "rejections and admissions were logged");
    await assertLogsHoldNoSecret(gw, ledger);
  });
});

describe("A48 the state dir is private and stores digests only", () => {
  const ledger = new SecretLedger();
  let parent: string;
  let gw: GatewayProcess;
  let stateDir: string;
  let issued: Awaited<ReturnType<typeof exerciseEverySecret>>;

  before(async () => {
    parent = mkdtempSync(join(tmpdir(), "gatewarden-a48-"));
    chmodSync(parent, 0o755);
    // a state dir the gateway creates itself
    stateDir = join(parent, "state");
    gw = await startGatewayProcess({ stateDir });
    assert.ok(gw.token, "the first start generated and printed a token");
    ledger.add(gw.token);
    issued = await exerciseEverySecret(gw, ledger);
  });
  after(async () => {
    await gw.stop();
    rmSync(parent, { recursive: true, force: true });
  });

  it("A48 the state dir, the database (with -wal and -shm) and the identity file are readable by their owner only", () => {
    const mode = (p: string) => statSync(p).mode & 0o777;
    assert.equal(mode(stateDir), 0o700, "state dir");
    assert.equal(mode(join(stateDir, "identity")), 0o700, "identity dir");
    const files = filesUnder(stateDir);
    for (const name of ["gatewarden.sqlite", "gatewarden.sqlite-wal", "identity/gateway.json"]) assert.ok(files.includes(join(stateDir, name)), name);
    for (const f of files) assert.equal(mode(f) & 0o077, 0, `${f} is ${mode(f).toString(8)}`);
  });

  it("A48 another local user cannot read the database or the identity key", { skip: process.getuid?.() !== 0 ? "needs root to act as another user" : false }, () => {
    for (const f of [join(stateDir, "gatewarden.sqlite"), join(stateDir, "identity", "gateway.json")]) {
      const r = spawnSync(process.execPath, ["-e", `require("fs").readFileSync(${JSON.stringify(f)})`], { uid: 65534, gid: 65534, encoding: "utf8" });
      assert.notEqual(r.status, 0, `nobody read ${f}`);
      assert.match(r.stderr, /EACCES/);
    }
  });

  it("A48 no file in the state dir holds a token, backend secret or bootstrap token in clear; the database holds their SHA-256 digests", async () => {
    await delay(300); // let the WAL settle
    for (const f of filesUnder(stateDir)) {
      const bytes = readFileSync(f);
      ledger.assertAbsentFrom(bytes.toString("latin1"), f);
      ledger.assertAbsentFrom(bytes.toString("utf8"), f);
    }
    const db = new Database(join(stateDir, "gatewarden.sqlite"), { readonly: true, fileMustExist: true });
    try {
      const tokenHashes = (db.prepare("SELECT token_hash FROM device_tokens").all() as { token_hash: string }[]).map((r) => r.token_hash);
      const live = issued.deviceTokens.filter((t) => tokenHashes.includes(sha256Hex(t)));
      assert.ok(live.length >= 2, "the current device tokens are stored as their digests");
      for (const h of tokenHashes) assert.match(h, /^[0-9a-f]{64}$/);
      const backends = (db.prepare("SELECT secret_hash FROM backends").all() as { secret_hash: string }[]).map((r) => r.secret_hash);
      assert.ok(backends.includes(sha256Hex(issued.backend)) && backends.includes(sha256Hex(issued.revokedBackend)));
      const boots = (db.prepare("SELECT token_hash FROM bootstrap_tokens").all() as { token_hash: string }[]).map((r) => r.token_hash);
      assert.ok(boots.includes(sha256Hex(issued.bootstrap)));
      const settings = db.prepare("SELECT key, value FROM settings").all() as { key: string; value: string }[];
      for (const { value } of settings) ledger.assertAbsentFrom(value, "settings");
      assert.ok(!settings.some((s) => s.value === gw.token), "the generated shared token is not stored");
    } finally {
      db.close();
    }
    assert.ok(existsSync(join(stateDir, "gatewarden.sqlite")));
    assert.ok(listDevices(gw).paired.length >= 2);
  });

  it("A48 in a pre-existing, world-readable state dir the database and identity files are still created 0600", async () => {
    const loose = join(parent, "loose");
    mkdirSync(loose, { mode: 0o755 });
    chmodSync(loose, 0o755);
    const g = await startGatewayProcess({ stateDir: loose });
    try {
      for (const f of filesUnder(loose)) assert.equal(statSync(f).mode & 0o077, 0, f);
    } finally {
      await g.stop();
    }
  });
});
