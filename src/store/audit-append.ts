import { randomBytes } from "node:crypto";
import { auditHeadOf, linkAuditRows, parseCheckpoint, SETTING_AUDIT_ANCHOR, SETTING_AUDIT_CHECKPOINT, type AuditEventInput } from "./audit-chain.js";
import type { AuditWriter } from "./store.js";

/**
 * Link `events` after the newest audit row and write them, inside the caller's
 * transaction (which serializes appends: two writers never link to the same
 * head). The first append of an install makes its random anchor.
 */
export async function appendAuditEvents(tx: AuditWriter, events: readonly AuditEventInput[], nowMs: number): Promise<void> {
  if (events.length === 0) return;
  let anchor = await tx.getSetting(SETTING_AUDIT_ANCHOR);
  if (anchor === undefined) {
    anchor = randomBytes(32).toString("hex");
    await tx.setAuditSetting(SETTING_AUDIT_ANCHOR, anchor);
  }
  const head = auditHeadOf(await tx.newestAuditRow(), parseCheckpoint(await tx.getSetting(SETTING_AUDIT_CHECKPOINT)), anchor);
  await tx.appendAuditRows(linkAuditRows(head, events, nowMs));
}

/** Keys only the audit path writes. */
export function isAuditSetting(key: string): boolean {
  return key.startsWith("audit.");
}

/** What every store's `setAuditSetting` checks first: it writes audit keys only. */
export function assertAuditSetting(key: string): void {
  if (!isAuditSetting(key)) throw new Error(`${key} is not an audit setting`);
}
