import type { Grant } from "../admission/grant.js";
import type { PresenceEntry } from "../methods/define-method.js";
import type { IssuedToken } from "../pairing/effects.js";

// The hello-ok payload for each negotiated protocol (spec §11.1, §16).
//
// Upstream clients validate it against *closed* schemas that differ by
// version, so every field here is one that version's schema declares:
// - protocol 3 (openclaw 2026.4.24): `auth` is {role, scopes, deviceToken?,
//   issuedAtMs?}; an `auth.method` key would make the object invalid there.
// - protocol 4 (openclaw 2026.9.x): `auth` is required and may carry
//   `method`; `server.bootId` and `features.capabilities` are declared.
// `auth.recoveryScope` / `auth.recoveryMigrationAllowed` (optional in protocol
// 4) describe upstream's device-recovery migration, which gatewarden does not
// offer, so they are never sent.
// `auth.scopes` is always the session's effective scopes, whatever the
// version: the grant, never a token's or the request's.

export interface HelloSnapshot {
  readonly presence: readonly PresenceEntry[];
  readonly health: Record<string, never>;
  readonly stateVersion: { readonly presence: number; readonly health: number };
  readonly uptimeMs: number;
  /** Only for operator.admin sessions (spec §11.1). */
  readonly authMode?: string;
  readonly stateDir?: string;
}

/** What a hello-ok carries that is fixed for the gateway's lifetime. */
export interface HelloOkFixed {
  readonly version: string;
  /** Random per gateway process; lets protocol-4 clients tell a restart from a reconnect. */
  readonly bootId: string;
  readonly methods: readonly string[];
  readonly events: readonly string[];
  /** Protocol-4 capabilities: none standalone; in upstream mode the upstream's, for the contracts it relays. */
  readonly capabilities?: readonly string[];
  readonly policy: { readonly maxPayload: number; readonly maxBufferedBytes: number; readonly tickIntervalMs: number };
}

/** What varies per session. */
export interface HelloOkInput {
  readonly protocol: number;
  readonly connId: string;
  readonly grant: Grant;
  readonly issued: IssuedToken | undefined;
  readonly snapshot: HelloSnapshot;
}

/** First protocol whose hello-ok carries `auth.method`, `server.bootId` and `features.capabilities`. */
const PROTOCOL_WITH_AUTH_METHOD = 4;

/** Features are fixed per protocol version; serialized once each. */
function featuresPart(fixed: HelloOkFixed, v4: boolean): Record<string, readonly string[]> {
  return {
    methods: fixed.methods,
    events: fixed.events,
    // Capabilities name optional protocol-4 contracts (model-catalog snapshots,
    // session settings, worker bundles…). Standalone, gatewarden implements
    // none of them, so a client that requires one fails with its own clear
    // message; in front of an upstream, the methods they name are relayed.
    ...(v4 ? { capabilities: fixed.capabilities ?? [] } : {}),
  };
}

/** A JSON string literal. */
const str = (text: string): string => JSON.stringify(text);

/** A JSON number; JSON has no NaN or Infinity, and JSON.stringify writes null for them. */
const num = (n: number): string => (Number.isFinite(n) ? String(n) : "null");

/**
 * hello-ok payloads as JSON text. The parts fixed for the gateway's lifetime
 * (the method and event lists, the policy) are serialized once per protocol
 * version; `server`, `snapshot` and `auth` are written per session from
 * their few fields (strings through JSON.stringify), as one of these goes
 * out with every admission: a JSON.stringify call costs more than the small
 * objects it serializes. Fields keep the order type, protocol, server,
 * features, snapshot, auth, policy; the text is exactly JSON.stringify of
 * the payload object (tested, fields and order).
 */
export class HelloOkWriter {
  private readonly features = new Map<boolean, string>();
  private readonly policy: string;
  private readonly version: string;
  private readonly bootId: string;

  constructor(private readonly fixed: HelloOkFixed) {
    this.policy = JSON.stringify(fixed.policy);
    this.version = str(fixed.version);
    this.bootId = str(fixed.bootId);
  }

  payloadJson(input: HelloOkInput): string {
    const v4 = input.protocol >= PROTOCOL_WITH_AUTH_METHOD;
    let features = this.features.get(v4);
    if (features === undefined) {
      features = JSON.stringify(featuresPart(this.fixed, v4));
      this.features.set(v4, features);
    }
    const server = v4 ? `{"version":${this.version},"bootId":${this.bootId},"connId":${str(input.connId)}}` : `{"version":${this.version},"connId":${str(input.connId)}}`;
    return `{"type":"hello-ok","protocol":${num(input.protocol)},"server":${server},"features":${features},"snapshot":${snapshotJson(input.snapshot)},"auth":${authJson(input, v4)},"policy":${this.policy}}`;
  }
}

function snapshotJson(snapshot: HelloSnapshot): string {
  const { presence, stateVersion } = snapshot;
  const admin = `${snapshot.authMode !== undefined ? `,"authMode":${str(snapshot.authMode)}` : ""}${snapshot.stateDir !== undefined ? `,"stateDir":${str(snapshot.stateDir)}` : ""}`;
  return `{"presence":${presence.length === 0 ? "[]" : JSON.stringify(presence)},"health":{},"stateVersion":{"presence":${num(stateVersion.presence)},"health":${num(stateVersion.health)}},"uptimeMs":${num(snapshot.uptimeMs)}${admin}}`;
}

function authJson(input: HelloOkInput, v4: boolean): string {
  const { grant, issued } = input;
  const method = v4 ? `"method":${str(grant.authMethod)},` : "";
  const token = issued ? `,"deviceToken":${str(issued.token)},"issuedAtMs":${num(issued.issuedAtMs)}` : "";
  return `{${method}"role":${str(grant.role)},"scopes":${JSON.stringify(grant.scopes)}${token}}`;
}
