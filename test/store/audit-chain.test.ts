import assert from "node:assert/strict";
import { generateKeyPairSync, sign as edSign } from "node:crypto";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  AuditChainVerifier,
  anchorDigest,
  auditHeadOf,
  checkpointPayload,
  describeAuditBreak,
  encodeAuditEvent,
  linkAuditRows,
  type AuditCheckpoint,
  type AuditEventInput,
  type AuditRow,
  type AuditVerdict,
} from "../../src/store/audit-chain.js";
import { pruneThrough } from "../../src/server/audit-retention.js";
import { canonicalJson } from "../../src/canonical-json.js";

const ANCHOR = "ab".repeat(32);

const EVENT_ARB: fc.Arbitrary<AuditEventInput> = fc.record({
  kind: fc.constantFrom("admission.admit", "admission.reject", "device.paired", "device.token.revoked"),
  actor: fc.constantFrom("gateway", "owner", "device:abc"),
  fields: fc.dictionary(fc.constantFrom("deviceId", "code", "scopes", "n"), fc.oneof(fc.string({ maxLength: 12 }), fc.nat(), fc.array(fc.string({ maxLength: 6 }), { maxLength: 3 }))),
  ts: fc.integer({ min: 0, max: 2 ** 42 }),
});

function check(rows: readonly AuditRow[], opts: { anchor?: string; checkpoint?: AuditCheckpoint; trusted?: (k: string) => boolean } = {}): AuditVerdict {
  const v = new AuditChainVerifier("anchor" in opts ? opts.anchor : ANCHOR, opts.checkpoint, opts.trusted ?? (() => true));
  for (const r of rows) if (!v.add(r)) break;
  return v.finish();
}

function chain(events: readonly AuditEventInput[]): AuditRow[] {
  return linkAuditRows(auditHeadOf(undefined, undefined, ANCHOR), events, 1);
}

function signer() {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  const key = publicKey.export({ format: "der", type: "spki" }).subarray(12).toString("base64url");
  return { key, sign: (c: Omit<AuditCheckpoint, "signature">): AuditCheckpoint => ({ ...c, signature: edSign(null, Buffer.from(checkpointPayload(c)), privateKey).toString("base64url") }) };
}

describe("the audit hash chain", () => {
  it("an event's stored text is canonical JSON: keys sorted, undefined fields left out, whatever order it was built in (property)", () => {
    fc.assert(
      fc.property(EVENT_ARB, (e) => {
        const text = encodeAuditEvent(e);
        assert.equal(text, canonicalJson({ ...e.fields, kind: e.kind, actor: e.actor }));
        const reversed = Object.fromEntries(Object.entries(e.fields ?? {}).reverse());
        assert.equal(encodeAuditEvent({ ...e, fields: { ...reversed, unset: undefined } }), text);
      }),
    );
  });

  it("any chain, linked in batches of any size, verifies whole (property)", () => {
    fc.assert(
      fc.property(fc.array(fc.array(EVENT_ARB, { maxLength: 5 }), { maxLength: 6 }), (batches) => {
        const rows: AuditRow[] = [];
        for (const batch of batches) rows.push(...linkAuditRows(auditHeadOf(rows.at(-1), undefined, ANCHOR), batch, 7));
        const verdict = check(rows);
        assert.ok(verdict.ok);
        assert.equal(verdict.checked, rows.length);
        assert.deepEqual(rows.map((r) => r.seq), rows.map((_r, i) => i + 1));
      }),
    );
  });

  it("editing any field of any entry is named at that entry (property)", () => {
    fc.assert(
      fc.property(fc.array(EVENT_ARB, { minLength: 1, maxLength: 12 }), fc.nat(), fc.constantFrom("event", "ts"), (events, pick, field) => {
        const rows = chain(events);
        const k = pick % rows.length;
        const row = rows[k] as AuditRow;
        rows[k] = field === "event" ? { ...row, event: row.event.replace(/}$/, ',"x":1}') } : { ...row, ts: row.ts + 1 };
        const verdict = check(rows);
        assert.ok(!verdict.ok);
        assert.deepEqual(verdict.broken, { kind: "edited", seq: k + 1 });
        assert.equal(describeAuditBreak(verdict.broken), `entry #${k + 1} does not match its hash: it was edited`);
      }),
    );
  });

  it("deleting any entry but the newest is named at the missing number (property)", () => {
    fc.assert(
      fc.property(fc.array(EVENT_ARB, { minLength: 2, maxLength: 12 }), fc.nat(), (events, pick) => {
        const rows = chain(events);
        const k = pick % (rows.length - 1);
        rows.splice(k, 1);
        const verdict = check(rows);
        assert.ok(!verdict.ok);
        assert.deepEqual(verdict.broken, { kind: "missing", seq: k + 1, found: k + 2 });
      }),
    );
  });

  it("moving an entry's content to another sequence number is named at the first place it no longer fits (property)", () => {
    fc.assert(
      fc.property(fc.array(EVENT_ARB, { minLength: 2, maxLength: 12 }), fc.nat(), (events, pick) => {
        const rows = chain(events);
        const k = pick % (rows.length - 1);
        const a = rows[k] as AuditRow;
        const b = rows[k + 1] as AuditRow;
        // Swap what the two rows hold, keeping the sequence numbers in order (as ORDER BY seq reads them).
        rows[k] = { ...b, seq: a.seq };
        rows[k + 1] = { ...a, seq: b.seq };
        const verdict = check(rows);
        assert.ok(!verdict.ok);
        assert.equal(verdict.broken.kind === "relinked" || verdict.broken.kind === "edited" ? verdict.broken.seq : -1, k + 1);
      }),
    );
  });

  it("a chain recomputed from another anchor (a wholesale rewrite) does not verify against this install's anchor", () => {
    const rows = linkAuditRows(auditHeadOf(undefined, undefined, "cd".repeat(32)), [{ kind: "t", actor: "gateway" }], 1);
    const verdict = check(rows);
    assert.ok(!verdict.ok);
    assert.deepEqual(verdict.broken, { kind: "relinked", seq: 1 });
  });

  it("dropping the newest entries cannot be told from the chain alone: verify reports the head so it can be recorded elsewhere", () => {
    const rows = chain([{ kind: "a", actor: "gateway" }, { kind: "b", actor: "gateway" }]);
    const verdict = check(rows.slice(0, 1));
    assert.ok(verdict.ok);
    assert.deepEqual(verdict.head, { seq: 1, hash: rows[0]?.hash });
  });

  it("an empty log verifies with no anchor; entries without an anchor do not", () => {
    assert.ok(check([], { anchor: undefined }).ok);
    const verdict = check(chain([{ kind: "a", actor: "gateway" }]), { anchor: undefined });
    assert.ok(!verdict.ok);
    assert.equal(verdict.broken.kind, "no-anchor");
  });

  describe("checkpoints", () => {
    const rows = chain(Array.from({ length: 6 }, (_v, i) => ({ kind: "n", actor: "gateway", fields: { i } })));
    const s = signer();
    const at = rows[2] as AuditRow;
    const checkpoint = s.sign({ v: 1, anchor: anchorDigest(ANCHOR), throughSeq: at.seq, hash: at.hash, ts: 5, signer: s.key });
    const rest = rows.slice(3);

    it("the entries after a checkpoint signed by a trusted key verify", () => {
      const verdict = check(rest, { checkpoint, trusted: (k) => k === s.key });
      assert.ok(verdict.ok && verdict.checked === 3 && verdict.first === 4);
    });

    it("a checkpoint moved to another entry, or with another hash, has an invalid signature", () => {
      for (const forged of [{ ...checkpoint, throughSeq: 4 }, { ...checkpoint, hash: "0".repeat(64) }, { ...checkpoint, ts: 6 }]) {
        const verdict = check(rows.slice(forged.throughSeq), { checkpoint: forged });
        assert.ok(!verdict.ok);
        assert.equal(verdict.broken.kind, "checkpoint-forged");
      }
    });

    it("a valid checkpoint by an untrusted key, or of another anchor, is refused", () => {
      const untrusted = check(rest, { checkpoint, trusted: () => false });
      assert.ok(!untrusted.ok && untrusted.broken.kind === "checkpoint-untrusted");
      const other = signer();
      const foreign = other.sign({ ...checkpoint, anchor: anchorDigest("cd".repeat(32)), signer: other.key });
      const verdict = check(rest, { checkpoint: foreign });
      assert.ok(!verdict.ok && verdict.broken.kind === "checkpoint-other-chain");
    });

    it("an entry deleted right after the checkpoint is named", () => {
      const verdict = check(rest.slice(1), { checkpoint });
      assert.ok(!verdict.ok);
      assert.deepEqual(verdict.broken, { kind: "missing", seq: 4, found: 5 });
    });
  });
});

describe("audit retention (pruneThrough)", () => {
  it("keeps at most maxEntries and drops everything older than the age limit, never a negative or zero seq (property)", () => {
    fc.assert(
      fc.property(fc.nat({ max: 10_000 }), fc.option(fc.nat({ max: 10_000 }), { nil: undefined }), fc.integer({ min: 1, max: 5000 }), (newest, beforeCutoff, max) => {
        const cut = beforeCutoff === undefined ? undefined : Math.min(beforeCutoff, newest);
        const through = pruneThrough(newest, cut, max);
        const kept = newest - (through ?? 0);
        assert.ok(kept <= max || (through ?? 0) >= (cut ?? 0));
        assert.ok(kept <= max, "never more than maxEntries kept");
        if (through !== undefined) assert.ok(through > 0 && through <= newest);
        if (cut !== undefined && cut > 0) assert.ok((through ?? 0) >= cut, "every entry older than the limit goes");
        if (through !== undefined) assert.equal(through, Math.max(newest - max, cut ?? 0), "no more than needed goes");
      }),
    );
  });
});
