import type { Decision } from "../admission/decide.js";
import type { PeerEvidence } from "../admission/locality.js";
import type { Claims } from "../admission/claims.js";
import pino from "pino";
import type { AuditEventInput } from "../store/audit-chain.js";
import { takesDeferredLines, type DeferredLine, type Logger } from "./logger.js";

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
  /** Only when it differs from `peer` (forwarded by a trusted proxy). */
  readonly clientIp: string | undefined;
  readonly locality: string;
  /** Only when true. */
  readonly viaTrustedProxy: true | undefined;
  readonly origin: string | undefined;
  readonly clientId: string | undefined;
  readonly clientMode: string | undefined;
  readonly clientVersion: string | undefined;
  readonly requestedRole: string | undefined;
  readonly requestedScopes: readonly string[] | undefined;
  /** The device the client claimed; left out when it is the admitted `deviceId`. */
  readonly claimedDevice: string | undefined;
  readonly decision: "admit" | "pairing-required" | "reject";
  readonly stage: string | undefined;
  readonly code: string | undefined;
  readonly protocol: number | undefined;
  readonly evidence: string | undefined;
  readonly authMethod: string | undefined;
  readonly role: string | undefined;
  readonly scopes: readonly string[] | undefined;
  readonly deviceId: string | undefined;
  readonly principal: string | undefined;
  readonly silentApproval: string | undefined;
  readonly reason: string | undefined;
  readonly requestId: string | undefined;
  readonly note: string | undefined;
}

/** Client-chosen text is bounded before it is logged. */
const bound = (text: string | undefined, max = 64): string | undefined => (text === undefined || text.length <= max ? text : text.slice(0, max));

function recordOf(entry: AuditEntry): AuditRecord {
  const { decision, peer, claims } = entry;
  const admit = decision.kind === "admit" ? decision : undefined;
  const pairing = decision.kind === "pairing-required" ? decision : undefined;
  const reject = decision.kind === "reject" ? decision : undefined;
  const scopes = claims?.requestedScopes;
  // One literal with every field (undefined ones are not written): spreading
  // a shared base into each outcome's fields made the line cost several
  // times more to build and serialize.
  return {
    audit: "admission",
    connId: entry.connId,
    peer: peer.remoteAddress,
    // Written only where they say something: the client address when a trusted
    // proxy forwarded it, the claimed device when no verified one names it.
    clientIp: peer.clientIp === peer.remoteAddress ? undefined : peer.clientIp,
    locality: peer.locality,
    viaTrustedProxy: peer.viaTrustedProxy || undefined,
    origin: bound(peer.origin, 256),
    clientId: claims?.clientId,
    clientMode: claims?.clientMode,
    clientVersion: bound(claims?.version),
    requestedRole: bound(claims?.requestedRole),
    requestedScopes: scopes && (scopes.length > 16 || scopes.some((s) => s.length > 64)) ? scopes.slice(0, 16).map((s) => s.slice(0, 64)) : scopes,
    claimedDevice: admit?.grant.deviceId !== undefined && admit.grant.deviceId === claims?.device?.id ? undefined : bound(claims?.device?.id),
    decision: decision.kind,
    stage: reject?.stage,
    code: reject === undefined ? undefined : "error" in reject ? reject.error.detailCode : reject.code,
    protocol: admit?.protocol,
    evidence: admit ? admit.grant.credential : pairing?.credential.kind,
    authMethod: admit?.grant.authMethod,
    role: admit?.grant.role,
    scopes: admit?.grant.scopes,
    deviceId: admit ? admit.grant.deviceId : pairing?.request.deviceId,
    principal: admit?.grant.principal,
    silentApproval: admit?.silentApproval,
    reason: pairing?.request.reason,
    requestId: pairing ? entry.requestId : undefined,
    note: entry.note,
  };
}

const MESSAGES = { admit: "admitted", "pairing-required": "pairing required", reject: "rejected" } as const;

let lastTimeMs = Number.NaN;
let lastIsoTime = "";

/** pino's isoTime for `ms`; lines of the same millisecond share the string. */
function isoTime(ms: number): string {
  if (ms !== lastTimeMs) {
    lastTimeMs = ms;
    lastIsoTime = new Date(ms).toISOString();
  }
  return lastIsoTime;
}

/** One audit line, in pino's envelope: level, time, the logger's bindings, the record's fields, msg. */
class AuditLine implements DeferredLine {
  constructor(
    private readonly level: number,
    private readonly timeMs: number,
    private readonly chindings: string,
    private readonly record: AuditRecord,
  ) {}

  render(): string {
    const fields = JSON.stringify(this.record);
    return `{"level":${this.level},"time":"${isoTime(this.timeMs)}"${this.chindings},${fields.slice(1, -1)},"msg":"${MESSAGES[this.record.decision]}"}\n`;
  }
}

export type AuditLog = (entry: AuditEntry) => void;

/** The same record as an entry of the store's audit log: the gateway decided it. */
function storeEventOf(record: AuditRecord, ts: number): AuditEventInput {
  const { audit: _audit, decision, ...fields } = record;
  return { kind: `admission.${decision}`, actor: "gateway", fields, ts };
}

interface PinoInternals {
  readonly stream: { write(line: string): unknown };
  /** The logger's bindings, pre-serialized by pino as `,"key":value…`. */
  readonly chindings: string;
}

/**
 * pino's stream and serialized bindings (pino.symbols). Every Logger here is a
 * pino logger; if a pino upgrade moved these, fail at start-up, not silently.
 */
function pinoInternals(logger: Logger): PinoInternals {
  const fields = logger as unknown as Record<symbol, unknown>;
  const stream = fields[pino.symbols.streamSym] as { write?: unknown } | undefined;
  const chindings = fields[pino.symbols.chindingsSym];
  if (typeof stream?.write !== "function" || typeof chindings !== "string") {
    throw new Error("audit log: this pino logger has no stream or bindings symbols (pino's internals changed?)");
  }
  return { stream: stream as PinoInternals["stream"], chindings };
}

/**
 * One structured line per admission decision: who (peer, labels), on what
 * evidence, which stage decided, and the outcome. Rejections at warn.
 *
 * There is one of these per handshake, so the line is written the cheap way:
 * the closed record serialized by one JSON.stringify, in pino's envelope
 * (level, time, the logger's bindings, msg), straight to the logger's stream.
 * pino itself serializes each key on its own and runs the redaction paths;
 * the record has no secret for them to find (see AuditRecord). The lines are
 * the ones pino would write (tested). On a batched destination the line is
 * rendered when its batch is written, with the time of the decision.
 */
export function createAuditLog(logger: Logger, toStore?: (event: AuditEventInput) => void): AuditLog {
  const { stream, chindings } = pinoInternals(logger);
  const deferred = takesDeferredLines(stream) ? stream : undefined;
  const info = logger.levels.values.info;
  const warn = logger.levels.values.warn;
  if (info === undefined || warn === undefined) throw new Error("audit log: the logger has no info or warn level");
  return (entry) => {
    const record = recordOf(entry);
    const now = Date.now();
    // The store's log keeps every decision, whatever the log level.
    if (toStore) toStore(storeEventOf(record, now));
    const level = record.decision === "reject" ? "warn" : "info";
    if (!logger.isLevelEnabled(level)) return;
    const line = new AuditLine(level === "warn" ? warn : info, now, chindings, record);
    if (deferred) deferred.writeDeferred(line);
    else stream.write(line.render());
  };
}
