import type { Grant } from "../admission/grant.js";
import type { Role } from "../protocol/enums.js";
import type { ChangeRecord } from "../store/store.js";

/** What a change takes away from sessions admitted before it. */
export type Revocation =
  | { readonly kind: "device"; readonly deviceId: string }
  | { readonly kind: "device-role"; readonly deviceId: string; readonly role: Role }
  | { readonly kind: "backend"; readonly backendId: string }
  | { readonly kind: "shared-secret" };

/** The revocation a change carries, if it carries one. */
export function revocationOf(change: ChangeRecord): Revocation | undefined {
  switch (change.kind) {
    case "device.removed":
      return { kind: "device", deviceId: change.deviceId };
    case "device.token.changed":
      return { kind: "device-role", deviceId: change.deviceId, role: change.role };
    case "backend.revoked":
      return { kind: "backend", backendId: change.backendId };
    case "shared-secret.rotated":
      return { kind: "shared-secret" };
    case "pairing.requested":
    case "pairing.resolved":
      return undefined;
  }
}

export function revokes(r: Revocation, g: Grant): boolean {
  switch (r.kind) {
    case "device":
      return g.deviceId === r.deviceId;
    case "device-role":
      return g.deviceId === r.deviceId && g.role === r.role;
    case "backend":
      return g.backendId === r.backendId;
    case "shared-secret":
      return g.credential === "shared-secret";
  }
}

export const RECENT_REVOCATIONS = 1024;

/**
 * The revocations the gateway applied lately, numbered. A handshake notes
 * the number before it gathers its facts and asks, just before its session
 * is registered, whether anything since took its grant away. Closing live
 * sessions alone would miss a handshake that decided on the old facts and
 * registered after the close swept by.
 */
export class RecentRevocations {
  private seq = 0;
  private readonly entries: { readonly seq: number; readonly revocation: Revocation }[] = [];

  constructor(private readonly capacity = RECENT_REVOCATIONS) {}

  /** The number of the latest revocation (0 before any). */
  mark(): number {
    return this.seq;
  }

  record(revocation: Revocation): void {
    this.entries.push({ seq: ++this.seq, revocation });
    if (this.entries.length > this.capacity) this.entries.splice(0, this.entries.length - this.capacity);
  }

  /**
   * Whether a revocation recorded after `mark` applies to `grant`; also true
   * when some of those are no longer kept (the handshake then decides again).
   */
  revokedSince(mark: number, grant: Grant): boolean {
    if (mark === this.seq) return false;
    const oldestKept = this.entries[0]?.seq ?? this.seq + 1;
    if (mark + 1 < oldestKept) return true;
    for (let i = this.entries.length - 1; i >= 0; i--) {
      const e = this.entries[i];
      if (e === undefined || e.seq <= mark) break;
      if (revokes(e.revocation, grant)) return true;
    }
    return false;
  }
}
