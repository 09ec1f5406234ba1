import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import type { Claims } from "../../src/admission/claims.js";
import { decideAdmission, type AdmissionInput, type Decision } from "../../src/admission/decide.js";
import type { PeerEvidence } from "../../src/admission/locality.js";
import type { AdmissionPolicy, AuthPolicy } from "../../src/admission/policy.js";
import type { PresentedSecrets } from "../../src/admission/presented.js";
import { satisfies } from "../../src/admission/scopes.js";
import { GatewayError } from "../../src/protocol/gateway-error.js";
import { CLIENT_IDS, CLIENT_MODES, OPERATOR_SCOPES, type ClientId, type ClientMode, type Role, type Scope } from "../../src/protocol/enums.js";
import type { BootstrapRecord, PairedDeviceRecord } from "../../src/store/records.js";
import { createTestDevices, deviceProof, pemForRawKey, SMALL_ORDER_POINTS_HEX, type TestDevice } from "../support/device.js";
import {
  admitEffects,
  BACKEND_SECRET,
  BOOTSTRAP_TOKEN,
  NOW_MS,
  NO_AUTH,
  SHARED_PASSWORD,
  SHARED_TOKEN,
  backendRecord,
  bootstrapRecord,
  connectInput,
  describeDecision,
  loopbackPeer,
  makePeer,
  pairedDeviceRecord,
  passwordAuth,
  remotePeer,
  signedTokenOf,
  tokenAuth,
  trustedProxyAuth,
  type ConnectOptions,
} from "../support/admission-fixtures.js";

// Differential and invariant properties of the admission decision (A06, A13,
// and the design rule: claims only narrow what verified evidence grants).

/** Runs per property; raise it for a longer soak, e.g. GATEWARDEN_PROPERTY_RUNS=20000. */
const RUNS = Math.max(600, Number(process.env["GATEWARDEN_PROPERTY_RUNS"] ?? 0) || 0);
const DEVICES = createTestDevices(3);
const DEVICE_TOKEN = "device-token-prop-4b8e1d";
const ALLOWED_ORIGIN = "https://control.example.com";
const TRUSTED_PROXIES = ["10.0.0.0/8"];

const BROWSER_IDS: readonly ClientId[] = ["openclaw-control-ui", "webchat-ui"];
const NEUTRAL_IDS = CLIENT_IDS.filter((id) => !BROWSER_IDS.includes(id));
const NEUTRAL_MODES = CLIENT_MODES.filter((m) => m !== "webchat");
const NODE_SCOPES: readonly Scope[] = ["node.camera", "node.exec"];
const ALL_SCOPES: readonly Scope[] = [...OPERATOR_SCOPES, ...NODE_SCOPES];

// ---------------------------------------------------------------- scenario: the evidence

/** The main secret the client presents (mapped onto auth fields by `presentedOf`). */
type Primary =
  | "shared" // the configured token or password, in the field the auth mode uses
  | "backend" // a backend secret in auth.token
  | "device-token" // its device token in auth.deviceToken
  | "device-token-in-token" // its device token in auth.token only
  | "bootstrap" // a bootstrap token
  | "wrong-token"
  | "wrong-password"
  | "wrong-device-token"
  | "wrong-bootstrap"
  | "blank"
  | "none";

interface Scenario {
  authMode: "token" | "password" | "none" | "trusted-proxy";
  primary: Primary;
  /** Additionally present the correct shared secret (upstream clients send both when retrying). */
  alsoShared: boolean;
  device: "none" | "fresh" | "paired" | "foreign-record";
  deviceIndex: number;
  signVersion: "v2" | "v3";
  role: Role;
  operatorScopes: Scope[];
  nodeScopes: Scope[];
  pairedRoles: Role[];
  approvedScopes: Scope[];
  tokenScopes: Scope[];
  tokenRevoked: boolean;
  backendScopes: Scope[];
  backendRevoked: boolean;
  bootstrap: { roles: Role[]; scopes: Scope[]; expired: boolean; consumed: boolean };
  locality: "loopback" | "mapped-loopback" | "loopback-forwarded" | "remote" | "trusted-proxy";
  origin: string | undefined;
  silent: { enabled: boolean; roles: Role[]; ceiling: Scope[] };
  lockout: boolean;
}

const subset = <T>(xs: readonly T[]) => fc.subarray([...xs]);

const weighted = <T>(...pairs: [number, T][]) => fc.oneof(...pairs.map(([weight, v]) => ({ weight, arbitrary: fc.constant(v) })));
const chance = (percent: number) => fc.integer({ min: 1, max: 100 }).map((n) => n <= percent);

const scenarioArb: fc.Arbitrary<Scenario> = fc.record({
  authMode: weighted<Scenario["authMode"]>([4, "token"], [2, "password"], [1, "none"], [1, "trusted-proxy"]),
  primary: weighted<Primary>(
    [5, "shared"],
    [2, "backend"],
    [3, "device-token"],
    [2, "device-token-in-token"],
    [2, "bootstrap"],
    [1, "wrong-token"],
    [1, "wrong-password"],
    [1, "wrong-device-token"],
    [1, "wrong-bootstrap"],
    [1, "blank"],
    [1, "none"],
  ),
  alsoShared: chance(30),
  device: weighted<Scenario["device"]>([2, "none"], [3, "fresh"], [4, "paired"], [1, "foreign-record"]),
  deviceIndex: fc.nat(DEVICES.length - 1),
  signVersion: fc.constantFrom("v2", "v3"),
  role: weighted<Role>([3, "operator"], [1, "node"]),
  operatorScopes: subset(OPERATOR_SCOPES),
  nodeScopes: subset(NODE_SCOPES),
  pairedRoles: subset<Role>(["operator", "node"]),
  approvedScopes: subset(ALL_SCOPES),
  tokenScopes: subset(ALL_SCOPES),
  tokenRevoked: chance(15),
  backendScopes: subset(OPERATOR_SCOPES),
  backendRevoked: chance(25),
  bootstrap: fc.record({
    roles: subset<Role>(["operator", "node"]),
    scopes: subset(ALL_SCOPES),
    expired: chance(20),
    consumed: chance(20),
  }),
  locality: weighted<Scenario["locality"]>([4, "loopback"], [1, "mapped-loopback"], [1, "loopback-forwarded"], [2, "remote"], [1, "trusted-proxy"]),
  origin: weighted<string | undefined>(
    [12, undefined],
    [1, ALLOWED_ORIGIN],
    [1, "https://evil.example"],
    [1, "null"],
    [1, "http://localhost:18789"],
    [1, "http://127.0.0.1.evil.example"],
  ),
  silent: fc.record({ enabled: chance(60), roles: weighted<Role[]>([3, ["operator"]], [1, ["operator", "node"]], [1, []]), ceiling: subset(ALL_SCOPES) }),
  lockout: chance(8),
});

// ---------------------------------------------------------------- claims: the labels

interface Labels {
  clientId: ClientId;
  clientMode: ClientMode;
  platform: string;
  deviceFamily: string | undefined;
  displayName: string | undefined;
}

const platformArb = fc.oneof(fc.constantFrom("linux", "darwin", "win32", " Linux ", "iOS", "android"), fc.string({ minLength: 1, maxLength: 24 }));
const displayNameArb = fc.option(fc.oneof(fc.string({ maxLength: 40 }), fc.constantFrom("gateway:health", "Backend Service", "admin")), { nil: undefined });

function labelsArb(ids: readonly ClientId[], modes: readonly ClientMode[]): fc.Arbitrary<Labels> {
  return fc.record({
    clientId: fc.constantFrom(...ids),
    clientMode: fc.constantFrom(...modes),
    platform: platformArb,
    deviceFamily: fc.option(fc.oneof(fc.constantFrom("desktop", "iPhone"), fc.string({ minLength: 1, maxLength: 16 })), { nil: undefined }),
    displayName: displayNameArb,
  });
}

const neutralLabels = labelsArb(NEUTRAL_IDS, NEUTRAL_MODES);
const anyLabels = labelsArb(CLIENT_IDS, CLIENT_MODES);

// ---------------------------------------------------------------- building one connect

function presentedOf(s: Scenario): PresentedSecrets {
  const p: { token?: string; password?: string; deviceToken?: string; bootstrapToken?: string } = {};
  const putShared = () => {
    if (s.authMode === "password") p.password = SHARED_PASSWORD;
    else p.token ??= SHARED_TOKEN;
  };
  switch (s.primary) {
    case "shared":
      putShared();
      break;
    case "backend":
      p.token = BACKEND_SECRET;
      break;
    case "device-token":
      p.deviceToken = DEVICE_TOKEN;
      break;
    case "device-token-in-token":
      p.token = DEVICE_TOKEN;
      break;
    case "bootstrap":
      p.bootstrapToken = BOOTSTRAP_TOKEN;
      break;
    case "wrong-token":
      p.token = "wrong-token-value";
      break;
    case "wrong-password":
      p.password = "wrong-password";
      break;
    case "wrong-device-token":
      p.deviceToken = "wrong-device-token";
      break;
    case "wrong-bootstrap":
      p.bootstrapToken = "wrong-bootstrap-token";
      break;
    case "blank":
      p.token = " ";
      p.deviceToken = "";
      break;
    case "none":
      break;
  }
  if (s.alsoShared) putShared();
  return p;
}

function authOf(s: Scenario): AuthPolicy {
  switch (s.authMode) {
    case "token":
      return tokenAuth();
    case "password":
      return passwordAuth();
    case "none":
      return NO_AUTH;
    case "trusted-proxy":
      return trustedProxyAuth();
  }
}

function peerOf(s: Scenario): PeerEvidence {
  const origin = s.origin !== undefined ? { origin: s.origin } : {};
  switch (s.locality) {
    case "loopback":
      return loopbackPeer(origin);
    case "mapped-loopback":
      return makePeer({ remoteAddress: "::ffff:127.0.0.1", ...origin });
    case "loopback-forwarded":
      return makePeer({ remoteAddress: "127.0.0.1", forwardedFor: "127.0.0.1", ...origin });
    case "remote":
      return remotePeer("203.0.113.7", origin);
    case "trusted-proxy":
      return makePeer({ remoteAddress: "10.0.0.2", forwardedFor: "203.0.113.5", proxyHeaders: { "x-forwarded-user": "alice" }, trustedProxies: TRUSTED_PROXIES, ...origin });
  }
}

function deviceOf(s: Scenario): TestDevice | undefined {
  return s.device === "none" ? undefined : DEVICES[s.deviceIndex];
}

function requestedOf(s: Scenario): Scope[] {
  return s.role === "operator" ? s.operatorScopes : s.nodeScopes;
}

function pairedRecordOf(s: Scenario, pin?: { platform?: string; deviceFamily?: string }): PairedDeviceRecord | undefined {
  const device = deviceOf(s);
  if (!device || s.device === "fresh" || s.device === "none") return undefined;
  const owner = s.device === "foreign-record" ? (DEVICES[(s.deviceIndex + 1) % DEVICES.length] as TestDevice) : device;
  const tokens: Partial<Record<Role, { token: string; scopes: Scope[]; revokedAtMs?: number }>> = {};
  for (const role of s.pairedRoles) {
    tokens[role] = { token: DEVICE_TOKEN, scopes: s.tokenScopes, ...(s.tokenRevoked ? { revokedAtMs: NOW_MS - 1 } : {}) };
  }
  // a foreign record is stored under the claimed id but holds another key
  const record = pairedDeviceRecord(owner, { roles: s.pairedRoles, approvedScopes: s.approvedScopes, tokens, ...pin });
  return s.device === "foreign-record" ? { ...record, deviceId: device.id } : record;
}

function bootstrapOf(s: Scenario): BootstrapRecord | undefined {
  if (s.primary !== "bootstrap") return undefined;
  return bootstrapRecord({
    roles: s.bootstrap.roles,
    scopes: s.bootstrap.scopes,
    ...(s.bootstrap.expired ? { expiresAtMs: NOW_MS - 1 } : {}),
    ...(s.bootstrap.consumed ? { consumedAtMs: NOW_MS - 1 } : {}),
  });
}

function connectOptions(s: Scenario, labels: Labels, pin?: { platform?: string; deviceFamily?: string }): ConnectOptions {
  const device = deviceOf(s);
  return {
    claims: {
      clientId: labels.clientId,
      clientMode: labels.clientMode,
      platform: labels.platform,
      deviceFamily: labels.deviceFamily,
      displayName: labels.displayName,
      requestedRole: s.role,
      requestedScopes: requestedOf(s),
    },
    presented: presentedOf(s),
    facts: {
      peer: peerOf(s),
      lockout: s.lockout ? { retryAfterMs: 60_000 } : undefined,
      pairedDevice: pairedRecordOf(s, pin),
      backend: presentedOf(s).token === BACKEND_SECRET ? backendRecord({ scopes: s.backendScopes, ...(s.backendRevoked ? { revokedAtMs: NOW_MS - 1 } : {}) }) : undefined,
      bootstrap: bootstrapOf(s),
    },
    policy: {
      auth: authOf(s),
      trustedProxies: TRUSTED_PROXIES,
      allowedOrigins: [ALLOWED_ORIGIN],
      silentLocalPairing: { enabled: s.silent.enabled, roles: s.silent.roles, scopeCeiling: s.silent.ceiling },
    },
    // re-signed for every label set: client id, mode and (v3) platform/family are signed
    ...(device ? { device, sign: { version: s.signVersion } } : {}),
  };
}

function decideFor(s: Scenario, labels: Labels, pin?: { platform?: string; deviceFamily?: string }): Decision {
  return decideAdmission(connectInput(connectOptions(s, labels, pin)));
}

/** Everything about a decision that is a grant or a refusal (not labels echoed into records or messages). */
function outcome(d: Decision): unknown {
  switch (d.kind) {
    case "admit":
      return {
        kind: d.kind,
        role: d.grant.role,
        scopes: d.grant.scopes,
        credential: d.grant.credential,
        authMethod: d.grant.authMethod,
        deviceId: d.grant.deviceId,
        principal: d.grant.principal,
        backendId: d.grant.backendId,
        protocol: d.protocol,
        silent: d.silentApproval ? { via: d.silentApproval, scopes: admitEffects(d).pairedScopes } : undefined,
        mints: admitEffects(d).mints,
      };
    case "pairing-required":
      return { kind: d.kind, reason: d.request.reason, role: d.request.role, scopes: d.request.scopes, isRepair: d.request.isRepair, approved: d.approved, credential: d.credential.kind };
    case "reject":
      return { kind: d.kind, stage: d.stage, code: d.error.code, detailCode: d.error.detailCode, close: d.error.close?.code, authFailure: d.authFailure };
  }
}

const RANK = { reject: 0, "pairing-required": 1, admit: 2 } as const;

/** `narrow` is `base` or a narrowing of it: a rejection, or less than base grants. */
function assertNarrowing(narrow: Decision, base: Decision): void {
  const msg = `${describeDecision(narrow)} is not a narrowing of ${describeDecision(base)}`;
  assert.ok(RANK[narrow.kind] <= RANK[base.kind], msg);
  if (narrow.kind === "admit" && base.kind === "admit") {
    assert.equal(narrow.grant.role, base.grant.role, msg);
    assert.equal(narrow.grant.credential, base.grant.credential, msg);
    for (const s of narrow.grant.scopes) assert.ok(base.grant.scopes.includes(s), msg);
  }
  if (narrow.kind === "pairing-required" && base.kind === "pairing-required") {
    assert.equal(narrow.request.role, base.request.role, msg);
  }
}

// ---------------------------------------------------------------- the evidence oracle for (b)

function equalsSharedSecret(s: Scenario, p: PresentedSecrets): boolean {
  if (s.authMode === "token") return p.token === SHARED_TOKEN;
  if (s.authMode === "password") return p.password === SHARED_PASSWORD;
  return false;
}

/**
 * The scope sets the verified evidence allows for this admitted decision,
 * computed from the scenario (what the server verified), never from labels.
 * Every granted scope must be satisfied by every set returned.
 */
function allowances(s: Scenario, d: Extract<Decision, { kind: "admit" }>): readonly (readonly Scope[])[] {
  const p = presentedOf(s);
  const record = s.device === "paired" ? pairedRecordOf(s) : undefined;
  const device = deviceOf(s);
  switch (d.grant.credential) {
    case "backend":
      assert.equal(p.token, BACKEND_SECRET, "backend grant without the backend secret");
      assert.equal(s.backendRevoked, false, "revoked backend admitted");
      return [s.backendScopes];
    case "device-token": {
      assert.ok(record, "device-token grant without a pairing of this key");
      assert.ok((p.deviceToken?.trim() ? p.deviceToken : p.token) === DEVICE_TOKEN, "device-token grant without the device token");
      assert.equal(s.tokenRevoked, false, "revoked device token admitted");
      assert.ok(s.pairedRoles.includes(s.role), "device token for a role the device does not hold");
      return [s.tokenScopes, s.approvedScopes];
    }
    case "bootstrap-token": {
      assert.equal(p.bootstrapToken, BOOTSTRAP_TOKEN, "bootstrap grant without the bootstrap token");
      assert.ok(!s.bootstrap.expired && !s.bootstrap.consumed && s.bootstrap.roles.includes(s.role), "invalid bootstrap admitted");
      assert.ok(device, "bootstrap grant without a device");
      return record ? [s.approvedScopes] : [s.bootstrap.scopes];
    }
    case "shared-secret":
    case "open":
    case "trusted-proxy": {
      if (d.grant.credential === "shared-secret") assert.ok(equalsSharedSecret(s, p), "shared-secret grant without the shared secret");
      if (d.grant.credential === "open") assert.equal(s.authMode, "none");
      if (d.grant.credential === "trusted-proxy") {
        assert.equal(s.authMode, "trusted-proxy");
        assert.equal(s.locality, "trusted-proxy", "proxy identity accepted from a peer that is not a trusted proxy");
      }
      if (!device) return [[]];
      if (record) return [s.approvedScopes];
      // an unpaired device admitted: only the explicit silent local policy may do that
      assert.equal(d.grant.credential, "shared-secret", "unpaired device admitted without the shared secret");
      assert.ok(s.silent.enabled && s.silent.roles.includes(s.role), "silent pairing outside the policy");
      assert.ok((s.locality === "loopback" || s.locality === "mapped-loopback") && s.origin === undefined, "silent pairing without a direct loopback peer");
      return [s.silent.ceiling];
    }
  }
}

// ---------------------------------------------------------------- properties

describe("decideAdmission properties", () => {
  it("A06 the decision, role and granted scopes are identical whatever client.id/mode/platform/displayName a non-browser client declares", () => {
    fc.assert(
      fc.property(scenarioArb, neutralLabels, neutralLabels, (s, x, y) => {
        const dx = decideFor(s, x);
        const dy = decideFor(s, y);
        assert.deepEqual(outcome(dy), outcome(dx), `${describeDecision(dx)} vs ${describeDecision(dy)}`);
      }),
      { numRuns: RUNS },
    );
  });

  it("A06 claiming any other enumeration value, browser clients included, only narrows the evidence-based decision", () => {
    fc.assert(
      fc.property(
        scenarioArb,
        neutralLabels,
        anyLabels,
        fc.option(fc.record({ platform: fc.constantFrom("linux", "darwin"), deviceFamily: fc.option(fc.constantFrom("desktop", "iphone"), { nil: undefined }) }), { nil: undefined }),
        (s, neutral, other, pin) => {
          const pinned = pin && { platform: pin.platform, ...(pin.deviceFamily !== undefined ? { deviceFamily: pin.deviceFamily } : {}) };
          // the baseline declares what the pairing record pinned (the record is evidence)
          const base = decideFor(s, { ...neutral, platform: pin?.platform ?? neutral.platform, deviceFamily: pin?.deviceFamily ?? neutral.deviceFamily }, pinned);
          const varied = decideFor(s, other, pinned);
          assertNarrowing(varied, base);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it("A13 granted scopes are always within the requested scopes and within what the verified credential allows", () => {
    fc.assert(
      fc.property(scenarioArb, anyLabels, (s, labels) => {
        const d = decideFor(s, labels);
        if (d.kind !== "admit") return;
        const requested = requestedOf(s);
        assert.equal(d.grant.role, s.role);
        for (const scope of d.grant.scopes) {
          assert.ok(requested.includes(scope), `${scope} granted but not requested`);
          for (const allowed of allowances(s, d)) assert.ok(satisfies(allowed, scope), `${scope} granted beyond [${allowed.join(",")}] via ${d.grant.credential}`);
        }
        assert.deepEqual([...d.grant.scopes], [...new Set(d.grant.scopes)].sort(), "grant scopes normalized");
        if (d.grant.deviceId !== undefined) assert.equal(d.grant.deviceId, deviceOf(s)?.id);
        if (d.silentApproval) {
          assert.deepEqual(admitEffects(d).pairedScopes, d.grant.scopes);
          assert.deepEqual(admitEffects(d).mints, { deviceId: d.grant.deviceId, role: d.grant.role });
        }
        assert.equal(s.lockout, false, "admitted during a lockout");
      }),
      { numRuns: RUNS },
    );
  });

  it("authFailure is set only when a presented secret failed at the credential stage", () => {
    fc.assert(
      fc.property(scenarioArb, anyLabels, (s, labels) => {
        const d = decideFor(s, labels);
        if (d.kind !== "reject" || !d.authFailure) return;
        assert.equal(d.stage, "credential");
        const p = presentedOf(s);
        assert.ok([p.token, p.password, p.deviceToken, p.bootstrapToken].some((v) => v !== undefined && v.trim() !== ""));
      }),
      { numRuns: RUNS },
    );
  });

  it("decideAdmission never throws for arbitrary inputs and always returns a well-formed decision", () => {
    fc.assert(
      fc.property(arbitraryInput(), (input) => {
        let d: Decision;
        try {
          d = decideAdmission(input);
        } catch (err) {
          assert.fail(`decideAdmission threw: ${String(err)}`);
        }
        assert.ok(d.kind === "admit" || d.kind === "pairing-required" || d.kind === "reject");
        if (d.kind === "reject") {
          assert.ok(d.error instanceof GatewayError);
          assert.ok(d.error.close !== undefined, "handshake rejections close the socket");
        }
        if (d.kind === "admit") {
          assert.ok(d.grant.role === "operator" || d.grant.role === "node");
          for (const scope of d.grant.scopes) assert.ok(input.claims.requestedScopes.includes(scope));
        }
      }),
      { numRuns: RUNS * 3 },
    );
  });
});

// ---------------------------------------------------------------- arbitrary (hostile) inputs for (c)

function arbitraryInput(): fc.Arbitrary<AdmissionInput> {
  const str = fc.string({ maxLength: 40 });
  const maybe = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });
  const num = fc.oneof(fc.integer(), fc.double(), fc.constantFrom(NOW_MS, NOW_MS - 1, Number.NaN, Number.POSITIVE_INFINITY, -0, 3, 4));
  const protocols = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom<[number, number]>([3, 3], [3, 4], [4, 4], [1, 4]) },
    { weight: 1, arbitrary: fc.tuple(num, num) },
  );
  // mostly valid values, so that the later stages run too
  const scopeStr = fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...ALL_SCOPES) }, { weight: 1, arbitrary: str });
  const roleStr = fc.oneof({ weight: 6, arbitrary: fc.constantFrom("operator", "operator", "node") }, { weight: 1, arbitrary: str });
  const keyText = fc.oneof(
    str,
    fc.constantFrom(...DEVICES.map((d) => d.publicKey), ...DEVICES.map((d) => d.publicKeyPem)),
    fc.constantFrom(...SMALL_ORDER_POINTS_HEX).map((h) => Buffer.from(h, "hex").toString("base64url")),
    fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString("base64url")),
    fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => pemForRawKey(b)),
  );
  const deviceClaim = fc.record({
    id: fc.oneof(str, fc.constantFrom(...DEVICES.map((d) => d.id))),
    publicKey: keyText,
    signature: fc.oneof(str, fc.uint8Array({ minLength: 64, maxLength: 64 }).map((b) => Buffer.from(b).toString("base64url"))),
    signedAt: num,
    nonce: fc.oneof(str, fc.constant("nonce")),
  });
  const claims = fc.record({
    clientId: fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...CLIENT_IDS) }, { weight: 1, arbitrary: str }) as fc.Arbitrary<ClientId>,
    clientMode: fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...NEUTRAL_MODES) }, { weight: 1, arbitrary: fc.oneof(fc.constant("webchat"), str) }) as fc.Arbitrary<ClientMode>,
    platform: str,
    deviceFamily: maybe(str),
    displayName: maybe(str),
    version: str,
    instanceId: maybe(str),
    modelIdentifier: maybe(str),
    requestedRole: roleStr,
    requestedScopes: fc.oneof(
      { weight: 3, arbitrary: fc.subarray([...OPERATOR_SCOPES]) },
      { weight: 1, arbitrary: fc.subarray([...NODE_SCOPES]) },
      { weight: 1, arbitrary: fc.array(scopeStr, { maxLength: 6 }) },
    ),
    device: maybe(deviceClaim),
  });
  const secret = maybe(fc.oneof(str, fc.constantFrom(SHARED_TOKEN, SHARED_PASSWORD, BACKEND_SECRET, DEVICE_TOKEN, BOOTSTRAP_TOKEN, "gwb_x", "")));
  const presented = fc.record({ token: secret, password: secret, deviceToken: secret, bootstrapToken: secret });
  const peer: fc.Arbitrary<PeerEvidence> = fc.record({
    remoteAddress: fc.oneof(str, fc.constantFrom("127.0.0.1", "::1", "10.0.0.2", "203.0.113.7")),
    clientIp: str,
    viaTrustedProxy: fc.boolean(),
    locality: fc.constantFrom("direct_local" as const, "remote" as const),
    origin: fc.oneof({ weight: 3, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.oneof(str, fc.constantFrom(ALLOWED_ORIGIN, "null", "http://localhost")) }),
    host: maybe(str),
    proxyHeaders: fc.dictionary(fc.constantFrom("x-forwarded-user", "x-forwarded-proto", "__proto__", "constructor"), str),
  });
  const roles = fc.subarray<Role>(["operator", "node"]);
  const hash = fc.oneof(str, fc.constantFrom(...[SHARED_TOKEN, DEVICE_TOKEN, BACKEND_SECRET, BOOTSTRAP_TOKEN].map((t) => backendRecord({ secret: t }).secretHash)));
  const tokenRecord = (role: Role) =>
    fc.record({ role: fc.constant(role), tokenHash: hash, scopes: fc.array(scopeStr, { maxLength: 4 }) as fc.Arbitrary<Scope[]>, createdAtMs: num, revokedAtMs: maybe(num) });
  const pairedDevice: fc.Arbitrary<PairedDeviceRecord> = fc.record({
    deviceId: fc.oneof(str, fc.constantFrom(...DEVICES.map((d) => d.id))),
    publicKey: fc.oneof(str, fc.constantFrom(...DEVICES.map((d) => d.publicKey))),
    roles,
    approvedScopes: fc.array(scopeStr, { maxLength: 4 }) as fc.Arbitrary<Scope[]>,
    tokens: fc.record({ operator: maybe(tokenRecord("operator")), node: maybe(tokenRecord("node")) }),
    createdAtMs: num,
    approvedAtMs: num,
    platform: maybe(str),
    deviceFamily: maybe(str),
  });
  const backend = fc.record({
    id: str,
    name: str,
    secretHash: hash,
    scopes: fc.array(scopeStr, { maxLength: 4 }) as fc.Arbitrary<Scope[]>,
    createdAtMs: num,
    revokedAtMs: maybe(num),
  });
  const bootstrap = fc.record({
    id: str,
    tokenHash: hash,
    roles,
    scopes: fc.array(scopeStr, { maxLength: 4 }) as fc.Arbitrary<Scope[]>,
    createdAtMs: num,
    expiresAtMs: num,
    consumedAtMs: maybe(num),
  });
  const digest = fc.oneof(
    fc.constant(tokenAuth()),
    fc.uint8Array({ minLength: 0, maxLength: 40 }).map((b): AuthPolicy => ({ mode: "token", tokenDigest: Buffer.from(b) })),
    fc.constant(passwordAuth()),
    fc.constant(NO_AUTH),
    fc.record({ userHeader: fc.constantFrom("x-forwarded-user", "__proto__"), requiredHeaders: fc.array(str, { maxLength: 2 }), allowUsers: fc.array(str, { maxLength: 2 }) }).map(
      (t): AuthPolicy => ({ mode: "trusted-proxy", ...t }),
    ),
  );
  const policy: fc.Arbitrary<AdmissionPolicy> = fc.record({
    auth: digest,
    trustedProxies: fc.constant([]),
    allowedOrigins: fc.array(fc.oneof(str, fc.constant(ALLOWED_ORIGIN)), { maxLength: 2 }),
    silentLocalPairing: fc.record({ enabled: fc.boolean(), roles, scopeCeiling: fc.array(scopeStr, { maxLength: 4 }) as fc.Arbitrary<Scope[]> }),
    signatureSkewMs: fc.oneof(fc.constant(120_000), num),
  });
  const facts = fc.record({
    nowMs: fc.oneof({ weight: 4, arbitrary: fc.constant(NOW_MS) }, { weight: 1, arbitrary: num }),
    challengeNonce: fc.oneof(str, fc.constant("nonce")),
    peer,
    lockout: fc.oneof({ weight: 4, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.record({ retryAfterMs: num }) }),
    pairedDevice: maybe(pairedDevice),
    backend: maybe(backend),
    bootstrap: maybe(bootstrap),
  });
  // Half of the time, give the device block a valid signature over the generated claims,
  // so the deeper (pairing) paths run with hostile records and policies.
  return fc
    .record({ claimFields: claims, protocols, presented, facts, policy, sign: fc.boolean(), deviceIndex: fc.nat(DEVICES.length - 1) })
    .map(({ claimFields, protocols: [minProtocol, maxProtocol], presented: p, facts: f, policy: pol, sign, deviceIndex }): AdmissionInput => {
      const c: Claims = { ...claimFields, minProtocol, maxProtocol };
      let finalClaims: Claims = c;
      if (sign && typeof c.requestedRole === "string") {
        const device = DEVICES[deviceIndex] as TestDevice;
        const nonce = f.challengeNonce;
        const signedAt = Number.isFinite(f.nowMs) ? Math.trunc(f.nowMs) : NOW_MS;
        finalClaims = {
          ...c,
          device: deviceProof(device, {
            clientId: c.clientId,
            clientMode: c.clientMode,
            role: c.requestedRole,
            scopes: c.requestedScopes,
            token: signedTokenOf(p),
            nonce,
            platform: c.platform,
            ...(c.deviceFamily !== undefined ? { deviceFamily: c.deviceFamily } : {}),
            signedAt,
          }),
        };
      }
      return { claims: finalClaims, presented: p, facts: f, policy: pol };
    });
}
