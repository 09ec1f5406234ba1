import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
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

/** The payload as a plain object, the way the protocol describes it: the reference the text must serialize. */
function referencePayload(fixed: { version: string; bootId: string; methods: string[]; events: string[]; policy: typeof policy }, input: HelloOkInput): unknown {
  const v4 = input.protocol >= 4;
  const { grant, issued, snapshot: snap } = input;
  const token = issued ? { deviceToken: issued.token, issuedAtMs: issued.issuedAtMs } : {};
  return {
    type: "hello-ok",
    protocol: input.protocol,
    server: v4 ? { version: fixed.version, bootId: fixed.bootId, connId: input.connId } : { version: fixed.version, connId: input.connId },
    features: { methods: fixed.methods, events: fixed.events, ...(v4 ? { capabilities: [] } : {}) },
    snapshot: snap,
    auth: v4 ? { method: grant.authMethod, role: grant.role, scopes: grant.scopes, ...token } : { role: grant.role, scopes: grant.scopes, ...token },
    policy: fixed.policy,
  };
}

describe("hello-ok text, property", () => {
  it("is exactly JSON.stringify of the payload object, for any strings, numbers, presence and admin fields", () => {
    const text = fc.string({ unit: "binary", maxLength: 24 });
    const arb = fc.record({
      version: text,
      bootId: text,
      methods: fc.array(text, { maxLength: 4 }),
      events: fc.array(text, { maxLength: 4 }),
      protocol: fc.constantFrom(3, 4),
      connId: text,
      role: fc.constantFrom("operator", "node"),
      method: fc.constantFrom("token", "device-token", "none"),
      scopes: fc.array(text, { maxLength: 3 }),
      issued: fc.option(fc.record({ token: text, issuedAtMs: fc.integer() }), { nil: undefined }),
      presence: fc.array(fc.record({ ts: fc.integer(), reason: text, host: fc.option(text, { nil: undefined }) }), { maxLength: 2 }),
      stateVersion: fc.record({ presence: fc.nat(), health: fc.nat() }),
      uptimeMs: fc.oneof(fc.nat(), fc.double()),
      authMode: fc.option(text, { nil: undefined }),
      stateDir: fc.option(text, { nil: undefined }),
    });
    fc.assert(
      fc.property(arb, (a) => {
        const fixed = { version: a.version, bootId: a.bootId, methods: a.methods, events: a.events, policy };
        const snap: HelloSnapshot = {
          presence: a.presence as unknown as HelloSnapshot["presence"],
          health: {},
          stateVersion: a.stateVersion,
          uptimeMs: a.uptimeMs,
          ...(a.authMode !== undefined ? { authMode: a.authMode } : {}),
          ...(a.stateDir !== undefined ? { stateDir: a.stateDir } : {}),
        };
        const g = { role: a.role, scopes: a.scopes, authMethod: a.method } as unknown as Grant;
        const input: HelloOkInput = { protocol: a.protocol, connId: a.connId, grant: g, issued: a.issued as HelloOkInput["issued"], snapshot: snap };
        const w = new HelloOkWriter(fixed);
        assert.equal(w.payloadJson(input), JSON.stringify(referencePayload(fixed, input)));
      }),
      { numRuns: 500 },
    );
  });
});
