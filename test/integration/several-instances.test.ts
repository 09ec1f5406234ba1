import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { createTestDevice } from "../support/device.js";
import { startGatewayProcess, viaProxy, type GatewayProcess } from "../support/gateway-process.js";
import { addBackend, delay, detailCode, eventually, helloAuth, openConnect, pairDevice, SecretLedger } from "../support/adversarial.js";
import type { ConnectOptions, TestClient } from "../support/protocol-client.js";
import { startPostgres, type PostgresServer } from "../support/postgres.js";

// Several gateway processes on one real PostgreSQL (test/support/postgres.ts).
// The change poll is set to ten minutes: whatever one instance learns of
// another's commits here comes from the database's own notifications.

const TOKEN = "several-instances-shared-token-0123456789";
const NO_POLL = { changePollMs: 600_000 };

let server: PostgresServer | undefined;
const gateways: GatewayProcess[] = [];

before(async () => {
  server = await startPostgres();
});
after(async () => {
  await Promise.all(gateways.map((g) => g.stop()));
  await server?.destroy();
});

function pgServer(): PostgresServer {
  if (!server) throw new Error("PostgreSQL did not start");
  return server;
}

async function instance(url: string, config: Record<string, unknown> = {}): Promise<GatewayProcess> {
  const gw = await startGatewayProcess({ env: { GATEWARDEN_TOKEN: TOKEN, GATEWARDEN_STORE: url }, config: { ...NO_POLL, ...config } });
  gateways.push(gw);
  return gw;
}

async function session(gw: GatewayProcess, opts: ConnectOptions, ledger: SecretLedger, from?: string): Promise<TestClient> {
  const { client, reply } = await openConnect(gw, opts, ledger, from ? viaProxy(from) : {});
  assert.equal(reply.ok, true, JSON.stringify(reply.error));
  return client;
}

/** A backend credential that may approve pairings, and a session of it on `gw`. */
function approver(gw: GatewayProcess, secret: string, ledger: SecretLedger): Promise<TestClient> {
  return session(gw, { scopes: ["operator.pairing", "operator.admin"], auth: { token: secret } }, ledger);
}

/** Two instances on a fresh database, an approver credential, and its session on A. */
async function approverOnTwoInstances() {
  const url = await pgServer().createDatabase();
  const a = await instance(url);
  const b = await instance(url);
  const ledger = new SecretLedger();
  const admin = addBackend(a, "approver", ["operator.pairing", "operator.admin"], ledger);
  const opsA = await approver(a, admin, ledger);
  return { url, a, b, ledger, admin, opsA };
}

/** Milliseconds until `client` is closed, with its close code. */
async function closedWithin(client: TestClient, ms: number): Promise<{ code: number; reason: string }> {
  return Promise.race([
    client.closed,
    delay(ms).then(() => {
      throw new Error(`the session was still open ${ms} ms later`);
    }),
  ]);
}

describe("several instances on one PostgreSQL", () => {
  it("a pairing approved on A admits the device on B, and a revocation on A closes its session on B at once and refuses its reconnect there", async () => {
    const url = await pgServer().createDatabase();
    const a = await instance(url);
    const b = await instance(url);
    const ledger = new SecretLedger();
    const device = createTestDevice();
    const { deviceToken } = await pairDevice(a, device, ledger, { scopes: ["operator.read"] });
    const asDevice: ConnectOptions = { device, scopes: ["operator.read"], auth: { deviceToken } };
    // Admitted on B (whose cache now holds the record), twice.
    const live = await session(b, asDevice, ledger);
    (await session(b, asDevice, ledger)).close();
    const revoked = a.cli(["devices", "revoke", "--device", device.id, "--role", "operator"]);
    assert.equal(revoked.code, 0, revoked.stderr);
    const closed = await closedWithin(live, 2000);
    assert.equal(closed.code, 4001);
    assert.equal(closed.reason, "device token revoked");
    const again = await openConnect(b, asDevice, ledger);
    assert.equal(again.reply.ok, false, "the revoked token is refused on B, not served from B's memory");
    assert.equal(detailCode(again.reply), "AUTH_DEVICE_TOKEN_MISMATCH");
  });

  it("rotating a token through a session on A, removing a device and revoking a backend on A each close the affected sessions on B", async () => {
    const url = await pgServer().createDatabase();
    const a = await instance(url);
    const b = await instance(url);
    const ledger = new SecretLedger();
    const admin = addBackend(a, "ops", ["operator.admin", "operator.pairing"], ledger);
    const service = addBackend(a, "service", ["operator.read"], ledger);
    const one = createTestDevice();
    const two = createTestDevice();
    const t1 = (await pairDevice(a, one, ledger, { scopes: ["operator.read"] })).deviceToken;
    const t2 = (await pairDevice(a, two, ledger, { scopes: ["operator.read"] })).deviceToken;
    const s1 = await session(b, { device: one, scopes: ["operator.read"], auth: { deviceToken: t1 } }, ledger);
    const s2 = await session(b, { device: two, scopes: ["operator.read"], auth: { deviceToken: t2 } }, ledger);
    const s3 = await session(b, { scopes: ["operator.read"], auth: { token: service } }, ledger);
    const bystander = await session(b, { scopes: ["operator.read"], auth: { token: admin } }, ledger);

    const ops = await session(a, { scopes: ["operator.admin", "operator.pairing"], auth: { token: admin } }, ledger);
    const rotated = await ops.request("device.token.rotate", { deviceId: one.id, role: "operator" });
    assert.equal(rotated.ok, true, JSON.stringify(rotated.error));
    ledger.add((rotated.payload as { token: string }).token);
    assert.deepEqual(await closedWithin(s1, 2000), { code: 4001, reason: "device token rotated" });

    const removed = a.cli(["devices", "remove", two.id]);
    assert.equal(removed.code, 0, removed.stderr);
    assert.deepEqual(await closedWithin(s2, 2000), { code: 4001, reason: "device removed" });

    const backendRevoked = a.cli(["backends", "revoke", "service"]);
    assert.equal(backendRevoked.code, 0, backendRevoked.stderr);
    assert.deepEqual(await closedWithin(s3, 2000), { code: 4001, reason: "backend revoked" });

    // Only what was revoked: the admin backend's session on B is still served.
    assert.equal((await bystander.request("status", {})).ok, true);
    bystander.close();
    ops.close();
  });

  it("two operators approving the same request on two instances at once: one wins, one pairing and one token set", async () => {
    const { a, b, ledger, admin, opsA } = await approverOnTwoInstances();
    const opsB = await approver(b, admin, ledger);
    for (let round = 0; round < 5; round++) {
      const device = createTestDevice();
      const first = await openConnect(a, { device, scopes: ["operator.read"], auth: { token: TOKEN } }, ledger);
      assert.equal(detailCode(first.reply), "PAIRING_REQUIRED");
      const requestId = first.reply.error?.details?.requestId as string;
      const [ra, rb] = await Promise.all([opsA.request("device.pair.approve", { requestId }), opsB.request("device.pair.approve", { requestId })]);
      assert.deepEqual([ra.ok, rb.ok].sort(), [false, true], `round ${round}: exactly one approval wins (${JSON.stringify([ra.error, rb.error])})`);
      const loser = ra.ok ? rb : ra;
      assert.equal(detailCode(loser), "NOT_FOUND", JSON.stringify(loser.error));
      const listing = await opsB.request("device.pair.list", {});
      const { paired, pending } = listing.payload as { paired: { deviceId: string; tokens?: unknown[] }[]; pending: { requestId: string }[] };
      assert.equal(paired.filter((d) => d.deviceId === device.id).length, 1);
      assert.equal(pending.filter((p) => p.requestId === requestId).length, 0);
      // The device gets its token on B, and the token is the one in the store.
      const second = await openConnect(b, { device, scopes: ["operator.read"], auth: { token: TOKEN } }, ledger);
      const token = helloAuth(second.reply).deviceToken;
      assert.ok(token);
      ledger.add(token);
      second.client.close();
      (await session(a, { device, scopes: ["operator.read"], auth: { deviceToken: token } }, ledger)).close();
    }
    opsA.close();
    opsB.close();
  });

  it("failed guesses spread over two instances share one budget: the lockout holds on both", async () => {
    const url = await pgServer().createDatabase();
    const rateLimit = { maxFailures: 4, windowMs: 60_000, lockoutMs: 60_000 };
    const a = await instance(url, { rateLimit });
    const b = await instance(url, { rateLimit });
    const ledger = new SecretLedger();
    const attacker = "203.0.113.77";
    const codes: unknown[] = [];
    for (let i = 0; i < 4; i++) {
      const gw = i % 2 === 0 ? a : b;
      const r = await openConnect(gw, { auth: { token: `wrong-guess-${i}-${"x".repeat(20)}` } }, ledger, viaProxy(attacker));
      codes.push(detailCode(r.reply));
      await r.client.closed;
    }
    assert.deepEqual(codes, Array(4).fill("AUTH_TOKEN_MISMATCH"));
    // Two on each instance: neither reached 4 alone; together they did. Once the
    // lockout is committed, even the right token is refused, on both instances.
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    try {
      let lockedInDb = false;
      for (let i = 0; i < 100 && !lockedInDb; i++) {
        lockedInDb = (await db.query("SELECT 1 FROM auth_lockouts WHERE key = $1", [`ip:${attacker}`])).rowCount === 1;
        if (!lockedInDb) await delay(20);
      }
      assert.ok(lockedInDb, "the fourth failure locked the address out in the shared store");
    } finally {
      await db.end();
    }
    await delay(100); // the notice reaches the other instance
    for (const gw of [a, b]) {
      const r = await openConnect(gw, { auth: { token: TOKEN } }, ledger, viaProxy(attacker));
      assert.equal(detailCode(r.reply), "AUTH_RATE_LIMITED");
      r.client.close();
    }
    // Another address is not affected.
    (await session(b, { auth: { token: TOKEN } }, ledger, "203.0.113.78")).close();
  });

  it("an instance killed (kill -9) in the middle of an approval leaves the request pending and nothing half-written; another instance then approves it", async () => {
    const { url, a, b, ledger, admin, opsA } = await approverOnTwoInstances();
    const device = createTestDevice();
    const first = await openConnect(a, { device, scopes: ["operator.read"], auth: { token: TOKEN } }, ledger);
    assert.equal(detailCode(first.reply), "PAIRING_REQUIRED");
    const requestId = first.reply.error?.details?.requestId as string;

    // The change feed is written last in an approval: holding its table stops A's
    // transaction after it has written the pairing and deleted the request.
    const locker = new pg.Client({ connectionString: url });
    // A second connection watches: pg_stat_activity is a snapshot per transaction, and the locker's stays open.
    const watcher = new pg.Client({ connectionString: url });
    await Promise.all([locker.connect(), watcher.connect()]);
    try {
      await locker.query("BEGIN");
      await locker.query("LOCK TABLE changes IN ACCESS EXCLUSIVE MODE");
      void opsA.request("device.pair.approve", { requestId }).catch(() => undefined);
      // Any instance reading the change feed waits on the locked table too, so the
      // approval is the waiting connection that has already written the pairing.
      let written = new Set<string>();
      for (let i = 0; i < 300 && !written.has("paired_devices"); i++) {
        if (i > 0) await delay(10);
        const r = await watcher.query<{ pid: number; rel: string }>(
          `SELECT l.pid, l.relation::regclass::text AS rel FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
            WHERE a.application_name = 'gatewarden' AND a.wait_event_type = 'Lock' AND a.state = 'active'
              AND l.granted AND l.mode = 'RowExclusiveLock' AND l.relation IS NOT NULL`,
        );
        const approval = r.rows.find((row) => row.rel === "paired_devices")?.pid;
        written = new Set(r.rows.filter((row) => row.pid === approval).map((row) => row.rel));
      }
      assert.ok(written.has("paired_devices") && written.has("pending_requests"), `A had written the pairing and the request's deletion: ${[...written].join(", ")}`);
      a.proc.kill("SIGKILL");
      await new Promise((r) => a.proc.once("exit", r));
      await locker.query("ROLLBACK");
    } finally {
      await locker.end();
      await watcher.end();
    }

    const opsB = await approver(b, admin, ledger);
    const listing = (await opsB.request("device.pair.list", {})).payload as { paired: { deviceId: string }[]; pending: { requestId: string }[] };
    assert.deepEqual(listing.pending.map((p) => p.requestId), [requestId], "the request is still pending");
    assert.equal(listing.paired.some((p) => p.deviceId === device.id), false, "no half pairing");
    const approved = await opsB.request("device.pair.approve", { requestId });
    assert.equal(approved.ok, true, JSON.stringify(approved.error));
    const second = await openConnect(b, { device, scopes: ["operator.read"], auth: { token: TOKEN } }, ledger);
    assert.deepEqual(helloAuth(second.reply).scopes, ["operator.read"]);
    second.client.close();
    opsB.close();
  });

  it("when the database stops, an instance admits nobody (STORE_UNAVAILABLE, retryable), closes its sessions after the grace, and serves again by itself once the database is back", async () => {
    // A server of its own: stopping the shared one would break the other cases.
    const own = await startPostgres();
    try {
      const url = await own.createDatabase();
      const a = await instance(url, { store: { outageGraceMs: 1500 } });
      const ledger = new SecretLedger();
      const device = createTestDevice();
      const { deviceToken } = await pairDevice(a, device, ledger, { scopes: ["operator.read"] });
      const asDevice: ConnectOptions = { device, scopes: ["operator.read"], auth: { deviceToken } };
      const live = await session(a, asDevice, ledger);
      await own.stop();
      const stoppedAt = Date.now();
      const refused = await openConnect(a, asDevice, ledger);
      assert.equal(refused.reply.ok, false, "a paired device's reconnect is not decided from memory while the database is away");
      assert.equal(detailCode(refused.reply), "STORE_UNAVAILABLE");
      assert.equal(refused.reply.error?.retryable, true);
      assert.equal((await refused.client.closed).code, 1013);
      // Within the grace the session is kept; after it, closed (a revocation elsewhere could not reach it).
      const closed = await closedWithin(live, 10_000);
      assert.deepEqual(closed, { code: 1013, reason: "gateway state unavailable" });
      assert.ok(Date.now() - stoppedAt >= 1000, "not before the grace");
      await own.start();
      let back = false;
      for (let i = 0; i < 100 && !back; i++) {
        const r = await openConnect(a, asDevice, ledger);
        back = r.reply.ok === true;
        r.client.close();
        if (!back) await delay(100);
      }
      assert.ok(back, "the device is admitted again once the database is back");
      // Each said once (the log is written in batches, so it is read until the last one is there).
      const count = (event: string) => a.logLines().filter((l) => l.event === event).length;
      await eventually(() => count("store-resumed") === 1, "the recovery is logged");
      assert.deepEqual(["store-outage", "store-outage-sessions-closed", "store-resumed"].map(count), [1, 1, 1]);
    } finally {
      await own.destroy();
    }
  });
});

