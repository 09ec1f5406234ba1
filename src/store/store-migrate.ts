import { isDeepStrictEqual } from "node:util";
import { isAuditSetting } from "./audit-append.js";
import type { AuditRow } from "./audit-chain.js";
import type { BackendRecord, BootstrapRecord, PairedDeviceRecord, PendingRequestRecord } from "./records.js";
import type { Store, StoreReader } from "./store.js";

// Copying a whole store into another, empty one (SQLite → PostgreSQL).
// The `changes` feed is not copied: it only tells running gateways what just
// happened, and a gateway starting on the target reads the state itself.
// The audit log is copied row for row with its anchor and checkpoint, so its
// chain verifies on the target as it did on the source.

/** Everything a store holds that outlives a gateway process. */
export interface StoreContents {
  readonly pairedDevices: readonly PairedDeviceRecord[];
  readonly pendingRequests: readonly PendingRequestRecord[];
  readonly backends: readonly BackendRecord[];
  readonly bootstrapTokens: readonly BootstrapRecord[];
  readonly settings: ReadonlyArray<{ readonly key: string; readonly value: string }>;
  readonly auditRows: readonly AuditRow[];
}

const LISTS = [
  ["pairedDevices", "paired device", "paired devices"],
  ["pendingRequests", "pending request", "pending requests"],
  ["backends", "backend", "backends"],
  ["bootstrapTokens", "bootstrap token", "bootstrap tokens"],
  ["settings", "setting", "settings"],
  ["auditRows", "audit entry", "audit entries"],
] as const satisfies ReadonlyArray<readonly [keyof StoreContents, string, string]>;

/** The target already holds records; the transaction wrote nothing. */
export class TargetNotEmptyError extends Error {
  override readonly name = "TargetNotEmptyError";
}

/** What was read back from the target is not what was read from the source. */
export class CopyMismatchError extends Error {
  override readonly name = "CopyMismatchError";
  constructor(readonly lists: readonly string[]) {
    super(`the copy differs from the source in ${lists.join(", ")}`);
  }
}

export async function readStoreContents(reader: StoreReader): Promise<StoreContents> {
  return {
    pairedDevices: await reader.listPairedDevices(),
    pendingRequests: await reader.listPendingRequests(),
    backends: await reader.listBackends(),
    bootstrapTokens: await reader.listBootstrapTokens(),
    settings: await reader.listSettings(),
    auditRows: await readAllAuditRows(reader),
  };
}

const AUDIT_PAGE = 1000;

async function readAllAuditRows(reader: StoreReader): Promise<AuditRow[]> {
  const out: AuditRow[] = [];
  for (;;) {
    const page = await reader.auditRows(out.at(-1)?.seq ?? 0, AUDIT_PAGE);
    // Rows as plain objects, whatever a driver returns, so copies compare equal.
    for (const r of page) out.push({ seq: Number(r.seq), ts: Number(r.ts), event: r.event, prev: r.prev, hash: r.hash });
    if (page.length < AUDIT_PAGE) return out;
  }
}

/** "3 paired devices, 1 pending request, …": counts only, never a record's content. */
export function describeCounts(contents: StoreContents): string {
  return LISTS.map(([key, one, many]) => {
    const n = contents[key].length;
    return `${n} ${n === 1 ? one : many}`;
  }).join(", ");
}

function isEmpty(contents: StoreContents): boolean {
  return LISTS.every(([key]) => contents[key].length === 0);
}

/** The names of the lists in which `a` and `b` differ (deep equality, order included). */
export function differingLists(a: StoreContents, b: StoreContents): string[] {
  return LISTS.filter(([key]) => !isDeepStrictEqual(a[key], b[key])).map(([, , many]) => many);
}

/**
 * Write `contents` into `target` in one transaction, after checking there
 * that the target holds nothing (never a merge), and read it back before
 * committing: on any difference, or any failure, nothing is kept.
 */
export async function copyStoreContents(target: Store, contents: StoreContents): Promise<void> {
  await target.transact(async (tx) => {
    const existing = await readStoreContents(tx);
    if (!isEmpty(existing)) throw new TargetNotEmptyError(`it holds ${describeCounts(existing)}`);
    for (const device of contents.pairedDevices) await tx.putPairedDevice(device);
    for (const request of contents.pendingRequests) await tx.putPendingRequest(request);
    for (const backend of contents.backends) await tx.putBackend(backend);
    for (const bootstrap of contents.bootstrapTokens) await tx.putBootstrap(bootstrap);
    for (const { key, value } of contents.settings) await (isAuditSetting(key) ? tx.setAuditSetting(key, value) : tx.setSetting(key, value));
    for (let i = 0; i < contents.auditRows.length; i += AUDIT_PAGE) await tx.appendAuditRows(contents.auditRows.slice(i, i + AUDIT_PAGE));
    const written = differingLists(contents, await readStoreContents(tx));
    if (written.length > 0) throw new CopyMismatchError(written);
  }, { importing: true });
}
