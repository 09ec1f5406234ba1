import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { StoreUnavailableError } from "../../src/store/errors.js";
import { POSTGRES_SCHEMA_VERSION, openPostgresStore, redactPostgresUrl } from "../../src/store/postgres-store.js";
import type { StoreNotice } from "../../src/store/store.js";
import { verifyAuditLog } from "../../src/store/audit-verify.js";
import { startPostgres, type PostgresServer } from "../support/postgres.js";
import { runStoreContract } from "./store-contract.js";

// The PostgreSQL store against a real server (test/support/postgres.ts): the
// same contract as SQLite and memory, then what only a shared store does.

let server: PostgresServer | undefined;
before(async () => {
  server = await startPostgres();
});
after(async () => {
  await server?.destroy();
});

function pgServer(): PostgresServer {
  if (!server) throw new Error("PostgreSQL did not start");
  return server;
}

runStoreContract("postgres store", async () => openPostgresStore({ url: await pgServer().createDatabase() }));

function waitFor(notices: StoreNotice[], kind: StoreNotice["kind"], ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const check = (): void => {
      if (notices.some((n) => n.kind === kind)) return resolve();
      if (Date.now() > deadline) return reject(new Error(`no "${kind}" notice within ${ms} ms (got ${JSON.stringify(notices)})`));
      setTimeout(check, 10);
    };
    check();
  });
}

describe("postgres store (schema, notices, shared lockouts, outages)", () => {
  it("two instances opening a fresh database at once apply the migration exactly once", async () => {
    const url = await pgServer().createDatabase();
    const stores = await Promise.all([openPostgresStore({ url }), openPostgresStore({ url }), openPostgresStore({ url })]);
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      const rows = (await c.query<{ version: number }>("SELECT version FROM schema_migrations ORDER BY version")).rows;
      assert.deepEqual(rows.map((r) => r.version), Array.from({ length: POSTGRES_SCHEMA_VERSION }, (_v, i) => i + 1));
    } finally {
      await c.end();
      await Promise.all(stores.map((s) => s.close()));
    }
  });

  it("a commit by one instance is pushed to another instance's listener, which also sees the data", async () => {
    const url = await pgServer().createDatabase();
    const a = await openPostgresStore({ url });
    const b = await openPostgresStore({ url, listen: true });
    try {
      const notices: StoreNotice[] = [];
      b.notices?.subscribe((n) => notices.push(n));
      assert.equal(b.notices?.live(), true);
      const before = await b.commitMarker();
      await a.transact(async (tx) => tx.setSetting("k", "v"));
      await waitFor(notices, "commit");
      assert.equal(await b.getSetting("k"), "v");
      assert.notEqual(await b.commitMarker(), before);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it("audit entries appended by two instances at once form one unbroken chain, and are not announced to listeners", async () => {
    const url = await pgServer().createDatabase();
    const a = await openPostgresStore({ url });
    const b = await openPostgresStore({ url, listen: true });
    try {
      const notices: StoreNotice[] = [];
      b.notices?.subscribe((n) => notices.push(n));
      const marker = await b.commitMarker();
      const batch = (who: string, i: number) => Array.from({ length: 5 }, (_v, j) => ({ kind: "t.n", actor: who, fields: { i, j } }));
      await Promise.all(Array.from({ length: 10 }, (_v, i) => (i % 2 === 0 ? a : b).appendAudit(batch(i % 2 === 0 ? "a" : "b", i))));
      const rows = await a.auditRows(0, 1000);
      assert.deepEqual(rows.map((r) => r.seq), Array.from({ length: 50 }, (_v, i) => i + 1));
      const verdict = await verifyAuditLog(b, () => true);
      assert.ok(verdict.ok && verdict.checked === 50, JSON.stringify(verdict));
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(notices.filter((n) => n.kind === "commit").length, 0, "no commit notice for audit-only writes");
      assert.equal(await b.commitMarker(), marker);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it("a transaction that changes nothing (housekeeping with nothing to clear) is not announced, so no instance drops its cache for it", async () => {
    const url = await pgServer().createDatabase();
    const a = await openPostgresStore({ url });
    const b = await openPostgresStore({ url, listen: true });
    try {
      const notices: StoreNotice[] = [];
      b.notices?.subscribe((n) => notices.push(n));
      const marker = await b.commitMarker();
      await a.transact(async (tx) => {
        await tx.deleteExpiredPending(1_000);
        await tx.deleteStaleBootstrap(1_000);
        await tx.pruneChanges(1_000);
      });
      await a.transact(async (tx) => tx.setSetting("k", "v"));
      await waitFor(notices, "commit");
      assert.equal(notices.filter((n) => n.kind === "commit").length, 1, "only the transaction that wrote is announced");
      assert.equal(await b.commitMarker(), marker + 1);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it("failures counted on two instances share one budget, and the lockout is pushed to every listener", async () => {
    const url = await pgServer().createDatabase();
    const a = await openPostgresStore({ url, listen: true });
    const b = await openPostgresStore({ url, listen: true });
    try {
      const seen: StoreNotice[] = [];
      b.notices?.subscribe((n) => seen.push(n));
      const rule = { windowMs: 60_000, maxFailures: 4, lockoutMs: 300_000 };
      const results = [];
      for (let i = 0; i < 4; i++) results.push(await (i % 2 === 0 ? a : b).lockouts?.recordFailure("ip:192.0.2.1", 1_000 + i, rule));
      assert.deepEqual(results, [undefined, undefined, undefined, 1_003 + 300_000]);
      await waitFor(seen, "lockout");
      assert.deepEqual(seen.find((n) => n.kind === "lockout"), { kind: "lockout", key: "ip:192.0.2.1", untilMs: 301_003 });
      assert.deepEqual(await a.lockouts?.activeLockouts(2_000), [{ key: "ip:192.0.2.1", untilMs: 301_003 }]);
      assert.deepEqual(await a.lockouts?.activeLockouts(301_003), []);
      // Another key has its own budget; failures older than the window do not count.
      assert.equal(await a.lockouts?.recordFailure("ip:192.0.2.2", 1_000, rule), undefined);
      for (let i = 0; i < 3; i++) assert.equal(await b.lockouts?.recordFailure("ip:192.0.2.2", 100_000 + i, rule), undefined);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it("a transaction waits for the write lock held by another instance, then fails retryably without running fn", async () => {
    const url = await pgServer().createDatabase();
    const store = await openPostgresStore({ url, lockWaitMs: 300 });
    const holder = new pg.Client({ connectionString: url });
    await holder.connect();
    try {
      await holder.query("BEGIN");
      await holder.query("SELECT pg_advisory_xact_lock($1)", [0x6777646e]);
      let ran = false;
      const t0 = Date.now();
      await assert.rejects(
        store.transact(async () => {
          ran = true;
        }),
        (e: unknown) => e instanceof StoreUnavailableError && /locked by another writer/.test(e.message),
      );
      assert.equal(ran, false);
      assert.ok(Date.now() - t0 < 3000);
      await holder.query("ROLLBACK");
      await store.transact(async (tx) => tx.setSetting("after", "1"));
      assert.equal(await store.getSetting("after"), "1");
    } finally {
      await holder.end();
      await store.close();
    }
  });

  it("when the server stops, reads and writes fail retryably, the listener says interrupted, and all resume when it starts again", async () => {
    // A server of its own: stopping the shared one would break the other cases.
    const own = await startPostgres();
    try {
      const url = await own.createDatabase();
      const store = await openPostgresStore({ url, listen: true, connectTimeoutMs: 500, pingMs: 200 });
      try {
        const notices: StoreNotice[] = [];
        store.notices?.subscribe((n) => notices.push(n));
        await own.stop();
        await waitFor(notices, "interrupted");
        assert.equal(store.notices?.live(), false);
        await assert.rejects(store.getSetting("x"), StoreUnavailableError);
        await assert.rejects(store.transact(async (tx) => tx.setSetting("x", "1")), StoreUnavailableError);
        await own.start();
        await waitFor(notices, "resumed", 10_000);
        assert.equal(store.notices?.live(), true);
        await store.transact(async (tx) => tx.setSetting("x", "1"));
        assert.equal(await store.getSetting("x"), "1");
      } finally {
        await store.close();
      }
    } finally {
      await own.destroy();
    }
  });

  it("an unreachable server fails the open in one line naming the database without its password", async () => {
    const url = `postgres://gw:s3cret-pass@127.0.0.1:1/none`;
    await assert.rejects(openPostgresStore({ url, connectTimeoutMs: 500 }), (e: unknown) => {
      assert.ok(e instanceof Error);
      assert.match(e.message, /^cannot connect to the PostgreSQL store postgres:\/\/gw:\*\*\*@127\.0\.0\.1:1\/none: /);
      assert.doesNotMatch(e.message, /s3cret/);
      assert.doesNotMatch(e.message, /\n/);
      return true;
    });
    assert.equal(redactPostgresUrl("postgres://u@h/db"), "postgres://u@h/db");
  });
});
