import { performance } from "node:perf_hooks";
import { LinkedList, type ListEntry } from "./linked-list.js";

/** What a deadline is kept for: told once its time has passed. */
export interface Deadline {
  onDeadline(): void;
}

interface Pending {
  readonly key: Deadline;
  /** performance.now() time. */
  readonly at: number;
}

/** A deadline `add` set, for `remove`. */
export type DeadlineEntry = ListEntry<Pending>;

/**
 * Handshake deadlines on one shared timer instead of a timer per socket.
 * Every socket gets the same timeout, so entries are added in deadline order
 * and a sweep stops at the first one still running. A deadline fires up to
 * `resolutionMs` late; it never fires early.
 */
export class HandshakeDeadlines {
  /** In deadline order (a list, not a Map: see LinkedList). */
  private readonly pending = new LinkedList<Pending>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly timeoutMs: number,
    resolutionMs = Math.max(10, Math.min(250, Math.floor(timeoutMs / 10))),
  ) {
    this.timer = setInterval(() => this.sweep(), resolutionMs);
    this.timer.unref();
  }

  /** Call `key.onDeadline()` once `timeoutMs` have passed, unless `remove` gets the entry first. */
  add(key: Deadline): DeadlineEntry {
    return this.pending.push({ key, at: performance.now() + this.timeoutMs });
  }

  /** Cancel a deadline; harmless once it has fired or was removed. */
  remove(entry: DeadlineEntry): void {
    this.pending.remove(entry);
  }

  get size(): number {
    return this.pending.size;
  }

  private sweep(): void {
    const now = performance.now();
    for (let entry = this.pending.first(); entry?.value !== undefined && entry.value.at <= now; entry = this.pending.first()) {
      const { key } = entry.value;
      this.pending.remove(entry);
      key.onDeadline();
    }
  }

  /** Stop the timer; pending deadlines never fire. */
  close(): void {
    clearInterval(this.timer);
    this.pending.clear();
  }
}
