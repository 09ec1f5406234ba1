import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Grant } from "../../src/admission/grant.js";
import { HelloOkWriter, type HelloOkInput, type HelloSnapshot } from "../../src/server/hello-ok.js";

// hello-ok is written from fragments serialized once (src/server/hello-ok.ts).
// What must hold: the text is the payload each protocol's closed schema expects,
// field for field and in order, whatever was written before it.

const writer = new HelloOkWriter({
  version: "1.2.3",
  bootId: "boot-1",
  methods: ["health", "status"],
  events: ["connect.challenge", "tick"],
  policy: { maxPayload: 1048576, maxBufferedBytes: 8388608, tickIntervalMs: 30000 },
});

const grant = { role: "operator", scopes: ["operator.read"], authMethod: "device-token" } as unknown as Grant;
const snapshot: HelloSnapshot = { presence: [], health: {}, stateVersion: { presence: 2, health: 0 }, uptimeMs: 42 };

function input(protocol: number, issued?: { token: string; issuedAtMs: number }): HelloOkInput {
  return { protocol, connId: `conn-${protocol}`, grant, issued: issued as HelloOkInput["issued"], snapshot };
}

const policy = { maxPayload: 1048576, maxBufferedBytes: 8388608, tickIntervalMs: 30000 };

describe("hello-ok payload text", () => {
  it("protocol 3: no bootId, no capabilities, auth without method", () => {
    const payload = JSON.parse(writer.payloadJson(input(3))) as Record<string, unknown>;
    assert.deepEqual(payload, {
      type: "hello-ok",
      protocol: 3,
      server: { version: "1.2.3", connId: "conn-3" },
      features: { methods: ["health", "status"], events: ["connect.challenge", "tick"] },
      snapshot,
      auth: { role: "operator", scopes: ["operator.read"] },
      policy,
    });
    assert.deepEqual(Object.keys(payload), ["type", "protocol", "server", "features", "snapshot", "auth", "policy"]);
  });

  it("protocol 4: bootId, empty capabilities, auth.method, and an issued device token", () => {
    const payload = JSON.parse(writer.payloadJson(input(4, { token: "dt-1", issuedAtMs: 7 }))) as Record<string, unknown>;
    assert.deepEqual(payload, {
      type: "hello-ok",
      protocol: 4,
      server: { version: "1.2.3", bootId: "boot-1", connId: "conn-4" },
      features: { methods: ["health", "status"], events: ["connect.challenge", "tick"], capabilities: [] },
      snapshot,
      auth: { method: "device-token", role: "operator", scopes: ["operator.read"], deviceToken: "dt-1", issuedAtMs: 7 },
      policy,
    });
  });

  it("each protocol keeps its own fixed parts, in whichever order sessions arrive", () => {
    const texts = [3, 4, 3, 4, 4, 3].map((p) => JSON.parse(writer.payloadJson(input(p))) as { protocol: number; features: Record<string, unknown> });
    for (const t of texts) assert.equal("capabilities" in t.features, t.protocol === 4);
  });

  it("escapes client-influenced text: a connId or version with quotes stays one JSON value", () => {
    const odd = new HelloOkWriter({ version: 'v"1\u2028', bootId: "b", methods: [], events: [], policy });
    const payload = JSON.parse(odd.payloadJson({ ...input(3), connId: 'c"\\' })) as { server: Record<string, string> };
    assert.deepEqual(payload.server, { version: 'v"1\u2028', connId: 'c"\\' });
  });
});
