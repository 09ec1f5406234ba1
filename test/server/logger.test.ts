import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import { batchedDestination, createLogger } from "../../src/server/logger.js";

// The serve command's log destination batches lines (src/server/logger.ts).
// What must not change: every line arrives, in order, unaltered, also when the
// process exits or crashes with lines still waiting.

const dir = mkdtempSync(join(tmpdir(), "gatewarden-logger-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const LOGGER_MODULE = new URL("../../src/server/logger.js", import.meta.url).href;

function lines(path: string): Record<string, unknown>[] {
  return readFileSync(path, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Wait (up to a generous deadline) until `check` holds; the asynchronous writer has no completion event. */
async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for: ${what}`);
    await delay(20);
  }
}

/** Run a child that logs `n` lines through the batched destination on a file, then ends as `ending` says. */
function child(path: string, n: number, ending: string): { status: number | null; stderr: string } {
  const code = `
    import { openSync } from "node:fs";
    import { batchedDestination, createLogger } from ${JSON.stringify(LOGGER_MODULE)};
    const fd = openSync(process.env.LOG_FILE, "a");
    const logger = createLogger({ destination: batchedDestination(fd) });
    for (let i = 0; i < ${n}; i++) logger.info({ i, token: "s3cret" }, "line");
    ${ending}
  `;
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", code], { env: { ...process.env, LOG_FILE: path }, encoding: "utf8", timeout: 20_000 });
  return { status: r.status, stderr: r.stderr };
}

describe("batchedDestination", () => {
  it("writes every line in order, unaltered and still redacted, on flushSync", () => {
    const path = join(dir, "flush.log");
    const fd = openSync(path, "a");
    try {
      const destination = batchedDestination(fd);
      const logger = createLogger({ destination });
      for (let i = 0; i < 20; i++) logger.info({ i, token: "s3cret", nested: { password: "pw" } }, "line");
      destination.flushSync();
      const got = lines(path);
      assert.deepEqual(
        got.map((l) => l.i),
        Array.from({ length: 20 }, (_, i) => i),
      );
      for (const l of got) {
        assert.equal(l.token, "[redacted]");
        assert.deepEqual(l.nested, { password: "[redacted]" });
        assert.equal(l.msg, "line");
      }
    } finally {
      closeSync(fd);
    }
  });

  it("drops what a full disk refuses without throwing, holding nothing back, and the process still exits", () => {
    // /dev/full refuses every write with ENOSPC; pino's own sync destination loops forever on it at exit.
    const code = `
      import { openSync } from "node:fs";
      import { batchedDestination, createLogger } from ${JSON.stringify(LOGGER_MODULE)};
      const destination = batchedDestination(openSync("/dev/full", "w"), { maxDelayMs: 1, maxChars: 1024 });
      const logger = createLogger({ destination });
      for (let i = 0; i < 10000; i++) logger.info({ i }, "line");
      destination.flushSync();
      const before = process.memoryUsage().heapUsed;
      for (let i = 0; i < 10000; i++) logger.info({ i }, "line");
      destination.flushSync();
      if (process.memoryUsage().heapUsed - before > 8 * 1024 * 1024) throw new Error("refused lines are being kept");
      logger.info("last");
    `;
    const r = spawnSync(process.execPath, ["--input-type=module", "-e", code], { encoding: "utf8", timeout: 20_000 });
    assert.equal(r.signal, null, "did not hang");
    assert.equal(r.status, 0, r.stderr);
  });

  it("hands large bursts over without waiting for the timer, and loses nothing", async () => {
    const path = join(dir, "burst.log");
    const fd = openSync(path, "a");
    try {
      const destination = batchedDestination(fd, { maxDelayMs: 60_000, maxChars: 4096 });
      const logger = createLogger({ destination });
      const n = 2000;
      for (let i = 0; i < n; i++) logger.info({ i }, "burst");
      // Past maxChars the text goes to the asynchronous writer at once: it
      // arrives although the timer (a minute) never fires.
      await until(() => lines(path).length >= n - 100, "lines handed over past maxChars");
      // flush() hands over the rest.
      destination.flush();
      await until(() => lines(path).length === n, "every line");
      assert.deepEqual(
        lines(path).map((l) => l.i),
        Array.from({ length: n }, (_, i) => i),
      );
    } finally {
      closeSync(fd);
    }
  });

  it("renders deferred lines when their batch is written, in order with the other lines", () => {
    const path = join(dir, "deferred.log");
    const fd = openSync(path, "a");
    try {
      const destination = batchedDestination(fd, { maxDelayMs: 60_000, maxChars: 1 << 20 });
      const logger = createLogger({ destination });
      const state = { value: "at queue time" };
      let renders = 0;
      logger.info({ i: 0 }, "before");
      destination.writeDeferred({
        render: () => {
          renders++;
          return `${JSON.stringify({ i: 1, value: state.value })}\n`;
        },
      });
      logger.info({ i: 2 }, "after");
      state.value = "at write time";
      assert.equal(renders, 0, "nothing is rendered before the batch is written");
      destination.flushSync();
      assert.equal(renders, 1);
      assert.deepEqual(
        lines(path).map((l) => [l.i, l.value]),
        [
          [0, undefined],
          [1, "at write time"],
          [2, undefined],
        ],
      );
    } finally {
      closeSync(fd);
    }
  });

  it("a deferred line that fails to render becomes an error line; the rest of its batch is written", () => {
    const path = join(dir, "deferred-failure.log");
    const fd = openSync(path, "a");
    try {
      const destination = batchedDestination(fd, { maxDelayMs: 60_000, maxChars: 1 << 20 });
      const logger = createLogger({ destination });
      logger.info({ i: 0 }, "before");
      destination.writeDeferred({
        render: () => {
          throw new Error("cannot render");
        },
      });
      logger.info({ i: 2 }, "after");
      destination.flushSync();
      const got = lines(path);
      assert.deepEqual(
        got.map((l) => l.msg),
        ["before", "log line could not be rendered", "after"],
      );
      assert.equal(got[1]?.level, 50);
      assert.equal(got[1]?.err, "cannot render");
    } finally {
      closeSync(fd);
    }
  });

  it("deferred lines count towards maxChars: a burst of them is handed over without the timer", async () => {
    const path = join(dir, "deferred-burst.log");
    const fd = openSync(path, "a");
    try {
      const destination = batchedDestination(fd, { maxDelayMs: 60_000, maxChars: 4096 });
      for (let i = 0; i < 100; i++) destination.writeDeferred({ render: () => `${JSON.stringify({ i })}\n` });
      await until(() => lines(path).length >= 90, "deferred lines handed over past maxChars");
      destination.flushSync();
      assert.deepEqual(
        lines(path).map((l) => l.i),
        Array.from({ length: 100 }, (_, i) => i),
      );
    } finally {
      closeSync(fd);
    }
  });

  it("writes lines still waiting when the process exits", () => {
    const path = join(dir, "exit.log");
    const r = child(path, 5, "process.exit(0);");
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(
      lines(path).map((l) => l.i),
      [0, 1, 2, 3, 4],
    );
  });

  it("writes lines still waiting when the process dies of an uncaught exception", () => {
    const path = join(dir, "crash.log");
    const r = child(path, 5, 'throw new Error("boom");');
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /boom/);
    assert.deepEqual(
      lines(path).map((l) => l.i),
      [0, 1, 2, 3, 4],
    );
    assert.ok(lines(path).every((l) => l.token === "[redacted]"));
  });
});
