import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import fc from "fast-check";
import { parsePublicKey } from "../../src/identity/device-key.js";
import {
  DEVICE_SIGNATURE_SKEW_MS,
  verifyDeviceProof,
  type DeviceProofClaim,
  type DeviceProofInput,
  type DeviceProofResult,
} from "../../src/identity/verify-device-proof.js";
import type { DetailCode } from "../../src/protocol/error-codes.js";
import { CLIENT_IDS, CLIENT_MODES } from "../../src/protocol/enums.js";
import {
  connectPayload,
  createTestDevice,
  deviceProof,
  signConnect,
  signText,
  SMALL_ORDER_POINTS_HEX,
  type SignConnectInput,
  type TestDevice,
} from "../support/device.js";

const NOW = 1_737_264_000_000;
const NONCE = "3c1e9a7b-5d2f-4e8a-b0c6-1f4d7a9e2b5c";
const deviceA = createTestDevice();
const deviceB = createTestDevice();

type Signed = DeviceProofInput["signed"];

const SIGNED: Signed = {
  clientId: "gateway-client",
  clientMode: "backend",
  role: "operator",
  scopes: ["operator.admin", "operator.read"],
  token: "shared-token",
  platform: "linux",
  deviceFamily: "desktop",
};

function signInputFor(signed: Signed, nonce = NONCE, signedAt = NOW): SignConnectInput {
  return { ...signed, ...(signed.deviceFamily === undefined ? {} : { deviceFamily: signed.deviceFamily }), nonce, signedAt };
}

interface Case {
  device?: TestDevice;
  /** The connect params as sent (what the server checks the signature against). */
  signed?: Partial<Signed>;
  /** What the client actually signed, when it differs from the params. */
  signedByClient?: Partial<SignConnectInput>;
  /** Fields of the device block as sent. */
  wire?: Partial<DeviceProofClaim>;
  challengeNonce?: string;
  nowMs?: number;
  skewMs?: number;
}

function run(c: Case = {}): DeviceProofResult {
  const device = c.device ?? deviceA;
  const signed = { ...SIGNED, ...c.signed };
  const claim = { ...deviceProof(device, { ...signInputFor(signed), ...c.signedByClient }), ...c.wire };
  return verifyDeviceProof({
    device: claim,
    signed,
    challengeNonce: c.challengeNonce ?? NONCE,
    nowMs: c.nowMs ?? NOW,
    ...(c.skewMs !== undefined ? { skewMs: c.skewMs } : {}),
  });
}

function assertFails(result: DeviceProofResult, code: DetailCode, reason: string, message: string): void {
  assert.equal(result.ok, false, `expected ${code}, got ok`);
  if (result.ok) return;
  assert.equal(result.error.detailCode, code);
  assert.equal(result.error.code, "INVALID_REQUEST");
  assert.equal(result.error.message, message);
  assert.equal(result.error.details?.["reason"], reason);
  assert.equal(result.error.close?.code, 1008);
  assert.equal(result.error.close?.reason, message);
}

const idMismatch = (r: DeviceProofResult) => assertFails(r, "DEVICE_AUTH_DEVICE_ID_MISMATCH", "device-id-mismatch", "device identity mismatch");
const expired = (r: DeviceProofResult) => assertFails(r, "DEVICE_AUTH_SIGNATURE_EXPIRED", "device-signature-stale", "device signature expired");
const nonceRequired = (r: DeviceProofResult) => assertFails(r, "DEVICE_AUTH_NONCE_REQUIRED", "device-nonce-missing", "device nonce required");
const nonceMismatch = (r: DeviceProofResult) => assertFails(r, "DEVICE_AUTH_NONCE_MISMATCH", "device-nonce-mismatch", "device nonce mismatch");
const badSignature = (r: DeviceProofResult) => assertFails(r, "DEVICE_AUTH_SIGNATURE_INVALID", "device-signature", "device signature invalid");
const badKey = (r: DeviceProofResult) => assertFails(r, "DEVICE_AUTH_PUBLIC_KEY_INVALID", "device-public-key", "device public key invalid");

describe("verifyDeviceProof: valid proofs", () => {
  it("accepts a v3 signature over this socket's nonce and reports the canonical key and id", () => {
    const r = run();
    assert.ok(r.ok);
    assert.equal(r.device.deviceId, deviceA.id);
    assert.equal(r.device.publicKey, deviceA.publicKey);
    assert.equal(r.device.signatureVersion, "v3");
  });

  it("accepts a v2 signature (the Control UI signs v2) and records the version", () => {
    const r = run({ signedByClient: { version: "v2" } });
    assert.ok(r.ok);
    assert.equal(r.device.signatureVersion, "v2");
  });

  it("accepts the default skew of 120 000 ms exactly, in both directions", () => {
    assert.equal(DEVICE_SIGNATURE_SKEW_MS, 120_000);
    for (const delta of [-120_000, 120_000, -1, 1, 0]) {
      const signedAt = NOW + delta;
      assert.ok(run({ signedByClient: { signedAt }, wire: { signedAt } }).ok, `delta ${delta}`);
    }
  });

  it("accepts a standard-base64 signature and a standard-base64 or PEM public key, canonicalizing the key", () => {
    const base = deviceProof(deviceA, signInputFor(SIGNED));
    const stdSig = Buffer.from(base.signature, "base64url").toString("base64");
    for (const publicKey of [deviceA.publicKeyRaw.toString("base64"), deviceA.publicKeyPem]) {
      const r = run({ wire: { publicKey, signature: stdSig } });
      assert.ok(r.ok);
      assert.equal(r.device.publicKey, deviceA.publicKey);
    }
  });

  it("accepts a nonce with surrounding whitespace when it equals the challenge after trimming", () => {
    const nonce = ` ${NONCE} `;
    assert.ok(run({ signedByClient: { nonce }, wire: { nonce } }).ok);
  });

  it("v3: platform and deviceFamily are compared after normalization (case, surrounding spaces)", () => {
    const r = run({ signedByClient: { platform: " LINUX ", deviceFamily: "Desktop" } });
    assert.ok(r.ok);
    assert.equal(r.device.signatureVersion, "v3");
  });

  it("v2 does not cover platform or deviceFamily: a v2 proof verifies whatever platform is claimed", () => {
    const r = run({ signedByClient: { version: "v2" }, signed: { platform: "plan9", deviceFamily: "mainframe" } });
    assert.ok(r.ok);
    assert.equal(r.device.signatureVersion, "v2");
  });

  it("uses the supplied parseKey (key cache) instead of parsing again", () => {
    let calls = 0;
    const signed = SIGNED;
    const r = verifyDeviceProof({
      device: deviceProof(deviceA, signInputFor(signed)),
      signed,
      challengeNonce: NONCE,
      nowMs: NOW,
      parseKey: (text) => {
        calls++;
        return parsePublicKey(text);
      },
    });
    assert.ok(r.ok);
    assert.equal(calls, 1);
  });
});

describe("verifyDeviceProof: rejections", () => {
  it("A14 device id that is not the SHA-256 of the key is rejected with DEVICE_AUTH_DEVICE_ID_MISMATCH", () => {
    idMismatch(run({ wire: { id: deviceB.id } }));
    idMismatch(run({ wire: { id: "0".repeat(64) } }));
    idMismatch(run({ wire: { id: deviceA.id.toUpperCase() } }));
    idMismatch(run({ wire: { id: deviceA.id.slice(0, 63) } }));
    // Device B's key with device A's id, signed by B over A's id.
    idMismatch(run({ device: deviceB, signedByClient: { deviceId: deviceA.id }, wire: { id: deviceA.id } }));
  });

  it("A15 a signature over a different nonce is rejected with DEVICE_AUTH_SIGNATURE_INVALID", () => {
    // The client sends this socket's nonce but signed another one.
    badSignature(run({ signedByClient: { nonce: "another-nonce" }, wire: { nonce: NONCE } }));
  });

  it("A15/A17 a proof bound to another socket's nonce is rejected with DEVICE_AUTH_NONCE_MISMATCH (replay)", () => {
    nonceMismatch(run({ challengeNonce: "nonce-of-socket-B" }));
    nonceMismatch(run({ challengeNonce: NONCE.toUpperCase() }));
  });

  it("A16 signedAt 10 minutes in the past or the future is rejected with DEVICE_AUTH_SIGNATURE_EXPIRED", () => {
    for (const delta of [-600_000, 600_000, -120_001, 120_001]) {
      const signedAt = NOW + delta;
      expired(run({ signedByClient: { signedAt }, wire: { signedAt } }));
    }
  });

  it("A16 the skew window is configurable and still enforced", () => {
    const signedAt = NOW - 30_001;
    expired(run({ signedByClient: { signedAt }, wire: { signedAt }, skewMs: 30_000 }));
    assert.ok(run({ signedByClient: { signedAt }, wire: { signedAt }, skewMs: 30_001 }).ok);
  });

  it("A16 a non-finite signedAt or clock is treated as expired, never as within the window", () => {
    // A client that signs "NaN" as signedAt must not obtain a proof that never goes stale.
    expired(run({ signedByClient: { signedAt: Number.NaN }, wire: { signedAt: Number.NaN } }));
    expired(run({ wire: { signedAt: Number.NaN } }));
    expired(run({ wire: { signedAt: Number.POSITIVE_INFINITY } }));
    expired(run({ nowMs: Number.NaN }));
  });

  it("A18 a signed role different from the requested role is rejected with DEVICE_AUTH_SIGNATURE_INVALID", () => {
    badSignature(run({ signedByClient: { role: "node" } }));
  });

  it("A18 signed scopes different from the requested scopes (content or order) are rejected", () => {
    badSignature(run({ signedByClient: { scopes: ["operator.read"] } }));
    badSignature(run({ signedByClient: { scopes: ["operator.read", "operator.admin"] } }));
    badSignature(run({ signedByClient: { scopes: [] } }));
  });

  it("A18 a signed client id or mode different from the params is rejected", () => {
    badSignature(run({ signedByClient: { clientId: "cli" } }));
    badSignature(run({ signedByClient: { clientMode: "cli" } }));
    badSignature(run({ signedByClient: { clientId: "cli", version: "v2" } }));
  });

  it("A18 a signed token different from the presented token is rejected (also an empty vs a present token)", () => {
    badSignature(run({ signedByClient: { token: "other-token" } }));
    badSignature(run({ signedByClient: { token: "" } }));
    badSignature(run({ signed: { token: "" }, signedByClient: { token: "shared-token" } }));
  });

  it("A18 v3: a signed platform or deviceFamily different from the params is rejected", () => {
    badSignature(run({ signedByClient: { platform: "darwin" } }));
    badSignature(run({ signedByClient: { deviceFamily: "phone" } }));
    badSignature(run({ signedByClient: { deviceFamily: undefined } }));
  });

  it("A18 a signedAt in the payload different from device.signedAt is rejected", () => {
    badSignature(run({ signedByClient: { signedAt: NOW - 1 }, wire: { signedAt: NOW } }));
  });

  it("A19 a malformed public key is rejected with DEVICE_AUTH_PUBLIC_KEY_INVALID", () => {
    const smallOrder = Buffer.from(SMALL_ORDER_POINTS_HEX[2] as string, "hex").toString("base64url");
    for (const publicKey of [randomBytes(31).toString("base64url"), randomBytes(33).toString("base64url"), "not base64!", smallOrder, " "]) {
      badKey(run({ wire: { publicKey } }));
    }
  });

  it("A20 a blank nonce is rejected with DEVICE_AUTH_NONCE_REQUIRED", () => {
    nonceRequired(run({ wire: { nonce: "" } }));
    nonceRequired(run({ wire: { nonce: "  \t" } }));
  });

  it("A20 a missing, garbled or wrong-length signature is rejected with DEVICE_AUTH_SIGNATURE_INVALID", () => {
    const good = Buffer.from(deviceProof(deviceA, signInputFor(SIGNED)).signature, "base64url");
    for (const signature of [
      "",
      "   ",
      "!!!not-base64!!!",
      good.subarray(0, 63).toString("base64url"),
      Buffer.concat([good, Buffer.from([0])]).toString("base64url"),
      randomBytes(64).toString("base64url"),
      Buffer.alloc(64).toString("base64url"),
    ]) {
      badSignature(run({ wire: { signature } }));
    }
    const flipped = Buffer.from(good);
    flipped[10] = (flipped[10] ?? 0) ^ 0x01;
    badSignature(run({ wire: { signature: flipped.toString("base64url") } }));
  });

  it("A20 a signature made by another key over the same payload is rejected", () => {
    const signature = signConnect(deviceB, { ...signInputFor(SIGNED), deviceId: deviceA.id });
    badSignature(run({ wire: { signature } }));
  });

  it("a v1 (pre-nonce) payload is not accepted", () => {
    const v1 = ["v1", deviceA.id, SIGNED.clientId, SIGNED.clientMode, SIGNED.role, SIGNED.scopes.join(","), String(NOW), SIGNED.token].join("|");
    badSignature(run({ wire: { signature: signText(deviceA, v1) } }));
  });
});

describe("verifyDeviceProof: error order (key, id, skew, nonce present, nonce match, signature)", () => {
  const stale = NOW - 600_000;

  it("an invalid key is reported before an id mismatch", () => {
    badKey(run({ wire: { publicKey: "xx", id: "0".repeat(64) } }));
  });

  it("an id mismatch is reported before a stale signature", () => {
    idMismatch(run({ wire: { id: deviceB.id, signedAt: stale } }));
  });

  it("a stale signature is reported before a blank nonce", () => {
    expired(run({ wire: { signedAt: stale, nonce: " " } }));
  });

  it("a blank nonce is reported before a bad signature", () => {
    nonceRequired(run({ wire: { nonce: "", signature: "garbage" } }));
  });

  it("a nonce mismatch is reported before a bad signature", () => {
    nonceMismatch(run({ wire: { nonce: "other", signature: "garbage" } }));
  });
});

describe("verifyDeviceProof: properties", () => {
  const signedArb = fc.record({
    clientId: fc.constantFrom(...CLIENT_IDS),
    clientMode: fc.constantFrom(...CLIENT_MODES),
    role: fc.constantFrom("operator", "node"),
    scopes: fc.array(fc.constantFrom("operator.admin", "operator.read", "operator.write", "operator.pairing", "node.camera"), { maxLength: 4 }),
    token: fc.string({ maxLength: 50 }),
    platform: fc.string({ minLength: 1, maxLength: 20 }),
    deviceFamily: fc.option(fc.string({ minLength: 1, maxLength: 20 }), { nil: undefined }),
  });

  it("a proof over exactly the sent params verifies (v2 and v3), for arbitrary params", () => {
    fc.assert(
      fc.property(signedArb, fc.constantFrom("v2" as const, "v3" as const), fc.integer({ min: -120_000, max: 120_000 }), (signed, version, delta) => {
        const signedAt = NOW + delta;
        const r = verifyDeviceProof({
          device: deviceProof(deviceA, { ...signInputFor(signed, NONCE, signedAt), version }),
          signed,
          challengeNonce: NONCE,
          nowMs: NOW,
        });
        assert.ok(r.ok);
        assert.equal(r.device.signatureVersion, version);
      }),
      { numRuns: 200 },
    );
  });

  it("A18 changing any one signed field after signing (v3) makes the signature invalid", () => {
    fc.assert(
      fc.property(
        signedArb,
        fc.constantFrom("clientId", "clientMode", "role", "scopes", "token", "platform", "deviceFamily"),
        (signed, field) => {
          const sent: Signed = { ...signed };
          let mutated: Signed;
          switch (field) {
            case "clientId":
              mutated = { ...sent, clientId: sent.clientId === "cli" ? "gateway-client" : "cli" };
              break;
            case "clientMode":
              mutated = { ...sent, clientMode: sent.clientMode === "backend" ? "cli" : "backend" };
              break;
            case "role":
              mutated = { ...sent, role: sent.role === "node" ? "operator" : "node" };
              break;
            case "scopes":
              mutated = { ...sent, scopes: [...sent.scopes, "operator.admin"] };
              break;
            case "token":
              mutated = { ...sent, token: sent.token + "x" };
              break;
            case "platform":
              mutated = { ...sent, platform: sent.platform.trim() + "x" };
              break;
            case "deviceFamily":
              mutated = { ...sent, deviceFamily: (sent.deviceFamily ?? "").trim() + "x" };
              break;
          }
          // The client signed `sent`; the params now say `mutated`.
          assert.notEqual(connectPayload(deviceA.id, signInputFor(sent)), connectPayload(deviceA.id, signInputFor(mutated)));
          const r = verifyDeviceProof({ device: deviceProof(deviceA, signInputFor(sent)), signed: mutated, challengeNonce: NONCE, nowMs: NOW });
          badSignature(r);
        },
      ),
      { numRuns: 200 },
    );
  });
});
