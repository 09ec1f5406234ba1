import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { terminalSafe } from "../../src/cli/terminal-text.js";
import { table } from "../../src/cli/output.js";

const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/u;

describe("terminal-safe text (A56)", () => {
  it("no control, bidi or invisible character survives, for any string", () => {
    fc.assert(fc.property(fc.string({ unit: "binary" }), (s) => !UNSAFE.test(terminalSafe(s))), { numRuns: 2000 });
  });

  it("printable text is unchanged, and an escape shows as what it is", () => {
    assert.equal(terminalSafe("Ada's laptop ✓"), "Ada's laptop ✓");
    assert.equal(terminalSafe("x\u001b[2K\rop"), "x\\x1b[2K\\x0dop");
    assert.equal(terminalSafe("admin\u202eread"), "admin\\u{202e}read");
  });

  it("a table cell cannot rewrite its row", () => {
    const out = table(["NAME", "SCOPES"], [["\u001b[1A\u001b[2Kphone\r", "operator.admin"]]);
    assert.ok(!UNSAFE.test(out.replace(/\n/g, "")), JSON.stringify(out));
    assert.match(out, /operator\.admin/);
  });
});
