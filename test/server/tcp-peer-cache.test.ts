import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { classifyTcpPeer, parseCidrs } from "../../src/admission/locality.js";
import { createTcpPeerCache } from "../../src/server/tcp-peer-cache.js";

describe("createTcpPeerCache", () => {
  it("returns classifyTcpPeer's answer, judged once per address", () => {
    const trusted = parseCidrs(["10.0.0.0/8"]);
    const judge = createTcpPeerCache();
    const first = judge("::ffff:127.0.0.1", trusted);
    assert.deepEqual(first, classifyTcpPeer("::ffff:127.0.0.1", trusted));
    assert.equal(judge("::ffff:127.0.0.1", trusted), first, "the kept answer");
    assert.deepEqual(judge("10.1.2.3", trusted), { remoteAddress: "10.1.2.3", loopback: false, trustedProxy: true, budgetKey: "10.1.2.3" });
  });

  it("judges again when the trusted-proxy list changes: an address is never trusted on a stale list", () => {
    const judge = createTcpPeerCache();
    assert.equal(judge("10.1.2.3", parseCidrs(["10.0.0.0/8"])).trustedProxy, true);
    assert.equal(judge("10.1.2.3", parseCidrs([])).trustedProxy, false);
  });

  it("keeps at most maxEntries addresses, dropping the oldest", () => {
    const trusted = parseCidrs([]);
    const judge = createTcpPeerCache(2);
    const a = judge("192.0.2.1", trusted);
    judge("192.0.2.2", trusted);
    judge("192.0.2.3", trusted);
    assert.notEqual(judge("192.0.2.1", trusted), a, "192.0.2.1 was dropped and judged again");
    assert.deepEqual(judge("192.0.2.1", trusted), a);
  });
});
