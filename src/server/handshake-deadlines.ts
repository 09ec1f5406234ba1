import { performance } from "node:perf_hooks";

/**
 * Handshake deadlines on one shared timer instead of a timer per socket.
 * Every socket gets the same timeout, so entries are added in deadline order
 * and a sweep stops at the first one still running. A deadline fires up to
 * `resolutionMs` late; it never fires early.
 */
export class HandshakeDeadlines {
  private readonly pending = new Map<object, { readonly at: number; readonly expire: () => void }>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly timeoutMs: number,
    resolutionMs = Math.max(10, Math.min(250, Math.floor(timeoutMs / 10))),
  ) {
    this.timer = setInterval(() => this.sweep(), resolutionMs);
    this.timer.unref();
  }

  /** Call `expire` once `timeoutMs` have passed, unless `remove(key)` comes first. */
  add(key: object, expire: () => void): void {
    this.pending.delete(key); // re-adding moves the deadline, and keeps the map in deadline order
    this.pending.set(key, { at: performance.now() + this.timeoutMs, expire });
  }

  remove(key: object): void {
    this.pending.delete(key);
  }

  get size(): number {
    return this.pending.size;
  }

  private sweep(): void {
    const now = performance.now();
    for (const [key, entry] of this.pending) {
      if (entry.at > now) return;
      this.pending.delete(key);
      entry.expire();
    }
  }

  /** Stop the timer; pending deadlines never fire. */
  close(): void {
    clearInterval(this.timer);
    this.pending.clear();
  }
}
