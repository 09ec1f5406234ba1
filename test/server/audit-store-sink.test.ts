import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { AuditEventInput } from "../../src/store/audit-chain.js";
import { AuditStoreSink } from "../../src/server/audit-store-sink.js";

const ev = (n: number): AuditEventInput => ({ kind: "admission.admit", actor: "gateway", fields: { n } });

describe("AuditStoreSink (admission entries on their way to the store)", () => {
  it("writes entries in batches, in order, within the flush interval", async () => {
    const written: AuditEventInput[][] = [];
    const sink = new AuditStoreSink(async (batch) => void written.push([...batch]), { flushMs: 10, maxBatch: 3, warn: () => undefined });
    for (let i = 0; i < 7; i++) sink.push(ev(i));
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(written.map((b) => b.length), [3, 3, 1]);
    assert.deepEqual(written.flat().map((e) => e.fields?.n), [0, 1, 2, 3, 4, 5, 6]);
  });

  it("while the store fails, entries wait (bounded); the overflow is counted and written as audit.dropped once it works again", async () => {
    const written: AuditEventInput[] = [];
    const warnings: string[] = [];
    let failing = true;
    const sink = new AuditStoreSink(
      async (batch) => {
        if (failing) throw new Error("store unavailable");
        written.push(...batch);
      },
      { flushMs: 5, maxQueued: 4, warn: (m) => warnings.push(m) },
    );
    for (let i = 0; i < 10; i++) sink.push(ev(i));
    await sink.flush();
    assert.equal(sink.pending(), 4);
    failing = false;
    await sink.flush();
    assert.deepEqual(written.map((e) => e.kind), ["admission.admit", "admission.admit", "admission.admit", "admission.admit", "audit.dropped"]);
    assert.deepEqual(written.map((e) => e.fields?.n ?? e.fields?.count), [0, 1, 2, 3, 6]);
    assert.equal(warnings.length, 2, "one warning when writing fails, one when it works again");
    assert.equal(sink.pending(), 0);
  });

  it("close writes what waits, and takes nothing after", async () => {
    const written: AuditEventInput[] = [];
    const sink = new AuditStoreSink(async (batch) => void written.push(...batch), { flushMs: 60_000, warn: () => undefined });
    sink.push(ev(1));
    await sink.close();
    sink.push(ev(2));
    assert.deepEqual(written.map((e) => e.fields?.n), [1]);
  });
});
