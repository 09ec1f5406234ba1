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
 * least recently touched keys are forgotten first.
 */
export class FailedAuthLimiter {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly options: RateLimitOptions,
    private readonly clock: Clock,
  ) {}

  /** Milliseconds until the key may try again, or `undefined` when it is not locked. */
  lockedFor(key: string): number | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    const now = this.clock.now();
    return entry.lockedUntil > now ? entry.lockedUntil - now : undefined;
  }

  recordFailure(key: string): void {
    const now = this.clock.now();
    const entry = this.entries.get(key) ?? { failures: [], lockedUntil: 0 };
    this.entries.delete(key); // re-insert: Map order is recency
    entry.failures = entry.failures.filter((t) => now - t < this.options.windowMs);
    entry.failures.push(now);
    if (entry.failures.length >= this.options.maxFailures) {
      entry.lockedUntil = now + this.options.lockoutMs;
      entry.failures = [];
    }
    this.entries.set(key, entry);
    while (this.entries.size > this.options.maxKeys) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
  }

  get size(): number {
    return this.entries.size;
  }
}
