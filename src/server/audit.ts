import type { Decision } from "../admission/decide.js";
import type { PeerEvidence } from "../admission/locality.js";
import type { Claims } from "../admission/claims.js";
import type { Logger } from "./logger.js";

/**
 * One structured line per admission decision: who (peer, labels), on what
 * evidence, which stage decided, and the outcome. Never a secret: only kinds,
 * codes, ids and labels are logged.
 */
export function auditAdmission(
  logger: Logger,
  entry: {
    readonly connId: string;
    readonly peer: PeerEvidence;
    readonly claims: Claims | undefined;
    readonly decision: Decision | { kind: "reject"; stage: string; code: string };
    readonly requestId?: string;
    readonly note?: string;
  },
): void {
  const { decision, peer, claims } = entry;
  const base = {
    audit: "admission",
    connId: entry.connId,
    peer: peer.remoteAddress,
    clientIp: peer.clientIp,
    locality: peer.locality,
    viaTrustedProxy: peer.viaTrustedProxy,
    origin: peer.origin,
    client: claims ? { id: claims.clientId, mode: claims.clientMode, version: claims.version.slice(0, 64) } : undefined,
    requestedRole: claims?.requestedRole.slice(0, 64),
    requestedScopes: claims?.requestedScopes.slice(0, 16).map((s) => s.slice(0, 64)),
    claimedDevice: claims?.device?.id.slice(0, 64),
  };
  if (decision.kind === "admit") {
    logger.info(
      {
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
        note: entry.note,
      },
      "admitted",
    );
  } else if (decision.kind === "pairing-required") {
    logger.info(
      {
        ...base,
        decision: "pairing-required",
        evidence: decision.credential.kind,
        reason: decision.request.reason,
        deviceId: decision.request.deviceId,
        requestId: entry.requestId,
        note: entry.note,
      },
      "pairing required",
    );
  } else {
    const code = "error" in decision ? decision.error.detailCode : decision.code;
    logger.warn({ ...base, decision: "reject", stage: decision.stage, code, note: entry.note }, "rejected");
  }
}
