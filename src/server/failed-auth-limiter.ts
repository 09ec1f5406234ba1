import type { Clock } from "../clock.js";
import type { RateLimitOptions } from "./limits.js";

interface Entry {
  failures: number[];
  lockedUntil: number;
}

/**
 * Failed-authentication lockout per key (client IP, or the browser pages of a
 * loopback address). Only failures of a presented secret count, and they only
 * expire with the window: a success does not reset them, or a client holding
 * any valid credential could refill its budget between guesses. Bounded: the
 * least recently touched keys are forgotten first, but never a locked one
 * (forgetting it would lift its lockout). A table full of live lockouts fails
 * closed: untracked keys count as locked until the forgotten lockout ends.
 */
export class FailedAuthLimiter {
  private readonly entries = new Map<string, Entry>();
  /** While the table is full of live lockouts: when the soonest ends. */
  private saturatedUntil = 0;

  constructor(
    private readonly options: RateLimitOptions,
    private readonly clock: Clock,
  ) {}

  /** Milliseconds until the key may try again, or `undefined` when it is not locked. */
  lockedFor(key: string): number | undefined {
    const entry = this.entries.get(key);
    const now = this.clock.now();
    if (!entry) return this.saturatedUntil > now ? this.saturatedUntil - now : undefined;
    return entry.lockedUntil > now ? entry.lockedUntil - now : undefined;
  }

  /** Count a failure; true when it began a lockout. */
  recordFailure(key: string): boolean {
    const now = this.clock.now();
    const entry = this.entries.get(key) ?? { failures: [], lockedUntil: 0 };
    this.entries.delete(key); // re-insert: Map order is recency
    entry.failures = entry.failures.filter((t) => now - t < this.options.windowMs);
    entry.failures.push(now);
    let began = false;
    if (entry.failures.length >= this.options.maxFailures) {
      began = entry.lockedUntil <= now;
      entry.lockedUntil = now + this.options.lockoutMs;
      entry.failures = [];
    }
    this.entries.set(key, entry);
    if (this.entries.size > this.options.maxKeys) this.evictOne(now);
    return began;
  }

  /** Keys locked out now (for metrics; walks the table). */
  lockedCount(): number {
    const now = this.clock.now();
    let n = 0;
    for (const e of this.entries.values()) if (e.lockedUntil > now) n++;
    return n;
  }

  /**
   * Lock `key` until `untilMs` (never earlier than it already is): a lockout
   * decided elsewhere, from failures counted over every gateway instance.
   * True when it began a lockout.
   */
  lockUntil(key: string, untilMs: number): boolean {
    const now = this.clock.now();
    if (untilMs <= now) return false;
    const entry = this.entries.get(key) ?? { failures: [], lockedUntil: 0 };
    const began = entry.lockedUntil <= now;
    this.entries.delete(key);
    entry.lockedUntil = Math.max(entry.lockedUntil, untilMs);
    entry.failures = [];
    this.entries.set(key, entry);
    if (this.entries.size > this.options.maxKeys) this.evictOne(now);
    return began;
  }

  /**
   * Forget the least recently touched key that is not locked. If every one is,
   * forget the one whose lockout ends soonest and lock every untracked key until
   * then: no lockout ends early, and memory stays bounded.
   */
  private evictOne(now: number): void {
    let soonestKey: string | undefined;
    let soonest = Infinity;
    for (const [k, e] of this.entries) {
      if (e.lockedUntil <= now) {
        this.entries.delete(k);
        return;
      }
      if (e.lockedUntil < soonest) {
        soonest = e.lockedUntil;
        soonestKey = k;
      }
    }
    if (soonestKey === undefined) return;
    this.entries.delete(soonestKey);
    this.saturatedUntil = Math.max(this.saturatedUntil, soonest);
  }

  get size(): number {
    return this.entries.size;
  }
}
