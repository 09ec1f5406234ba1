import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createMemoryStore } from "../../src/store/memory-store.js";
import { runStoreContract } from "./store-contract.js";

runStoreContract("memory store", async () => createMemoryStore());

describe("memory store commitMarker", () => {
  it("a transaction that threw committed nothing and leaves commitMarker where it was", async () => {
    const store = createMemoryStore();
    try {
      await store.transact((tx) => tx.setSetting("k", "kept"));
      const marker = await store.commitMarker();
      const boom = new Error("fn failed");
      await assert.rejects(
        store.transact(async (tx) => {
          await tx.setSetting("k", "dropped");
          throw boom;
        }),
        (err) => err === boom,
      );
      assert.equal(await store.getSetting("k"), "kept");
      assert.equal(await store.commitMarker(), marker);
    } finally {
      await store.close();
    }
  });

  it("commitMarker rejects after close, like every other read", async () => {
    const store = createMemoryStore();
    await store.close();
    await assert.rejects(store.commitMarker());
  });
});
