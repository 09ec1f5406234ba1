import {
  AuditChainVerifier,
  anchorDigest,
  checkpointPayload,
  describeAuditBreak,
  parseCheckpoint,
  SETTING_AUDIT_ANCHOR,
  SETTING_AUDIT_CHECKPOINT,
  type AuditCheckpoint,
} from "../store/audit-chain.js";
import type { Store } from "../store/store.js";

export interface AuditRetention {
  /** Entries older than this are pruned. */
  readonly maxAgeMs: number;
  /** At most this many entries are kept. */
  readonly maxEntries: number;
}

/** The key that signs checkpoints: the gateway's identity (kept in the state dir, not the store). */
export interface CheckpointSigner {
  /** Raw Ed25519 public key, base64url. */
  readonly publicKey: string;
  sign(payload: string): string;
}

/**
 * The last seq to prune, if any: everything older than the age limit, and
 * enough of the oldest to keep at most `maxEntries`. Pure.
 */
export function pruneThrough(newestSeq: number, lastSeqBeforeCutoff: number | undefined, maxEntries: number): number | undefined {
  const byCount = newestSeq - maxEntries;
  const through = Math.max(byCount, lastSeqBeforeCutoff ?? 0);
  return through > 0 ? through : undefined;
}

const PAGE = 1000;
/** Rows pruned per transaction: the write lock is never held for long. */
const MAX_PRUNE_PER_RUN = 50_000;

export type PruneOutcome =
  | { readonly pruned: 0 }
  | { readonly pruned: number; readonly throughSeq: number }
  | { readonly refused: string };

/**
 * Prune the oldest entries under a new signed checkpoint, in one audit-only
 * transaction. The rows to prune are checked first, from the checkpoint in
 * force: a prefix that was tampered with is never signed over (that would
 * launder the edit), and a checkpoint signed by a key not trusted here is
 * never extended. Both are refused, and the log stays as it is for `audit
 * verify` to report.
 */
export async function pruneAudit(
  store: Store,
  opts: { readonly nowMs: number; readonly retention: AuditRetention; readonly signer: CheckpointSigner; readonly trusted: (key: string) => boolean },
): Promise<PruneOutcome> {
  return store.auditTransact(async (tx) => {
    const newest = await tx.newestAuditRow();
    const anchor = await tx.getSetting(SETTING_AUDIT_ANCHOR);
    if (!newest || anchor === undefined) return { pruned: 0 };
    const wanted = pruneThrough(newest.seq, await tx.lastAuditSeqBefore(opts.nowMs - opts.retention.maxAgeMs), opts.retention.maxEntries);
    if (wanted === undefined) return { pruned: 0 };
    const previous = parseCheckpoint(await tx.getSetting(SETTING_AUDIT_CHECKPOINT));
    const from = previous?.throughSeq ?? 0;
    const through = Math.min(wanted, from + MAX_PRUNE_PER_RUN);
    if (through <= from) return { pruned: 0 };

    const verifier = new AuditChainVerifier(anchor, previous, opts.trusted);
    let last: { seq: number; hash: string } | undefined;
    for (let cursor = from; cursor < through; ) {
      const rows = await tx.auditRows(cursor, Math.min(PAGE, through - cursor));
      if (rows.length === 0 || rows.some((row) => !verifier.add(row))) break;
      const tail = rows.at(-1) as { seq: number; hash: string };
      last = { seq: tail.seq, hash: tail.hash };
      cursor = tail.seq;
    }
    const verdict = verifier.finish();
    if (!verdict.ok) return { refused: `the audit log is not intact (${describeAuditBreak(verdict.broken)}); nothing is pruned until it is looked into` };
    if (!last || last.seq !== through) return { refused: `audit entry #${through} is missing; nothing is pruned until it is looked into` };

    const unsigned: Omit<AuditCheckpoint, "signature"> = { v: 1, anchor: anchorDigest(anchor), throughSeq: through, hash: last.hash, ts: opts.nowMs, signer: opts.signer.publicKey };
    const checkpoint: AuditCheckpoint = { ...unsigned, signature: opts.signer.sign(checkpointPayload(unsigned)) };
    await tx.setAuditSetting(SETTING_AUDIT_CHECKPOINT, JSON.stringify(checkpoint));
    const pruned = await tx.deleteAuditThrough(through);
    return { pruned, throughSeq: through };
  });
}
