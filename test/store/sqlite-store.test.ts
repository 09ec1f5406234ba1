import assert from "node:assert/strict";
import { chmod, mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { Database } from "../../src/store/sqlite-driver.js";
import type { PairedDeviceRecord } from "../../src/store/records.js";
import { StoreUnavailableError } from "../../src/store/errors.js";
import { SQLITE_SCHEMA_VERSION, openSqliteReader, openSqliteStore } from "../../src/store/sqlite-store.js";
import type { Store } from "../../src/store/store.js";
import { runStoreContract } from "./store-contract.js";

const tempDirs: string[] = [];

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "gatewarden-sqlite-store-"));
  tempDirs.push(dir);
  return dir;
}

async function tempDbPath(): Promise<string> {
  return join(await tempDir(), "store.db");
}

after(async () => {
  await Promise.all(tempDirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

async function mode(path: string): Promise<number> {
  return (await stat(path)).mode & 0o777;
}

function device(deviceId: string, approvedAtMs: number): PairedDeviceRecord {
  return {
    deviceId,
    publicKey: `pk-${deviceId}`,
    displayName: `Device ${deviceId}`,
    roles: ["operator", "node"],
    approvedScopes: ["operator.read", "node.camera"],
    tokens: {
      operator: { role: "operator", tokenHash: `${deviceId}-op`, scopes: ["operator.read"], createdAtMs: 1, lastUsedAtMs: 5 },
      node: { role: "node", tokenHash: `${deviceId}-node`, scopes: ["node.camera"], createdAtMs: 2, revokedAtMs: 9 },
    },
    createdAtMs: 1,
    approvedAtMs,
  };
}

/** Everything a store holds, read through its public interface. */
async function snapshot(store: Store) {
  return {
    paired: await store.listPairedDevices(),
    pending: await store.listPendingRequests(),
    backends: await store.listBackends(),
    bootstrap: await store.getBootstrapByTokenHash("bt-hash"),
    setting: await store.getSetting("auth.sharedTokenHash"),
    changes: await store.changesSince(0, 1_000),
    latestChangeId: await store.latestChangeId(),
  };
}

function migrationRows(path: string): unknown[] {
  const db = new Database(path, { readonly: true });
  try {
    return db.prepare("SELECT version, applied_at_ms FROM schema_migrations ORDER BY version").all();
  } finally {
    db.close();
  }
}

runStoreContract("sqlite store", async () => openSqliteStore({ path: await tempDbPath() }));

describe("sqlite store (file, schema and multi-process behaviour)", () => {
  it("creates a missing parent directory with mode 0700 and the database, -wal and -shm files with mode 0600, whatever the umask", async () => {
    const path = join(await tempDir(), "nested", "state", "store.db");
    const previousUmask = process.umask(0o000);
    let store: Store;
    try {
      store = openSqliteStore({ path });
    } finally {
      process.umask(previousUmask);
    }
    try {
      await store.transact((tx) => tx.setSetting("k", "v"));
      assert.equal(await mode(join(path, "..")), 0o700);
      assert.equal(await mode(path), 0o600);
      assert.equal(await mode(`${path}-wal`), 0o600);
      assert.equal(await mode(`${path}-shm`), 0o600);
    } finally {
      await store.close();
    }
  });

  it("tightens an existing database file with a looser mode to 0600", async () => {
    const path = await tempDbPath();
    await writeFile(path, "");
    await chmod(path, 0o644);
    const store = openSqliteStore({ path });
    try {
      assert.equal(await mode(path), 0o600);
    } finally {
      await store.close();
    }
  });

  it("uses the WAL journal mode", async () => {
    const path = await tempDbPath();
    await openSqliteStore({ path }).close();
    const db = new Database(path, { readonly: true });
    try {
      assert.equal(db.pragma("journal_mode", { simple: true }), "wal");
    } finally {
      db.close();
    }
  });

  it("deleting a device deletes its device_tokens rows (foreign keys on, ON DELETE CASCADE)", async () => {
    // Not observable through the Store interface (a re-put replaces tokens
    // anyway), so look at the table itself: no orphaned token hashes remain.
    const path = await tempDbPath();
    const store = openSqliteStore({ path });
    try {
      await store.transact(async (tx) => {
        await tx.putPairedDevice(device("dev-1", 1));
        await tx.putPairedDevice(device("dev-2", 2));
        await tx.deletePairedDevice("dev-1");
      });
    } finally {
      await store.close();
    }
    const db = new Database(path, { readonly: true });
    try {
      const rows = db.prepare("SELECT device_id, role FROM device_tokens ORDER BY role").all();
      assert.deepEqual(rows, [
        { device_id: "dev-2", role: "node" },
        { device_id: "dev-2", role: "operator" },
      ]);
    } finally {
      db.close();
    }
  });

  it("a restart keeps every pairing and token, and all other records", async () => {
    const path = await tempDbPath();
    const first = openSqliteStore({ path });
    await first.transact(async (tx) => {
      await tx.putPairedDevice(device("dev-1", 100));
      await tx.putPairedDevice(device("dev-2", 200));
      await tx.putPendingRequest({
        requestId: "req-1",
        deviceId: "dev-3",
        publicKey: "pk-dev-3",
        role: "node",
        roles: ["node"],
        scopes: ["node.camera"],
        reason: "not-paired",
        isRepair: false,
        requesterIp: "10.0.0.1",
        ts: 10,
        expiresAtMs: 1_000,
      });
      await tx.putBackend({ id: "be-1", name: "ci", secretHash: "be-hash", scopes: ["operator.read"], createdAtMs: 3 });
      await tx.putBootstrap({
        id: "bt-1",
        tokenHash: "bt-hash",
        roles: ["node"],
        scopes: [],
        createdAtMs: 4,
        expiresAtMs: 5_000,
      });
      await tx.setSetting("auth.sharedTokenHash", "shared-hash");
      await tx.appendChange({ kind: "device.removed", deviceId: "dev-0" }, 6);
    });
    const before = await snapshot(first);
    await first.close();

    const second = openSqliteStore({ path });
    try {
      const afterRestart = await snapshot(second);
      assert.deepEqual(afterRestart, before);
      assert.deepEqual(afterRestart.paired, [device("dev-2", 200), device("dev-1", 100)]);
    } finally {
      await second.close();
    }
  });

  it("records every migration in schema_migrations, and reopening applies none again", async () => {
    const path = await tempDbPath();
    await openSqliteStore({ path }).close();
    const rows = migrationRows(path);
    assert.deepEqual(
      rows.map((row) => (row as { version: number }).version),
      Array.from({ length: SQLITE_SCHEMA_VERSION }, (_, i) => i + 1),
    );

    await openSqliteStore({ path }).close();
    assert.deepEqual(migrationRows(path), rows);
  });

  it("refuses to open a database whose schema version is newer than this build knows, with a clear error", async () => {
    const path = await tempDbPath();
    const store = openSqliteStore({ path });
    await store.transact((tx) => tx.setSetting("k", "kept"));
    await store.close();
    const newer = SQLITE_SCHEMA_VERSION + 1;
    const raw = new Database(path);
    raw.prepare("INSERT INTO schema_migrations (version, applied_at_ms) VALUES (?, ?)").run(newer, 0);
    raw.close();

    assert.throws(
      () => openSqliteStore({ path }),
      (err: unknown) =>
        err instanceof Error &&
        err.message.includes(`schema version ${newer}`) &&
        err.message.includes(`newer than version ${SQLITE_SCHEMA_VERSION}`) &&
        err.message.includes(path.split("/").pop() ?? path),
    );

    const check = new Database(path, { readonly: true });
    try {
      assert.deepEqual(check.prepare("SELECT value FROM settings WHERE key = 'k'").get(), { value: "kept" });
    } finally {
      check.close();
    }
  });

  it("two Store instances on one file (CLI and server) see each other's committed writes", async () => {
    const path = await tempDbPath();
    const server = openSqliteStore({ path });
    const cli = openSqliteStore({ path });
    try {
      await cli.transact(async (tx) => {
        await tx.putPairedDevice(device("dev-1", 100));
        await tx.appendChange({ kind: "device.token.changed", deviceId: "dev-1", role: "node", change: "revoked" }, 7);
      });
      assert.deepEqual(await server.getPairedDevice("dev-1"), device("dev-1", 100));
      const [change] = await server.changesSince(0, 10);
      assert.equal(change?.kind, "device.token.changed");

      await server.transact((tx) => tx.deletePairedDevice("dev-1"));
      assert.equal(await cli.getPairedDevice("dev-1"), undefined);
    } finally {
      await Promise.all([server.close(), cli.close()]);
    }
  });

  it("a commit by a second Store on the same file (as the admin CLI makes) moves the first store's commitMarker", async () => {
    const path = await tempDbPath();
    const server = openSqliteStore({ path });
    const cli = openSqliteStore({ path });
    try {
      const before = await server.commitMarker();
      assert.equal(await server.commitMarker(), before, "nothing committed yet: the marker stays put");
      await cli.transact(async (tx) => {
        await tx.putPairedDevice(device("dev-1", 100));
        await tx.appendChange({ kind: "device.removed", deviceId: "dev-0" }, 7);
      });
      const afterFirst = await server.commitMarker();
      assert.notEqual(afterFirst, before, "the other store's commit moved it");
      await cli.transact((tx) => tx.deletePairedDevice("dev-1"));
      assert.notEqual(await server.commitMarker(), afterFirst, "and every later commit moves it again");
    } finally {
      await Promise.all([server.close(), cli.close()]);
    }
  });

  it("a commit made outside any Store, on a plain SQLite connection to the file, moves commitMarker", async () => {
    const path = await tempDbPath();
    const store = openSqliteStore({ path });
    const otherProcess = new Database(path);
    try {
      const before = await store.commitMarker();
      otherProcess.prepare("INSERT INTO settings (key, value) VALUES ('k', 'v')").run();
      assert.notEqual(await store.commitMarker(), before);
      assert.equal(await store.getSetting("k"), "v");
    } finally {
      otherProcess.close();
      await store.close();
    }
  });

  it("commitMarker rejects after close, like every other read", async () => {
    const store = openSqliteStore({ path: await tempDbPath() });
    await store.close();
    await assert.rejects(store.commitMarker());
  });

  it("two Store instances on one file in one process serialize their transactions (counter ends at 2)", async () => {
    const path = await tempDbPath();
    const a = openSqliteStore({ path });
    const b = openSqliteStore({ path });
    try {
      const increment = (store: Store): Promise<void> =>
        store.transact(async (tx) => {
          const value = Number((await tx.getSetting("counter")) ?? "0");
          await new Promise((resolve) => setTimeout(resolve, 5));
          await tx.setSetting("counter", String(value + 1));
        });
      await Promise.all([increment(a), increment(b)]);
      assert.equal(await a.getSetting("counter"), "2");
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it("a transaction waits for another process's write lock by retrying, never blocking the event loop long, then fails retryably without running fn", async () => {
    const path = await tempDbPath();
    const store = openSqliteStore({ path, lockWaitMs: 600 });
    const otherProcess = new Database(path);
    try {
      otherProcess.exec("BEGIN IMMEDIATE");
      let ran = false;
      // The longest gap between ticks of a 5 ms timer while the transaction waits.
      let longestStall = 0;
      let last = Date.now();
      const ticker = setInterval(() => {
        const now = Date.now();
        longestStall = Math.max(longestStall, now - last);
        last = now;
      }, 5);
      const started = Date.now();
      await assert.rejects(
        store.transact(async () => {
          ran = true;
        }),
        (e: unknown) => e instanceof StoreUnavailableError && e.retryAfterMs > 0,
      );
      clearInterval(ticker);
      assert.ok(Date.now() - started >= 500, "waited for the lock");
      assert.ok(longestStall < 250, `the event loop stalled ${longestStall} ms (the old busy wait held it for the whole timeout)`);
      assert.equal(ran, false);

      otherProcess.exec("COMMIT");
      await store.transact((tx) => tx.setSetting("k", "v"));
      assert.equal(await store.getSetting("k"), "v");
    } finally {
      otherProcess.close();
      await store.close();
    }
  });

  it("a store opens and serves reads while another process holds the write lock (no migration to run)", async () => {
    const path = await tempDbPath();
    const first = openSqliteStore({ path });
    await first.transact((tx) => tx.setSetting("k", "v"));
    await first.close();
    const otherProcess = new Database(path);
    try {
      otherProcess.exec("BEGIN IMMEDIATE");
      const started = Date.now();
      const store = openSqliteStore({ path });
      assert.equal(await store.getSetting("k"), "v");
      assert.ok(Date.now() - started < 1000);
      await store.close();
    } finally {
      otherProcess.close();
    }
  });

  it("a reader's consistentRead sees one committed state throughout, whatever another connection commits meanwhile", async () => {
    const path = await tempDbPath();
    const store = openSqliteStore({ path });
    await store.transact((tx) => tx.putPairedDevice(device("dev-a", 1)));
    const reader = openSqliteReader(path);
    try {
      const seen = await reader.consistentRead(async (r) => {
        const first = await r.listPairedDevices();
        await store.transact((tx) => tx.putPairedDevice(device("dev-b", 2)));
        return { first, second: await r.listPairedDevices() };
      });
      assert.deepEqual(seen.second, seen.first);
      assert.deepEqual(seen.first.map((d) => d.deviceId), ["dev-a"]);
      assert.deepEqual((await reader.listPairedDevices()).map((d) => d.deviceId), ["dev-b", "dev-a"], "after it, reads see the new commit");
    } finally {
      reader.close();
      await store.close();
    }
  });
});
