import type { Decision } from "../admission/decide.js";
import type { PeerEvidence } from "../admission/locality.js";
import type { Claims } from "../admission/claims.js";
import type { Logger } from "./logger.js";

/** A refusal decided outside `decideAdmission` (bad frame, failed store step). */
export interface StageRejection {
  readonly kind: "reject";
  readonly stage: string;
  readonly code: string;
}

export interface AuditEntry {
  readonly connId: string;
  readonly peer: PeerEvidence;
  readonly claims: Claims | undefined;
  readonly decision: Decision | StageRejection;
  readonly requestId?: string;
  readonly note?: string;
}

/**
 * The audit line's fields. Closed and flat, and every field is an id, a
 * label, a kind or a code: a presented secret has nowhere to go. That is
 * why audit lines skip the logger's wildcard redaction, which cost more
 * than the rest of a line (BENCHMARKS.md); the secrets-hygiene tests grep
 * every line for every secret used.
 */
interface AuditRecord {
  readonly audit: "admission";
  readonly connId: string;
  readonly peer: string;
  readonly clientIp: string;
  readonly locality: string;
  readonly viaTrustedProxy: boolean;
  readonly origin: string | undefined;
  readonly clientId: string | undefined;
  readonly clientMode: string | undefined;
  readonly clientVersion: string | undefined;
  readonly requestedRole: string | undefined;
  readonly requestedScopes: readonly string[] | undefined;
  readonly claimedDevice: string | undefined;
  readonly decision: "admit" | "pairing-required" | "reject";
  readonly stage?: string;
  readonly code?: string;
  readonly protocol?: number;
  readonly evidence?: string;
  readonly authMethod?: string;
  readonly role?: string;
  readonly scopes?: readonly string[];
  readonly deviceId?: string | undefined;
  readonly principal?: string | undefined;
  readonly silentApproval?: string | undefined;
  readonly reason?: string;
  readonly requestId?: string | undefined;
  readonly note?: string | undefined;
}

/** Client-chosen text is bounded before it is logged. */
const bound = (text: string | undefined, max = 64): string | undefined => (text === undefined || text.length <= max ? text : text.slice(0, max));

function recordOf(entry: AuditEntry): AuditRecord {
  const { decision, peer, claims } = entry;
  const base = {
    audit: "admission",
    connId: entry.connId,
    peer: peer.remoteAddress,
    clientIp: peer.clientIp,
    locality: peer.locality,
    viaTrustedProxy: peer.viaTrustedProxy,
    origin: bound(peer.origin, 256),
    clientId: claims?.clientId,
    clientMode: claims?.clientMode,
    clientVersion: bound(claims?.version),
    requestedRole: bound(claims?.requestedRole),
    requestedScopes: claims && (claims.requestedScopes.length > 16 || claims.requestedScopes.some((s) => s.length > 64)) ? claims.requestedScopes.slice(0, 16).map((s) => s.slice(0, 64)) : claims?.requestedScopes,
    claimedDevice: bound(claims?.device?.id),
    note: entry.note,
  } as const;
  switch (decision.kind) {
    case "admit":
      return {
        ...base,
        decision: "admit",
        protocol: decision.protocol,
        evidence: decision.grant.credential,
        authMethod: decision.grant.authMethod,
        role: decision.grant.role,
        scopes: decision.grant.scopes,
        deviceId: decision.grant.deviceId,
        principal: decision.grant.principal,
        silentApproval: decision.silentApproval?.via,
      };
    case "pairing-required":
      return {
        ...base,
        decision: "pairing-required",
        evidence: decision.credential.kind,
        reason: decision.request.reason,
        deviceId: decision.request.deviceId,
        requestId: entry.requestId,
      };
    case "reject":
      return { ...base, decision: "reject", stage: decision.stage, code: "error" in decision ? decision.error.detailCode : decision.code };
  }
}

const MESSAGES = { admit: "admitted", "pairing-required": "pairing required", reject: "rejected" } as const;

export type AuditLog = (entry: AuditEntry) => void;

/**
 * One structured line per admission decision: who (peer, labels), on what
 * evidence, which stage decided, and the outcome. Rejections at warn.
 */
export function createAuditLog(logger: Logger): AuditLog {
  // A child with no redaction paths: see AuditRecord for why that is safe.
  const audit = logger.child({}, { redact: [] });
  return (entry) => {
    const record = recordOf(entry);
    if (record.decision === "reject") audit.warn(record, MESSAGES.reject);
    else audit.info(record, MESSAGES[record.decision]);
  };
}
