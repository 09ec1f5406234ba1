// Closed enumerations of the OpenClaw gateway protocol (spec §4.2–4.4, §16).
// Client ids and modes are *labels*: they are validated so that look-alikes are
// refused, and never consulted when granting anything.

export const PROTOCOL_VERSIONS = [3, 4] as const;
export type ProtocolVersion = (typeof PROTOCOL_VERSIONS)[number];
export const MIN_PROTOCOL: ProtocolVersion = 3;
export const MAX_PROTOCOL: ProtocolVersion = 4;

export const CLIENT_IDS = [
  "webchat-ui",
  "openclaw-control-ui",
  "openclaw-tui",
  "webchat",
  "cli",
  "gateway-client",
  "openclaw-macos",
  "openclaw-ios",
  "openclaw-android",
  "node-host",
  "test",
  "fingerprint",
  "openclaw-probe",
  // protocol 4 additions (spec §16)
  "openclaw-browser-copilot",
  "openclaw-linux",
  "openclaw-watchos",
  "openclaw-worker",
] as const;
export type ClientId = (typeof CLIENT_IDS)[number];

export const CLIENT_MODES = ["webchat", "cli", "ui", "backend", "node", "probe", "test", "worker"] as const;
export type ClientMode = (typeof CLIENT_MODES)[number];

export const ROLES = ["operator", "node"] as const;
export type Role = (typeof ROLES)[number];

export const OPERATOR_SCOPES = [
  "operator.admin",
  "operator.read",
  "operator.write",
  "operator.approvals",
  "operator.pairing",
  "operator.talk.secrets",
  // protocol 4 additions (spec §16)
  "operator.questions",
  "operator.talk",
  "operator.sessions.read",
  "operator.sessions.write",
] as const;
export type OperatorScope = (typeof OPERATOR_SCOPES)[number];

/** A scope string the gateway knows. Node scopes are `node.<name>`. */
export type Scope = OperatorScope | `node.${string}`;

const OPERATOR_SCOPE_SET: ReadonlySet<string> = new Set(OPERATOR_SCOPES);
const NODE_SCOPE = /^node\.[a-z][a-z0-9._-]{0,63}$/;

export function isKnownScope(value: string): value is Scope {
  return OPERATOR_SCOPE_SET.has(value) || NODE_SCOPE.test(value);
}

export function isRole(value: string): value is Role {
  return value === "operator" || value === "node";
}

/** The six scopes the upstream CLI requests by default (spec §4.5): the protocol-3 set. */
export const CLI_DEFAULT_OPERATOR_SCOPES: readonly OperatorScope[] = OPERATOR_SCOPES.slice(0, 6);
