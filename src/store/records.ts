import type { PairingReason } from "../protocol/error-codes.js";
import type { Role, Scope } from "../protocol/enums.js";

// Stored shapes. Secrets never appear here in clear: only SHA-256 hex digests.

export interface DeviceTokenRecord {
  readonly role: Role;
  readonly tokenHash: string;
  readonly scopes: readonly Scope[];
  readonly createdAtMs: number;
  readonly rotatedAtMs?: number;
  readonly revokedAtMs?: number;
  readonly lastUsedAtMs?: number;
}

export interface DeviceMetadata {
  readonly displayName?: string;
  readonly platform?: string;
  readonly deviceFamily?: string;
  readonly clientId?: string;
  readonly clientMode?: string;
  readonly remoteIp?: string;
}

export interface PairedDeviceRecord extends DeviceMetadata {
  readonly deviceId: string;
  readonly publicKey: string;
  readonly roles: readonly Role[];
  readonly approvedScopes: readonly Scope[];
  readonly tokens: Readonly<Partial<Record<Role, DeviceTokenRecord>>>;
  readonly createdAtMs: number;
  readonly approvedAtMs: number;
}

export interface PendingRequestRecord extends DeviceMetadata {
  readonly requestId: string;
  readonly deviceId: string;
  readonly publicKey: string;
  readonly role: Role;
  readonly roles: readonly Role[];
  readonly scopes: readonly Scope[];
  readonly reason: PairingReason;
  readonly isRepair: boolean;
  /**
   * The address budget the request counts against (per-IP caps): the client's
   * IPv4 address, or the /64 of its IPv6 address (`addressBudgetKey`). The
   * exact address is `remoteIp`.
   */
  readonly requesterIp: string;
  readonly ts: number;
  readonly expiresAtMs: number;
}

export interface BackendRecord {
  readonly id: string;
  readonly name: string;
  readonly secretHash: string;
  readonly scopes: readonly Scope[];
  readonly createdAtMs: number;
  readonly revokedAtMs?: number;
  readonly lastUsedAtMs?: number;
}

export interface BootstrapRecord {
  readonly id: string;
  readonly tokenHash: string;
  readonly roles: readonly Role[];
  readonly scopes: readonly Scope[];
  readonly createdAtMs: number;
  readonly expiresAtMs: number;
  readonly consumedAtMs?: number;
  readonly consumedByDeviceId?: string;
}
