import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { grantFrom } from "../../src/admission/grant.js";
import type { VerifiedCredential } from "../../src/admission/verified-credential.js";
import type { Role, Scope } from "../../src/protocol/enums.js";
import { authorizeRelay, relayRequirement, tableFor } from "../../src/relay/relay-authorize.js";
import { relayedEventAllowed } from "../../src/relay/relay-events.js";
import { errorForClient } from "../../src/relay/translate-error.js";
import { OPENCLAW_2026_4_24, OPENCLAW_2026_9_6 } from "../../src/relay/upstream-method-tables.js";

const grant = (scopes: Scope[], role: Role = "operator") => grantFrom({ kind: "shared-secret", method: "token" } as VerifiedCredential, role, scopes, undefined);

describe("relay authorization: the upstream release's own table, checked by gatewarden before relaying", () => {
  it("read methods need operator.read; write satisfies read; admin satisfies all", () => {
    for (const table of [OPENCLAW_2026_4_24, OPENCLAW_2026_9_6]) {
      assert.equal(authorizeRelay(grant(["operator.read"]), table, "sessions.list"), undefined);
      assert.equal(authorizeRelay(grant(["operator.write"]), table, "models.list"), undefined);
      assert.equal(authorizeRelay(grant(["operator.admin"]), table, "cron.add"), undefined);
      assert.equal(authorizeRelay(grant([]), table, "sessions.list")?.detailCode, "MISSING_SCOPE");
      assert.equal(authorizeRelay(grant(["operator.read"]), table, "cron.add")?.message, "missing scope: operator.admin");
    }
  });

  it("an unknown method needs operator.admin (default deny); health is open to every session", () => {
    assert.deepEqual(relayRequirement(OPENCLAW_2026_9_6, "no.such.method"), { kind: "scope", scope: "operator.admin" });
    assert.equal(authorizeRelay(grant(["operator.write"]), OPENCLAW_2026_9_6, "no.such.method")?.detailCode, "MISSING_SCOPE");
    assert.equal(authorizeRelay(grant([]), OPENCLAW_2026_4_24, "health"), undefined);
  });

  it("a method whose upstream scope depends on its params needs at least its least scope here", () => {
    assert.equal(authorizeRelay(grant([]), OPENCLAW_2026_9_6, "sessions.create")?.detailCode, "MISSING_SCOPE");
    assert.equal(authorizeRelay(grant(["operator.write"]), OPENCLAW_2026_9_6, "sessions.create"), undefined);
  });

  it("operator.sessions.write opens the session methods that list it as their alternative (protocol 4), nothing else", () => {
    assert.equal(authorizeRelay(grant(["operator.sessions.write"]), OPENCLAW_2026_9_6, "sessions.create"), undefined);
    assert.equal(authorizeRelay(grant(["operator.sessions.write"]), OPENCLAW_2026_9_6, "cron.list")?.detailCode, "MISSING_SCOPE");
  });

  it("node-only methods need the node role", () => {
    assert.equal(authorizeRelay(grant(["operator.admin"]), OPENCLAW_2026_9_6, "node.event")?.detailCode, "UNAUTHORIZED_ROLE");
  });

  it("the table is the upstream release's own, else the newest of its protocol", () => {
    assert.equal(tableFor([OPENCLAW_2026_4_24, OPENCLAW_2026_9_6], "2026.4.24", 3), OPENCLAW_2026_4_24);
    assert.equal(tableFor([OPENCLAW_2026_4_24, OPENCLAW_2026_9_6], "2026.10.1", 4), OPENCLAW_2026_9_6);
    assert.equal(tableFor([OPENCLAW_2026_4_24, OPENCLAW_2026_9_6], undefined, 5), undefined);
  });
});

describe("relayed events: gatewarden filters again by the session's scopes", () => {
  it("data events need operator.read, approvals operator.approvals, node pairing operator.pairing", () => {
    assert.equal(relayedEventAllowed(grant(["operator.read"]), "sessions.changed"), true);
    assert.equal(relayedEventAllowed(grant([]), "sessions.changed"), false);
    assert.equal(relayedEventAllowed(grant(["operator.read"]), "exec.approval.requested"), false);
    assert.equal(relayedEventAllowed(grant(["operator.approvals"]), "exec.approval.requested"), true);
    assert.equal(relayedEventAllowed(grant(["operator.read"]), "node.pair.requested"), false);
    assert.equal(relayedEventAllowed(grant(["operator.read"]), "plugin.anything"), false);
  });

  it("the upstream's handshake, tick, shutdown, presence and its own device pairing events are never passed on", () => {
    for (const e of ["connect.challenge", "tick", "shutdown", "presence", "device.pair.requested", "device.pair.resolved"]) {
      assert.equal(relayedEventAllowed(grant(["operator.admin"]), e), false, e);
    }
  });
});

describe("upstream errors in the client's protocol", () => {
  it("protocol 4's FORBIDDEN reads INVALID_REQUEST to a protocol-3 client, details unchanged", () => {
    const e = errorForClient({ code: "FORBIDDEN", message: "missing scope: operator.admin", details: { code: "MISSING_SCOPE" } }, 3);
    assert.deepEqual(e, { code: "INVALID_REQUEST", message: "missing scope: operator.admin", details: { code: "MISSING_SCOPE" } });
  });

  it("a protocol-3 permission refusal reads FORBIDDEN to a protocol-4 client; other errors pass unchanged", () => {
    assert.equal(errorForClient({ code: "INVALID_REQUEST", message: "missing scope: x", details: { code: "MISSING_SCOPE" } }, 4).code, "FORBIDDEN");
    assert.equal(errorForClient({ code: "INVALID_REQUEST", message: "bad params" }, 4).code, "INVALID_REQUEST");
    assert.deepEqual(errorForClient({ code: "UNAVAILABLE", message: "later", retryable: true, retryAfterMs: 5 }, 3), { code: "UNAVAILABLE", message: "later", retryable: true, retryAfterMs: 5 });
  });
});
