import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import type { Role } from "../../src/protocol/enums.js";
import { cacheDeviceReads } from "../../src/store/device-read-cache.js";
import { createMemoryStore } from "../../src/store/memory-store.js";
import type { PairedDeviceRecord } from "../../src/store/records.js";
import { openSqliteStore } from "../../src/store/sqlite-store.js";
import type { Store, StoreWriter } from "../../src/store/store.js";
import { runStoreContract } from "./store-contract.js";

// cacheDeviceReads: paired-device reads served from memory, dropped by every
// transaction made through it (before its commit and again after), by
// invalidate(), and never kept when the read overlapped an invalidation.
// Checked against the real stores; the wrappers below only count or delay the
// underlying getPairedDevice, the way another caller of the store would see it.

// ---------------------------------------------------------------- fixtures

/** A paired device; `version` changes its operator token hash, so two versions differ. */
function device(deviceId: string, version = 1, overrides: Partial<PairedDeviceRecord> = {}): PairedDeviceRecord {
  return {
    deviceId,
    publicKey: `pk-${deviceId}`,
    roles: ["operator"],
    approvedScopes: ["operator.read"],
    tokens: { operator: { role: "operator", tokenHash: `${deviceId}-token-v${version}`, scopes: ["operator.read"], createdAtMs: version } },
    createdAtMs: 1_000,
    approvedAtMs: 1_000,
    ...overrides,
  };
}

function revoked(record: PairedDeviceRecord, role: Role, atMs: number): PairedDeviceRecord {
  const token = record.tokens[role];
  assert.ok(token, `the fixture has a ${role} token`);
  return { ...record, tokens: { ...record.tokens, [role]: { ...token, revokedAtMs: atMs } } };
}

const put = (store: Store, ...records: PairedDeviceRecord[]): Promise<void> =>
  store.transact(async (tx) => {
    for (const r of records) await tx.putPairedDevice(r);
  });

/** The real store, with every getPairedDevice that reaches it counted. */
function countingReads(base: Store): { store: Store; reads: string[] } {
  const reads: string[] = [];
  const store: Store = {
    ...base,
    async getPairedDevice(deviceId) {
      reads.push(deviceId);
      return base.getPairedDevice(deviceId);
    },
  };
  return { store, reads };
}

/**
 * The real store, whose next getPairedDevice reads its record at once but
 * hands it back only when the test says so: a read that is still in flight
 * while something else happens.
 */
function heldReads(base: Store): { store: Store; holdNextRead(): { readDone: Promise<void>; release(): void } } {
  let held: { readDone: () => void; released: Promise<void> } | undefined;
  const store: Store = {
    ...base,
    async getPairedDevice(deviceId) {
      const hold = held;
      held = undefined;
      const record = await base.getPairedDevice(deviceId);
      if (hold) {
        hold.readDone();
        await hold.released;
      }
      return record;
    },
  };
  return {
    store,
    holdNextRead() {
      let readDone!: () => void;
      let release!: () => void;
      const done = new Promise<void>((r) => (readDone = r));
      const released = new Promise<void>((r) => (release = r));
      held = { readDone, released };
      return { readDone: done, release };
    },
  };
}

/** The real store, with hooks right before and right after its commit (inside its transact). */
function commitHooks(base: Store): { store: Store; beforeCommit?: () => Promise<void>; afterCommit?: () => Promise<void> } {
  const hooks: { store: Store; beforeCommit?: () => Promise<void>; afterCommit?: () => Promise<void> } = {
    store: {
      ...base,
      async transact<T>(fn: (tx: StoreWriter) => Promise<T>): Promise<T> {
        const result = await base.transact(async (tx) => {
          const value = await fn(tx);
          await hooks.beforeCommit?.();
          return value;
        });
        await hooks.afterCommit?.();
        return result;
      },
    },
  };
  return hooks;
}

const tempDirs: string[] = [];

async function tempDbPath(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "gatewarden-device-cache-"));
  tempDirs.push(dir);
  return join(dir, "store.db");
}

after(async () => {
  await Promise.all(tempDirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

// ---------------------------------------------------------------- memory store

describe("cacheDeviceReads over the memory store", () => {
  describe("reads served from memory", () => {
    it("a paired device read again is served from memory: the store is read once and every read returns the stored record", async () => {
      const base = createMemoryStore();
      await put(base, device("dev-1"), device("dev-2"));
      const { store, reads } = countingReads(base);
      const cached = cacheDeviceReads(store);

      for (let i = 0; i < 3; i++) {
        assert.deepEqual(await cached.getPairedDevice("dev-1"), device("dev-1"));
        assert.deepEqual(await cached.getPairedDevice("dev-2"), device("dev-2"));
      }
      assert.deepEqual(reads, ["dev-1", "dev-2"]);
    });

    it("an unknown device id is read from the store every time, so a device paired later (even by another process) is seen at once", async () => {
      const base = createMemoryStore();
      const { store, reads } = countingReads(base);
      const cached = cacheDeviceReads(store);

      for (let i = 0; i < 3; i++) assert.equal(await cached.getPairedDevice("dev-new"), undefined);
      assert.equal(reads.length, 3, "no negative caching");

      await put(base, device("dev-new")); // not through the decorator, and no invalidate()
      assert.deepEqual(await cached.getPairedDevice("dev-new"), device("dev-new"));
    });

    it("unknown ids take no slot: with maxEntries 1, reading many unknown ids does not evict the cached device", async () => {
      const base = createMemoryStore();
      await put(base, device("dev-1"));
      const { store, reads } = countingReads(base);
      const cached = cacheDeviceReads(store, 1);

      await cached.getPairedDevice("dev-1");
      for (let i = 0; i < 20; i++) assert.equal(await cached.getPairedDevice(`garbage-${i}`), undefined);
      reads.length = 0;
      assert.deepEqual(await cached.getPairedDevice("dev-1"), device("dev-1"));
      assert.deepEqual(reads, [], "dev-1 was still cached");
    });

    it("cachedPairedDevice answers only from memory: nothing before the first read, the cached record after, nothing once the cache is dropped or closed", async () => {
      const base = createMemoryStore();
      await put(base, device("dev-1"));
      const { store, reads } = countingReads(base);
      const cached = cacheDeviceReads(store);

      assert.equal(cached.cachedPairedDevice("dev-1"), undefined, "never read yet");
      assert.equal(cached.cachedPairedDevice("dev-unknown"), undefined);
      const read = await cached.getPairedDevice("dev-1");
      assert.equal(cached.cachedPairedDevice("dev-1"), read, "the very record the cache serves");
      assert.deepEqual(reads, ["dev-1"], "peeking reads nothing");

      cached.invalidate();
      assert.equal(cached.cachedPairedDevice("dev-1"), undefined, "after invalidate()");
      await cached.getPairedDevice("dev-1");
      await put(cached, device("dev-2"));
      assert.equal(cached.cachedPairedDevice("dev-1"), undefined, "after a transaction through the decorator");
      await cached.getPairedDevice("dev-1");
      await cached.close();
      assert.equal(cached.cachedPairedDevice("dev-1"), undefined, "after close()");
    });

    it("a caller cannot change what later reads return: the shared cached record refuses mutation", async () => {
      const base = createMemoryStore();
      await put(base, device("dev-1"));
      const cached = cacheDeviceReads(base);
      const got = await cached.getPairedDevice("dev-1");
      assert.ok(got);
      assert.throws(() => ((got as { publicKey: string }).publicKey = "tampered"), TypeError);
      assert.throws(() => (got.roles as Role[]).push("node"), TypeError);
      assert.throws(() => ((got.tokens as Partial<Record<Role, unknown>>).node = undefined), TypeError);
      assert.deepEqual(await cached.getPairedDevice("dev-1"), device("dev-1"));
    });
  });

  describe("transactions through the decorator", () => {
    it("a write made through the decorator is visible to the very next read: an update, a token revocation, a removal", async () => {
      const base = createMemoryStore();
      await put(base, device("dev-1", 1));
      const cached = cacheDeviceReads(base);
      assert.deepEqual(await cached.getPairedDevice("dev-1"), device("dev-1", 1)); // cached now

      await put(cached, device("dev-1", 2));
      assert.deepEqual(await cached.getPairedDevice("dev-1"), device("dev-1", 2), "update");

      await put(cached, revoked(device("dev-1", 2), "operator", 5_000));
      assert.equal((await cached.getPairedDevice("dev-1"))?.tokens.operator?.revokedAtMs, 5_000, "revocation");

      assert.equal(await cached.transact((tx) => tx.deletePairedDevice("dev-1")), true);
      assert.equal(await cached.getPairedDevice("dev-1"), undefined, "removal");
    });

    it("any committed transaction through the decorator drops the cache, even one that wrote no device", async () => {
      const base = createMemoryStore();
      await put(base, device("dev-1"), device("dev-2"));
      const { store, reads } = countingReads(base);
      const cached = cacheDeviceReads(store);
      await cached.getPairedDevice("dev-1");
      await cached.getPairedDevice("dev-2");

      await cached.transact((tx) => tx.setSetting("unrelated", "1"));
      reads.length = 0;
      await cached.getPairedDevice("dev-1");
      await cached.getPairedDevice("dev-2");
      assert.deepEqual(reads, ["dev-1", "dev-2"]);
    });

    it("a transaction that throws rejects with fn's error, keeps nothing, and still drops the cache; one that succeeds resolves to fn's value", async () => {
      const base = createMemoryStore();
      await put(base, device("dev-1"));
      const { store, reads } = countingReads(base);
      const cached = cacheDeviceReads(store);
      await cached.getPairedDevice("dev-1");

      const boom = new Error("fn failed");
      await assert.rejects(
        cached.transact(async (tx) => {
          await tx.putPairedDevice(device("dev-1", 2));
          throw boom;
        }),
        (err) => err === boom,
      );
      reads.length = 0;
      assert.deepEqual(await cached.getPairedDevice("dev-1"), device("dev-1", 1), "nothing of the failed transaction is kept");
      assert.deepEqual(reads, ["dev-1"], "the failed transaction dropped the cache");

      assert.equal(await cached.transact(async () => 42), 42);
    });

    it("the cache is dropped before the commit: a read made after the store committed, before the decorator's caller resumes, sees the new record", async () => {
      const base = createMemoryStore();
      await put(base, device("dev-1", 1));
      const hooks = commitHooks(base);
      const cached = cacheDeviceReads(hooks.store);
      assert.deepEqual(await cached.getPairedDevice("dev-1"), device("dev-1", 1)); // cached now

      let readAfterCommit: PairedDeviceRecord | undefined;
      hooks.afterCommit = async () => {
        readAfterCommit = await cached.getPairedDevice("dev-1");
      };
      await put(cached, device("dev-1", 2));
      assert.deepEqual(readAfterCommit, device("dev-1", 2));
    });

    it("the cache is dropped again after the commit: a record read in the commit window (after fn, before the store committed) is not served afterwards", async () => {
      const base = createMemoryStore();
      await put(base, device("dev-1", 1));
      const hooks = commitHooks(base);
      const cached = cacheDeviceReads(hooks.store);

      let readInWindow: PairedDeviceRecord | undefined;
      hooks.beforeCommit = async () => {
        readInWindow = await cached.getPairedDevice("dev-1");
      };
      await put(cached, device("dev-1", 2));
      assert.deepEqual(readInWindow, device("dev-1", 1), "the window read saw the last committed record");
      assert.deepEqual(await cached.getPairedDevice("dev-1"), device("dev-1", 2));
    });
  });

  describe("writes the decorator did not see (another process)", () => {
    it("a write made directly to the underlying store stays invisible until invalidate(), and the next read after it sees the write", async () => {
      const base = createMemoryStore();
      await put(base, device("dev-1", 1));
      const cached = cacheDeviceReads(base);
      await cached.getPairedDevice("dev-1");

      await put(base, revoked(device("dev-1", 1), "operator", 7_000)); // as the admin CLI would
      assert.deepEqual(await cached.getPairedDevice("dev-1"), device("dev-1", 1), "served from memory: stale until told");
      await base.transact((tx) => tx.deletePairedDevice("dev-1"));
      assert.deepEqual(await cached.getPairedDevice("dev-1"), device("dev-1", 1), "a removal too");

      cached.invalidate();
      assert.equal(await cached.getPairedDevice("dev-1"), undefined);
    });

    it("invalidate() drops every cached record: each device is read from the store once more", async () => {
      const base = createMemoryStore();
      await put(base, device("dev-1"), device("dev-2"));
      const { store, reads } = countingReads(base);
      const cached = cacheDeviceReads(store);
      await cached.getPairedDevice("dev-1");
      await cached.getPairedDevice("dev-2");

      cached.invalidate();
      reads.length = 0;
      for (let i = 0; i < 2; i++) {
        await cached.getPairedDevice("dev-1");
        await cached.getPairedDevice("dev-2");
      }
      assert.deepEqual(reads, ["dev-1", "dev-2"]);
    });
  });

  describe("reads overlapping an invalidation", () => {
    it("a read whose store read resolved after invalidate() returns what it read to its caller but is not cached", async () => {
      const base = createMemoryStore();
      await put(base, device("dev-1", 1));
      const held = heldReads(base);
      const cached = cacheDeviceReads(held.store);

      const read = held.holdNextRead();
      const inFlight = cached.getPairedDevice("dev-1");
      await read.readDone; // the store has answered with version 1
      await put(base, device("dev-1", 2)); // another process commits...
      cached.invalidate(); // ...and the owner is told
      read.release();

      assert.deepEqual(await inFlight, device("dev-1", 1));
      assert.deepEqual(await cached.getPairedDevice("dev-1"), device("dev-1", 2), "the overlapping read was not kept");
    });

    it("a read whose store read resolved after a transaction through the decorator committed is not cached", async () => {
      const base = createMemoryStore();
      await put(base, device("dev-1", 1));
      const held = heldReads(base);
      const cached = cacheDeviceReads(held.store);

      const read = held.holdNextRead();
      const inFlight = cached.getPairedDevice("dev-1");
      await read.readDone;
      await put(cached, revoked(device("dev-1", 1), "operator", 9_000));
      read.release();

      assert.deepEqual(await inFlight, device("dev-1", 1));
      assert.equal((await cached.getPairedDevice("dev-1"))?.tokens.operator?.revokedAtMs, 9_000);
    });

    it("a read that started after invalidate() is cached as usual", async () => {
      const base = createMemoryStore();
      await put(base, device("dev-1"));
      const { store, reads } = countingReads(base);
      const cached = cacheDeviceReads(store);
      cached.invalidate();
      await cached.getPairedDevice("dev-1");
      await cached.getPairedDevice("dev-1");
      assert.deepEqual(reads, ["dev-1"]);
    });
  });

  describe("bounded to maxEntries", () => {
    it("with maxEntries 2, caching a third device evicts the oldest one: only it is read from the store again", async () => {
      const base = createMemoryStore();
      await put(base, device("a"), device("b"), device("c"));
      const { store, reads } = countingReads(base);
      const cached = cacheDeviceReads(store, 2);

      for (const id of ["a", "b", "c"]) await cached.getPairedDevice(id);
      reads.length = 0;
      await cached.getPairedDevice("b");
      await cached.getPairedDevice("c");
      assert.deepEqual(reads, [], "b and c are cached");
      assert.deepEqual(await cached.getPairedDevice("a"), device("a"));
      assert.deepEqual(reads, ["a"], "a was evicted");
      // a is cached again, and now b is the oldest
      await cached.getPairedDevice("c");
      await cached.getPairedDevice("a");
      assert.deepEqual(reads, ["a"]);
      await cached.getPairedDevice("b");
      assert.deepEqual(reads, ["a", "b"]);
    });

    it("never holds more than maxEntries records: after reading 50 devices with maxEntries 10, exactly the last 10 are served from memory", async () => {
      const base = createMemoryStore();
      const ids = Array.from({ length: 50 }, (_, i) => `dev-${i}`);
      await put(base, ...ids.map((id) => device(id)));
      const { store, reads } = countingReads(base);
      const cached = cacheDeviceReads(store, 10);

      for (const id of ids) await cached.getPairedDevice(id);
      reads.length = 0;
      for (const id of ids.slice(40)) assert.deepEqual(await cached.getPairedDevice(id), device(id));
      assert.deepEqual(reads, [], "the last 10 are cached");
      await cached.getPairedDevice("dev-39");
      assert.deepEqual(reads, ["dev-39"], "the 11th newest is not");
    });
  });

  describe("the rest of the Store passes through", () => {
    it("kind, commitMarker and close are the underlying store's", async () => {
      const base = createMemoryStore();
      const cached = cacheDeviceReads(base);
      assert.equal(cached.kind, "memory");
      const before = await base.commitMarker();
      assert.equal(await cached.commitMarker(), before);
      await put(cached, device("dev-1"));
      assert.equal(await cached.commitMarker(), await base.commitMarker());
      assert.notEqual(await cached.commitMarker(), before);
      await cached.close();
      await assert.rejects(base.getSetting("k"), "closing the decorator closed the store");
    });
  });
});

runStoreContract("memory store behind cacheDeviceReads", async () => cacheDeviceReads(createMemoryStore()));

// ---------------------------------------------------------------- SQLite store

describe("cacheDeviceReads over the SQLite store", () => {
  it("reads are served from memory, a write through the decorator is visible to the very next read", async () => {
    const base = openSqliteStore({ path: await tempDbPath() });
    try {
      await put(base, device("dev-1", 1));
      const { store, reads } = countingReads(base);
      const cached = cacheDeviceReads(store);
      assert.deepEqual(await cached.getPairedDevice("dev-1"), device("dev-1", 1));
      assert.deepEqual(await cached.getPairedDevice("dev-1"), device("dev-1", 1));
      assert.equal(reads.length, 1);

      await put(cached, revoked(device("dev-1", 1), "operator", 3_000));
      assert.equal((await cached.getPairedDevice("dev-1"))?.tokens.operator?.revokedAtMs, 3_000);
    } finally {
      await base.close();
    }
  });

  it("a revocation committed by a second store on the file (the admin CLI) is invisible until invalidate(); polling commitMarker tells when to invalidate", async () => {
    const path = await tempDbPath();
    const gatewayStore = openSqliteStore({ path });
    const cliStore = openSqliteStore({ path });
    try {
      await put(gatewayStore, device("dev-1", 1));
      const cached = cacheDeviceReads(gatewayStore);
      await cached.getPairedDevice("dev-1");
      const marker = await cached.commitMarker();

      await put(cliStore, revoked(device("dev-1", 1), "operator", 4_000));
      assert.equal((await cached.getPairedDevice("dev-1"))?.tokens.operator?.revokedAtMs, undefined, "stale until invalidated");
      assert.notEqual(await cached.commitMarker(), marker, "the gateway's poll sees the other store's commit");

      cached.invalidate();
      assert.equal((await cached.getPairedDevice("dev-1"))?.tokens.operator?.revokedAtMs, 4_000);
    } finally {
      await Promise.all([gatewayStore.close(), cliStore.close()]);
    }
  });

  it("a read overlapping an invalidation is not cached (SQLite)", async () => {
    const path = await tempDbPath();
    const base = openSqliteStore({ path });
    const cliStore = openSqliteStore({ path });
    try {
      await put(base, device("dev-1", 1));
      const held = heldReads(base);
      const cached = cacheDeviceReads(held.store);

      const read = held.holdNextRead();
      const inFlight = cached.getPairedDevice("dev-1");
      await read.readDone;
      await cliStore.transact((tx) => tx.deletePairedDevice("dev-1"));
      cached.invalidate();
      read.release();

      assert.deepEqual(await inFlight, device("dev-1", 1));
      assert.equal(await cached.getPairedDevice("dev-1"), undefined);
    } finally {
      await Promise.all([base.close(), cliStore.close()]);
    }
  });
});
