import type { AuditEventInput } from "../store/audit-chain.js";

/** Where batches go: `Store.appendAudit`. */
export type AuditAppend = (events: readonly AuditEventInput[]) => Promise<void>;

export interface AuditSinkOptions {
  /** How long an entry may wait before its batch is written. */
  readonly flushMs?: number;
  /** Entries per transaction. */
  readonly maxBatch?: number;
  /** Entries held in memory while the store cannot take them; beyond this they are counted and dropped. */
  readonly maxQueued?: number;
  /** Told once per run of failures, and once when writing works again. */
  readonly warn: (message: string, fields: Record<string, unknown>) => void;
}

/**
 * The admission entries of the audit log, one per handshake, written in
 * batches: a transaction per handshake would cost more than the handshake.
 * Bounded: while the store cannot take them (an outage, a full disk) up to
 * `maxQueued` wait; the rest are dropped, and how many is itself written to
 * the log ("audit.dropped") as soon as it can be, so a gap is never silent.
 */
export class AuditStoreSink {
  private queue: AuditEventInput[] = [];
  private dropped = 0;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private failing = false;
  private closed = false;
  private readonly flushMs: number;
  private readonly maxBatch: number;
  private readonly maxQueued: number;

  constructor(
    private readonly append: AuditAppend,
    private readonly opts: AuditSinkOptions,
  ) {
    this.flushMs = opts.flushMs ?? 200;
    this.maxBatch = opts.maxBatch ?? 1000;
    this.maxQueued = opts.maxQueued ?? 20_000;
  }

  push(event: AuditEventInput): void {
    if (this.closed) return;
    if (this.queue.length >= this.maxQueued) {
      this.dropped += 1;
      return;
    }
    this.queue.push(event);
    this.schedule();
  }

  /** How many entries wait to be written. */
  pending(): number {
    return this.queue.length;
  }

  private schedule(): void {
    if (this.timer || this.running) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, this.flushMs);
    this.timer.unref();
  }

  /** Write what waits now (one batch after another); resolves when done or failed. */
  flush(): Promise<void> {
    if (this.running) return this.running;
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    this.running = this.drain().finally(() => {
      this.running = undefined;
      if (this.queue.length > 0 && !this.closed && !this.failing) this.schedule();
    });
    return this.running;
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0 || this.dropped > 0) {
      const batch = this.queue.slice(0, this.maxBatch);
      const dropped = this.dropped;
      if (dropped > 0) batch.push({ kind: "audit.dropped", actor: "gateway", fields: { count: dropped } });
      try {
        await this.append(batch);
      } catch (e) {
        if (!this.failing) this.opts.warn("audit entries could not be written to the store; retrying", { err: e instanceof Error ? e.message : String(e), queued: this.queue.length });
        this.failing = true;
        // Retry later, on the timer: the queue keeps its order.
        if (!this.closed) this.retryLater();
        return;
      }
      this.queue.splice(0, dropped > 0 ? batch.length - 1 : batch.length);
      this.dropped -= dropped;
      if (this.failing) {
        this.failing = false;
        this.opts.warn("audit entries are written to the store again", { dropped });
      }
    }
  }

  private retryLater(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, Math.max(this.flushMs, 1000));
    this.timer.unref();
  }

  /** Stop taking entries and write what waits (once; a store that fails now loses them, said by the warning). */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    await this.running;
    if (this.queue.length > 0 || this.dropped > 0) await this.flush();
  }
}
