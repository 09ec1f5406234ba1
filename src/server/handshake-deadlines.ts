import { performance } from "node:perf_hooks";

/** What a deadline is kept for: told once its time has passed. */
export interface Deadline {
  onDeadline(): void;
}

/**
 * Handshake deadlines on one shared timer instead of a timer per socket.
 * Every socket gets the same timeout, so entries are added in deadline order
 * and a sweep stops at the first one still running. A deadline fires up to
 * `resolutionMs` late; it never fires early.
 */
export class HandshakeDeadlines {
  /** Each key's deadline (performance.now() time), in deadline order. */
  private readonly pending = new Map<Deadline, number>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly timeoutMs: number,
    resolutionMs = Math.max(10, Math.min(250, Math.floor(timeoutMs / 10))),
  ) {
    this.timer = setInterval(() => this.sweep(), resolutionMs);
    this.timer.unref();
  }

  /** Call `key.onDeadline()` once `timeoutMs` have passed, unless `remove(key)` comes first. */
  add(key: Deadline): void {
    this.pending.delete(key); // re-adding moves the deadline, and keeps the map in deadline order
    this.pending.set(key, performance.now() + this.timeoutMs);
  }

  remove(key: Deadline): void {
    this.pending.delete(key);
  }

  get size(): number {
    return this.pending.size;
  }

  private sweep(): void {
    const now = performance.now();
    for (const [key, at] of this.pending) {
      if (at > now) return;
      this.pending.delete(key);
      key.onDeadline();
    }
  }

  /** Stop the timer; pending deadlines never fire. */
  close(): void {
    clearInterval(this.timer);
    this.pending.clear();
  }
}
