import type { Grant } from "../admission/grant.js";
import type { PresenceEntry } from "../methods/define-method.js";
import type { IssuedToken } from "../pairing/device-tokens.js";

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

export interface HelloOkInput {
  readonly protocol: number;
  readonly connId: string;
  /** Random per gateway process; lets protocol-4 clients tell a restart from a reconnect. */
  readonly bootId: string;
  readonly version: string;
  readonly grant: Grant;
  readonly issued: IssuedToken | undefined;
  readonly methods: readonly string[];
  readonly events: readonly string[];
  readonly snapshot: HelloSnapshot;
  readonly policy: { readonly maxPayload: number; readonly maxBufferedBytes: number; readonly tickIntervalMs: number };
}

/** First protocol whose hello-ok carries `auth.method`, `server.bootId` and `features.capabilities`. */
const PROTOCOL_WITH_AUTH_METHOD = 4;

export function buildHelloOk(input: HelloOkInput): Record<string, unknown> {
  const { grant, issued } = input;
  const v4 = input.protocol >= PROTOCOL_WITH_AUTH_METHOD;
  const token = issued ? { deviceToken: issued.token, issuedAtMs: issued.issuedAtMs } : {};
  return {
    type: "hello-ok",
    protocol: input.protocol,
    server: v4 ? { version: input.version, bootId: input.bootId, connId: input.connId } : { version: input.version, connId: input.connId },
    // Shared, not copied: the payload is serialized at once and never changed.
    features: {
      methods: input.methods,
      events: input.events,
      // Capabilities name optional protocol-4 contracts (model-catalog snapshots,
      // session settings, worker bundles…). gatewarden implements none of them,
      // so a client that requires one fails with its own clear message.
      ...(v4 ? { capabilities: [] } : {}),
    },
    snapshot: input.snapshot,
    auth: v4
      ? { method: grant.authMethod, role: grant.role, scopes: grant.scopes, ...token }
      : { role: grant.role, scopes: grant.scopes, ...token },
    policy: input.policy,
  };
}
