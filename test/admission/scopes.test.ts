import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  expandImplied,
  intersectScopes,
  normalizeScopes,
  satisfies,
  scopeFitsRole,
  scopesWithin,
  validateRequestedScopes,
} from "../../src/admission/scopes.js";
import { OPERATOR_SCOPES, isKnownScope, type Scope } from "../../src/protocol/enums.js";

const NODE_SCOPES: readonly Scope[] = ["node.camera", "node.screen", "node.exec"];
const scopeArb = fc.constantFrom<Scope>(...OPERATOR_SCOPES, ...NODE_SCOPES);
const scopesArb = fc.array(scopeArb, { maxLength: 8 });

describe("satisfies", () => {
  it("holding a scope satisfies that scope", () => {
    for (const s of [...OPERATOR_SCOPES, ...NODE_SCOPES]) assert.equal(satisfies([s], s), true, s);
  });

  it("operator.admin satisfies every operator.* scope", () => {
    for (const s of OPERATOR_SCOPES) assert.equal(satisfies(["operator.admin"], s), true, s);
  });

  it("operator.admin does not satisfy node scopes", () => {
    for (const s of NODE_SCOPES) assert.equal(satisfies(["operator.admin"], s), false, s);
  });

  it("operator.write satisfies operator.read, and nothing else it does not hold", () => {
    assert.equal(satisfies(["operator.write"], "operator.read"), true);
    for (const s of OPERATOR_SCOPES) {
      if (s === "operator.write" || s === "operator.read") continue;
      assert.equal(satisfies(["operator.write"], s), false, s);
    }
  });

  it("operator.read satisfies neither write nor admin", () => {
    assert.equal(satisfies(["operator.read"], "operator.write"), false);
    assert.equal(satisfies(["operator.read"], "operator.admin"), false);
  });

  it("no other scope implies anything (pairing, approvals, talk.secrets, sessions.write)", () => {
    assert.equal(satisfies(["operator.pairing"], "operator.approvals"), false);
    assert.equal(satisfies(["operator.talk.secrets"], "operator.talk"), false);
    assert.equal(satisfies(["operator.talk"], "operator.talk.secrets"), false);
    assert.equal(satisfies(["operator.sessions.write"], "operator.sessions.read"), false);
    assert.equal(satisfies(["operator.approvals", "operator.pairing", "operator.read", "operator.write"], "operator.admin"), false);
  });

  it("an empty set satisfies nothing", () => {
    for (const s of [...OPERATOR_SCOPES, ...NODE_SCOPES]) assert.equal(satisfies([], s), false, s);
  });

  it("is monotone: adding held scopes never removes a satisfied requirement", () => {
    fc.assert(
      fc.property(scopesArb, scopesArb, scopeArb, (held, extra, needed) => {
        if (satisfies(held, needed)) assert.equal(satisfies([...held, ...extra], needed), true);
      }),
      { numRuns: 500 },
    );
  });
});

describe("intersectScopes", () => {
  it("keeps the requested scopes the allowed set satisfies, deduped and sorted", () => {
    assert.deepEqual(intersectScopes(["operator.write", "operator.read", "operator.read"], ["operator.write"]), ["operator.read", "operator.write"]);
    assert.deepEqual(intersectScopes(["operator.admin"], ["operator.read", "operator.write"]), []);
    assert.deepEqual(intersectScopes(["operator.read", "operator.pairing"], ["operator.admin"]), ["operator.pairing", "operator.read"]);
    assert.deepEqual(intersectScopes([], ["operator.admin"]), []);
    assert.deepEqual(intersectScopes(["operator.read"], []), []);
  });

  it("never returns a scope that was not requested, nor one the allowed set does not satisfy", () => {
    fc.assert(
      fc.property(scopesArb, scopesArb, (requested, allowed) => {
        const out = intersectScopes(requested, allowed);
        for (const s of out) {
          assert.ok(requested.includes(s), `${s} not requested`);
          assert.ok(satisfies(allowed, s), `${s} not allowed`);
        }
        // and drops nothing it could have granted
        for (const s of requested) if (satisfies(allowed, s)) assert.ok(out.includes(s));
        assert.deepEqual(out, [...new Set(out)].sort());
      }),
      { numRuns: 500 },
    );
  });

  it("is idempotent and narrowing: intersecting again with either side changes nothing", () => {
    fc.assert(
      fc.property(scopesArb, scopesArb, (requested, allowed) => {
        const out = intersectScopes(requested, allowed);
        assert.deepEqual(intersectScopes(out, allowed), out);
        assert.deepEqual(intersectScopes(out, requested), out);
        assert.equal(scopesWithin(out, allowed), true);
      }),
      { numRuns: 500 },
    );
  });
});

describe("scopesWithin", () => {
  it("an empty request is always within, even an empty allowance", () => {
    assert.equal(scopesWithin([], []), true);
  });

  it("applies the implications: read within write, anything operator within admin", () => {
    assert.equal(scopesWithin(["operator.read"], ["operator.write"]), true);
    assert.equal(scopesWithin([...OPERATOR_SCOPES], ["operator.admin"]), true);
    assert.equal(scopesWithin(["operator.admin"], ["operator.read", "operator.write", "operator.pairing"]), false);
    assert.equal(scopesWithin(["operator.read", "node.camera"], ["operator.admin"]), false);
  });

  it("agrees with intersectScopes: within iff the intersection keeps every requested scope", () => {
    fc.assert(
      fc.property(scopesArb, scopesArb, (requested, allowed) => {
        assert.equal(scopesWithin(requested, allowed), intersectScopes(requested, allowed).length === new Set(requested).size);
      }),
      { numRuns: 500 },
    );
  });
});

describe("normalizeScopes and expandImplied", () => {
  it("normalizeScopes dedupes and sorts without dropping anything", () => {
    assert.deepEqual(normalizeScopes(["operator.write", "operator.admin", "operator.write"]), ["operator.admin", "operator.write"]);
  });

  it("expandImplied adds read+write to admin, read to write, and nothing otherwise", () => {
    assert.deepEqual(expandImplied(["operator.admin"]), ["operator.admin", "operator.read", "operator.write"]);
    assert.deepEqual(expandImplied(["operator.write"]), ["operator.read", "operator.write"]);
    assert.deepEqual(expandImplied(["operator.pairing"]), ["operator.pairing"]);
    assert.deepEqual(expandImplied([]), []);
  });

  it("expandImplied never changes what a set satisfies", () => {
    fc.assert(
      fc.property(scopesArb, scopeArb, (held, needed) => {
        assert.equal(satisfies(expandImplied(held), needed), satisfies(held, needed));
      }),
      { numRuns: 500 },
    );
  });
});

describe("validateRequestedScopes", () => {
  it("accepts known operator scopes for the operator role and node.* scopes for the node role", () => {
    assert.deepEqual(validateRequestedScopes(["operator.read", "operator.admin"], "operator"), { ok: true, scopes: ["operator.read", "operator.admin"] });
    assert.deepEqual(validateRequestedScopes(["node.camera"], "node"), { ok: true, scopes: ["node.camera"] });
    assert.deepEqual(validateRequestedScopes([], "node"), { ok: true, scopes: [] });
  });

  it("A12 refuses unknown scope strings and reports the first one", () => {
    for (const s of ["operator.superuser", "admin", "operator.*", "*", "", " operator.read", "operator.read ", "OPERATOR.READ", "operator.admin\u0000"]) {
      assert.deepEqual(validateRequestedScopes(["operator.read", s], "operator"), { ok: false, invalid: s }, JSON.stringify(s));
    }
  });

  it("A07 refuses unicode look-alikes of known scopes", () => {
    for (const s of ["operator.аdmin" /* Cyrillic а */, "operator.admın" /* dotless ı */, "operator\u2024admin", "ｏperator.admin"]) {
      assert.equal(validateRequestedScopes([s], "operator").ok, false, s);
    }
  });

  it("refuses scopes of the other role", () => {
    assert.deepEqual(validateRequestedScopes(["node.camera"], "operator"), { ok: false, invalid: "node.camera" });
    assert.deepEqual(validateRequestedScopes(["operator.read"], "node"), { ok: false, invalid: "operator.read" });
    assert.deepEqual(validateRequestedScopes(["operator.admin"], "node"), { ok: false, invalid: "operator.admin" });
  });

  it("refuses malformed node scopes", () => {
    for (const s of ["node.", "node.Camera", "node..x", "node.1x", `node.${"a".repeat(65)}`]) {
      assert.equal(validateRequestedScopes([s], "node").ok, false, s);
    }
  });

  it("accepts exactly the strings that are known and fit the role, for arbitrary input", () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(scopeArb, fc.string({ maxLength: 20 }), fc.string({ maxLength: 10 }).map((s) => `operator.${s}`)), { maxLength: 6 }),
        fc.constantFrom("operator" as const, "node" as const),
        (scopes, role) => {
          const expectOk = scopes.every((s) => isKnownScope(s) && scopeFitsRole(s, role));
          const r = validateRequestedScopes(scopes, role);
          assert.equal(r.ok, expectOk);
          if (!r.ok) assert.ok(scopes.includes(r.invalid));
        },
      ),
      { numRuns: 500 },
    );
  });
});
