import { AuditChainVerifier, parseCheckpoint, SETTING_AUDIT_ANCHOR, SETTING_AUDIT_CHECKPOINT, type AuditVerdict } from "./audit-chain.js";
import type { StoreReader } from "./store.js";

const PAGE = 1000;
/** A gateway pruning while the log is read moves the checkpoint; the check then starts again, this many times at most. */
const ATTEMPTS = 3;

/**
 * Check the whole audit log as stored: the checkpoint (if a prefix was
 * pruned), then every row in order, a page at a time. A gap that appears
 * because a gateway pruned meanwhile (the checkpoint moved) is not a break:
 * the check starts again from the new checkpoint.
 */
export async function verifyAuditLog(reader: StoreReader, trusted: (key: string) => boolean): Promise<AuditVerdict> {
  for (let attempt = 1; ; attempt++) {
    const checkpointText = await reader.getSetting(SETTING_AUDIT_CHECKPOINT);
    const verifier = new AuditChainVerifier(await reader.getSetting(SETTING_AUDIT_ANCHOR), parseCheckpoint(checkpointText), trusted);
    // From the lowest row there is, not from the checkpoint: a row put back (or forged) under it is a break too.
    let after = Number.MIN_SAFE_INTEGER;
    for (;;) {
      const rows = await reader.auditRows(after, PAGE);
      if (rows.some((row) => !verifier.add(row)) || rows.length < PAGE) break;
      after = rows.at(-1)?.seq ?? after;
    }
    const verdict = verifier.finish();
    if (verdict.ok || attempt >= ATTEMPTS || (await reader.getSetting(SETTING_AUDIT_CHECKPOINT)) === checkpointText) return verdict;
  }
}
