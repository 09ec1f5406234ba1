import assert from "node:assert/strict";
import { generateKeyPairSync, sign as edSign } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { anchorDigest, checkpointPayload, type AuditCheckpoint } from "../../src/store/audit-chain.js";
import { Database } from "../../src/store/sqlite-driver.js";
import { SecretLedger, addBackend, eventually, openConnect, pairDevice } from "../support/adversarial.js";
import { createTestDevice } from "../support/device.js";
import { startGatewayProcess, viaProxy, type GatewayProcess } from "../support/gateway-process.js";

// Issue 18, item 3: every admission decision and every change to pairings,
// tokens, backends and the shared token is in the store's audit log, chained
// by hashes from a per-install anchor; `audit verify` names the first broken
// link; retention prunes under a signed checkpoint and the chain still checks.

interface Entry {
  readonly seq: number;
  readonly kind: string;
  readonly actor: string;
  readonly [field: string]: unknown;
}

function tail(gw: GatewayProcess, n = 1000): Entry[] {
  const r = gw.cli(["audit", "tail", "-n", String(n), "--json"]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout
    .split("\n")
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as Entry);
}

function verify(gw: GatewayProcess, ...args: string[]): { code: number; stdout: string; stderr: string } {
  return gw.cli(["audit", "verify", ...args]);
}

/** Run `fn` on the gateway's database, as someone with write access to the file would. */
function withDb<T>(gw: GatewayProcess, fn: (db: InstanceType<typeof Database>) => T): T {
  const db = new Database(join(gw.stateDir, "gatewarden.sqlite"));
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

describe("the audit log: what is recorded, by whom, and that tampering is named", () => {
  const ledger = new SecretLedger();
  let gw: GatewayProcess;
  let deviceId: string;

  before(async () => {
    gw = await startGatewayProcess();
    ledger.add(gw.token);
    // An admission, a refusal, a pairing (requested by the gateway's decision, approved by the owner), a backend.
    const { client } = await openConnect(gw, { auth: { token: gw.token! } }, ledger, viaProxy("203.0.113.10"));
    client.close();
    const refused = await openConnect(gw, { auth: { token: "gwt_not-the-token-4d3c2b1a" } }, ledger, viaProxy("203.0.113.11"));
    refused.client.close();
    const device = createTestDevice();
    deviceId = device.id;
    await pairDevice(gw, device, ledger, { scopes: ["operator.read"] });
    assert.equal(gw.cli(["devices", "revoke", "--device", device.id, "--role", "operator"]).code, 0);
    addBackend(gw, "audit-backend", ["operator.read"], ledger);
    assert.equal(gw.cli(["backends", "revoke", "audit-backend"]).code, 0);
    await eventually(() => tail(gw).some((e) => e.kind === "admission.reject"), "admission entries reach the store");
  });
  after(async () => {
    await gw.stop();
  });

  it("records admissions and refusals (decided by the gateway) with the refusal's code, and owner actions as the owner", () => {
    const entries = tail(gw);
    const admit = entries.find((e) => e.kind === "admission.admit" && e.clientIp === "203.0.113.10");
    assert.ok(admit, "the admission is recorded");
    assert.equal(admit.actor, "gateway");
    assert.equal(admit.role, "operator");
    const reject = entries.find((e) => e.kind === "admission.reject" && e.clientIp === "203.0.113.11");
    assert.ok(reject, "the refusal is recorded");
    assert.equal(reject.code, "AUTH_TOKEN_MISMATCH");
    const byKind = (kind: string) => entries.filter((e) => e.kind === kind && (e.deviceId === deviceId || e.backend === "audit-backend"));
    assert.equal(byKind("pairing.requested")[0]?.actor, "gateway");
    assert.equal(byKind("pairing.approved")[0]?.actor, "owner");
    assert.deepEqual(byKind("device.paired")[0]?.scopes, ["operator.read"]);
    assert.equal(byKind("device.paired")[0]?.actor, "owner");
    assert.equal(byKind("device.token.revoked")[0]?.actor, "owner");
    assert.equal(byKind("backend.added")[0]?.actor, "owner");
    assert.equal(byKind("backend.revoked")[0]?.actor, "owner");
    // Sequence numbers are contiguous: nothing is skipped between batches.
    entries.forEach((e, i) => i > 0 && assert.equal(e.seq, (entries[i - 1]?.seq ?? 0) + 1));
  });

  it("holds no secret: not the shared token, device tokens or backend secrets presented or issued", () => {
    const r = gw.cli(["audit", "tail", "-n", "1000"]);
    assert.equal(r.code, 0, r.stderr);
    ledger.assertAbsentFrom(r.stdout + JSON.stringify(tail(gw)), "the audit log");
  });

  it("audit verify passes on the untouched log and says what it checked", () => {
    const r = verify(gw);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^audit log intact: \d+ entries \(#1 to #\d+\); head \d+:[0-9a-f]{64}\n$/);
    const json = JSON.parse(verify(gw, "--json").stdout) as { ok: boolean; first: number };
    assert.equal(json.ok, true);
    assert.equal(json.first, 1);
  });

  it("an edited entry is named, and the log verifies again once it is put back", () => {
    const seq = 3;
    const original = withDb(gw, (db) => (db.prepare("SELECT event FROM audit_log WHERE seq = ?").get(seq) as { event: string }).event);
    withDb(gw, (db) => db.prepare("UPDATE audit_log SET event = ? WHERE seq = ?").run(original.replace(/"actor":"[^"]*"/, '"actor":"someone-else"'), seq));
    const r = verify(gw);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, "");
    assert.equal(r.stderr, `gatewarden: audit log broken: entry #${seq} does not match its hash: it was edited\n`);
    const json = verify(gw, "--json");
    assert.equal(json.code, 1);
    assert.equal((JSON.parse(json.stdout) as { error: { code: string } }).error.code, "AUDIT_CHAIN_BROKEN");
    withDb(gw, (db) => db.prepare("UPDATE audit_log SET event = ? WHERE seq = ?").run(original, seq));
    assert.equal(verify(gw).code, 0);
  });

  it("an edit that also recomputes the row's own hash is named at the next entry", () => {
    const seq = 4;
    const [row] = withDb(gw, (db) => db.prepare("SELECT * FROM audit_log WHERE seq = ?").all(seq)) as { event: string; hash: string; prev: string; ts: number }[];
    assert.ok(row);
    withDb(gw, (db) => db.prepare("UPDATE audit_log SET hash = ? WHERE seq = ?").run("0".repeat(64), seq));
    const r = verify(gw);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /entry #4 does not match its hash/);
    withDb(gw, (db) => db.prepare("UPDATE audit_log SET prev = ? WHERE seq = ?").run("0".repeat(64), seq + 1));
    // A forger who fixes the row's hash must fix the next row's link too, and so on to the head.
    withDb(gw, (db) => db.prepare("UPDATE audit_log SET hash = ? WHERE seq = ?").run(row.hash, seq));
    const again = verify(gw);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /entry #5 does not follow entry #4/);
    withDb(gw, (db) => db.prepare("UPDATE audit_log SET prev = ? WHERE seq = ?").run(row.hash, seq + 1));
    assert.equal(verify(gw).code, 0);
  });

  it("a deleted entry is named", () => {
    const removed = withDb(gw, (db) => db.prepare("SELECT * FROM audit_log WHERE seq = 2").get()) as Record<string, unknown>;
    withDb(gw, (db) => db.prepare("DELETE FROM audit_log WHERE seq = 2").run());
    const r = verify(gw);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /entry #2 is missing \(the next entry is #3\): entries were deleted/);
    withDb(gw, (db) => db.prepare("INSERT INTO audit_log (seq, ts, event, prev, hash) VALUES (@seq, @ts, @event, @prev, @hash)").run(removed));
    assert.equal(verify(gw).code, 0);
  });

  it("two entries swapped (contents moved between sequence numbers) are named at the first", () => {
    const rows = withDb(gw, (db) => db.prepare("SELECT * FROM audit_log WHERE seq IN (5, 6) ORDER BY seq").all()) as { seq: number; ts: number; event: string; prev: string; hash: string }[];
    const [a, b] = rows;
    assert.ok(a && b);
    const move = (db: InstanceType<typeof Database>, to: number, r: typeof a) => db.prepare("UPDATE audit_log SET ts = ?, event = ?, prev = ?, hash = ? WHERE seq = ?").run(r.ts, r.event, r.prev, r.hash, to);
    withDb(gw, (db) => {
      move(db, 5, b);
      move(db, 6, a);
    });
    const r = verify(gw);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /entry #5 does not follow entry #4/);
    withDb(gw, (db) => {
      move(db, 5, a);
      move(db, 6, b);
    });
    assert.equal(verify(gw).code, 0);
  });

  it("audit tail prints one line per entry for a terminal, and refuses a bad count in one line", () => {
    const r = gw.cli(["audit", "tail", "-n", "3"]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split("\n");
    assert.equal(lines.length, 3);
    for (const line of lines) assert.match(line, /^#\d+ {2}\d{4}-\d\d-\d\dT[\d:.]+Z {2}[a-z.-]+ {2}\S+/);
    const bad = gw.cli(["audit", "tail", "-n", "0"]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^error: option '-n, --lines <n>' argument '0' is invalid\. must be a whole number from 1 to 100000\n$/);
  });
});

describe("audit tail --follow", () => {
  let gw: GatewayProcess;
  before(async () => {
    gw = await startGatewayProcess();
  });
  after(async () => {
    await gw.stop();
  });

  it("prints entries written after it started", async () => {
    const { spawn } = await import("node:child_process");
    const { BIN } = await import("../support/gateway-process.js");
    const child = spawn(process.execPath, [BIN, "audit", "tail", "-n", "1", "--follow", "--json"], { env: { ...process.env, GATEWARDEN_STATE_DIR: gw.stateDir }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    try {
      await new Promise((r) => setTimeout(r, 300));
      const ledger = new SecretLedger();
      const { client } = await openConnect(gw, { auth: { token: "gwt_wrong-for-follow-9e8d7c6b" } }, ledger, viaProxy("203.0.113.77"));
      client.close();
      await eventually(() => out.includes('"203.0.113.77"'), "the follower prints the new refusal", 5000);
    } finally {
      child.kill();
    }
  });
});

describe("audit retention: pruning leaves a signed checkpoint and the chain still verifies", () => {
  let gw: GatewayProcess;
  const stateDir = mkdtempSync(join(tmpdir(), "gatewarden-audit-retention-"));
  let firstHead = "";

  before(async () => {
    gw = await startGatewayProcess({ stateDir, config: { audit: { maxEntries: 4 } } });
    for (let i = 0; i < 6; i++) {
      const { client } = await openConnect(gw, { auth: { token: "gwt_wrong-retention-0000" } }, new SecretLedger(), viaProxy(`203.0.113.${120 + i}`));
      client.close();
    }
    await eventually(() => tail(gw).length >= 6, "entries were written");
    const first = tail(gw)[0] as Entry;
    firstHead = `${first.seq}:${String(first.hash)}`;
    // Retention runs at start (and every 30 s): restart on the same state dir.
    await gw.stop();
    gw = await startGatewayProcess({ stateDir });
    await eventually(() => gw.logLines().some((l) => l.event === "audit-prune"), "the gateway pruned at start", 10_000);
  });
  after(async () => {
    await gw.stop();
    rmSync(stateDir, { recursive: true, force: true });
  });

  it("keeps at most maxEntries and verifies from the checkpoint signed by this gateway", () => {
    const r = verify(gw);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /were pruned under a checkpoint signed by this gateway/);
    const rows = withDb(gw, (db) => db.prepare("SELECT seq FROM audit_log ORDER BY seq").all()) as { seq: number }[];
    assert.ok(rows.length <= 6, `few rows are left (${rows.length})`);
    assert.ok((rows[0]?.seq ?? 0) > 1, "the oldest entries are gone");
  });

  it("a head recorded before it was pruned can no longer be checked, and verify --expect-head says so", () => {
    const r = verify(gw, "--expect-head", firstHead);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^gatewarden: audit log broken: entry #1 \(the head recorded earlier\) was pruned under the checkpoint at #\d+: it can no longer be checked; record heads more often than the retention\n$/);
  });

  it("a forged checkpoint (moved further, or signed by another key) is named; another key is accepted with --trust-key", () => {
    const original = withDb(gw, (db) => (db.prepare("SELECT value FROM settings WHERE key = 'audit.checkpoint'").get() as { value: string }).value);
    const cp = JSON.parse(original) as AuditCheckpoint;
    const setCheckpoint = (value: string) => withDb(gw, (db) => db.prepare("UPDATE settings SET value = ? WHERE key = 'audit.checkpoint'").run(value));
    try {
      // The same signature over a different seq: invalid.
      setCheckpoint(JSON.stringify({ ...cp, throughSeq: cp.throughSeq + 1 }));
      let r = verify(gw);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /checkpoint .* has an invalid signature/);
      // A valid signature by a key this install does not know (someone with write access to the store).
      const { privateKey, publicKey } = generateKeyPairSync("ed25519");
      const signer = publicKey.export({ format: "der", type: "spki" }).subarray(12).toString("base64url");
      const unsigned = { ...cp, signer };
      const forged = { ...unsigned, signature: edSign(null, Buffer.from(checkpointPayload(unsigned)), privateKey).toString("base64url") };
      setCheckpoint(JSON.stringify(forged));
      r = verify(gw);
      assert.equal(r.code, 1);
      assert.match(r.stderr, new RegExp(`signed by a key this install does not trust \\(${signer}\\)`));
      const trusted = verify(gw, "--trust-key", signer);
      assert.equal(trusted.code, 0, trusted.stderr);
      // A checkpoint of another install's log.
      setCheckpoint(JSON.stringify({ ...cp, anchor: anchorDigest("00".repeat(32)) }));
      r = verify(gw);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /belongs to another install's log/);
    } finally {
      setCheckpoint(original);
    }
    assert.equal(verify(gw).code, 0);
  });

  it("audit key prints the key that signs this gateway's checkpoints", () => {
    const r = gw.cli(["audit", "key"]);
    assert.equal(r.code, 0, r.stderr);
    const cp = JSON.parse(withDb(gw, (db) => (db.prepare("SELECT value FROM settings WHERE key = 'audit.checkpoint'").get() as { value: string }).value)) as AuditCheckpoint;
    assert.equal(r.stdout.trim(), cp.signer);
  });
});
