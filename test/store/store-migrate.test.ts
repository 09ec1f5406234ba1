import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { openPostgresStore } from "../../src/store/postgres-store.js";
import type { BackendRecord, BootstrapRecord, PairedDeviceRecord, PendingRequestRecord } from "../../src/store/records.js";
import { openSqliteReader, openSqliteStore } from "../../src/store/sqlite-store.js";
import { readStoreContents, type StoreContents } from "../../src/store/store-migrate.js";
import { verifyAuditLog } from "../../src/store/audit-verify.js";
import { SETTING_SHARED_TOKEN_HASH } from "../../src/store/store.js";
import { freePort } from "../support/free-port.js";
import { BIN, startGatewayProcess } from "../support/gateway-process.js";
import { helloAuth, openConnect, pairDevice, SecretLedger } from "../support/adversarial.js";
import { createTestDevice } from "../support/device.js";
import { startPostgres, type PostgresServer } from "../support/postgres.js";

// `gatewarden store migrate` as a real process, from a real SQLite file to a
// real PostgreSQL 15 (test/support/postgres.ts).

let server: PostgresServer | undefined;
const dirs: string[] = [];
/** Passed as --state-dir so no run can touch ~/.gatewarden (migrate itself needs none). */
let unusedStateDir = "";
before(async () => {
  server = await startPostgres();
  unusedStateDir = await mkdtemp(join(tmpdir(), "gatewarden-migrate-state-"));
  dirs.push(unusedStateDir);
});
after(async () => {
  await server?.destroy();
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

function pgServer(): PostgresServer {
  if (!server) throw new Error("PostgreSQL did not start");
  return server;
}

const digest = (s: string): string => createHash("sha256").update(s).digest("hex");

const devices: PairedDeviceRecord[] = [
  {
    deviceId: "dev-full",
    publicKey: "pk-full",
    displayName: "Ada's laptop ✓",
    platform: "darwin",
    deviceFamily: "Mac",
    clientId: "cli",
    clientMode: "cli",
    remoteIp: "192.0.2.10",
    roles: ["operator", "node"],
    approvedScopes: ["operator.admin", "operator.read", "node.camera"],
    tokens: {
      operator: { role: "operator", tokenHash: digest("op"), scopes: ["operator.read"], createdAtMs: 1_000, rotatedAtMs: 2_000, revokedAtMs: 3_000, lastUsedAtMs: 2_500 },
      node: { role: "node", tokenHash: digest("node"), scopes: ["node.camera"], createdAtMs: 1_000, lastUsedAtMs: 4_000 },
    },
    createdAtMs: 1_000,
    approvedAtMs: 1_500,
  },
  { deviceId: "dev-min", publicKey: "pk-min", roles: ["operator"], approvedScopes: ["operator.read"], tokens: {}, createdAtMs: 2_000, approvedAtMs: 2_000 },
  {
    deviceId: "dev-node",
    publicKey: "pk-node",
    roles: ["node"],
    approvedScopes: [],
    tokens: { node: { role: "node", tokenHash: digest("node-2"), scopes: [], createdAtMs: 3_000 } },
    createdAtMs: 3_000,
    approvedAtMs: 3_000,
  },
];

const pending: PendingRequestRecord = {
  requestId: "req-1",
  deviceId: "dev-new",
  publicKey: "pk-new",
  displayName: "Phone",
  platform: "ios",
  remoteIp: "198.51.100.7",
  role: "operator",
  roles: ["operator"],
  scopes: ["operator.read", "operator.write"],
  reason: "not-paired",
  isRepair: false,
  requesterIp: "198.51.100.7",
  ts: 10_000,
  expiresAtMs: Number.MAX_SAFE_INTEGER,
};

const backends: BackendRecord[] = [
  { id: "be-1", name: "billing", secretHash: digest("be-1"), scopes: ["operator.read"], createdAtMs: 5_000, lastUsedAtMs: 6_000 },
  { id: "be-2", name: "old-job", secretHash: digest("be-2"), scopes: [], createdAtMs: 5_000, revokedAtMs: 7_000 },
];

const bootstrap: BootstrapRecord = {
  id: "bs-1",
  tokenHash: digest("bs-1"),
  roles: ["node"],
  scopes: ["node.camera"],
  createdAtMs: 1_000,
  expiresAtMs: 100_000,
  consumedAtMs: 2_000,
  consumedByDeviceId: "dev-node",
};

const SHARED_HASH = digest("shared token");
const HASHES = [...devices.flatMap((d) => Object.values(d.tokens).map((t) => t?.tokenHash)), ...backends.map((b) => b.secretHash), bootstrap.tokenHash, SHARED_HASH];

/** A private state dir (0700) with a gateway database (0600) holding every kind of record, and a changes feed. */
async function sqliteState(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "gatewarden-migrate-"));
  dirs.push(dir);
  const path = join(dir, "gatewarden.sqlite");
  const store = openSqliteStore({ path });
  try {
    await store.transact(async (tx) => {
      for (const d of devices) await tx.putPairedDevice(d);
      await tx.putPendingRequest(pending);
      for (const b of backends) await tx.putBackend(b);
      await tx.putBootstrap(bootstrap);
      await tx.setSetting(SETTING_SHARED_TOKEN_HASH, SHARED_HASH);
      await tx.appendChange({ kind: "pairing.requested", request: pending }, 10_000);
      await tx.appendChange({ kind: "backend.revoked", backendId: "be-2" }, 11_000);
    });
  } finally {
    await store.close();
  }
  return path;
}

function migrate(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  return migrateWith({}, ...args);
}

function migrateWith(env: Record<string, string>, ...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, "--state-dir", unusedStateDir, "store", "migrate", ...args], { encoding: "utf8", timeout: 30_000, env: { ...process.env, ...env } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

async function sqliteContents(path: string): Promise<StoreContents> {
  const reader = openSqliteReader(path);
  try {
    return await readStoreContents(reader);
  } finally {
    reader.close();
  }
}

async function postgresContents(url: string): Promise<StoreContents & { latestChangeId: number }> {
  const store = await openPostgresStore({ url });
  try {
    return { ...(await readStoreContents(store)), latestChangeId: await store.latestChangeId() };
  } finally {
    await store.close();
  }
}

function assertOneLineError(r: { status: number | null; stdout: string; stderr: string }, pattern: RegExp): void {
  assert.notEqual(r.status, 0);
  assert.equal(r.stdout, "");
  const lines = r.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, `one line on stderr, got:\n${r.stderr}`);
  assert.match(lines[0] ?? "", pattern);
  assert.doesNotMatch(r.stderr, /^\s+at /m, "no stack trace");
}

describe("gatewarden store migrate (SQLite → PostgreSQL)", () => {
  it("copies every record (devices with all tokens, pending, backends incl. revoked, bootstrap tokens, settings, the audit log) equal, but not the changes feed, and says so in one line without secrets", async () => {
    const source = await sqliteState();
    const url = await pgServer().createDatabase();
    const r = migrate("--from", `sqlite:${source}`, "--to", url);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, "");
    // The settings are the shared token's digest and the audit log's anchor.
    assert.equal(r.stdout, `migrated 3 paired devices, 1 pending request, 2 backends, 1 bootstrap token, 2 settings, 8 audit entries from ${source} to ${url}\n`);
    for (const h of HASHES) assert.ok(h !== undefined && !r.stdout.includes(h), "no hash printed");

    const { latestChangeId, auditRows, ...copied } = await postgresContents(url);
    const { auditRows: originalAudit, ...original } = await sqliteContents(source);
    assert.deepEqual(copied, original);
    // The chain is copied row for row, and the migration itself is linked after it.
    assert.deepEqual(auditRows.slice(0, -1), originalAudit);
    assert.equal((JSON.parse(auditRows.at(-1)?.event ?? "{}") as { kind?: string }).kind, "store.migrated");
    const target = await openPostgresStore({ url });
    try {
      const verdict = await verifyAuditLog(target, () => false);
      assert.ok(verdict.ok && verdict.checked === originalAudit.length + 1, JSON.stringify(verdict));
    } finally {
      await target.close();
    }
    assert.equal(original.pairedDevices.length, 3);
    assert.equal(original.backends.find((b) => b.id === "be-2")?.revokedAtMs, 7_000);
    assert.equal(latestChangeId, 0, "the changes feed is not copied");
  });

  it("takes the configured store (GATEWARDEN_STORE, password and all) when --to is left out, and hides the password in its summary", async () => {
    const source = await sqliteState();
    const url = (await pgServer().createDatabase()).replace("postgres://gatewarden@", "postgresql://gatewarden:not-checked-s3cret@");
    const r = migrateWith({ GATEWARDEN_STORE: url }, "--from", source);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^migrated 3 paired devices, .* to postgresql:\/\/gatewarden:\*\*\*@127\.0\.0\.1:\d+\/\w+\n$/);
    assert.ok(!r.stdout.includes("s3cret"));
  });

  it("refuses a target that already holds a record, in one line, writing nothing", async () => {
    const source = await sqliteState();
    const url = await pgServer().createDatabase();
    const target = await openPostgresStore({ url });
    try {
      await target.transact(async (tx) => tx.setSetting("some.key", "kept"));
    } finally {
      await target.close();
    }
    const before = await postgresContents(url);

    const r = migrate("--from", `sqlite:${source}`, "--to", url);
    assertOneLineError(r, /^gatewarden: the target postgres:\/\/\S+ is not empty \(it holds 0 paired devices, .*1 setting, 0 audit entries\); nothing was written/);
    assert.deepEqual(await postgresContents(url), before);
  });

  it("a bad --to scheme and an unreachable target each fail in one line, without a stack trace or the password", async () => {
    const source = await sqliteState();
    const badScheme = migrate("--from", `sqlite:${source}`, "--to", "mysql://admin:s3cret-pw@127.0.0.1/db");
    assertOneLineError(badScheme, /--to must be a postgres:\/\/ or postgresql:\/\/ URL, not mysql:\/\/…$/);
    assert.equal(badScheme.status, 2);
    assert.ok(!badScheme.stderr.includes("s3cret-pw"));

    const withPassword = migrate("--from", `sqlite:${source}`, "--to", "postgres://admin:s3cret-pw@127.0.0.1/db");
    assertOneLineError(withPassword, /--to must not carry a password .*PGPASSWORD/);
    assert.equal(withPassword.status, 2);
    assert.ok(!withPassword.stderr.includes("s3cret-pw"));

    const port = await freePort();
    const unreachable = migrateWith({ GATEWARDEN_STORE: `postgres://admin:s3cret-pw@127.0.0.1:${port}/db` }, "--from", `sqlite:${source}`);
    assertOneLineError(unreachable, new RegExp(`cannot connect to the PostgreSQL store postgres://admin:\\*\\*\\*@127\\.0\\.0\\.1:${port}/db`));
    assert.ok(!unreachable.stderr.includes("s3cret-pw"));
  });

  it("refuses a --from that is not a SQLite path, or names no database, in one line", async () => {
    const url = await pgServer().createDatabase();
    assertOneLineError(migrate("--from", url, "--to", url), /--from must be sqlite:PATH or the path of the gateway's database file, not postgres:\/\/…$/);
    const missing = join(await sqliteState(), "..", "nothing-here.sqlite");
    assertOneLineError(migrate("--from", `sqlite:${missing}`, "--to", url), /no SQLite database at \S+nothing-here\.sqlite$/);
    assert.equal((await postgresContents(url)).pairedDevices.length, 0);
  });

  it("a gateway on the migrated PostgreSQL store admits a device paired on SQLite before, with the same shared token", async () => {
    const ledger = new SecretLedger();
    const device = createTestDevice();
    let deviceToken: string;
    const stateDir = await mkdtemp(join(tmpdir(), "gatewarden-migrate-gw-"));
    dirs.push(stateDir);
    const sqliteGw = await startGatewayProcess({ stateDir, env: { GATEWARDEN_TOKEN: "migrate-test-shared-token-0123456789" } });
    try {
      deviceToken = (await pairDevice(sqliteGw, device, ledger, { scopes: ["operator.read"] })).deviceToken;
    } finally {
      await sqliteGw.stop();
    }
    const url = await pgServer().createDatabase();
    const r = migrate("--from", join(stateDir, "gatewarden.sqlite"), "--to", url);
    assert.equal(r.status, 0, r.stderr);
    const pgState = await mkdtemp(join(tmpdir(), "gatewarden-migrate-pg-"));
    dirs.push(pgState);
    const pgGw = await startGatewayProcess({ stateDir: pgState, env: { GATEWARDEN_TOKEN: "migrate-test-shared-token-0123456789", GATEWARDEN_STORE: url } });
    try {
      const { client, reply } = await openConnect(pgGw, { device, scopes: ["operator.read"], auth: { deviceToken } }, ledger);
      assert.deepEqual(helloAuth(reply).scopes, ["operator.read"]);
      client.close();
      const listed = pgGw.cli(["devices", "list", "--json"]);
      assert.equal(listed.code, 0, listed.stderr);
      assert.ok(listed.stdout.includes(device.id), "the admin CLI reads the PostgreSQL store too");
    } finally {
      await pgGw.stop();
    }
  });

  it("store backup and restore on a PostgreSQL store say, in one line, to use PostgreSQL's tools, without the password", () => {
    const env = { ...process.env, GATEWARDEN_STORE: "postgres://gw:s3cret-pw@127.0.0.1:1/db" };
    for (const [args, hint] of [
      [["store", "backup", join(unusedStateDir, "copy.bak")], /back it up with pg_dump/],
      [["store", "restore", join(unusedStateDir, "copy.bak")], /restore it with pg_restore/],
    ] as const) {
      const r = spawnSync(process.execPath, [BIN, "--state-dir", unusedStateDir, ...args], { encoding: "utf8", timeout: 30_000, env });
      assert.equal(r.status, 2);
      assertOneLineError({ status: r.status, stdout: r.stdout, stderr: r.stderr }, hint);
      assert.ok(!r.stderr.includes("s3cret-pw"));
    }
  });
});
