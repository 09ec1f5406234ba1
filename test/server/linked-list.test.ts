import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { LinkedList, type ListEntry } from "../../src/server/linked-list.js";

type Op = { kind: "push"; value: number } | { kind: "remove"; pick: number } | { kind: "clear" };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.integer().map((value) => ({ kind: "push" as const, value })) },
  { weight: 4, arbitrary: fc.nat().map((pick) => ({ kind: "remove" as const, pick })) },
  { weight: 1, arbitrary: fc.constant({ kind: "clear" as const }) },
);

describe("LinkedList", () => {
  it("keeps insertion order and size through any sequence of pushes, removals (repeated or not) and clears", () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 200 }), (ops) => {
        const list = new LinkedList<number>();
        const model: { value: number; entry: ListEntry<number> }[] = [];
        const handedOut: ListEntry<number>[] = [];
        for (const op of ops) {
          if (op.kind === "push") {
            const entry = list.push(op.value);
            model.push({ value: op.value, entry });
            handedOut.push(entry);
          } else if (op.kind === "remove") {
            if (handedOut.length === 0) continue;
            // Any entry ever handed out, removed or not: a second removal is a no-op.
            const entry = handedOut[op.pick % handedOut.length] as ListEntry<number>;
            const at = model.findIndex((m) => m.entry === entry);
            assert.equal(list.remove(entry), at >= 0);
            if (at >= 0) model.splice(at, 1);
          } else {
            list.clear();
            model.length = 0;
          }
          assert.equal(list.size, model.length);
          assert.deepEqual(list.toArray(), model.map((m) => m.value));
          assert.equal(list.first(), model[0]?.entry);
        }
      }),
    );
  });

  it("a removed entry lets go of its value", () => {
    const list = new LinkedList<{ name: string }>();
    const a = list.push({ name: "a" });
    const b = list.push({ name: "b" });
    assert.equal(b.value?.name, "b");
    list.remove(b);
    assert.equal(b.value, undefined);
    assert.equal(a.value?.name, "a");
    list.clear();
    assert.equal(a.value, undefined);
  });

  it("an entry from another list is not removed", () => {
    const one = new LinkedList<number>();
    const two = new LinkedList<number>();
    const entry = one.push(1);
    two.push(1);
    assert.equal(two.remove(entry), false);
    assert.equal(two.size, 1);
    assert.deepEqual(one.toArray(), [1]);
  });

  it("forEach visits every value in insertion order", () => {
    const list = new LinkedList<string>();
    for (const v of ["x", "y", "z"]) list.push(v);
    const seen: string[] = [];
    list.forEach((v) => seen.push(v));
    assert.deepEqual(seen, ["x", "y", "z"]);
  });
});
