import { createHash, createPublicKey, verify as edVerify } from "node:crypto";
import { canonicalJson } from "../canonical-json.js";

// The audit log as a hash chain. Each row carries the hash of the row before
// it; the first row, the hash of a random anchor made once per install. An
// edited row no longer matches its own hash, a deleted one leaves the next
// row pointing at nothing, a moved one hashes with the wrong sequence number.
// Pruning replaces a prefix by a checkpoint (the last pruned row's sequence
// number and hash) signed with the gateway's identity key, which is kept in
// the state dir, not in the store. Pure: the stores keep rows, this links
// and checks them.

/** Values an audit event may carry: ids, labels, codes, counts. Never a secret. */
export type AuditValue = string | number | boolean | readonly string[] | undefined;

/** Who did it: "owner" (the local CLI), "gateway" (the server itself), or a session ("device:<id>", "backend:<name>", "shared-token"). */
export type AuditActorLabel = string;

export interface AuditEventInput {
  readonly kind: string;
  readonly actor: AuditActorLabel;
  readonly fields?: Readonly<Record<string, AuditValue>>;
  /** When it happened (ms); the time of the write when absent. */
  readonly ts?: number;
}

/** One stored link. `event` is canonical JSON, hashed exactly as stored. */
export interface AuditRow {
  readonly seq: number;
  readonly ts: number;
  readonly event: string;
  readonly prev: string;
  readonly hash: string;
}

/** What a pruned prefix leaves behind: where the chain continues from, signed. */
export interface AuditCheckpoint {
  readonly v: 1;
  /** The digest of the install's anchor: a checkpoint belongs to one chain. */
  readonly anchor: string;
  /** The last pruned row. */
  readonly throughSeq: number;
  readonly hash: string;
  readonly ts: number;
  /** Ed25519 raw public key (base64url) of the gateway that pruned. */
  readonly signer: string;
  readonly signature: string;
}

export const SETTING_AUDIT_ANCHOR = "audit.anchor";
export const SETTING_AUDIT_CHECKPOINT = "audit.checkpoint";

const sha256 = (text: string): string => createHash("sha256").update(text, "utf8").digest("hex");

/** The `prev` of the first row ever: the anchor is never itself written into a row. */
export function anchorDigest(anchorHex: string): string {
  return sha256(`gatewarden audit anchor\n${anchorHex}`);
}

export function rowHash(prev: string, seq: number, ts: number, event: string): string {
  return sha256(`${prev}\n${seq}\n${ts}\n${event}`);
}

/**
 * The stored text of an event: its fields, kind and actor, keys sorted,
 * undefined fields left out. Field values are flat (no objects), so the key
 * list given to JSON.stringify orders the whole text: the native path, with
 * no replacer call per value (one entry per handshake).
 */
export function encodeAuditEvent(e: AuditEventInput): string {
  const all: Record<string, AuditValue> = { ...e.fields, kind: e.kind, actor: e.actor };
  return JSON.stringify(all, Object.keys(all).sort());
}

export interface AuditHead {
  readonly seq: number;
  readonly hash: string;
}

/** Rows for `events`, linked after `head` (or after the anchor when the log is empty). */
export function linkAuditRows(head: AuditHead, events: readonly AuditEventInput[], nowMs: number): AuditRow[] {
  const rows: AuditRow[] = [];
  let { seq, hash } = head;
  for (const e of events) {
    seq += 1;
    const ts = e.ts ?? nowMs;
    const event = encodeAuditEvent(e);
    const next = rowHash(hash, seq, ts, event);
    rows.push({ seq, ts, event, prev: hash, hash: next });
    hash = next;
  }
  return rows;
}

/** The head to link after: the newest row, else the checkpoint, else the anchor. */
export function auditHeadOf(newest: AuditRow | undefined, checkpoint: AuditCheckpoint | undefined, anchorHex: string): AuditHead {
  if (newest) return { seq: newest.seq, hash: newest.hash };
  if (checkpoint) return { seq: checkpoint.throughSeq, hash: checkpoint.hash };
  return { seq: 0, hash: anchorDigest(anchorHex) };
}

/** The bytes a checkpoint's signature covers. */
export function checkpointPayload(c: Omit<AuditCheckpoint, "signature">): string {
  return canonicalJson({ v: c.v, anchor: c.anchor, throughSeq: c.throughSeq, hash: c.hash, ts: c.ts, signer: c.signer, purpose: "gatewarden audit checkpoint" });
}

export function parseCheckpoint(text: string | undefined): AuditCheckpoint | undefined {
  if (text === undefined) return undefined;
  const c = JSON.parse(text) as Partial<AuditCheckpoint>;
  if (c.v !== 1 || typeof c.throughSeq !== "number" || typeof c.hash !== "string" || typeof c.signer !== "string" || typeof c.signature !== "string" || typeof c.anchor !== "string" || typeof c.ts !== "number") {
    throw new Error("the audit checkpoint is not in a known format");
  }
  return c as AuditCheckpoint;
}

const SPKI_ED25519_PREFIX = Buffer.from("302a300506032b6570032100", "hex");

export function checkpointSignatureValid(c: AuditCheckpoint): boolean {
  try {
    const raw = Buffer.from(c.signer, "base64url");
    if (raw.length !== 32) return false;
    const key = createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, raw]), format: "der", type: "spki" });
    return edVerify(null, Buffer.from(checkpointPayload(c), "utf8"), key, Buffer.from(c.signature, "base64url"));
  } catch {
    return false;
  }
}

export type AuditBreak =
  | { readonly kind: "edited"; readonly seq: number }
  | { readonly kind: "missing"; readonly seq: number; readonly found: number }
  /** A row before where the log starts (at or below the checkpoint, or below #1): pruned rows put back, or forged. */
  | { readonly kind: "before-start"; readonly seq: number; readonly start: number }
  | { readonly kind: "relinked"; readonly seq: number }
  | { readonly kind: "checkpoint-forged" }
  | { readonly kind: "checkpoint-untrusted"; readonly signer: string }
  | { readonly kind: "checkpoint-other-chain" }
  | { readonly kind: "no-anchor" };

export type AuditVerdict =
  | { readonly ok: true; readonly checked: number; readonly first: number | undefined; readonly head: AuditHead; readonly checkpoint: AuditCheckpoint | undefined }
  | { readonly ok: false; readonly broken: AuditBreak; readonly checked: number };

/**
 * Checks rows streamed in sequence order, one at a time, so a long log is
 * verified in constant memory. Start with the anchor and checkpoint, feed
 * every row, then `finish()`; the first break found is kept.
 */
export class AuditChainVerifier {
  private expectSeq: number;
  private expectPrev: string;
  private checked = 0;
  private first: number | undefined;
  private broken: AuditBreak | undefined;
  private noAnchor = false;
  /** The first seq the log may hold: 1, or the one after the checkpoint. */
  private readonly start: number;

  constructor(
    anchorHex: string | undefined,
    private readonly checkpoint: AuditCheckpoint | undefined,
    trusted: (signer: string) => boolean,
  ) {
    this.start = anchorHex !== undefined && checkpoint ? checkpoint.throughSeq + 1 : 1;
    if (anchorHex === undefined) {
      // An empty log has no anchor yet; rows or a checkpoint without one cannot be checked.
      this.expectSeq = 1;
      this.expectPrev = "";
      this.noAnchor = true;
      if (checkpoint) this.broken = { kind: "no-anchor" };
      return;
    }
    if (checkpoint) {
      this.expectSeq = checkpoint.throughSeq + 1;
      this.expectPrev = checkpoint.hash;
      if (checkpoint.anchor !== anchorDigest(anchorHex)) this.broken = { kind: "checkpoint-other-chain" };
      else if (!checkpointSignatureValid(checkpoint)) this.broken = { kind: "checkpoint-forged" };
      else if (!trusted(checkpoint.signer)) this.broken = { kind: "checkpoint-untrusted", signer: checkpoint.signer };
    } else {
      this.expectSeq = 1;
      this.expectPrev = anchorDigest(anchorHex);
    }
  }

  /** Feed the next row; false once the chain is broken (stop feeding). */
  add(row: AuditRow): boolean {
    if (this.broken) return false;
    if (this.noAnchor) {
      this.broken = { kind: "no-anchor" };
      return false;
    }
    if (row.seq < this.start) {
      this.broken = { kind: "before-start", seq: row.seq, start: this.start };
      return false;
    }
    if (row.seq !== this.expectSeq) {
      // A gap: rows deleted (or renumbered). Reported at the first missing number.
      this.broken = { kind: "missing", seq: this.expectSeq, found: row.seq };
      return false;
    }
    if (row.prev !== this.expectPrev) {
      this.broken = { kind: "relinked", seq: row.seq };
      return false;
    }
    if (rowHash(row.prev, row.seq, row.ts, row.event) !== row.hash) {
      this.broken = { kind: "edited", seq: row.seq };
      return false;
    }
    this.first ??= row.seq;
    this.checked += 1;
    this.expectSeq = row.seq + 1;
    this.expectPrev = row.hash;
    return true;
  }

  finish(): AuditVerdict {
    if (this.broken) return { ok: false, broken: this.broken, checked: this.checked };
    return { ok: true, checked: this.checked, first: this.first, head: { seq: this.expectSeq - 1, hash: this.expectPrev }, checkpoint: this.checkpoint };
  }
}

/** One line for a break, naming the entry. */
export function describeAuditBreak(b: AuditBreak): string {
  switch (b.kind) {
    case "edited":
      return `entry #${b.seq} does not match its hash: it was edited`;
    case "missing":
      return b.found > b.seq
        ? `entry #${b.seq} is missing (the next entry is #${b.found}): entries were deleted`
        : `entry #${b.found} appears where #${b.seq} belongs: entries were reordered or renumbered`;
    case "before-start":
      return `entry #${b.seq} lies before the start of the log (#${b.start}): pruned entries were put back, or it was forged`;
    case "relinked":
      return `entry #${b.seq} does not follow entry #${b.seq - 1}: an entry before it was replaced, deleted or moved`;
    case "checkpoint-forged":
      return "the checkpoint that replaces the pruned entries has an invalid signature: it was forged or edited";
    case "checkpoint-untrusted":
      return `the checkpoint that replaces the pruned entries is signed by a key this install does not trust (${b.signer}); pass --trust-key to accept it`;
    case "checkpoint-other-chain":
      return "the checkpoint that replaces the pruned entries belongs to another install's log";
    case "no-anchor":
      return "the log's anchor is missing from the store's settings: the log cannot be checked";
  }
}
