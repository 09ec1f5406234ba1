import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { classifyTcpPeer, parseCidrs } from "../../src/admission/locality.js";
import { FailedAuthLimiter } from "../../src/server/failed-auth-limiter.js";
import { failureBudgetKey } from "../../src/server/gateway.js";
import { DEFAULT_RATE_LIMIT } from "../../src/server/limits.js";

describe("failed-auth budgets", () => {
  it("A57 every loopback address (127/8, ::1, IPv4-mapped) is one budget; others are per address; a trusted proxy's clients per client", () => {
    const key = (addr: string, proxies: string[] = []) => {
      const tcp = classifyTcpPeer(addr, parseCidrs(proxies));
      return failureBudgetKey(tcp, tcp.budgetKey);
    };
    for (const a of ["127.0.0.1", "127.0.9.30", "127.255.255.254", "::1", "::ffff:127.0.0.7"]) assert.equal(key(a), "loopback", a);
    assert.equal(key("203.0.113.7"), "ip:203.0.113.7");
    assert.notEqual(key("203.0.113.7"), key("203.0.113.8"));
    assert.equal(key("127.0.250.1", ["127.0.250.1"]), "ip:127.0.250.1", "a trusted proxy's own address is keyed by address (its clients by theirs)");
  });

  it("a full table forgets the least recently touched unlocked key, never a locked one", () => {
    let now = 1_000_000;
    const limiter = new FailedAuthLimiter({ ...DEFAULT_RATE_LIMIT, maxFailures: 2, maxKeys: 3 }, { now: () => now });
    limiter.recordFailure("locked");
    limiter.recordFailure("locked");
    assert.ok(limiter.lockedFor("locked"));
    for (let i = 0; i < 10; i++) limiter.recordFailure(`spray-${i}`);
    assert.ok(limiter.lockedFor("locked"), "spraying other keys does not lift a lockout");
    assert.ok(limiter.size <= 3);
    now += DEFAULT_RATE_LIMIT.lockoutMs + 1;
    assert.equal(limiter.lockedFor("locked"), undefined, "it ends when its time is up");
  });

  it("a table full of live lockouts fails closed for untracked keys until the forgotten lockout ends, and stays bounded", () => {
    let now = 1_000_000;
    const limiter = new FailedAuthLimiter({ ...DEFAULT_RATE_LIMIT, maxFailures: 1, maxKeys: 3 }, { now: () => now });
    for (let i = 0; i < 4; i++) {
      limiter.recordFailure(`k${i}`);
      now += 1;
    }
    assert.equal(limiter.size, 3);
    for (let i = 0; i < 4; i++) assert.ok(limiter.lockedFor(`k${i}`), `k${i} still locked`);
    assert.ok(limiter.lockedFor("never-seen"), "fail closed while saturated");
  });
});
