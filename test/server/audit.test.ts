import assert from "node:assert/strict";
import { describe, it } from "node:test";
import pino from "pino";
import type { Claims } from "../../src/admission/claims.js";
import type { Decision } from "../../src/admission/decide.js";
import { createAuditLog, type AuditEntry } from "../../src/server/audit.js";
import { batchedDestination, createLogger } from "../../src/server/logger.js";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { createTestDevice } from "../support/device.js";
import { SHARED_TOKEN, connectInput, decide, loopbackPeer, makeClaims, pairedDeviceRecord, remotePeer } from "../support/admission-fixtures.js";

// Audit lines are serialized by src/server/audit.ts itself (one JSON.stringify
// of a closed record, in pino's envelope) instead of by pino: cheaper, and
// they must be exactly the lines pino would have written.

const DEVICE_TOKEN = "device-token-audit-test-5e6f7a8b";

function capture(level = "info"): { logger: pino.Logger; lines: () => Record<string, unknown>[]; raw: () => string } {
  const chunks: string[] = [];
  const logger = createLogger({ level, destination: { write: (s: string) => void chunks.push(s) } });
  return { logger, raw: () => chunks.join(""), lines: () => chunks.join("").split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
}

/** What pino itself writes for this record (the reference the fast path must match). */
function pinoLine(logger: pino.Logger, record: Record<string, unknown>, level: "info" | "warn", msg: string): Record<string, unknown> {
  const chunks: string[] = [];
  const reference = pino({ level: "trace", base: { service: "gatewarden" }, timestamp: pino.stdTimeFunctions.isoTime }, { write: (s: string) => void chunks.push(s) }).child(logger.bindings());
  reference[level](record, msg);
  return JSON.parse(chunks.join("")) as Record<string, unknown>;
}

const device = createTestDevice();
const claims: Claims = makeClaims();
const admitted = decide({ device, presented: { deviceToken: DEVICE_TOKEN }, facts: { pairedDevice: pairedDeviceRecord(device, { approvedScopes: ["operator.read"], tokens: { operator: { token: DEVICE_TOKEN, scopes: ["operator.read"] } } }) }, claims: { requestedScopes: ["operator.read"] } });
const pairing = decide({ device, presented: { token: SHARED_TOKEN } });
const rejected = decide({ presented: { token: "wrong-shared-token" } });

const entries: readonly [string, AuditEntry][] = [
  ["admit", { connId: "conn-admit", peer: loopbackPeer(), claims: connectInput({ device }).claims, decision: admitted, note: "device token issued" }],
  ["pairing-required", { connId: "conn-pair", peer: remotePeer(), claims, decision: pairing, requestId: "req-1" }],
  ["reject (decision)", { connId: "conn-reject", peer: loopbackPeer({ origin: 'https://evil.example/"quoted"\u2028' }), claims, decision: rejected }],
  ["reject (stage)", { connId: "conn-frame", peer: remotePeer(), claims: undefined, decision: { kind: "reject", stage: "frame", code: "INVALID_FRAME" }, note: "malformed json" }],
];

describe("audit lines", () => {
  it("the decisions under test are what their names say", () => {
    const kinds: Decision["kind"][] = [admitted.kind, pairing.kind, rejected.kind];
    assert.deepEqual(kinds, ["admit", "pairing-required", "reject"]);
  });

  for (const [name, entry] of entries) {
    it(`${name}: the line written is, field for field, the line pino writes for the same record, bindings included`, () => {
      const { logger, lines } = capture();
      const child = logger.child({ component: "gateway" });
      createAuditLog(child)(entry);
      const [line, ...rest] = lines();
      assert.ok(line, "one line");
      assert.deepEqual(rest, []);
      const { time, level, msg, ...fields } = line;
      assert.match(String(time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      const reference = pinoLine(child, fields, level === 40 ? "warn" : "info", String(msg));
      assert.deepEqual({ ...line, time: undefined }, { ...reference, time: undefined });
      assert.equal(line.audit, "admission");
      assert.equal(line.connId, entry.connId);
      assert.equal(level, entry.decision.kind === "reject" ? 40 : 30, "rejections at warn, the rest at info");
    });
  }

  it("through the serve command's batched destination, the line is the same, stamped with the time of the decision", async () => {
    const dir = mkdtempSync(join(tmpdir(), "gatewarden-audit-"));
    const fd = openSync(join(dir, "audit.log"), "a");
    try {
      const destination = batchedDestination(fd, { maxDelayMs: 60_000, maxChars: 1 << 20 });
      const batched = createLogger({ destination }).child({ component: "gateway" });
      const direct = capture();
      const entry = entries[0]?.[1] as AuditEntry;
      const before = Date.now();
      createAuditLog(batched)(entry);
      createAuditLog(direct.logger.child({ component: "gateway" }))(entry);
      await delay(300);
      destination.flushSync();
      const [line] = readFileSync(join(dir, "audit.log"), "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
      assert.ok(line);
      assert.ok(Date.parse(String(line.time)) < before + 150, "stamped when decided, not when written");
      assert.deepEqual({ ...line, time: undefined }, { ...direct.lines()[0], time: undefined });
    } finally {
      closeSync(fd);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("honours the logger's level: at warn, admissions and pairing requests are not written, rejections are", () => {
    const { logger, lines } = capture("warn");
    const audit = createAuditLog(logger);
    for (const [, entry] of entries) audit(entry);
    assert.deepEqual(
      lines().map((l) => l.connId),
      ["conn-reject", "conn-frame"],
    );
  });

  it("writes one JSON line per decision, each ending in a newline, even with line separators in client-chosen text", () => {
    const { logger, raw } = capture();
    const audit = createAuditLog(logger);
    for (const [, entry] of entries) audit(entry);
    const text = raw();
    assert.ok(text.endsWith("\n"));
    assert.equal(text.split("\n").filter(Boolean).length, entries.length);
  });

  it("carries no presented secret: only ids, labels, kinds and codes", () => {
    const { logger, raw } = capture();
    const audit = createAuditLog(logger);
    for (const [, entry] of entries) audit(entry);
    for (const secret of [DEVICE_TOKEN, SHARED_TOKEN, "wrong-shared-token"]) assert.ok(!raw().includes(secret), secret);
  });
});
