import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { checkOrigin, normalizeAllowedOrigin } from "../../src/admission/origin.js";
import { loopbackPeer, makePeer, remotePeer } from "../support/admission-fixtures.js";

const ALLOWED = ["https://control.example.com", "http://localhost:5173"].map(normalizeAllowedOrigin);

function checkFrom(origin: string | undefined, where: "local" | "remote" | "forwarded-loopback" = "remote", allowed = ALLOWED) {
  const peer =
    where === "local"
      ? loopbackPeer({ ...(origin !== undefined ? { origin } : {}) })
      : where === "forwarded-loopback"
        ? makePeer({ remoteAddress: "127.0.0.1", forwardedFor: "127.0.0.1", ...(origin !== undefined ? { origin } : {}) })
        : remotePeer("203.0.113.7", { ...(origin !== undefined ? { origin } : {}) });
  return checkOrigin(peer, allowed);
}

const notAllowed = { ok: false, reason: "origin not allowed" } as const;
const invalid = { ok: false, reason: "origin missing or invalid" } as const;

describe("checkOrigin", () => {
  it("A37 a page on https://evil.example is rejected, from a remote or a local peer", () => {
    assert.deepEqual(checkFrom("https://evil.example"), notAllowed);
    assert.deepEqual(checkFrom("https://evil.example", "local"), notAllowed);
  });

  it("A38 Origin: null (any case) is rejected as missing or invalid, even on a direct local connection", () => {
    for (const origin of ["null", "NULL", " null "]) {
      assert.deepEqual(checkFrom(origin, "local"), invalid, origin);
      assert.deepEqual(checkFrom(origin), invalid, origin);
    }
  });

  it("A38 look-alike hosts of loopback are rejected even on a direct local connection", () => {
    for (const origin of [
      "http://127.0.0.1.evil.example",
      "http://localhost.evil.example",
      "http://evil.example.localhost.example",
      "http://127.0.0.1.nip.io",
      "http://localhost-evil.example",
      "http://xn--localhst-0za.example",
    ]) {
      assert.deepEqual(checkFrom(origin, "local"), notAllowed, origin);
    }
  });

  it("A38 origins carrying credentials, paths, queries or fragments are invalid (no userinfo tricks)", () => {
    for (const origin of [
      "http://127.0.0.1@evil.example",
      "http://evil.example@127.0.0.1",
      "http://localhost/evil",
      "http://localhost:18789/",
      "http://localhost?x=1",
      "http://localhost#frag",
    ]) {
      assert.deepEqual(checkFrom(origin, "local"), invalid, origin);
    }
  });

  it("rejects missing, blank, unparsable and non-http(s) origins as invalid", () => {
    for (const origin of [undefined, "", "   ", "not a url", "file://", "file:///etc/passwd", "chrome-extension://abcdef", "ws://localhost:18789", "data:text/html,hi", "javascript:alert(1)"]) {
      assert.deepEqual(checkFrom(origin, "local"), invalid, String(origin));
    }
  });

  it("an allowlisted exact origin passes from a remote peer", () => {
    assert.deepEqual(checkFrom("https://control.example.com"), { ok: true });
    assert.deepEqual(checkFrom("http://localhost:5173"), { ok: true });
  });

  it("allowlist comparison is case-insensitive on scheme and host and knows default ports", () => {
    assert.deepEqual(checkFrom("HTTPS://Control.Example.COM"), { ok: true });
    assert.deepEqual(checkFrom("https://control.example.com:443"), { ok: true });
  });

  it("an allowlisted host with another scheme, port or subdomain does not pass", () => {
    for (const origin of [
      "http://control.example.com",
      "https://control.example.com:8443",
      "https://evil.control.example.com",
      "https://control.example.com.evil.example",
      "http://localhost:5174",
    ]) {
      assert.deepEqual(checkFrom(origin), notAllowed, origin);
    }
  });

  it("a loopback origin on a direct local connection passes (localhost, 127.x, [::1], trailing dot)", () => {
    for (const origin of ["http://localhost:18789", "http://127.0.0.1:18789", "https://127.0.0.2", "http://[::1]:18789", "http://LOCALHOST", "http://localhost.:18789"]) {
      assert.deepEqual(checkFrom(origin, "local", []), { ok: true }, origin);
    }
  });

  it("a loopback origin from a remote peer does not pass", () => {
    assert.deepEqual(checkFrom("http://localhost:18789", "remote", []), notAllowed);
    assert.deepEqual(checkFrom("http://127.0.0.1:18789", "remote", []), notAllowed);
  });

  it("A35 a loopback origin through forwarding headers (not direct_local) does not pass", () => {
    assert.deepEqual(checkFrom("http://localhost:18789", "forwarded-loopback", []), notAllowed);
  });

  it("never throws and never passes an origin that is neither allowlisted nor loopback-on-local", () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.webUrl(), fc.webUrl().map((u) => new URL(u).origin)), fc.boolean(), (origin, local) => {
        const r = checkFrom(origin, local ? "local" : "remote");
        if (!r.ok) return;
        const url = new URL(origin.trim());
        const host = url.hostname.replace(/\.+$/, "").toLowerCase();
        const loopbackHost = host === "localhost" || host === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(host);
        assert.ok(ALLOWED.includes(url.origin.toLowerCase()) || (local && loopbackHost), origin);
      }),
      { numRuns: 500 },
    );
  });
});

describe("normalizeAllowedOrigin", () => {
  it("lowercases and drops default ports", () => {
    assert.equal(normalizeAllowedOrigin("HTTPS://Control.Example.com:443"), "https://control.example.com");
    assert.equal(normalizeAllowedOrigin("http://LOCALHOST:8080"), "http://localhost:8080");
  });

  it("throws on entries that are not a bare http(s) origin", () => {
    for (const entry of ["*", "null", "", "https://a.example/", "https://a.example/path", "ftp://a.example", "a.example"]) {
      assert.throws(() => normalizeAllowedOrigin(entry), Error, entry);
    }
  });
});
