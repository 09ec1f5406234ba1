import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import type { DeviceProofClaim } from "../../src/identity/verify-device-proof.js";
import type { Claims } from "../../src/admission/claims.js";
import { decideAdmission, type AdmissionFacts, type AdmissionInput, type Decision } from "../../src/admission/decide.js";
import { parseCidrs, resolvePeer, type PeerEvidence, type RawPeerFacts } from "../../src/admission/locality.js";
import { DEFAULT_SILENT_SCOPE_CEILING, type AdmissionPolicy, type AuthPolicy, type SilentPairingPolicy } from "../../src/admission/policy.js";
import type { PresentedSecrets } from "../../src/admission/presented.js";
import type { DetailCode, PairingReason } from "../../src/protocol/error-codes.js";
import type { Role, Scope } from "../../src/protocol/enums.js";
import type { BackendRecord, BootstrapRecord, DeviceTokenRecord, PairedDeviceRecord } from "../../src/store/records.js";
import { liveRoleScopes } from "../../src/pairing/role-grant.js";
import { deviceProof, type SignConnectInput, type TestDevice } from "./device.js";

// Default facts, policy and claims for admission tests, plus builders for the
// store records the decision looks up. Every default is the "boring" case: a
// loopback peer, token auth, no Origin, no store records, protocol 3.

export const NOW_MS = 1_737_264_000_000;
export const CHALLENGE_NONCE = "6a1f3c9e-2b7d-4e58-9a0c-5d4e3f2a1b0c";
export const SHARED_TOKEN = "shared-operator-token-3f9a7c1e5b2d";
export const SHARED_PASSWORD = "shared-operator-password-8e4d2a6c";
/** A registered backend secret (note the `gwb_` prefix). */
export const BACKEND_SECRET = "gwb_backend-secret-0c7e1a9f4b3d6e2a";
export const BOOTSTRAP_TOKEN = "bootstrap-token-5a8c2e0f7d1b9e3c4a6f";
export const ALL_OPERATOR_SCOPES: readonly Scope[] = [
  "operator.admin",
  "operator.read",
  "operator.write",
  "operator.approvals",
  "operator.pairing",
  "operator.talk.secrets",
];

/** Hex SHA-256, the store's at-rest form of a secret (computed here, not by the code under test). */
export function sha256Hex(secret: string): string {
  return createHash("sha256").update(secret, "utf8").digest("hex");
}

function sha256(secret: string): Buffer {
  return createHash("sha256").update(secret, "utf8").digest();
}

// ---------------------------------------------------------------- policy

export function tokenAuth(token = SHARED_TOKEN): AuthPolicy {
  return { mode: "token", tokenDigest: sha256(token) };
}

export function passwordAuth(password = SHARED_PASSWORD): AuthPolicy {
  return { mode: "password", passwordDigest: sha256(password) };
}

export const NO_AUTH: AuthPolicy = { mode: "none" };

export function trustedProxyAuth(
  opts: { userHeader?: string; requiredHeaders?: readonly string[]; allowUsers?: readonly string[] } = {},
): AuthPolicy {
  return {
    mode: "trusted-proxy",
    userHeader: opts.userHeader ?? "x-forwarded-user",
    requiredHeaders: opts.requiredHeaders ?? [],
    allowUsers: opts.allowUsers ?? [],
  };
}

export const SILENT_PAIRING_OFF: SilentPairingPolicy = {
  enabled: false,
  roles: ["operator"],
  scopeCeiling: DEFAULT_SILENT_SCOPE_CEILING,
};

export function silentPairingOn(overrides: Partial<SilentPairingPolicy> = {}): SilentPairingPolicy {
  return { enabled: true, roles: ["operator"], scopeCeiling: DEFAULT_SILENT_SCOPE_CEILING, ...overrides };
}

export interface PolicyOptions extends Partial<Omit<AdmissionPolicy, "trustedProxies">> {
  /** IPs or CIDRs, parsed like the configuration. */
  readonly trustedProxies?: readonly string[];
}

export function makePolicy(opts: PolicyOptions = {}): AdmissionPolicy {
  return {
    auth: opts.auth ?? tokenAuth(),
    trustedProxies: parseCidrs(opts.trustedProxies ?? []),
    allowedOrigins: opts.allowedOrigins ?? [],
    silentLocalPairing: opts.silentLocalPairing ?? SILENT_PAIRING_OFF,
    signatureSkewMs: opts.signatureSkewMs ?? 120_000,
  };
}

// ---------------------------------------------------------------- peer

export interface PeerOptions {
  readonly remoteAddress?: string;
  readonly forwardedFor?: string;
  readonly realIp?: string;
  readonly forwarded?: string;
  /** Defaults to "any of forwardedFor / realIp / forwarded is set". */
  readonly hasForwardingHeaders?: boolean;
  readonly origin?: string;
  readonly host?: string;
  readonly proxyHeaders?: Readonly<Record<string, string>>;
  /** IPs or CIDRs of trusted proxies used to resolve this peer. */
  readonly trustedProxies?: readonly string[];
}

export function rawPeer(opts: PeerOptions = {}): RawPeerFacts {
  return {
    remoteAddress: opts.remoteAddress ?? "127.0.0.1",
    forwardedFor: opts.forwardedFor,
    realIp: opts.realIp,
    forwarded: opts.forwarded,
    hasForwardingHeaders:
      opts.hasForwardingHeaders ?? (opts.forwardedFor !== undefined || opts.realIp !== undefined || opts.forwarded !== undefined),
    origin: opts.origin,
    host: opts.host ?? "127.0.0.1:18789",
    proxyHeaders: opts.proxyHeaders ?? {},
  };
}

/** Peer evidence as the transport would resolve it (through `resolvePeer`). */
export function makePeer(opts: PeerOptions = {}): PeerEvidence {
  return resolvePeer(rawPeer(opts), parseCidrs(opts.trustedProxies ?? []));
}

export function loopbackPeer(opts: Omit<PeerOptions, "remoteAddress"> = {}): PeerEvidence {
  return makePeer({ ...opts, remoteAddress: "127.0.0.1" });
}

export function remotePeer(remoteAddress = "203.0.113.7", opts: Omit<PeerOptions, "remoteAddress"> = {}): PeerEvidence {
  return makePeer({ ...opts, remoteAddress, host: opts.host ?? "gateway.example:18789" });
}

// ---------------------------------------------------------------- claims and facts

export type ClaimOptions = Partial<Omit<Claims, "device">>;

/** Default: a `cli`/`cli` operator requesting no scopes, protocol 3, no device. */
export function makeClaims(overrides: Partial<Claims> = {}): Claims {
  return {
    clientId: "cli",
    clientMode: "cli",
    platform: "linux",
    deviceFamily: undefined,
    displayName: undefined,
    version: "2026.4.24",
    instanceId: undefined,
    modelIdentifier: undefined,
    requestedRole: "operator",
    requestedScopes: [],
    device: undefined,
    minProtocol: 3,
    maxProtocol: 3,
    ...overrides,
  };
}

/** What the upstream Node GatewayClient declares (spec §4.5): labels, not evidence. */
export const BACKEND_CLIENT_CLAIM = { clientId: "gateway-client", clientMode: "backend" } as const;

export function makeFacts(overrides: Partial<AdmissionFacts> = {}): AdmissionFacts {
  return {
    nowMs: NOW_MS,
    challengeNonce: CHALLENGE_NONCE,
    peer: loopbackPeer(),
    lockout: undefined,
    pairedDevice: undefined,
    backend: undefined,
    bootstrap: undefined,
    ...overrides,
  };
}

// ---------------------------------------------------------------- store records

export interface TokenSpec {
  readonly token: string;
  readonly scopes?: readonly Scope[];
  readonly revokedAtMs?: number;
}

export interface PairedOptions {
  readonly roles?: readonly Role[];
  readonly approvedScopes?: readonly Scope[];
  readonly tokens?: Partial<Record<Role, TokenSpec>>;
  readonly platform?: string;
  readonly deviceFamily?: string;
  readonly displayName?: string;
}

/** A pairing record for `device` (defaults: operator role, no scopes, no tokens, nothing pinned). */
export function pairedDeviceRecord(device: Pick<TestDevice, "id" | "publicKey">, opts: PairedOptions = {}): PairedDeviceRecord {
  const tokens: Partial<Record<Role, DeviceTokenRecord>> = {};
  for (const [role, spec] of Object.entries(opts.tokens ?? {}) as [Role, TokenSpec | undefined][]) {
    if (!spec) continue;
    tokens[role] = {
      role,
      tokenHash: sha256Hex(spec.token),
      scopes: spec.scopes ?? [],
      createdAtMs: NOW_MS - 86_400_000,
      ...(spec.revokedAtMs !== undefined ? { revokedAtMs: spec.revokedAtMs } : {}),
    };
  }
  return {
    deviceId: device.id,
    publicKey: device.publicKey,
    roles: opts.roles ?? ["operator"],
    approvedScopes: opts.approvedScopes ?? [],
    tokens,
    createdAtMs: NOW_MS - 86_400_000,
    approvedAtMs: NOW_MS - 86_400_000,
    ...(opts.platform !== undefined ? { platform: opts.platform } : {}),
    ...(opts.deviceFamily !== undefined ? { deviceFamily: opts.deviceFamily } : {}),
    ...(opts.displayName !== undefined ? { displayName: opts.displayName } : {}),
  };
}

export function backendRecord(opts: { secret?: string; scopes?: readonly Scope[]; revokedAtMs?: number; name?: string } = {}): BackendRecord {
  return {
    id: "backend-1",
    name: opts.name ?? "ci-runner",
    secretHash: sha256Hex(opts.secret ?? BACKEND_SECRET),
    scopes: opts.scopes ?? ["operator.read", "operator.write"],
    createdAtMs: NOW_MS - 3_600_000,
    ...(opts.revokedAtMs !== undefined ? { revokedAtMs: opts.revokedAtMs } : {}),
  };
}

export function bootstrapRecord(
  opts: { token?: string; roles?: readonly Role[]; scopes?: readonly Scope[]; expiresAtMs?: number; consumedAtMs?: number } = {},
): BootstrapRecord {
  return {
    id: "bootstrap-1",
    tokenHash: sha256Hex(opts.token ?? BOOTSTRAP_TOKEN),
    roles: opts.roles ?? ["node", "operator"],
    scopes: opts.scopes ?? ["operator.approvals", "operator.read", "operator.talk.secrets", "operator.write"],
    createdAtMs: NOW_MS - 60_000,
    expiresAtMs: opts.expiresAtMs ?? NOW_MS + 540_000,
    ...(opts.consumedAtMs !== undefined ? { consumedAtMs: opts.consumedAtMs } : {}),
  };
}

// ---------------------------------------------------------------- whole connects

export interface ConnectOptions {
  readonly claims?: ClaimOptions;
  readonly presented?: PresentedSecrets;
  readonly facts?: Partial<AdmissionFacts>;
  readonly policy?: PolicyOptions;
  /** Send a device block with a valid proof over these claims and secrets. */
  readonly device?: TestDevice;
  /** Override what the device signs (to make the signed fields differ from the params). */
  readonly sign?: Partial<SignConnectInput>;
  /** Override fields of the device block as sent (id, publicKey, signature, signedAt, nonce). */
  readonly wire?: Partial<DeviceProofClaim>;
}

/** The token field a client signs, resolved exactly as spec §5.2 says (`??`). */
export function signedTokenOf(presented: PresentedSecrets): string {
  return presented.token ?? presented.deviceToken ?? presented.bootstrapToken ?? "";
}

/**
 * A full admission input. With `device`, the device block carries a valid
 * signature (v3 by default) over the claims, the presented secrets and the
 * socket's nonce, unless `sign` or `wire` tamper with it.
 */
export function connectInput(opts: ConnectOptions = {}): AdmissionInput {
  const facts = makeFacts(opts.facts);
  const presented = opts.presented ?? {};
  let claims = makeClaims(opts.claims);
  if (opts.device) {
    const signInput: SignConnectInput = {
      clientId: claims.clientId,
      clientMode: claims.clientMode,
      role: claims.requestedRole,
      scopes: claims.requestedScopes,
      token: signedTokenOf(presented),
      nonce: facts.challengeNonce,
      platform: claims.platform,
      ...(claims.deviceFamily !== undefined ? { deviceFamily: claims.deviceFamily } : {}),
      signedAt: facts.nowMs,
      version: "v3",
      ...opts.sign,
    };
    claims = { ...claims, device: { ...deviceProof(opts.device, signInput), ...opts.wire } };
  }
  return { claims, presented, facts, policy: makePolicy(opts.policy) };
}

/** `decideAdmission(connectInput(opts))`. */
export function decide(opts: ConnectOptions = {}): Decision {
  return decideAdmission(connectInput(opts));
}

// ---------------------------------------------------------------- decision assertions

export type Admit = Extract<Decision, { kind: "admit" }>;
export type PairingRequired = Extract<Decision, { kind: "pairing-required" }>;
export type Reject = Extract<Decision, { kind: "reject" }>;

function describeDecision(d: Decision): string {
  if (d.kind === "reject") return `reject(${d.stage}, ${d.error.detailCode}: ${d.error.message})`;
  if (d.kind === "pairing-required") return `pairing-required(${d.request.reason})`;
  return `admit(${d.grant.role}, [${d.grant.scopes.join(",")}], ${d.grant.credential})`;
}

export function assertAdmit(d: Decision, expected?: { role?: Role; scopes?: readonly Scope[]; credential?: string }): Admit {
  assert.equal(d.kind, "admit", `expected admit, got ${describeDecision(d)}`);
  const admit = d as Admit;
  if (expected?.role !== undefined) assert.equal(admit.grant.role, expected.role);
  if (expected?.scopes !== undefined) assert.deepEqual([...admit.grant.scopes], [...expected.scopes]);
  if (expected?.credential !== undefined) assert.equal(admit.grant.credential, expected.credential);
  return admit;
}

export function assertPairingRequired(d: Decision, reason?: PairingReason): PairingRequired {
  assert.equal(d.kind, "pairing-required", `expected pairing-required, got ${describeDecision(d)}`);
  const p = d as PairingRequired;
  if (reason !== undefined) assert.equal(p.request.reason, reason);
  return p;
}

export function assertReject(d: Decision, detailCode?: DetailCode, closeCode = 1008): Reject {
  assert.equal(d.kind, "reject", `expected reject, got ${describeDecision(d)}`);
  const r = d as Reject;
  if (detailCode !== undefined) assert.equal(r.error.detailCode, detailCode, `got ${describeDecision(d)}`);
  assert.equal(r.error.close?.code, closeCode);
  return r;
}

export { describeDecision };

/** What an admit decision does to the store, read off its effects. */
export interface AdmitEffects {
  /** The record a silent first pairing writes, and its grant for the admitted role. */
  readonly paired: PairedDeviceRecord | undefined;
  readonly pairedScopes: readonly Scope[] | undefined;
  /** The (device, role) a token is minted for and handed out in hello-ok. */
  readonly mints: { readonly deviceId: string; readonly role: Role } | undefined;
  /** The digest of the bootstrap token used up. */
  readonly consumesBootstrap: string | undefined;
}

export function admitEffects(d: Extract<Decision, { kind: "admit" }>): AdmitEffects {
  let paired: PairedDeviceRecord | undefined;
  let mints: AdmitEffects["mints"];
  let consumesBootstrap: string | undefined;
  for (const e of d.effects) {
    if (e.kind === "put-device") paired = e.device;
    if (e.kind === "mint-token") mints = { deviceId: e.deviceId, role: e.role };
    if (e.kind === "consume-bootstrap") consumesBootstrap = e.tokenHash;
  }
  return { paired, pairedScopes: paired ? liveRoleScopes(paired, d.grant.role) : undefined, mints, consumesBootstrap };
}
