import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { BACKEND_SECRET_PREFIX, isBackendSecret, verifyBackendCredential } from "../../src/admission/credentials/backend-credential.js";
import { verifyBootstrapToken } from "../../src/admission/credentials/bootstrap-token.js";
import { verifyDeviceToken } from "../../src/admission/credentials/device-token.js";
import { verifySharedSecret } from "../../src/admission/credentials/shared-secret.js";
import { verifyTrustedProxy } from "../../src/admission/credentials/trusted-proxy.js";
import { presentedAny } from "../../src/admission/presented.js";
import { digestsEqual, matchesStoredDigest, secretDigest } from "../../src/admission/secret-digest.js";
import type { CredentialResult } from "../../src/admission/verified-credential.js";
import { createTestDevice, verifiedDeviceFor } from "../support/device.js";
import {
  BACKEND_SECRET,
  BOOTSTRAP_TOKEN,
  NO_AUTH,
  NOW_MS,
  SHARED_PASSWORD,
  SHARED_TOKEN,
  backendRecord,
  bootstrapRecord,
  makePeer,
  pairedDeviceRecord,
  passwordAuth,
  sha256Hex,
  tokenAuth,
  trustedProxyAuth,
} from "../support/admission-fixtures.js";

function kind(r: CredentialResult): string {
  if (r.status === "verified") return `verified:${r.credential.kind}`;
  if (r.status === "rejected") return `rejected:${r.reason}`;
  return "not-mine";
}

describe("secret digests", () => {
  it("digests are always 32 bytes whatever the secret's length", () => {
    for (const s of ["", "a", "x".repeat(10_000), "ünïcödé"]) assert.equal(secretDigest(s).length, 32);
  });

  it("matchesStoredDigest compares a presented secret with its stored hex digest", () => {
    assert.equal(matchesStoredDigest("abc", sha256Hex("abc")), true);
    assert.equal(matchesStoredDigest("abd", sha256Hex("abc")), false);
  });

  it("a malformed or truncated stored digest never matches and never throws", () => {
    for (const stored of ["", "zz", sha256Hex("abc").slice(0, 62), sha256Hex("abc") + "00", "not hex at all"]) {
      assert.equal(matchesStoredDigest("abc", stored), false, stored);
    }
    assert.equal(digestsEqual(Buffer.alloc(31), Buffer.alloc(31)), false);
  });
});

describe("shared secret (token / password)", () => {
  it("the configured token matches", () => {
    assert.equal(kind(verifySharedSecret(tokenAuth(), { token: SHARED_TOKEN })), "verified:shared-secret");
    const r = verifySharedSecret(tokenAuth(), { token: SHARED_TOKEN });
    assert.ok(r.status === "verified" && r.credential.kind === "shared-secret" && r.credential.method === "token");
  });

  it("a missing or blank token is token_missing", () => {
    for (const token of [undefined, "", "   "]) assert.equal(kind(verifySharedSecret(tokenAuth(), { token })), "rejected:token_missing");
  });

  it("a token differing by case, whitespace or one character is token_mismatch", () => {
    for (const token of [SHARED_TOKEN.toUpperCase(), ` ${SHARED_TOKEN}`, `${SHARED_TOKEN} `, SHARED_TOKEN.slice(0, -1), `${SHARED_TOKEN}x`]) {
      assert.equal(kind(verifySharedSecret(tokenAuth(), { token })), "rejected:token_mismatch", JSON.stringify(token));
    }
  });

  it("A23 wrong tokens of every length 1..512 all give token_mismatch, never another reason", () => {
    for (let n = 1; n <= 512; n++) {
      const token = "k".repeat(n);
      assert.equal(kind(verifySharedSecret(tokenAuth(), { token })), "rejected:token_mismatch", `length ${n}`);
    }
    // including prefixes and extensions of the real token
    for (let n = 1; n < SHARED_TOKEN.length; n++) {
      assert.equal(kind(verifySharedSecret(tokenAuth(), { token: SHARED_TOKEN.slice(0, n) })), "rejected:token_mismatch");
    }
  });

  it("A23 arbitrary wrong non-blank tokens all give token_mismatch", () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 300, unit: "binary" }), (token) => {
        fc.pre(token.trim().length > 0 && token !== SHARED_TOKEN);
        assert.equal(kind(verifySharedSecret(tokenAuth(), { token })), "rejected:token_mismatch");
      }),
      { numRuns: 500 },
    );
  });

  it("in token mode a password is not a token", () => {
    assert.equal(kind(verifySharedSecret(tokenAuth(), { password: SHARED_TOKEN })), "rejected:token_missing");
  });

  it("the configured password matches; missing and wrong passwords are distinguished", () => {
    const r = verifySharedSecret(passwordAuth(), { password: SHARED_PASSWORD });
    assert.ok(r.status === "verified" && r.credential.kind === "shared-secret" && r.credential.method === "password");
    assert.equal(kind(verifySharedSecret(passwordAuth(), {})), "rejected:password_missing");
    assert.equal(kind(verifySharedSecret(passwordAuth(), { password: " " })), "rejected:password_missing");
    assert.equal(kind(verifySharedSecret(passwordAuth(), { password: "wrong" })), "rejected:password_mismatch");
    // in password mode a token equal to the password is not accepted
    assert.equal(kind(verifySharedSecret(passwordAuth(), { token: SHARED_PASSWORD })), "rejected:password_missing");
  });

  it("auth mode none and trusted-proxy leave the shared secret module out", () => {
    assert.equal(kind(verifySharedSecret(NO_AUTH, { token: SHARED_TOKEN })), "not-mine");
    assert.equal(kind(verifySharedSecret(trustedProxyAuth(), { token: SHARED_TOKEN })), "not-mine");
  });
});

describe("device token", () => {
  const deviceA = createTestDevice();
  const deviceB = createTestDevice();
  const verifiedA = verifiedDeviceFor(deviceA);
  const verifiedB = verifiedDeviceFor(deviceB);
  const TOKEN_A = "device-token-of-A-8c2e";
  const TOKEN_B = "device-token-of-B-1f7a";
  const recordA = pairedDeviceRecord(deviceA, { approvedScopes: ["operator.read"], tokens: { operator: { token: TOKEN_A, scopes: ["operator.read"] } } });
  const recordB = pairedDeviceRecord(deviceB, { approvedScopes: ["operator.read"], tokens: { operator: { token: TOKEN_B, scopes: ["operator.read"] } } });

  it("verifies a device token presented with the key it was issued to, for its role, in auth.deviceToken or auth.token", () => {
    for (const presented of [{ deviceToken: TOKEN_A }, { token: TOKEN_A }, { token: "", deviceToken: TOKEN_A }]) {
      const r = verifyDeviceToken(presented, verifiedA, recordA, "operator");
      assert.ok(r.status === "verified" && r.credential.kind === "device-token", JSON.stringify(presented));
      assert.equal(r.credential.deviceId, deviceA.id);
      assert.deepEqual(r.credential.scopes, ["operator.read"]);
    }
  });

  it("A24 device A's token presented with device B's key is rejected", () => {
    // the store lookup is by B's (verified) id: B's record
    assert.equal(kind(verifyDeviceToken({ deviceToken: TOKEN_A }, verifiedB, recordB, "operator")), "rejected:device_token_mismatch");
    // even if the lookup handed over A's record
    assert.equal(kind(verifyDeviceToken({ deviceToken: TOKEN_A }, verifiedB, recordA, "operator")), "rejected:device_token_mismatch");
  });

  it("A24 a record whose public key differs from the proven key is not used", () => {
    const forged = { ...recordA, publicKey: deviceB.publicKey };
    assert.equal(kind(verifyDeviceToken({ deviceToken: TOKEN_A }, verifiedA, forged, "operator")), "rejected:device_token_mismatch");
  });

  it("a device token without a device proof is not a credential", () => {
    assert.equal(kind(verifyDeviceToken({ deviceToken: TOKEN_A }, undefined, recordA, "operator")), "not-mine");
  });

  it("A26 a revoked device token is rejected", () => {
    const revoked = pairedDeviceRecord(deviceA, { tokens: { operator: { token: TOKEN_A, scopes: ["operator.read"], revokedAtMs: NOW_MS - 1 } } });
    assert.equal(kind(verifyDeviceToken({ deviceToken: TOKEN_A }, verifiedA, revoked, "operator")), "rejected:device_token_mismatch");
  });

  it("A26 a rotated-away token (the record now holds another hash) is rejected", () => {
    const rotated = pairedDeviceRecord(deviceA, { tokens: { operator: { token: "the-new-token", scopes: ["operator.read"] } } });
    assert.equal(kind(verifyDeviceToken({ deviceToken: TOKEN_A }, verifiedA, rotated, "operator")), "rejected:device_token_mismatch");
  });

  it("a token is bound to its role: the verified credential names the role it was issued for, whatever role is asked", () => {
    const nodeOnly = pairedDeviceRecord(deviceA, { roles: ["node"], tokens: { node: { token: TOKEN_A } } });
    for (const asked of ["operator", "node"] as const) {
      const r = verifyDeviceToken({ deviceToken: TOKEN_A }, verifiedA, nodeOnly, asked);
      assert.ok(r.status === "verified" && r.credential.kind === "device-token");
      assert.equal(r.credential.role, "node");
    }
  });

  it("a token for a role the record no longer lists is rejected", () => {
    const dropped = pairedDeviceRecord(deviceA, { roles: ["node"], tokens: { operator: { token: TOKEN_A } } });
    assert.equal(kind(verifyDeviceToken({ deviceToken: TOKEN_A }, verifiedA, dropped, "operator")), "rejected:device_token_mismatch");
  });

  it("an unpaired device's token is rejected", () => {
    assert.equal(kind(verifyDeviceToken({ deviceToken: TOKEN_A }, verifiedA, undefined, "operator")), "rejected:device_token_mismatch");
  });

  it("a candidate from auth.token that does not match is 'not mine' (it may be the shared token)", () => {
    assert.equal(kind(verifyDeviceToken({ token: SHARED_TOKEN }, verifiedA, recordA, "operator")), "not-mine");
    assert.equal(kind(verifyDeviceToken({ token: SHARED_TOKEN }, verifiedA, undefined, "operator")), "not-mine");
  });

  it("blank candidates are 'not mine'", () => {
    assert.equal(kind(verifyDeviceToken({ token: " ", deviceToken: "" }, verifiedA, recordA, "operator")), "not-mine");
  });
});

describe("bootstrap token", () => {
  const device = createTestDevice();
  const verified = verifiedDeviceFor(device);

  it("verifies an unexpired, unconsumed token for a role its profile lists", () => {
    const r = verifyBootstrapToken({ bootstrapToken: BOOTSTRAP_TOKEN }, verified, bootstrapRecord(), "node", NOW_MS);
    assert.ok(r.status === "verified" && r.credential.kind === "bootstrap-token");
    assert.deepEqual(r.credential.roles, ["node", "operator"]);
  });

  it("A27 an expired bootstrap token is rejected (at and after expiry)", () => {
    for (const expiresAtMs of [NOW_MS, NOW_MS - 1, NOW_MS - 600_000]) {
      const r = verifyBootstrapToken({ bootstrapToken: BOOTSTRAP_TOKEN }, verified, bootstrapRecord({ expiresAtMs }), "operator", NOW_MS);
      assert.equal(kind(r), "rejected:bootstrap_token_invalid");
    }
  });

  it("A27 a consumed bootstrap token (second use) is rejected", () => {
    const r = verifyBootstrapToken({ bootstrapToken: BOOTSTRAP_TOKEN }, verified, bootstrapRecord({ consumedAtMs: NOW_MS - 10 }), "operator", NOW_MS);
    assert.equal(kind(r), "rejected:bootstrap_token_invalid");
  });

  it("A27 a bootstrap token for a role its profile does not list is rejected", () => {
    const r = verifyBootstrapToken({ bootstrapToken: BOOTSTRAP_TOKEN }, verified, bootstrapRecord({ roles: ["node"] }), "operator", NOW_MS);
    assert.equal(kind(r), "rejected:bootstrap_token_invalid");
  });

  it("a wrong token or no store record is rejected", () => {
    assert.equal(kind(verifyBootstrapToken({ bootstrapToken: "wrong" }, verified, bootstrapRecord(), "node", NOW_MS)), "rejected:bootstrap_token_invalid");
    assert.equal(kind(verifyBootstrapToken({ bootstrapToken: BOOTSTRAP_TOKEN }, verified, undefined, "node", NOW_MS)), "rejected:bootstrap_token_invalid");
  });

  it("needs a device proof and a non-blank token, else it is 'not mine'", () => {
    assert.equal(kind(verifyBootstrapToken({ bootstrapToken: BOOTSTRAP_TOKEN }, undefined, bootstrapRecord(), "node", NOW_MS)), "not-mine");
    assert.equal(kind(verifyBootstrapToken({ bootstrapToken: "  " }, verified, bootstrapRecord(), "node", NOW_MS)), "not-mine");
    assert.equal(kind(verifyBootstrapToken({ token: BOOTSTRAP_TOKEN }, verified, bootstrapRecord(), "node", NOW_MS)), "not-mine");
  });
});

describe("backend credential", () => {
  it("backend secrets carry the gwb_ prefix", () => {
    assert.equal(BACKEND_SECRET_PREFIX, "gwb_");
    assert.equal(isBackendSecret(BACKEND_SECRET), true);
    assert.equal(isBackendSecret(SHARED_TOKEN), false);
    assert.equal(isBackendSecret(undefined), false);
  });

  it("a registered, unrevoked backend secret in auth.token verifies with the record's scopes and name", () => {
    const r = verifyBackendCredential({ token: BACKEND_SECRET }, backendRecord({ scopes: ["operator.read"] }));
    assert.ok(r.status === "verified" && r.credential.kind === "backend");
    assert.deepEqual(r.credential.scopes, ["operator.read"]);
    assert.equal(r.credential.name, "ci-runner");
  });

  it("a revoked backend secret is rejected", () => {
    assert.equal(kind(verifyBackendCredential({ token: BACKEND_SECRET }, backendRecord({ revokedAtMs: NOW_MS - 1 }))), "rejected:backend_credential_invalid");
  });

  it("a prefixed secret with no matching record, or a record for another secret, is rejected", () => {
    assert.equal(kind(verifyBackendCredential({ token: "gwb_guess" }, undefined)), "rejected:backend_credential_invalid");
    assert.equal(kind(verifyBackendCredential({ token: "gwb_guess" }, backendRecord())), "rejected:backend_credential_invalid");
  });

  it("A28 the shared operator token is never a backend credential, even if a lookup returned a record", () => {
    assert.equal(kind(verifyBackendCredential({ token: SHARED_TOKEN }, undefined)), "not-mine");
    assert.equal(kind(verifyBackendCredential({ token: SHARED_TOKEN }, backendRecord({ secret: SHARED_TOKEN }))), "not-mine");
    assert.equal(kind(verifyBackendCredential({ password: BACKEND_SECRET }, backendRecord())), "not-mine");
    assert.equal(kind(verifyBackendCredential({ deviceToken: BACKEND_SECRET }, backendRecord())), "not-mine");
  });
});

describe("trusted proxy", () => {
  const auth = trustedProxyAuth({ requiredHeaders: ["x-forwarded-proto"], allowUsers: ["alice"] });
  const trustedProxies = ["10.0.0.0/8", "127.0.0.1"];
  const headers = { "x-forwarded-user": "alice", "x-forwarded-proto": "https" };

  it("verifies the user a trusted, non-loopback proxy names", () => {
    const r = verifyTrustedProxy(auth, makePeer({ remoteAddress: "10.0.0.2", forwardedFor: "203.0.113.5", proxyHeaders: headers, trustedProxies }));
    assert.ok(r.status === "verified" && r.credential.kind === "trusted-proxy");
    assert.equal(r.credential.user, "alice");
  });

  it("A34 identity headers from an untrusted peer are refused", () => {
    const r = verifyTrustedProxy(auth, makePeer({ remoteAddress: "203.0.113.9", proxyHeaders: headers, trustedProxies }));
    assert.equal(kind(r), "rejected:trusted_proxy_untrusted_source");
  });

  it("a loopback peer is refused even when configured as trusted (any local process could pose as the proxy)", () => {
    const r = verifyTrustedProxy(auth, makePeer({ remoteAddress: "127.0.0.1", proxyHeaders: headers, trustedProxies }));
    assert.equal(kind(r), "rejected:trusted_proxy_loopback_source");
  });

  it("missing required header, missing user and a user not on the allowlist are refused", () => {
    const peer = (h: Record<string, string>) => makePeer({ remoteAddress: "10.0.0.2", proxyHeaders: h, trustedProxies });
    assert.equal(kind(verifyTrustedProxy(auth, peer({ "x-forwarded-user": "alice" }))), "rejected:trusted_proxy_missing_header");
    assert.equal(kind(verifyTrustedProxy(auth, peer({ "x-forwarded-user": "alice", "x-forwarded-proto": " " }))), "rejected:trusted_proxy_missing_header");
    assert.equal(kind(verifyTrustedProxy(auth, peer({ "x-forwarded-proto": "https" }))), "rejected:trusted_proxy_user_missing");
    assert.equal(kind(verifyTrustedProxy(auth, peer({ "x-forwarded-proto": "https", "x-forwarded-user": "mallory" }))), "rejected:trusted_proxy_user_not_allowed");
  });

  it("configured header names that are Object.prototype members read as absent (no throw, no inherited value)", () => {
    const peer = makePeer({ remoteAddress: "10.0.0.2", proxyHeaders: { "x-forwarded-user": "alice" }, trustedProxies });
    for (const name of ["constructor", "__proto__", "toString", "hasOwnProperty"]) {
      assert.equal(kind(verifyTrustedProxy(trustedProxyAuth({ userHeader: name }), peer)), "rejected:trusted_proxy_user_missing", name);
      assert.equal(kind(verifyTrustedProxy(trustedProxyAuth({ requiredHeaders: [name] }), peer)), "rejected:trusted_proxy_missing_header", name);
    }
  });

  it("other auth modes leave it out", () => {
    assert.equal(kind(verifyTrustedProxy(tokenAuth(), makePeer({ remoteAddress: "10.0.0.2", proxyHeaders: headers, trustedProxies }))), "not-mine");
  });
});

describe("presentedAny", () => {
  it("is true only when some secret is non-blank", () => {
    assert.equal(presentedAny({}), false);
    assert.equal(presentedAny({ token: "", password: "  ", deviceToken: "\t", bootstrapToken: "" }), false);
    for (const key of ["token", "password", "deviceToken", "bootstrapToken"] as const) {
      assert.equal(presentedAny({ [key]: "x" }), true, key);
    }
  });
});
