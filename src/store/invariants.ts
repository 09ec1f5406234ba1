import type { PairedDeviceRecord } from "./records.js";

/**
 * A device's tokens are keyed by role and each token also carries its role;
 * the two must agree, or a lookup by role would hand out a token minted for
 * the other role. Both stores refuse such a record instead of guessing.
 */
export function assertTokenRolesMatch(record: PairedDeviceRecord): void {
  for (const [role, token] of Object.entries(record.tokens)) {
    if (token !== undefined && token.role !== role) {
      throw new Error(
        `device ${record.deviceId}: token stored under role "${role}" claims role "${token.role}"`,
      );
    }
  }
}

/**
 * A deep copy of plain data without `undefined`-valued keys: what a database
 * store gives back (absent optional fields stay absent), so the memory store
 * keeps exactly the same shape.
 */
export function withoutUndefined<T>(value: T): T {
  if (Array.isArray(value)) return value.map((item: unknown) => withoutUndefined(item)) as T;
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) {
      if (item !== undefined) out[key] = withoutUndefined(item);
    }
    return out as T;
  }
  return value;
}
