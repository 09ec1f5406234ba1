import type { PairingReason } from "../protocol/error-codes.js";
import type { Role, Scope } from "../protocol/enums.js";
import type { BackendRecord, BootstrapRecord, DeviceMetadata, DeviceTokenRecord, PairedDeviceRecord, PendingRequestRecord } from "./records.js";
import type { ChangeInput, ChangeRecord } from "./store.js";

// The database stores (SQLite, PostgreSQL) share one table layout: these are
// its rows and their mapping to records, so both give back exactly the same shapes.

// Rows and their mapping to records. Optional record fields are NULL columns;
// a NULL becomes an absent key, never `undefined` or `null`.

export interface MetadataColumns {
  display_name: string | null;
  platform: string | null;
  device_family: string | null;
  client_id: string | null;
  client_mode: string | null;
  remote_ip: string | null;
}

export interface DeviceRow extends MetadataColumns {
  device_id: string;
  public_key: string;
  roles: string;
  approved_scopes: string;
  created_at_ms: number;
  approved_at_ms: number;
  /** JSON array of TokenJson, aggregated in the same statement (one snapshot). */
  tokens: string;
}

export interface TokenJson {
  role: Role;
  token_hash: string;
  scopes: Scope[];
  created_at_ms: number;
  rotated_at_ms: number | null;
  revoked_at_ms: number | null;
  last_used_at_ms: number | null;
}

export interface TokenParams {
  device_id: string;
  role: string;
  token_hash: string;
  scopes: string;
  created_at_ms: number;
  rotated_at_ms: number | null;
  revoked_at_ms: number | null;
  last_used_at_ms: number | null;
}

export type DeviceParams = Omit<DeviceRow, "tokens">;

export interface PendingRow extends MetadataColumns {
  request_id: string;
  device_id: string;
  public_key: string;
  role: string;
  roles: string;
  scopes: string;
  reason: string;
  is_repair: number;
  requester_ip: string;
  ts: number;
  expires_at_ms: number;
}

export interface BackendRow {
  id: string;
  name: string;
  secret_hash: string;
  scopes: string;
  created_at_ms: number;
  revoked_at_ms: number | null;
  last_used_at_ms: number | null;
}

export interface BootstrapRow {
  id: string;
  token_hash: string;
  roles: string;
  scopes: string;
  created_at_ms: number;
  expires_at_ms: number;
  consumed_at_ms: number | null;
  consumed_by_device_id: string | null;
}

export interface ChangeRow {
  id: number;
  ts: number;
  kind: string;
  payload: string;
}

/** `{ key: value }`, or `{}` when the column was NULL. */
export function opt<K extends string, V>(key: K, value: V | null): { [P in K]?: V } {
  return (value === null ? {} : { [key]: value }) as { [P in K]?: V };
}

export function encodeMetadata(m: DeviceMetadata): MetadataColumns {
  return {
    display_name: m.displayName ?? null,
    platform: m.platform ?? null,
    device_family: m.deviceFamily ?? null,
    client_id: m.clientId ?? null,
    client_mode: m.clientMode ?? null,
    remote_ip: m.remoteIp ?? null,
  };
}

export function decodeMetadata(row: MetadataColumns): DeviceMetadata {
  return {
    ...opt("displayName", row.display_name),
    ...opt("platform", row.platform),
    ...opt("deviceFamily", row.device_family),
    ...opt("clientId", row.client_id),
    ...opt("clientMode", row.client_mode),
    ...opt("remoteIp", row.remote_ip),
  };
}

// These arrays were written by this module from typed records.
export const parseRoles = (json: string): Role[] => JSON.parse(json) as Role[];
export const parseScopes = (json: string): Scope[] => JSON.parse(json) as Scope[];

export function decodeDevice(row: DeviceRow): PairedDeviceRecord {
  const tokens: Partial<Record<Role, DeviceTokenRecord>> = {};
  for (const t of JSON.parse(row.tokens) as TokenJson[]) {
    tokens[t.role] = {
      role: t.role,
      tokenHash: t.token_hash,
      scopes: t.scopes,
      createdAtMs: t.created_at_ms,
      ...opt("rotatedAtMs", t.rotated_at_ms),
      ...opt("revokedAtMs", t.revoked_at_ms),
      ...opt("lastUsedAtMs", t.last_used_at_ms),
    };
  }
  return {
    deviceId: row.device_id,
    publicKey: row.public_key,
    ...decodeMetadata(row),
    roles: parseRoles(row.roles),
    approvedScopes: parseScopes(row.approved_scopes),
    tokens,
    createdAtMs: row.created_at_ms,
    approvedAtMs: row.approved_at_ms,
  };
}

export function encodeDevice(r: PairedDeviceRecord): DeviceParams {
  return {
    device_id: r.deviceId,
    public_key: r.publicKey,
    ...encodeMetadata(r),
    roles: JSON.stringify(r.roles),
    approved_scopes: JSON.stringify(r.approvedScopes),
    created_at_ms: r.createdAtMs,
    approved_at_ms: r.approvedAtMs,
  };
}

export function encodeToken(deviceId: string, t: DeviceTokenRecord): TokenParams {
  return {
    device_id: deviceId,
    role: t.role,
    token_hash: t.tokenHash,
    scopes: JSON.stringify(t.scopes),
    created_at_ms: t.createdAtMs,
    rotated_at_ms: t.rotatedAtMs ?? null,
    revoked_at_ms: t.revokedAtMs ?? null,
    last_used_at_ms: t.lastUsedAtMs ?? null,
  };
}

export function decodePending(row: PendingRow): PendingRequestRecord {
  return {
    requestId: row.request_id,
    deviceId: row.device_id,
    publicKey: row.public_key,
    ...decodeMetadata(row),
    role: row.role as Role,
    roles: parseRoles(row.roles),
    scopes: parseScopes(row.scopes),
    reason: row.reason as PairingReason,
    isRepair: row.is_repair === 1,
    requesterIp: row.requester_ip,
    ts: row.ts,
    expiresAtMs: row.expires_at_ms,
  };
}

export function encodePending(r: PendingRequestRecord): PendingRow {
  return {
    request_id: r.requestId,
    device_id: r.deviceId,
    public_key: r.publicKey,
    ...encodeMetadata(r),
    role: r.role,
    roles: JSON.stringify(r.roles),
    scopes: JSON.stringify(r.scopes),
    reason: r.reason,
    is_repair: r.isRepair ? 1 : 0,
    requester_ip: r.requesterIp,
    ts: r.ts,
    expires_at_ms: r.expiresAtMs,
  };
}

export function decodeBackend(row: BackendRow): BackendRecord {
  return {
    id: row.id,
    name: row.name,
    secretHash: row.secret_hash,
    scopes: parseScopes(row.scopes),
    createdAtMs: row.created_at_ms,
    ...opt("revokedAtMs", row.revoked_at_ms),
    ...opt("lastUsedAtMs", row.last_used_at_ms),
  };
}

export function encodeBackend(r: BackendRecord): BackendRow {
  return {
    id: r.id,
    name: r.name,
    secret_hash: r.secretHash,
    scopes: JSON.stringify(r.scopes),
    created_at_ms: r.createdAtMs,
    revoked_at_ms: r.revokedAtMs ?? null,
    last_used_at_ms: r.lastUsedAtMs ?? null,
  };
}

export function decodeBootstrap(row: BootstrapRow): BootstrapRecord {
  return {
    id: row.id,
    tokenHash: row.token_hash,
    roles: parseRoles(row.roles),
    scopes: parseScopes(row.scopes),
    createdAtMs: row.created_at_ms,
    expiresAtMs: row.expires_at_ms,
    ...opt("consumedAtMs", row.consumed_at_ms),
    ...opt("consumedByDeviceId", row.consumed_by_device_id),
  };
}

export function encodeBootstrap(r: BootstrapRecord): BootstrapRow {
  return {
    id: r.id,
    token_hash: r.tokenHash,
    roles: JSON.stringify(r.roles),
    scopes: JSON.stringify(r.scopes),
    created_at_ms: r.createdAtMs,
    expires_at_ms: r.expiresAtMs,
    consumed_at_ms: r.consumedAtMs ?? null,
    consumed_by_device_id: r.consumedByDeviceId ?? null,
  };
}

export function decodeChange(row: ChangeRow): ChangeRecord {
  // `kind` is a column of its own; the payload holds the remaining fields.
  return { ...(JSON.parse(row.payload) as object), kind: row.kind, id: row.id, ts: row.ts } as ChangeRecord;
}

export function encodeChangePayload(change: ChangeInput): string {
  const { kind: _kind, ...payload } = change;
  return JSON.stringify(payload);
}

