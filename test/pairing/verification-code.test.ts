import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { isVerificationCode, verificationCode } from "../../src/pairing/verification-code.js";

// The pairing verification code (src/pairing/verification-code.ts): six
// digits both sides compute from the request id and the device's public key.

describe("pairing verification code", () => {
  it("is the documented derivation: SHA-256 of the domain tag, request id and public key, first 48 bits modulo 10^6 (a vector computed independently)", () => {
    const request = { requestId: "6f1d7c79-550b-4178-b99a-809898590940", publicKey: "MCowBQYDK2VwAyEAx8xq1n0d3CqM9fQzY6rD5c8b0yQ2m3w4v5u6t7s8r9o" };
    assert.equal(verificationCode(request), "350417");
  });

  it("is always six digits and the same for the same request", () => {
    fc.assert(
      fc.property(fc.uuid(), fc.string({ minLength: 1, maxLength: 64 }), (requestId, publicKey) => {
        const code = verificationCode({ requestId, publicKey });
        assert.ok(isVerificationCode(code), code);
        assert.equal(verificationCode({ requestId, publicKey }), code);
      }),
    );
  });

  it("depends on both the request id and the key: over 5000 fresh requests for one key, codes spread like random six-digit numbers", () => {
    const publicKey = "MCowBQYDK2VwAyEA-one-device-key";
    const codes = new Set<string>();
    for (let i = 0; i < 5000; i++) codes.add(verificationCode({ requestId: crypto.randomUUID(), publicKey }));
    // Expected collisions among 5000 uniform draws from 10^6: about 12.5; far more would mean a weak spread.
    assert.ok(codes.size > 4950, `${5000 - codes.size} collisions`);
    const requestId = "00000000-0000-4000-8000-000000000000";
    assert.notEqual(verificationCode({ requestId, publicKey: "key-a" }), verificationCode({ requestId, publicKey: "key-b" }));
  });

  it("accepts as a code only exactly six ASCII digits", () => {
    for (const good of ["000000", "123456"]) assert.ok(isVerificationCode(good));
    for (const bad of ["", "12345", "1234567", "12345a", " 123456", "１２３４５６", "123456\n"]) assert.ok(!isVerificationCode(bad), JSON.stringify(bad));
  });
});
