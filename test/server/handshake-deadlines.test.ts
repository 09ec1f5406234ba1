import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import { HandshakeDeadlines, type Deadline } from "../../src/server/handshake-deadlines.js";

/** A key whose deadline pushes `label` onto `fired`. */
const key = (fired: unknown[], label: unknown): Deadline => ({ onDeadline: () => void fired.push(label) });

// One shared timer for every unauthenticated socket (src/server/handshake-deadlines.ts).
// Real time, small timeouts; assertions are about order and "never early", not speed.

describe("HandshakeDeadlines", () => {
  it("fires a deadline after its timeout, never before, and only once", async () => {
    const deadlines = new HandshakeDeadlines(60, 10);
    try {
      const started = performance.now();
      const fired: number[] = [];
      deadlines.add({ onDeadline: () => void fired.push(performance.now() - started) });
      await delay(30);
      assert.deepEqual(fired, [], "not before the timeout");
      while (fired.length === 0) await delay(10);
      assert.ok((fired[0] ?? 0) >= 60, `fired after ${fired[0]} ms`);
      await delay(50);
      assert.equal(fired.length, 1);
      assert.equal(deadlines.size, 0);
    } finally {
      deadlines.close();
    }
  });

  it("a removed deadline never fires and the others still do, in the order they were added", async () => {
    const deadlines = new HandshakeDeadlines(40, 10);
    try {
      const fired: string[] = [];
      const a = key(fired, "a");
      const b = key(fired, "b");
      const c = key(fired, "c");
      deadlines.add(a);
      const entryB = deadlines.add(b);
      deadlines.add(c);
      deadlines.remove(entryB);
      while (fired.length < 2) await delay(10);
      await delay(30);
      assert.deepEqual(fired, ["a", "c"]);
    } finally {
      deadlines.close();
    }
  });

  it("removing a deadline again, or after it fired, changes nothing", async () => {
    const deadlines = new HandshakeDeadlines(30, 10);
    try {
      const fired: string[] = [];
      const first = deadlines.add(key(fired, "first"));
      while (fired.length === 0) await delay(10);
      const second = deadlines.add(key(fired, "second"));
      const third = deadlines.add(key(fired, "third"));
      deadlines.remove(first);
      deadlines.remove(second);
      deadlines.remove(second);
      assert.equal(deadlines.size, 1);
      while (fired.length < 2) await delay(10);
      assert.deepEqual(fired, ["first", "third"]);
      deadlines.remove(third);
      assert.equal(deadlines.size, 0);
    } finally {
      deadlines.close();
    }
  });

  it("after close() nothing fires", async () => {
    const deadlines = new HandshakeDeadlines(20, 10);
    const fired: string[] = [];
    deadlines.add(key(fired, "x"));
    deadlines.close();
    await delay(60);
    assert.deepEqual(fired, []);
    assert.equal(deadlines.size, 0);
  });
});
