import type { Role } from "../protocol/enums.js";
import { appendAuditEvents, isAuditSetting } from "./audit-append.js";
import type { AuditActorLabel, AuditEventInput, AuditValue } from "./audit-chain.js";
import type { DeviceTokenRecord, PairedDeviceRecord } from "./records.js";
import { SETTING_SHARED_TOKEN_HASH, type StoreWriter } from "./store.js";

// Every change to who may do what is audited by construction: the stores run
// each transaction on this writer, which compares what is written with what
// was there and appends what changed (device grants and tokens, pairing
// requests, backends, bootstrap tokens, the shared token) to the audit log in
// the same transaction. A code path that forgets to audit cannot exist; one
// that writes nothing security-relevant adds nothing. Only ids, roles, scopes
// and times are written: the stored digests of secrets stay out.

const sameList = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((v, i) => v === b[i]);

function tokenEvents(deviceId: string, role: Role, before: DeviceTokenRecord | undefined, after: DeviceTokenRecord | undefined): Array<[string, Record<string, AuditValue>]> {
  if (!before && !after) return [];
  // Revoking a role approved but never handed out writes a revoked record: a revocation, not an issue.
  if (!before && after) return [after.revokedAtMs !== undefined ? ["device.token.revoked", { deviceId, role }] : ["device.token.issued", { deviceId, role, scopes: after.scopes }]];
  if (before && !after) return [["device.token.removed", { deviceId, role }]];
  const a = before as DeviceTokenRecord;
  const b = after as DeviceTokenRecord;
  if (b.revokedAtMs !== undefined && a.revokedAtMs === undefined) return [["device.token.revoked", { deviceId, role }]];
  if (a.tokenHash !== b.tokenHash) return [["device.token.rotated", { deviceId, role, scopes: b.scopes, fromScopes: sameList(a.scopes, b.scopes) ? undefined : a.scopes }]];
  if (!sameList(a.scopes, b.scopes)) return [["device.token.scopes", { deviceId, role, scopes: b.scopes, fromScopes: a.scopes }]];
  return [];
}

function deviceEvents(before: PairedDeviceRecord | undefined, after: PairedDeviceRecord): Array<[string, Record<string, AuditValue>]> {
  const deviceId = after.deviceId;
  if (!before) {
    return [["device.paired", { deviceId, roles: after.roles, scopes: after.approvedScopes, displayName: after.displayName?.slice(0, 64), remoteIp: after.remoteIp }]];
  }
  const out: Array<[string, Record<string, AuditValue>]> = [];
  if (before.publicKey !== after.publicKey) out.push(["device.key.replaced", { deviceId }]);
  if (!sameList(before.roles, after.roles) || !sameList(before.approvedScopes, after.approvedScopes)) {
    out.push(["device.grant.changed", { deviceId, roles: after.roles, scopes: after.approvedScopes, fromRoles: before.roles, fromScopes: before.approvedScopes }]);
  }
  const roles = new Set<Role>([...(Object.keys(before.tokens) as Role[]), ...(Object.keys(after.tokens) as Role[])]);
  for (const role of [...roles].sort()) out.push(...tokenEvents(deviceId, role, before.tokens[role], after.tokens[role]));
  return out;
}

/**
 * `tx` with every write audited as `actor`; call `flush()` before the
 * transaction commits to append what was collected (one batch, one link run).
 */
export function auditedWriter(tx: StoreWriter, actor: AuditActorLabel, nowMs: () => number): { readonly writer: StoreWriter; flush(): Promise<void> } {
  const events: AuditEventInput[] = [];
  const note = (kind: string, fields: Record<string, AuditValue>): void => {
    events.push({ kind, actor, fields, ts: nowMs() });
  };
  const refuse = (what: string): never => {
    throw new Error(`${what} is written only by the audit log itself`);
  };
  const writer: StoreWriter = {
    ...tx,
    async putPairedDevice(record) {
      const before = await tx.getPairedDevice(record.deviceId);
      await tx.putPairedDevice(record);
      for (const [kind, fields] of deviceEvents(before, record)) note(kind, fields);
    },
    async deletePairedDevice(deviceId) {
      const removed = await tx.deletePairedDevice(deviceId);
      if (removed) note("device.removed", { deviceId });
      return removed;
    },
    async putPendingRequest(record) {
      const before = await tx.getPendingRequest(record.requestId);
      await tx.putPendingRequest(record);
      // A refresh (the same device asking again) is not a new request.
      if (!before) {
        note("pairing.requested", {
          requestId: record.requestId,
          deviceId: record.deviceId,
          role: record.role,
          roles: record.roles,
          scopes: record.scopes,
          reason: record.reason,
          repair: record.isRepair || undefined,
          remoteIp: record.remoteIp,
        });
      }
    },
    async deleteExpiredPending(now) {
      const expired = await tx.deleteExpiredPending(now);
      for (const r of expired) note("pairing.expired", { requestId: r.requestId, deviceId: r.deviceId });
      return expired;
    },
    async putBackend(record) {
      const before = await tx.getBackendByName(record.name);
      await tx.putBackend(record);
      if (!before) note("backend.added", { backend: record.name, backendId: record.id, scopes: record.scopes });
      else if (record.revokedAtMs !== undefined && before.revokedAtMs === undefined) note("backend.revoked", { backend: record.name, backendId: record.id });
      else if (!sameList(before.scopes, record.scopes)) note("backend.scopes", { backend: record.name, backendId: record.id, scopes: record.scopes, fromScopes: before.scopes });
      else if (before.secretHash !== record.secretHash) note("backend.secret.replaced", { backend: record.name, backendId: record.id });
    },
    async putBootstrap(record) {
      const before = await tx.getBootstrapByTokenHash(record.tokenHash);
      await tx.putBootstrap(record);
      if (!before) note("bootstrap.issued", { bootstrapId: record.id, roles: record.roles, scopes: record.scopes, expiresAtMs: record.expiresAtMs });
      else if (record.consumedAtMs !== undefined && before.consumedAtMs === undefined) note("bootstrap.used", { bootstrapId: record.id, deviceId: record.consumedByDeviceId });
    },
    async setSetting(key, value) {
      if (isAuditSetting(key)) refuse(`the setting ${key}`);
      const before = key === SETTING_SHARED_TOKEN_HASH ? await tx.getSetting(key) : undefined;
      await tx.setSetting(key, value);
      if (key === SETTING_SHARED_TOKEN_HASH && before !== value) note(before === undefined ? "shared-token.created" : "shared-token.rotated", {});
    },
    async appendChange(change, ts) {
      await tx.appendChange(change, ts);
      // The outcome of a request is known only here; its record is just deleted.
      if (change.kind === "pairing.resolved" && change.decision !== "expired") {
        note(`pairing.${change.decision}`, { requestId: change.requestId, deviceId: change.deviceId });
      }
    },
    appendAuditRows: () => refuse("the audit log"),
    deleteAuditThrough: () => refuse("the audit log"),
    setAuditSetting: (key) => refuse(`the setting ${key}`),
  };
  return {
    writer,
    async flush() {
      if (events.length === 0) return;
      const batch = events.splice(0);
      await appendAuditEvents(tx, batch, nowMs());
    },
  };
}

/**
 * The body a store runs for `transact(fn, opts)`: `fn` on an audited writer,
 * then the audit entries, in the same transaction. A whole store copied in
 * (`importing`) is written as given, audit log included: its chain must stay
 * the source's.
 */
export function auditedBody<T>(
  fn: (tx: StoreWriter) => Promise<T>,
  opts: { readonly actor?: AuditActorLabel; readonly importing?: boolean } | undefined,
  defaultActor: AuditActorLabel,
): (tx: StoreWriter) => Promise<T> {
  if (opts?.importing === true) return fn;
  const actor = opts?.actor ?? defaultActor;
  return async (tx) => {
    const audited = auditedWriter(tx, actor, Date.now);
    const result = await fn(audited.writer);
    await audited.flush();
    return result;
  };
}
