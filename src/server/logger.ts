import { writeSync } from "node:fs";
import pino, { type Logger } from "pino";

export type { Logger };

/**
 * Paths that could ever hold a secret are redacted, as a second line of
 * defence: the code logs labels and decisions, never params or headers.
 */
export const REDACT_PATHS = [
  "token",
  "password",
  "secret",
  "deviceToken",
  "bootstrapToken",
  "signature",
  "auth",
  "authorization",
  "*.token",
  "*.password",
  "*.secret",
  "*.deviceToken",
  "*.bootstrapToken",
  "*.signature",
  "*.auth",
  "*.authorization",
  "headers.cookie",
];

export function createLogger(options: { level?: string; destination?: pino.DestinationStream } = {}): Logger {
  const opts: pino.LoggerOptions = {
    level: options.level ?? "info",
    base: { service: "gatewarden" },
    redact: { paths: REDACT_PATHS, censor: "[redacted]" },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return options.destination ? pino(opts, options.destination) : pino(opts);
}

/** How long log lines may wait to be written together, and how much may wait. */
export interface LogBatching {
  readonly maxDelayMs: number;
  readonly maxChars: number;
}

export const DEFAULT_LOG_BATCHING: LogBatching = { maxDelayMs: 10, maxChars: 16 * 1024 };

/**
 * A line rendered only when its batch is written. Whatever it renders from
 * must not change once it is queued (its time is taken when it is queued).
 */
export interface DeferredLine {
  render(): string;
}

/** What a deferred line counts for against `maxChars` before it is rendered (an audit line is about 530). */
const DEFERRED_LINE_CHARS = 512;

/** The destination pino writes to, with the flush hooks it and an exiting process call. */
export interface BatchedDestination extends pino.DestinationStream {
  /** Queue a line to be rendered with its batch, in order with the lines written before and after it. */
  writeDeferred(line: DeferredLine): void;
  flush(cb?: (err?: Error) => void): void;
  flushSync(): void;
}

/** Whether `stream` is a batched destination that takes deferred lines. */
export function takesDeferredLines(stream: { write(line: string): unknown }): stream is BatchedDestination {
  return typeof (stream as Partial<BatchedDestination>).writeDeferred === "function";
}

/** A deferred line that fails to render still leaves a line, so a batch is never lost. */
function rendered(line: DeferredLine): string {
  try {
    return line.render();
  } catch (e) {
    return `${JSON.stringify({ level: 50, time: new Date().toISOString(), msg: "log line could not be rendered", err: e instanceof Error ? e.message : String(e) })}\n`;
  }
}

/** How long one batch may wait for a destination that does not take it (a full pipe) before it is dropped. */
const MAX_BLOCKED_MS = 1000;

const sleeper = new Int32Array(new SharedArrayBuffer(4));
function sleepSync(ms: number): void {
  Atomics.wait(sleeper, 0, 0, ms);
}

/**
 * A destination on `fd` that writes lines in batches: at most `maxDelayMs`
 * after the first waiting line, at once past `maxChars`, each batch with one
 * synchronous write.
 *
 * Why: with one audit line per handshake, a write per line was the largest
 * part of logging's cost under load, and an asynchronous write is a round
 * trip through the libuv thread pool (a wake-up, the write, a completion
 * event; BENCHMARKS.md). Batches written synchronously cost one `write` per
 * batch and no thread. The lines, their order and content are unchanged;
 * they reach the fd up to `maxDelayMs` later. flush() hands everything over
 * at once, and lines still waiting when the process exits are written before
 * it exits.
 *
 * A log that cannot be written never stops the gateway and never grows a
 * buffer: a batch the fd refuses (a full disk, a closed pipe) is dropped; a
 * consumer that stops reading a pipe holds one batch for at most
 * MAX_BLOCKED_MS, after which batches are dropped without waiting until the
 * fd takes one again. The first line written after a loss says how many
 * lines were lost. (pino's own sync destination retries a full pipe forever
 * and, on ENOSPC at exit, loops forever: measured, issue 14.)
 *
 * Deferred lines (the audit lines, one per handshake) are rendered when
 * their batch is written: the same work costs less done together than
 * spread between socket events (BENCHMARKS.md).
 */
export function batchedDestination(fd: number, batching: LogBatching = DEFAULT_LOG_BATCHING): BatchedDestination {
  let waiting: (string | DeferredLine)[] = [];
  let waitingChars = 0;
  let timer: NodeJS.Timeout | undefined;
  let lostLines = 0;
  /** Set after a batch waited MAX_BLOCKED_MS in vain: later ones do not wait until a write succeeds. */
  let blocked = false;
  /** Stop the batch timer and take the waiting lines, rendered. */
  const takeWaiting = (): string => {
    if (timer !== undefined) {
      clearTimeout(timer);
      timer = undefined;
    }
    const lines = waiting;
    waiting = [];
    waitingChars = 0;
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i] as string | DeferredLine;
      if (typeof line !== "string") lines[i] = rendered(line);
    }
    return lines.join("");
  };
  /** Write all of `buf`, or report why not (the part not written is dropped). */
  const writeAll = (buf: Buffer): boolean => {
    let waitedMs = 0;
    let off = 0;
    while (off < buf.length) {
      try {
        off += writeSync(fd, buf, off);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if ((code === "EAGAIN" || code === "EBUSY") && !blocked && waitedMs < MAX_BLOCKED_MS) {
          sleepSync(10);
          waitedMs += 10;
          continue;
        }
        if (code === "EAGAIN" || code === "EBUSY") blocked = true;
        return false;
      }
    }
    blocked = false;
    return true;
  };
  const countLines = (text: string): number => {
    let n = 0;
    for (let i = text.indexOf("\n"); i !== -1; i = text.indexOf("\n", i + 1)) n++;
    return n;
  };
  const writeOut = (text: string): void => {
    if (text === "") return;
    const note =
      lostLines > 0
        ? `${JSON.stringify({ level: 40, time: new Date().toISOString(), service: "gatewarden", event: "log-lines-lost", count: lostLines, msg: `${lostLines} log lines could not be written` })}\n`
        : "";
    if (writeAll(Buffer.from(note + text))) lostLines = 0;
    else lostLines += countLines(text);
  };
  const queue = (line: string | DeferredLine, chars: number): void => {
    waiting.push(line);
    waitingChars += chars;
    if (waitingChars >= batching.maxChars) handOver();
    else if (timer === undefined) {
      timer = setTimeout(handOver, batching.maxDelayMs);
      timer.unref();
    }
  };
  const handOver = (): void => writeOut(takeWaiting());
  process.on("exit", handOver);
  return {
    write(line: string): void {
      queue(line, line.length);
    },
    writeDeferred(line: DeferredLine): void {
      queue(line, DEFERRED_LINE_CHARS);
    },
    flush(cb?: (err?: Error) => void): void {
      handOver();
      cb?.();
    },
    flushSync: handOver,
  };
}

export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
