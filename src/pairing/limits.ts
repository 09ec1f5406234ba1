/** Bounds on pairing state; an attacker with many keys fills these, never memory. */
export interface PairingLimits {
  /** A pending request expires this long after it was first made. */
  readonly pendingTtlMs: number;
  /** Pending requests one client IP may have open at once. */
  readonly maxPendingPerIp: number;
  /** Pending requests in total. */
  readonly maxPendingTotal: number;
}

export const DEFAULT_PAIRING_LIMITS: PairingLimits = {
  pendingTtlMs: 5 * 60_000,
  maxPendingPerIp: 16,
  maxPendingTotal: 1024,
};
