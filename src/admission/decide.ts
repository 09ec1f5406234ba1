import { normalizeMetadata } from "../identity/signature-payload.js";
import { verifyDeviceProof, type VerifiedDevice } from "../identity/verify-device-proof.js";
import type { ParsedPublicKey } from "../identity/device-key.js";
import { signatureToken } from "../identity/signature-payload.js";
import { CloseCode } from "../protocol/close-codes.js";
import { MAX_PROTOCOL, MIN_PROTOCOL, isRole, type Role, type Scope } from "../protocol/enums.js";
import type { PairingReason } from "../protocol/error-codes.js";
import { GatewayError, handshakeRejection } from "../protocol/gateway-error.js";
import type { BackendRecord, BootstrapRecord, DeviceMetadata, PairedDeviceRecord } from "../store/records.js";
import { unauthorizedError, type UnauthorizedContext } from "./auth-errors.js";
import { claimsBrowserClient, type Claims } from "./claims.js";
import { verifyBackendCredential } from "./credentials/backend-credential.js";
import { verifyBootstrapToken } from "./credentials/bootstrap-token.js";
import { verifyDeviceToken } from "./credentials/device-token.js";
import { verifySharedSecret } from "./credentials/shared-secret.js";
import { verifyTrustedProxy } from "./credentials/trusted-proxy.js";
import { grantFrom, type Grant } from "./grant.js";
import { addressBudgetKey, type PeerEvidence } from "./locality.js";
import { checkOrigin } from "./origin.js";
import { silentLocalApproval } from "./pairing-policy.js";
import type { AdmissionPolicy } from "./policy.js";
import { nonBlank, presentedAny, type PresentedSecrets } from "./presented.js";
import { NO_EFFECTS, type Effect } from "../pairing/effects.js";
import { effectiveRoles, liveRoleScopes, roleGrant, setRoleGrant } from "../pairing/role-grant.js";

export { effectiveRoles };
import { intersectScopes, normalizeScopes, scopesWithin, validateRequestedScopes } from "./scopes.js";
import { NOT_MINE, verified, type AuthFailureReason, type CredentialResult, type VerifiedCredential } from "./verified-credential.js";

/** Facts the server gathered for one `connect`: observed, looked up, or measured. */
export interface AdmissionFacts {
  readonly nowMs: number;
  /** The nonce this socket's `connect.challenge` carried. */
  readonly challengeNonce: string;
  readonly peer: PeerEvidence;
  /** Set when the failed-auth limiter has locked this client out. */
  readonly lockout: { readonly retryAfterMs: number } | undefined;
  /** The store's record for the *claimed* device id; used only if the proof verifies. */
  readonly pairedDevice: PairedDeviceRecord | undefined;
  /** The store's backend record matching the digest of `auth.token`, if any. */
  readonly backend: BackendRecord | undefined;
  /** The store's bootstrap record matching the digest of `auth.bootstrapToken`, if any. */
  readonly bootstrap: BootstrapRecord | undefined;
  readonly parseKey?: (text: string) => ParsedPublicKey | undefined;
}

export interface AdmissionInput {
  readonly claims: Claims;
  readonly presented: PresentedSecrets;
  readonly facts: AdmissionFacts;
  readonly policy: AdmissionPolicy;
}

/** A pairing request the server should create (or refresh) in the store. */
export interface PairingRequestSpec {
  readonly deviceId: string;
  readonly publicKey: string;
  readonly role: Role;
  readonly scopes: readonly Scope[];
  readonly reason: PairingReason;
  readonly isRepair: boolean;
  readonly metadata: DeviceMetadata;
  /** The address budget the request counts against (`addressBudgetKey` of the client IP). */
  readonly requesterIp: string;
}

export type DecisionStage =
  | "protocol"
  | "role"
  | "scope"
  | "origin"
  | "rate-limit"
  | "device-proof"
  | "credential"
  | "device-required"
  | "pairing";

export type Decision =
  | {
      readonly kind: "admit";
      readonly grant: Grant;
      readonly protocol: number;
      /**
       * What admitting does to the store, carried out in one transaction before
       * hello-ok (none for most reconnects): a first pairing approved without an
       * operator, a bootstrap token used up, a device token minted for hello-ok.
       */
      readonly effects: readonly Effect[];
      /** How a first pairing was approved without an operator, if it was (for the audit line). */
      readonly silentApproval: "bootstrap" | "local-policy" | undefined;
      readonly device: VerifiedDevice | undefined;
    }
  | {
      readonly kind: "pairing-required";
      readonly request: PairingRequestSpec;
      readonly approved: { readonly roles: readonly Role[]; readonly scopes: readonly Scope[] } | undefined;
      readonly credential: VerifiedCredential;
    }
  | {
      readonly kind: "reject";
      readonly stage: DecisionStage;
      readonly error: GatewayError;
      /** A presented secret failed: the limiter records a failure. */
      readonly authFailure: boolean;
    };

function reject(stage: DecisionStage, error: GatewayError, authFailure = false): Decision {
  return { kind: "reject", stage, error, authFailure };
}

/** Highest protocol both sides speak, or `undefined`. */
export function negotiateProtocol(min: number, max: number): number | undefined {
  const top = Math.min(max, MAX_PROTOCOL);
  return top >= Math.max(min, MIN_PROTOCOL) ? top : undefined;
}

interface CredentialOutcome {
  readonly credential: VerifiedCredential | undefined;
  readonly failure: AuthFailureReason | undefined;
}

/**
 * The credential modules in precedence order; the first that verifies is the
 * session's evidence. Precedence never lets a claim pick a wider grant: each
 * module verifies its own secret. Modules are pure, so the ones after a
 * verified module are not run: nothing they could say would change the outcome.
 */
function resolveCredential(
  input: AdmissionInput,
  device: VerifiedDevice | undefined,
  role: Role,
): CredentialOutcome {
  const { presented, facts, policy } = input;
  let failure: AuthFailureReason | undefined;
  const consider = (r: CredentialResult): VerifiedCredential | undefined => {
    if (r.status === "verified") return r.credential;
    if (r.status === "rejected") failure ??= r.reason;
    return undefined;
  };
  const credential =
    consider(verifyBackendCredential(presented, facts.backend)) ??
    consider(verifyDeviceToken(presented, device, facts.pairedDevice, role)) ??
    consider(verifyBootstrapToken(presented, device, facts.bootstrap, role, facts.nowMs)) ??
    consider(verifySharedSecret(policy.auth, presented)) ??
    consider(verifyTrustedProxy(policy.auth, facts.peer)) ??
    consider(policy.auth.mode === "none" ? verified({ kind: "open" }) : NOT_MINE);
  return credential ? { credential, failure: undefined } : { credential: undefined, failure: failure ?? "unauthorized" };
}

function metadataOf(claims: Claims, peer: PeerEvidence): DeviceMetadata {
  return {
    ...(claims.displayName !== undefined ? { displayName: claims.displayName } : {}),
    platform: normalizeMetadata(claims.platform),
    ...(claims.deviceFamily !== undefined ? { deviceFamily: normalizeMetadata(claims.deviceFamily) } : {}),
    clientId: claims.clientId,
    clientMode: claims.clientMode,
    remoteIp: peer.clientIp,
  };
}

/** Built only when a pairing request is: an admitted device needs none. */
function pairingSpec(
  device: VerifiedDevice,
  role: Role,
  requested: readonly Scope[],
  reason: PairingReason,
  isRepair: boolean,
  claims: Claims,
  peer: PeerEvidence,
): PairingRequestSpec {
  return {
    deviceId: device.deviceId,
    publicKey: device.publicKey,
    role,
    scopes: requested,
    reason,
    isRepair,
    metadata: metadataOf(claims, peer),
    // Counted per address budget: one IPv6 /64 is one requester, not 2^64 of them.
    requesterIp: addressBudgetKey(peer.clientIp),
  };
}

/** What an "unauthorized" error tells the client; built only when one is sent. */
function unauthorizedContext(claims: Claims, presented: PresentedSecrets): UnauthorizedContext {
  return {
    clientId: claims.clientId,
    clientMode: claims.clientMode,
    canRetryWithDeviceToken:
      claims.device !== undefined && nonBlank(presented.token) !== undefined && nonBlank(presented.deviceToken) === undefined && nonBlank(presented.password) === undefined,
  };
}

/** What the operator approved, for the pairing-required outcomes that report it: live roles and their scopes. */
function approvedOf(paired: PairedDeviceRecord): { roles: Role[]; scopes: readonly Scope[] } {
  const roles = effectiveRoles(paired);
  return { roles, scopes: normalizeScopes(roles.flatMap((r) => liveRoleScopes(paired, r))) };
}

/**
 * A first pairing approved without an operator (a bootstrap token the owner
 * issued, or the owner's local policy): the device is paired with exactly
 * `scopes`, provided it is still unpaired when this is carried out, and gets
 * its first token.
 */
function silentPairing(spec: PairingRequestSpec, scopes: readonly Scope[], nowMs: number, requestId: string, bootstrapHash: string | undefined): Effect[] {
  const { deviceId } = spec;
  const device = setRoleGrant(
    { ...spec.metadata, deviceId, publicKey: spec.publicKey, roles: [], approvedScopes: [], tokens: {}, createdAtMs: nowMs, approvedAtMs: nowMs },
    spec.role,
    { kind: "set", scopes },
    nowMs,
  );
  return [
    { kind: "require-device", deviceId, record: undefined },
    ...(bootstrapHash !== undefined ? [{ kind: "consume-bootstrap", tokenHash: bootstrapHash, deviceId } as const] : []),
    { kind: "put-device", device },
    { kind: "delete-pending-for-device", deviceId },
    // The socket's nonce names this approval: unique, random, and already the server's.
    { kind: "record-change", change: { kind: "pairing.resolved", requestId, deviceId, decision: "approved" } },
    { kind: "mint-token", deviceId, role: spec.role },
  ];
}

/**
 * The admission decision: evidence + claims + policy → admit | pairing-required | reject.
 * Pure: the clock, the challenge nonce and every store lookup arrive in `facts`.
 */
export function decideAdmission(input: AdmissionInput): Decision {
  const { claims, presented, facts, policy } = input;
  const { peer } = facts;

  const protocol = negotiateProtocol(claims.minProtocol, claims.maxProtocol);
  if (protocol === undefined) {
    return reject(
      "protocol",
      handshakeRejection("INVALID_REQUEST", "PROTOCOL_MISMATCH", "protocol mismatch", { expectedProtocol: MAX_PROTOCOL, supportedProtocols: ["3", "4"] }, CloseCode.protocolError),
    );
  }
  if (!isRole(claims.requestedRole)) {
    return reject("role", handshakeRejection("INVALID_REQUEST", "INVALID_ROLE", "invalid role"));
  }
  const role: Role = claims.requestedRole;
  const scopeCheck = validateRequestedScopes(claims.requestedScopes, role);
  if (!scopeCheck.ok) {
    return reject("scope", handshakeRejection("INVALID_REQUEST", "INVALID_SCOPE", "invalid scope", { scope: scopeCheck.invalid.slice(0, 128) }));
  }
  const requested = normalizeScopes(scopeCheck.scopes);

  if (peer.origin !== undefined || claimsBrowserClient(claims)) {
    const origin = checkOrigin(peer, policy.allowedOrigins);
    if (!origin.ok) {
      return reject(
        "origin",
        handshakeRejection(
          "INVALID_REQUEST",
          "CONTROL_UI_ORIGIN_NOT_ALLOWED",
          "origin not allowed (open the Control UI from the gateway host or allow it in gateway.controlUi.allowedOrigins)",
          { reason: origin.reason },
        ),
      );
    }
  }

  if (facts.lockout) {
    return reject("rate-limit", unauthorizedError("rate_limited", { ...unauthorizedContext(claims, presented), retryAfterMs: facts.lockout.retryAfterMs }));
  }

  let device: VerifiedDevice | undefined;
  if (claims.device) {
    const proof = verifyDeviceProof({
      device: claims.device,
      signed: {
        clientId: claims.clientId,
        clientMode: claims.clientMode,
        role,
        scopes: claims.requestedScopes,
        token: signatureToken(presented),
        platform: claims.platform,
        deviceFamily: claims.deviceFamily,
      },
      challengeNonce: facts.challengeNonce,
      nowMs: facts.nowMs,
      skewMs: policy.signatureSkewMs,
      parseKey: facts.parseKey,
    });
    if (!proof.ok) return reject("device-proof", proof.error);
    device = proof.device;
  }

  const { credential, failure } = resolveCredential(input, device, role);
  if (!credential) {
    return reject("credential", unauthorizedError(failure ?? "unauthorized", unauthorizedContext(claims, presented)), presentedAny(presented));
  }

  // Backend credentials: the one way to be admitted without pairing. Operator role only.
  if (credential.kind === "backend") {
    if (role !== "operator") {
      return reject("role", handshakeRejection("INVALID_REQUEST", "INVALID_ROLE", "invalid role: backend credentials admit the operator role only"));
    }
    return {
      kind: "admit",
      grant: grantFrom(credential, role, intersectScopes(requested, credential.scopes), device?.deviceId),
      protocol,
      effects: NO_EFFECTS,
      silentApproval: undefined,
      device,
    };
  }

  if (!device) {
    if (role !== "operator") {
      return reject("device-required", handshakeRejection("NOT_PAIRED", "DEVICE_IDENTITY_REQUIRED", "device identity required"));
    }
    if (claims.clientId === "openclaw-control-ui") {
      return reject(
        "device-required",
        handshakeRejection(
          "INVALID_REQUEST",
          "CONTROL_UI_DEVICE_IDENTITY_REQUIRED",
          "control ui requires device identity (use HTTPS or localhost secure context)",
        ),
      );
    }
    // A shared secret, a trusted proxy or an open gateway proves no device: no scopes.
    return { kind: "admit", grant: grantFrom(credential, role, [], undefined), protocol, effects: NO_EFFECTS, silentApproval: undefined, device };
  }

  const record = facts.pairedDevice;
  const paired = record !== undefined && record.deviceId === device.deviceId && record.publicKey === device.publicKey ? record : undefined;

  if (!paired) {
    if (credential.kind === "bootstrap-token") {
      const scopes = intersectScopes(requested, credential.scopes);
      const spec = pairingSpec(device, role, requested, "not-paired", false, claims, peer);
      return {
        kind: "admit",
        grant: grantFrom(credential, role, scopes, device.deviceId),
        protocol,
        effects: silentPairing(spec, scopes, facts.nowMs, facts.challengeNonce, credential.tokenHash),
        silentApproval: "bootstrap",
        device,
      };
    }
    const silent = silentLocalApproval(policy.silentLocalPairing, peer, credential, "not-paired", role, requested);
    if (silent) {
      const spec = pairingSpec(device, role, requested, "not-paired", false, claims, peer);
      return {
        kind: "admit",
        grant: grantFrom(credential, role, silent.scopes, device.deviceId),
        protocol,
        effects: silentPairing(spec, silent.scopes, facts.nowMs, facts.challengeNonce, undefined),
        silentApproval: "local-policy",
        device,
      };
    }
    return { kind: "pairing-required", request: pairingSpec(device, role, requested, "not-paired", false, claims, peer), approved: undefined, credential };
  }

  const pinnedPlatform = paired.platform ?? "";
  const pinnedFamily = paired.deviceFamily ?? "";
  if (
    (pinnedPlatform !== "" && pinnedPlatform !== normalizeMetadata(claims.platform)) ||
    (pinnedFamily !== "" && pinnedFamily !== normalizeMetadata(claims.deviceFamily))
  ) {
    return { kind: "pairing-required", request: pairingSpec(device, role, requested, "metadata-upgrade", true, claims, peer), approved: approvedOf(paired), credential };
  }
  const grant = roleGrant(paired, role);
  if (!grant || grant.revoked) {
    // Not an effective role of this device (effectiveRoles): never approved, or its token revoked.
    return { kind: "pairing-required", request: pairingSpec(device, role, requested, "role-upgrade", true, claims, peer), approved: approvedOf(paired), credential };
  }
  if (credential.kind === "device-token" && credential.role !== role) {
    // A token admits the role it was issued for; this role has a token of its own.
    return reject("credential", unauthorizedError("device_token_mismatch", unauthorizedContext(claims, presented)));
  }
  if (!scopesWithin(requested, grant.scopes)) {
    return { kind: "pairing-required", request: pairingSpec(device, role, requested, "scope-upgrade", true, claims, peer), approved: approvedOf(paired), credential };
  }

  if (credential.kind === "device-token") {
    return { kind: "admit", grant: grantFrom(credential, role, intersectScopes(requested, credential.scopes), device.deviceId), protocol, effects: NO_EFFECTS, silentApproval: undefined, device };
  }
  if (credential.kind === "bootstrap-token") {
    // A bootstrap token is for first pairings: on a paired device it admits at
    // most its own profile, is used up, and mints nothing.
    const scopes = intersectScopes(intersectScopes(requested, grant.scopes), credential.scopes);
    const effects: Effect[] = [
      { kind: "require-device", deviceId: device.deviceId, record: paired },
      { kind: "consume-bootstrap", tokenHash: credential.tokenHash, deviceId: device.deviceId },
    ];
    return { kind: "admit", grant: grantFrom(credential, role, scopes, device.deviceId), protocol, effects, silentApproval: undefined, device };
  }
  // The client proved the device key plus another credential: hand it a fresh
  // token for the role's grant (tokens are stored hashed, so never re-sent),
  // provided the grant is still the one decided on.
  const effects: Effect[] = [
    { kind: "require-device", deviceId: device.deviceId, record: paired },
    { kind: "mint-token", deviceId: device.deviceId, role },
  ];
  return { kind: "admit", grant: grantFrom(credential, role, intersectScopes(requested, grant.scopes), device.deviceId), protocol, effects, silentApproval: undefined, device };
}
