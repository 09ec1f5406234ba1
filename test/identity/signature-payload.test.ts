import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { buildV2Payload, buildV3Payload, normalizeMetadata, signatureToken, type SignedFields } from "../../src/identity/signature-payload.js";
import { connectPayload } from "../support/device.js";

const ID = "a".repeat(64);
const NONCE = "0b6f4a3e-8c1d-4f2a-9e7b-3d5c1a2b4e6f";

function fields(overrides: Partial<SignedFields> = {}): SignedFields {
  return {
    deviceId: ID,
    clientId: "cli",
    clientMode: "cli",
    role: "operator",
    scopes: ["operator.admin", "operator.read"],
    signedAtMs: 1737264000000,
    token: "tok",
    nonce: NONCE,
    platform: "linux",
    deviceFamily: undefined,
    ...overrides,
  };
}

describe("buildV3Payload", () => {
  it("matches the spec §5.2 example exactly: v3|id|client|mode|role|scopes|signedAt|token|nonce|platform|family", () => {
    assert.equal(
      buildV3Payload(fields()),
      `v3|${ID}|cli|cli|operator|operator.admin,operator.read|1737264000000|tok|${NONCE}|linux|`,
    );
  });

  it("keeps scopes in the order sent, without sorting or deduplication", () => {
    const p = buildV3Payload(fields({ scopes: ["operator.write", "operator.admin", "operator.write"] }));
    assert.equal(p.split("|")[5], "operator.write,operator.admin,operator.write");
  });

  it("writes an empty field for empty scopes, an empty token and a missing deviceFamily", () => {
    assert.equal(
      buildV3Payload(fields({ scopes: [], token: "", deviceFamily: undefined })),
      `v3|${ID}|cli|cli|operator||1737264000000||${NONCE}|linux|`,
    );
  });

  it("normalizes platform and deviceFamily (trim, ASCII lowercase) but no other field", () => {
    const p = buildV3Payload(fields({ platform: "  MacOS ", deviceFamily: " iPhone", token: "TOKEN", nonce: "NoNcE" }));
    assert.equal(p, `v3|${ID}|cli|cli|operator|operator.admin,operator.read|1737264000000|TOKEN|NoNcE|macos|iphone`);
  });

  it("has 11 pipe-separated fields and performs no escaping of pipes inside fields", () => {
    const p = buildV3Payload(fields({ token: "a|b" }));
    assert.equal(p.split("|").length, 12);
    assert.ok(p.includes("|a|b|"));
  });

  it("equals the independent spec implementation for arbitrary fields", () => {
    fc.assert(
      fc.property(
        fc.record({
          clientId: fc.string(),
          clientMode: fc.string(),
          role: fc.string(),
          scopes: fc.array(fc.string()),
          signedAt: fc.nat(),
          token: fc.string(),
          nonce: fc.string(),
          platform: fc.string(),
          deviceFamily: fc.option(fc.string(), { nil: undefined }),
        }),
        (r) => {
          const f = fields({ ...r, signedAtMs: r.signedAt });
          assert.equal(buildV3Payload(f), connectPayload(ID, { ...r, version: "v3" }));
          assert.equal(buildV2Payload(f), connectPayload(ID, { ...r, version: "v2" }));
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe("buildV2Payload", () => {
  it("is v2|id|client|mode|role|scopes|signedAt|token|nonce, without platform or deviceFamily", () => {
    assert.equal(
      buildV2Payload(fields({ platform: "Linux", deviceFamily: "desktop" })),
      `v2|${ID}|cli|cli|operator|operator.admin,operator.read|1737264000000|tok|${NONCE}`,
    );
  });

  it("matches what the Control UI signs (webchat mode, five scopes)", () => {
    const scopes = ["operator.admin", "operator.read", "operator.write", "operator.approvals", "operator.pairing"];
    assert.equal(
      buildV2Payload(fields({ clientId: "openclaw-control-ui", clientMode: "webchat", scopes, token: "" })),
      `v2|${ID}|openclaw-control-ui|webchat|operator|${scopes.join(",")}|1737264000000||${NONCE}`,
    );
  });
});

describe("normalizeMetadata", () => {
  it("trims and lowercases ASCII A–Z", () => {
    assert.equal(normalizeMetadata("  Linux\t"), "linux");
    assert.equal(normalizeMetadata("DARWIN"), "darwin");
    assert.equal(normalizeMetadata("Win32-ARM64"), "win32-arm64");
  });

  it("maps undefined, empty and blank to the empty string", () => {
    assert.equal(normalizeMetadata(undefined), "");
    assert.equal(normalizeMetadata(""), "");
    assert.equal(normalizeMetadata(" \n\t "), "");
  });

  it("leaves non-ASCII letters untouched (no locale-dependent case mapping)", () => {
    assert.equal(normalizeMetadata("ÄÖÜ"), "ÄÖÜ");
    assert.equal(normalizeMetadata("İSTANBUL"), "İstanbul");
    assert.equal(normalizeMetadata("ΑΒΓ"), "ΑΒΓ");
    assert.equal(normalizeMetadata("Ｌinux"), "Ｌinux"); // fullwidth L
    assert.equal(normalizeMetadata("\u212A"), "\u212A"); // Kelvin sign, which toLowerCase() would turn into "k"
  });

  it("is idempotent and only ever changes ASCII A–Z and surrounding whitespace", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary" }), (s) => {
        const n = normalizeMetadata(s);
        assert.equal(normalizeMetadata(n), n);
        assert.equal(n.length, s.trim().length);
        const t = s.trim();
        for (let i = 0; i < t.length; i++) {
          const c = t[i] as string;
          assert.equal(n[i], c >= "A" && c <= "Z" ? c.toLowerCase() : c);
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe("signatureToken", () => {
  it("takes auth.token, else auth.deviceToken, else auth.bootstrapToken, else the empty string", () => {
    assert.equal(signatureToken({ token: "t", deviceToken: "d", bootstrapToken: "b" }), "t");
    assert.equal(signatureToken({ deviceToken: "d", bootstrapToken: "b" }), "d");
    assert.equal(signatureToken({ bootstrapToken: "b" }), "b");
    assert.equal(signatureToken({}), "");
    assert.equal(signatureToken(undefined), "");
  });

  it("uses an empty auth.token as-is (?? semantics, like upstream)", () => {
    assert.equal(signatureToken({ token: "", deviceToken: "d" }), "");
  });

  it("never includes the password", () => {
    assert.equal(signatureToken({ password: "secret" } as { token?: string }), "");
  });
});
