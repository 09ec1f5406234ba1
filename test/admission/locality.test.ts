import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { addressBudgetKey, canonicalIp, classifyTcpPeer, inCidrs, isLoopback, parseCidrs, parseIp, resolvePeer } from "../../src/admission/locality.js";
import { makePeer, rawPeer } from "../support/admission-fixtures.js";

describe("isLoopback", () => {
  it("A36 classifies IPv4 127/8, IPv6 ::1 and IPv4-mapped ::ffff:127.x as loopback", () => {
    for (const ip of ["127.0.0.1", "127.0.0.2", "127.255.255.254", "::1", "0:0:0:0:0:0:0:1", "::ffff:127.0.0.1", "::FFFF:127.9.8.7", "::ffff:7f00:1", "[::1]", "[::ffff:127.0.0.1]"]) {
      assert.equal(isLoopback(ip), true, ip);
    }
  });

  it("does not classify private, public, unspecified or link-local addresses as loopback", () => {
    for (const ip of ["10.0.0.1", "192.168.1.10", "172.17.0.1", "203.0.113.7", "0.0.0.0", "::", "fe80::1", "::ffff:10.0.0.1", "128.0.0.1", "126.255.255.255"]) {
      assert.equal(isLoopback(ip), false, ip);
    }
  });

  it("does not treat non-canonical IPv4 forms (127.1, octal, hex, integer, leading zeros) as loopback", () => {
    for (const ip of ["127.1", "127.0.1", "0177.0.0.1", "0x7f.0.0.1", "0x7f000001", "2130706433", "127.000.000.001", "127.0.0.01"]) {
      assert.equal(isLoopback(ip), false, ip);
      assert.equal(parseIp(ip), undefined, ip);
    }
  });

  it("does not treat host names, garbage or host:port as loopback", () => {
    for (const ip of [undefined, "", "localhost", "127.0.0.1.evil.example", "127.0.0.1:8080", "not-an-ip", " ", "::ffff:127.1"]) {
      assert.equal(isLoopback(ip), false, String(ip));
    }
  });
});

describe("canonicalIp and parseIp", () => {
  it("A36 unmaps IPv4-mapped IPv6 to dotted quad, so one client has one key", () => {
    assert.equal(canonicalIp("::ffff:127.0.0.1"), "127.0.0.1");
    assert.equal(canonicalIp("::ffff:203.0.113.9"), "203.0.113.9");
    assert.equal(canonicalIp("::FFFF:CB00:7109"), "203.0.113.9");
  });

  it("shortens IPv6 and strips brackets and zone ids", () => {
    assert.equal(canonicalIp("0:0:0:0:0:0:0:1"), "::1");
    assert.equal(canonicalIp("[2001:db8::1]"), "2001:db8::1");
    assert.equal(canonicalIp("fe80::1%eth0"), "fe80::1");
  });

  it("returns anything that is not an IP unchanged (it is then never loopback or trusted)", () => {
    assert.equal(canonicalIp("garbage"), "garbage");
    assert.equal(canonicalIp("127.1"), "127.1");
  });
});

describe("parseCidrs and inCidrs", () => {
  it("parses single addresses as host routes and CIDR blocks as ranges", () => {
    const cidrs = parseCidrs(["10.0.0.0/8", "192.0.2.5", "2001:db8::/32", " 198.51.100.0/24 "]);
    assert.equal(inCidrs("10.200.3.4", cidrs), true);
    assert.equal(inCidrs("192.0.2.5", cidrs), true);
    assert.equal(inCidrs("192.0.2.6", cidrs), false);
    assert.equal(inCidrs("2001:db8:ffff::9", cidrs), true);
    assert.equal(inCidrs("198.51.100.77", cidrs), true);
    assert.equal(inCidrs("11.0.0.1", cidrs), false);
  });

  it("matches an IPv4-mapped peer against IPv4 ranges", () => {
    assert.equal(inCidrs("::ffff:10.1.2.3", parseCidrs(["10.0.0.0/8"])), true);
  });

  it("never matches garbage or non-canonical addresses", () => {
    const cidrs = parseCidrs(["127.0.0.0/8", "0.0.0.0/0"]);
    for (const ip of [undefined, "", "garbage", "127.1", "2130706433"]) assert.equal(inCidrs(ip, cidrs), false, String(ip));
  });

  it("throws on an invalid configuration entry (fail at startup, not at connect)", () => {
    assert.throws(() => parseCidrs(["not-an-ip"]));
    assert.throws(() => parseCidrs(["10.0.0.0/99"]));
  });
});

describe("resolvePeer: direct connections", () => {
  it("A36 a loopback peer with no forwarding headers is direct_local (IPv4, IPv6 and IPv4-mapped alike)", () => {
    for (const remoteAddress of ["127.0.0.1", "::1", "::ffff:127.0.0.1"]) {
      const peer = makePeer({ remoteAddress });
      assert.equal(peer.locality, "direct_local", remoteAddress);
      assert.equal(peer.viaTrustedProxy, false);
      assert.equal(peer.clientIp, canonicalIp(remoteAddress));
    }
    assert.equal(makePeer({ remoteAddress: "::ffff:127.0.0.1" }).remoteAddress, "127.0.0.1");
  });

  it("a non-loopback peer is remote and its address is the client IP", () => {
    const peer = makePeer({ remoteAddress: "203.0.113.7" });
    assert.equal(peer.locality, "remote");
    assert.equal(peer.clientIp, "203.0.113.7");
  });

  it("a peer address in a non-canonical IPv4 form is remote", () => {
    assert.equal(makePeer({ remoteAddress: "127.1" }).locality, "remote");
  });

  it("passes Origin and Host through unchanged as evidence", () => {
    const peer = makePeer({ origin: "http://localhost:18789", host: "localhost:18789" });
    assert.equal(peer.origin, "http://localhost:18789");
    assert.equal(peer.host, "localhost:18789");
  });
});

describe("resolvePeer: forwarding headers from an untrusted peer", () => {
  it("A34 X-Forwarded-For: 127.0.0.1 from a remote peer is ignored: client IP stays the TCP peer, connection remote", () => {
    const peer = makePeer({ remoteAddress: "203.0.113.7", forwardedFor: "127.0.0.1" });
    assert.equal(peer.clientIp, "203.0.113.7");
    assert.equal(peer.locality, "remote");
    assert.equal(peer.viaTrustedProxy, false);
  });

  it("A34 X-Real-IP and Forwarded: for=127.0.0.1 are ignored the same way", () => {
    for (const opts of [{ realIp: "127.0.0.1" }, { forwarded: "for=127.0.0.1" }, { forwarded: 'for="[::1]"' }]) {
      const peer = makePeer({ remoteAddress: "198.51.100.20", ...opts });
      assert.equal(peer.clientIp, "198.51.100.20");
      assert.equal(peer.locality, "remote");
    }
  });

  it("A34/A05 forwarding headers on a loopback peer make the connection non-local (container-style peer)", () => {
    for (const opts of [{ forwardedFor: "127.0.0.1" }, { realIp: "127.0.0.1" }, { forwarded: "for=127.0.0.1" }, { hasForwardingHeaders: true }]) {
      const peer = makePeer({ remoteAddress: "127.0.0.1", ...opts });
      assert.equal(peer.locality, "remote", JSON.stringify(opts));
      assert.equal(peer.clientIp, "127.0.0.1");
    }
  });

  it("A34 proxy identity headers from an untrusted peer are dropped", () => {
    const peer = makePeer({ remoteAddress: "203.0.113.7", proxyHeaders: { "x-forwarded-user": "admin" } });
    assert.deepEqual(peer.proxyHeaders, {});
  });

  it("A34 for any header content, an untrusted peer's client IP is its TCP address", () => {
    fc.assert(
      fc.property(
        fc.option(fc.string(), { nil: undefined }),
        fc.option(fc.string(), { nil: undefined }),
        fc.option(fc.string(), { nil: undefined }),
        fc.constantFrom("203.0.113.7", "10.1.1.1", "127.0.0.1", "::1"),
        (forwardedFor, realIp, forwarded, remoteAddress) => {
          const peer = makePeer({ remoteAddress, forwardedFor, realIp, forwarded, trustedProxies: ["192.0.2.1"] });
          assert.equal(peer.clientIp, canonicalIp(remoteAddress));
          if (forwardedFor !== undefined || realIp !== undefined || forwarded !== undefined) assert.equal(peer.locality, "remote");
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe("resolvePeer: trusted proxies", () => {
  const trustedProxies = ["10.0.0.0/8"];

  it("walks X-Forwarded-For right to left and takes the first hop that is not a trusted proxy", () => {
    const peer = makePeer({ remoteAddress: "10.0.0.2", forwardedFor: "198.51.100.1, 203.0.113.5, 10.0.0.7", trustedProxies });
    assert.equal(peer.viaTrustedProxy, true);
    assert.equal(peer.clientIp, "203.0.113.5");
    assert.equal(peer.locality, "remote");
  });

  it("ignores a spoofed left-most entry: the proxy-appended address wins", () => {
    const peer = makePeer({ remoteAddress: "10.0.0.2", forwardedFor: "127.0.0.1, 198.51.100.77", trustedProxies });
    assert.equal(peer.clientIp, "198.51.100.77");
  });

  it("A35 a trusted proxy forwarding a loopback client address is not direct_local", () => {
    const peer = makePeer({ remoteAddress: "10.0.0.2", forwardedFor: "127.0.0.1", trustedProxies });
    assert.equal(peer.locality, "remote");
    // the loopback hop is skipped; no other hop: the proxy itself is the client
    assert.equal(peer.clientIp, "10.0.0.2");
  });

  it("A35 a loopback trusted proxy (same-host reverse proxy) forwarding a client is not direct_local", () => {
    const peer = makePeer({ remoteAddress: "127.0.0.1", forwardedFor: "203.0.113.9", trustedProxies: ["127.0.0.1"] });
    assert.equal(peer.viaTrustedProxy, true);
    assert.equal(peer.locality, "remote");
    assert.equal(peer.clientIp, "203.0.113.9");
  });

  it("A61 a configured trusted proxy's own connection, without any forwarding header, is never direct_local", () => {
    const peer = makePeer({ remoteAddress: "127.0.0.1", trustedProxies: ["127.0.0.1"] });
    assert.equal(peer.viaTrustedProxy, true);
    assert.equal(peer.locality, "remote");
  });

  it("a garbled X-Forwarded-For chain is not evidence: the client IP falls back to the proxy", () => {
    for (const forwardedFor of ["203.0.113.5, not-an-ip", "127.1", "203.0.113.5:1234", ""]) {
      const peer = makePeer({ remoteAddress: "10.0.0.2", forwardedFor, trustedProxies });
      assert.equal(peer.clientIp, "10.0.0.2", forwardedFor);
    }
  });

  it("handles IPv6 and IPv4-mapped hops and canonicalizes the result", () => {
    const peer = makePeer({ remoteAddress: "10.0.0.2", forwardedFor: "2001:DB8::0:1, ::ffff:10.0.0.9", trustedProxies });
    assert.equal(peer.clientIp, "2001:db8::1");
    assert.equal(makePeer({ remoteAddress: "10.0.0.2", forwardedFor: "::ffff:203.0.113.5", trustedProxies }).clientIp, "203.0.113.5");
  });

  it("keeps proxy identity headers only when the peer is a trusted proxy", () => {
    const headers = { "x-forwarded-user": "alice" };
    assert.deepEqual(makePeer({ remoteAddress: "10.0.0.2", proxyHeaders: headers, trustedProxies }).proxyHeaders, headers);
    assert.deepEqual(makePeer({ remoteAddress: "11.0.0.2", proxyHeaders: headers, trustedProxies }).proxyHeaders, {});
  });

  it("X-Real-IP is not used for the client IP (no real-IP fallback)", () => {
    const peer = makePeer({ remoteAddress: "10.0.0.2", realIp: "203.0.113.5", trustedProxies });
    assert.equal(peer.clientIp, "10.0.0.2");
  });

  it("a trusted proxy without forwarding headers is itself a direct peer", () => {
    const peer = resolvePeer(rawPeer({ remoteAddress: "10.0.0.2" }), parseCidrs(trustedProxies));
    assert.equal(peer.locality, "remote");
    assert.equal(peer.clientIp, "10.0.0.2");
  });
});

describe("resolvePeer parses the TCP peer once", () => {
  // resolvePeer parses the address once for speed (bench/findings.md); its
  // result must equal the definition: canonicalIp, then inCidrs and
  // isLoopback on the canonical text.
  const trusted = parseCidrs(["10.0.0.0/8", "::1/128", "fd00::/8", "127.0.0.2"]);
  const octet = fc.integer({ min: 0, max: 255 });
  const ipv4 = fc.tuple(octet, octet, octet, octet).map((p) => p.join("."));
  const address = fc.oneof(
    ipv4,
    ipv4.map((v4) => `::ffff:${v4}`),
    fc.ipV6(),
    fc.ipV6().map((v6) => `[${v6}]`),
    fc.ipV6().map((v6) => `${v6}%eth0`),
    fc.constantFrom("", " ", "localhost", "127.1", "0x7f000001", "127.0.0.1:80", "::ffff:127.1", "not-an-ip", "127.000.000.001"),
    fc.string({ maxLength: 40 }),
  );

  it("agrees with canonicalIp + inCidrs + isLoopback for any peer address", () => {
    fc.assert(
      fc.property(address, fc.boolean(), (remoteAddress, forwarded) => {
        const peer = resolvePeer(rawPeer({ remoteAddress, hasForwardingHeaders: forwarded }), trusted);
        const canonical = canonicalIp(remoteAddress);
        assert.equal(peer.remoteAddress, canonical);
        assert.equal(peer.viaTrustedProxy, inCidrs(canonical, trusted));
        assert.equal(peer.locality, !forwarded && isLoopback(canonical) && !inCidrs(canonical, trusted) ? "direct_local" : "remote");
      }),
      { numRuns: 2000 },
    );
  });

  it("classifyTcpPeer agrees with canonicalIp + isLoopback + inCidrs + addressBudgetKey, and resolvePeer gives the same evidence with a kept classification", () => {
    fc.assert(
      fc.property(address, fc.boolean(), (remoteAddress, forwarded) => {
        const tcp = classifyTcpPeer(remoteAddress, trusted);
        const canonical = canonicalIp(remoteAddress);
        assert.equal(tcp.remoteAddress, canonical);
        assert.equal(tcp.loopback, isLoopback(canonical));
        assert.equal(tcp.trustedProxy, inCidrs(canonical, trusted));
        assert.equal(tcp.budgetKey, addressBudgetKey(remoteAddress));
        const raw = rawPeer({ remoteAddress, hasForwardingHeaders: forwarded, forwardedFor: "198.51.100.9" });
        assert.deepEqual(resolvePeer(raw, trusted, tcp), resolvePeer(raw, trusted));
      }),
      { numRuns: 2000 },
    );
  });
});

describe("addressBudgetKey", () => {
  it("keys IPv4 addresses (mapped or not) by the address and IPv6 addresses by their /64", () => {
    assert.equal(addressBudgetKey("203.0.113.7"), "203.0.113.7");
    assert.equal(addressBudgetKey("::ffff:203.0.113.7"), "203.0.113.7");
    assert.equal(addressBudgetKey("2001:db8:1:2::1"), "2001:db8:1:2::/64");
    assert.equal(addressBudgetKey("2001:db8:1:2:ffff:ffff:ffff:ffff"), "2001:db8:1:2::/64", "one /64, one budget");
    assert.notEqual(addressBudgetKey("2001:db8:1:3::1"), addressBudgetKey("2001:db8:1:2::1"));
  });
});
