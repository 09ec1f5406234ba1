import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash, generateKeyPairSync, randomBytes } from "node:crypto";
import fc from "fast-check";
import {
  decodeBase64Loose,
  deriveDeviceId,
  isNonCanonicalY,
  isSmallOrderEncoding,
  parsePublicKey,
} from "../../src/identity/device-key.js";
import { createTestDevice, pemForRawKey, SMALL_ORDER_POINTS_HEX } from "../support/device.js";

describe("decodeBase64Loose", () => {
  it("decodes unpadded base64url", () => {
    const bytes = Buffer.from([0xfb, 0xff, 0xbf, 0x00, 0x01]);
    assert.deepEqual(decodeBase64Loose(bytes.toString("base64url")), bytes);
  });

  it("tolerates standard base64 with + / and padding", () => {
    const bytes = Buffer.from([0xfb, 0xff, 0xbf, 0x00, 0x01]);
    const std = bytes.toString("base64");
    assert.match(std, /[+/=]/);
    assert.deepEqual(decodeBase64Loose(std), bytes);
  });

  it("trims surrounding whitespace", () => {
    assert.deepEqual(decodeBase64Loose("  AQID \n"), Buffer.from([1, 2, 3]));
  });

  it("returns undefined for empty, blank, mixed-alphabet and non-base64 text", () => {
    for (const text of ["", "   ", "a-b+c", "abc_/", "not base64!", "ab$cd", "abc==="]) {
      assert.equal(decodeBase64Loose(text), undefined, JSON.stringify(text));
    }
  });

  it("round-trips arbitrary bytes in both alphabets", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 96 }), (arr) => {
        const bytes = Buffer.from(arr);
        assert.deepEqual(decodeBase64Loose(bytes.toString("base64url")), bytes);
        assert.deepEqual(decodeBase64Loose(bytes.toString("base64")), bytes);
      }),
      { numRuns: 300 },
    );
  });
});

describe("deriveDeviceId", () => {
  it("is the lowercase hex SHA-256 of the raw key bytes (64 hex chars)", () => {
    const raw = randomBytes(32);
    const id = deriveDeviceId(raw);
    assert.equal(id, createHash("sha256").update(raw).digest("hex"));
    assert.match(id, /^[0-9a-f]{64}$/);
  });

  it("matches a known vector: SHA-256 of 32 zero bytes", () => {
    assert.equal(deriveDeviceId(new Uint8Array(32)), "66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925");
  });
});

describe("parsePublicKey", () => {
  it("parses the wire form: unpadded base64url of the raw 32-byte key", () => {
    const device = createTestDevice();
    const parsed = parsePublicKey(device.publicKey);
    assert.ok(parsed);
    assert.deepEqual(parsed.raw, device.publicKeyRaw);
    assert.equal(parsed.canonical, device.publicKey);
    assert.equal(parsed.deviceId, device.id);
    assert.equal(parsed.keyObject.asymmetricKeyType, "ed25519");
  });

  it("tolerates standard base64 (with padding) and canonicalizes it to unpadded base64url", () => {
    // Find a key whose encoding differs between the alphabets, so the test means something.
    let device = createTestDevice();
    while (!/[+/]/.test(device.publicKeyRaw.toString("base64"))) device = createTestDevice();
    const std = device.publicKeyRaw.toString("base64");
    assert.ok(std.endsWith("="));
    const parsed = parsePublicKey(std);
    assert.ok(parsed);
    assert.equal(parsed.canonical, device.publicKey);
    assert.equal(parsed.deviceId, device.id);
  });

  it("accepts an Ed25519 SPKI PEM and derives the same id and canonical key as the raw form", () => {
    const device = createTestDevice();
    const parsed = parsePublicKey(device.publicKeyPem);
    assert.ok(parsed);
    assert.equal(parsed.canonical, device.publicKey);
    assert.equal(parsed.deviceId, device.id);
  });

  it("A19 a PEM of a key that is not Ed25519 is rejected", () => {
    const { publicKey: x25519 } = generateKeyPairSync("x25519");
    const { publicKey: ec } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    for (const key of [x25519, ec]) {
      assert.equal(parsePublicKey(key.export({ format: "pem", type: "spki" }).toString()), undefined);
    }
  });

  it("A19 a garbled PEM is rejected without throwing", () => {
    assert.equal(parsePublicKey("-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----"), undefined);
    assert.equal(parsePublicKey("BEGIN"), undefined);
  });

  it("A19 keys of the wrong length are rejected (0–64 bytes except 32)", () => {
    for (let n = 0; n <= 64; n++) {
      if (n === 32) continue;
      const raw = randomBytes(n);
      assert.equal(parsePublicKey(raw.toString("base64url")), undefined, `${n} bytes`);
      assert.equal(parsePublicKey(raw.toString("base64")), undefined, `${n} bytes (std)`);
    }
  });

  it("A19 text that is not base64 at all is rejected", () => {
    const device = createTestDevice();
    for (const text of ["", "   ", "not a key", `${device.publicKey}!`, device.publicKey.replace(/.$/, "*"), "é".repeat(43), device.id]) {
      assert.equal(parsePublicKey(text), undefined, JSON.stringify(text));
    }
  });

  it("A19 every small-order point is rejected, with or without the sign bit, as base64url, base64 or PEM", () => {
    for (const hex of SMALL_ORDER_POINTS_HEX) {
      const raw = Buffer.from(hex, "hex");
      const signed = Buffer.from(raw);
      signed[31] = (signed[31] ?? 0) | 0x80;
      for (const bytes of [raw, signed]) {
        assert.equal(isSmallOrderEncoding(bytes), true, bytes.toString("hex"));
        assert.equal(parsePublicKey(bytes.toString("base64url")), undefined, bytes.toString("hex"));
        assert.equal(parsePublicKey(bytes.toString("base64")), undefined, bytes.toString("hex"));
        assert.equal(parsePublicKey(pemForRawKey(bytes)), undefined, `PEM ${bytes.toString("hex")}`);
      }
    }
  });

  it("A19 every non-canonical y (p ≤ y < 2^255), with or without the sign bit, is rejected", () => {
    for (let low = 0xed; low <= 0xff; low++) {
      for (const top of [0x7f, 0xff]) {
        const raw = Buffer.alloc(32, 0xff);
        raw[0] = low;
        raw[31] = top;
        assert.equal(isNonCanonicalY(raw), true, raw.toString("hex"));
        assert.equal(parsePublicKey(raw.toString("base64url")), undefined, raw.toString("hex"));
      }
    }
  });

  it("y = p − 2 (largest canonical y) is not classified as non-canonical", () => {
    const raw = Buffer.alloc(32, 0xff);
    raw[0] = 0xeb;
    raw[31] = 0x7f;
    assert.equal(isNonCanonicalY(raw), false);
  });

  it("real keys are never classified as small-order or non-canonical", () => {
    for (let i = 0; i < 50; i++) {
      const { publicKeyRaw } = createTestDevice();
      assert.equal(isSmallOrderEncoding(publicKeyRaw), false);
      assert.equal(isNonCanonicalY(publicKeyRaw), false);
    }
  });

  it("never throws and yields either undefined or a 32-byte key whose id is its SHA-256, for arbitrary text", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 200 }),
          fc.uint8Array({ minLength: 0, maxLength: 48 }).map((b) => Buffer.from(b).toString("base64url")),
          fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString("base64")),
          fc.string({ maxLength: 80 }).map((s) => `-----BEGIN PUBLIC KEY-----\n${s}\n-----END PUBLIC KEY-----`),
        ),
        (text) => {
          const parsed = parsePublicKey(text);
          if (parsed === undefined) return;
          assert.equal(parsed.raw.length, 32);
          assert.equal(parsed.deviceId, createHash("sha256").update(parsed.raw).digest("hex"));
          assert.equal(parsed.canonical, parsed.raw.toString("base64url"));
        },
      ),
      { numRuns: 500 },
    );
  });
});
