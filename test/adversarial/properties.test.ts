import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import { satisfies } from "../../src/admission/scopes.js";
import { CLIENT_IDS, CLIENT_MODES, OPERATOR_SCOPES } from "../../src/protocol/enums.js";
import { SCOPE_PROBES, SecretLedger, addBackend, assertLogsHoldNoSecret, detailCode, helloAuth, honouredScopes, openConnect, pairDevice } from "../support/adversarial.js";
import { createTestDevice } from "../support/device.js";
import { startGatewayProcess, type GatewayProcess } from "../support/gateway-process.js";
import type { ConnectOptions } from "../support/protocol-client.js";

// Properties at the integration level, against a live gateway process. The
// pure core has its own (test/admission/decide.property.test.ts: the A06
// differentials, A13 "granted ⊆ allowed by the verified evidence", "never
// throws"); these check that the transport carries the decision out unchanged:
// (a) what hello-ok grants and what methods then allow ⊆ what the credential
//     allows, and ⊆ what was requested;
// (b) changing only client-declared labels never changes the grant.
// More runs: GATEWARDEN_PROPERTY_RUNS=500.

const RUNS = Math.max(30, Number(process.env["GATEWARDEN_PROPERTY_RUNS"] ?? 0) || 0);
const NEUTRAL_IDS = CLIENT_IDS.filter((id) => id !== "openclaw-control-ui" && id !== "webchat-ui");
const NEUTRAL_MODES = CLIENT_MODES.filter((m) => m !== "webchat");

type Credential = "shared" | "backend-read-write" | "backend-pairing" | "device-token" | "device-shared";

interface Labels {
  clientId: string;
  clientMode: string;
  displayName: string | undefined;
  deviceFamily: string | undefined;
}

const labelsArb: fc.Arbitrary<Labels> = fc.record({
  clientId: fc.constantFrom(...NEUTRAL_IDS),
  clientMode: fc.constantFrom(...NEUTRAL_MODES),
  displayName: fc.option(fc.string({ minLength: 1, maxLength: 24 }), { nil: undefined }),
  deviceFamily: fc.option(fc.constantFrom("desktop", "iPhone", "server"), { nil: undefined }),
});

describe("integration properties of the live gateway", () => {
  const ledger = new SecretLedger();
  let gw: GatewayProcess;
  const allowed: Record<Credential, readonly string[]> = {
    shared: [],
    "backend-read-write": ["operator.read", "operator.write"],
    "backend-pairing": ["operator.pairing", "operator.approvals"],
    "device-token": ["operator.pairing", "operator.read"],
    "device-shared": ["operator.pairing", "operator.read"],
  };
  const secrets: Partial<Record<Credential, string>> = {};
  const device = createTestDevice();
  let deviceToken = "";

  before(async () => {
    // wrong guesses are part of the input space; they must not lock the property out
    gw = await startGatewayProcess({ config: { rateLimit: { maxFailures: 1_000_000 } }, env: { GATEWARDEN_LOG_LEVEL: "info" } });
    ledger.add(gw.token);
    secrets["backend-read-write"] = addBackend(gw, "prop-read-write", allowed["backend-read-write"], ledger);
    secrets["backend-pairing"] = addBackend(gw, "prop-pairing", allowed["backend-pairing"], ledger);
    deviceToken = (await pairDevice(gw, device, ledger, { scopes: [...allowed["device-token"]] })).deviceToken;
  });
  after(async () => {
    await gw.stop();
  });

  function optionsFor(credential: Credential, labels: Labels, scopes: string[]): ConnectOptions {
    const base: ConnectOptions = {
      clientId: labels.clientId,
      clientMode: labels.clientMode,
      ...(labels.displayName !== undefined ? { displayName: labels.displayName } : {}),
      ...(labels.deviceFamily !== undefined ? { deviceFamily: labels.deviceFamily } : {}),
      scopes,
      maxProtocol: 4,
    };
    switch (credential) {
      case "shared":
        return { ...base, auth: { token: gw.token! } };
      case "backend-read-write":
      case "backend-pairing":
        return { ...base, auth: { token: secrets[credential]! } };
      case "device-token":
        return { ...base, device, auth: { deviceToken } };
      case "device-shared":
        return { ...base, device, auth: { token: gw.token! } };
    }
  }

  /** Connect, then probe what the methods allow; returns a comparable outcome. */
  async function outcome(credential: Credential, labels: Labels, scopes: string[]): Promise<{ ok: boolean; code: unknown; scopes: readonly string[]; honoured: string[] }> {
    const { client, reply } = await openConnect(gw, optionsFor(credential, labels, scopes), ledger);
    if (!reply.ok) {
      client.close();
      return { ok: false, code: detailCode(reply), scopes: [], honoured: [] };
    }
    const auth = helloAuth(reply);
    // a shared-token connect of the paired device hands it a fresh token (the old one stops working)
    if (auth.deviceToken) {
      deviceToken = auth.deviceToken;
      ledger.add(deviceToken);
    }
    const honoured = await honouredScopes(client);
    client.close();
    return { ok: true, code: undefined, scopes: auth.scopes, honoured };
  }

  it("(a) hello-ok.auth.scopes and the scopes methods honour are always within the requested scopes and what the verified credential allows", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom<Credential>("shared", "backend-read-write", "backend-pairing", "device-token", "device-shared"),
        labelsArb,
        fc.subarray<string>([...OPERATOR_SCOPES.slice(0, 6)]),
        async (credential, labels, scopes) => {
          const o = await outcome(credential, labels, scopes);
          if (!o.ok) {
            // the only refusal on this input space: a paired device asking beyond its approval
            assert.equal(o.code, "PAIRING_REQUIRED", `${credential}: ${String(o.code)}`);
            assert.ok(credential.startsWith("device") && !scopes.every((s) => satisfies(allowed[credential], s)));
            return;
          }
          for (const s of o.scopes) {
            assert.ok(scopes.includes(s), `${s} granted but not requested`);
            assert.ok(satisfies(allowed[credential], s), `${s} granted beyond ${credential}`);
          }
          assert.deepEqual(o.honoured, SCOPE_PROBES.filter(([scope]) => satisfies(o.scopes, scope)).map(([scope]) => scope), "methods honour exactly hello-ok.auth.scopes");
        },
      ),
      { numRuns: RUNS },
    );
  });

  it("(b) two connects that differ only in client-declared labels get the same outcome and the same grant", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom<Credential>("shared", "backend-read-write", "backend-pairing", "device-token", "device-shared"),
        labelsArb,
        labelsArb,
        fc.subarray<string>([...OPERATOR_SCOPES.slice(0, 6)]),
        async (credential, x, y, scopes) => {
          const a = await outcome(credential, x, scopes);
          const b = await outcome(credential, y, scopes);
          assert.deepEqual(b, a, `${credential} as ${x.clientId}/${x.clientMode} vs ${y.clientId}/${y.clientMode}`);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it("A47 nothing the property runs presented appears in the gateway's logs", async () => {
    await assertLogsHoldNoSecret(gw, ledger);
  });
});
