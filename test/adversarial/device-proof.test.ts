import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { after, before, describe, it } from "node:test";
import {
  SecretLedger,
  assertDevicesUnchanged,
  assertLogsHoldNoSecret,
  assertNoTraceOf,
  assertRefused,
  connectRecorded,
  helloAuth,
  listDevices,
  openConnect,
  pairDevice,
} from "../support/adversarial.js";
import { SMALL_ORDER_POINTS_HEX, createTestDevice, pemForRawKey, signConnect, type TestDevice } from "../support/device.js";
import { startGatewayProcess, type GatewayProcess } from "../support/gateway-process.js";
import { TestClient, type ConnectOptions } from "../support/protocol-client.js";

// A14–A20: a device block is evidence only when its key signed exactly these
// connect params over this socket's nonce, recently. Every failure is refused
// with its DEVICE_AUTH_* code, close 1008, and leaves no pairing state behind.

type Params = Record<string, unknown>;
const deviceOf = (p: Params): Params => p.device as Params;
const withDevice = (p: Params, patch: Params): Params => ({ ...p, device: { ...deviceOf(p), ...patch } });
const withClient = (p: Params, patch: Params): Params => ({ ...p, client: { ...(p.client as Params), ...patch } });

describe("A14–A20 device proof over real sockets", () => {
  const ledger = new SecretLedger();
  let gw: GatewayProcess;

  before(async () => {
    gw = await startGatewayProcess();
    ledger.add(gw.token);
  });
  after(async () => {
    await gw.stop();
  });

  /**
   * Connect fresh devices with the shared token and tampered proofs; expect each
   * refusal, then that none of them left a request, a pairing or a token.
   */
  async function refusedProofs(attempts: readonly [code: string, opts: ConnectOptions][]): Promise<void> {
    const before = listDevices(gw);
    const devices: TestDevice[] = [];
    for (const [code, opts] of attempts) {
      const device = opts.device ?? createTestDevice();
      devices.push(device);
      const { client, reply } = await openConnect(gw, { auth: { token: gw.token! }, scopes: ["operator.read"], ...opts, device }, ledger);
      assert.equal(reply.error?.code, "INVALID_REQUEST", JSON.stringify(reply.error));
      await assertRefused(client, reply, code);
    }
    assertDevicesUnchanged(gw, before);
    assertNoTraceOf(gw, ...devices.map((d) => d.id));
  }

  it("A14 a device.id that is not the SHA-256 of the public key is refused with DEVICE_AUTH_DEVICE_ID_MISMATCH", async () => {
    const other = createTestDevice();
    await refusedProofs([
      ["DEVICE_AUTH_DEVICE_ID_MISMATCH", { tamper: (p) => withDevice(p, { id: other.id }) }],
      ["DEVICE_AUTH_DEVICE_ID_MISMATCH", { tamper: (p) => withDevice(p, { id: "0".repeat(64) }) }],
      ["DEVICE_AUTH_DEVICE_ID_MISMATCH", { tamper: (p) => withDevice(p, { id: (deviceOf(p).id as string).toUpperCase() }) }],
    ]);
    assertNoTraceOf(gw, other.id);
  });

  it("A14 claiming a paired device's id with another key does not reach that pairing", async () => {
    const victim = createTestDevice();
    const { deviceToken } = await pairDevice(gw, victim, ledger, { scopes: ["operator.read"] });
    const before = listDevices(gw);
    const attacker = createTestDevice();
    // The attacker's own key signs; it claims the victim's id and presents the victim's token.
    const { client, reply } = await openConnect(
      gw,
      { device: attacker, scopes: ["operator.read"], auth: { deviceToken }, tamper: (p) => withDevice(p, { id: victim.id }) },
      ledger,
    );
    await assertRefused(client, reply, "DEVICE_AUTH_DEVICE_ID_MISMATCH");
    assertDevicesUnchanged(gw, before, "the victim's pairing and token are untouched");
  });

  it("A15 a signature over another nonce is refused with DEVICE_AUTH_NONCE_MISMATCH (nonce sent as signed)", async () => {
    await refusedProofs([["DEVICE_AUTH_NONCE_MISMATCH", { signNonce: "00000000-0000-4000-8000-000000000000" }]]);
  });

  it("A15 a signature over another nonce, sent with this socket's nonce, is refused with DEVICE_AUTH_SIGNATURE_INVALID", async () => {
    const c = await TestClient.open(gw.url);
    const device = createTestDevice();
    const before = listDevices(gw);
    const reply = await connectRecorded(
      c,
      { device, auth: { token: gw.token! }, signNonce: "00000000-0000-4000-8000-000000000000", tamper: (p) => withDevice(p, { nonce: c.nonce }) },
      ledger,
    );
    await assertRefused(c, reply, "DEVICE_AUTH_SIGNATURE_INVALID");
    assertDevicesUnchanged(gw, before);
  });

  it("A16 signedAt 10 minutes in the past or in the future is refused with DEVICE_AUTH_SIGNATURE_EXPIRED", async () => {
    await refusedProofs([-10 * 60_000, 10 * 60_000, -130_000, 130_000, -365 * 86_400_000].map((offset) => ["DEVICE_AUTH_SIGNATURE_EXPIRED", { signedAt: Date.now() + offset }]));
  });

  it("A17 a complete valid connect replayed from socket A on socket B is refused (the nonce differs), before and after A is admitted", async () => {
    const device = createTestDevice();
    const { deviceToken } = await pairDevice(gw, device, ledger, { scopes: ["operator.read"] });
    const before = listDevices(gw);

    const a = await TestClient.open(gw.url);
    const params = a.buildConnect({ device, scopes: ["operator.read"], auth: { deviceToken } });
    ledger.addConnectParams(params);
    const b = await TestClient.open(gw.url);
    const replayedFirst = await b.request("connect", params);
    await assertRefused(b, replayedFirst, "DEVICE_AUTH_NONCE_MISMATCH");

    const admitted = await a.request("connect", params);
    assert.deepEqual(helloAuth(admitted).scopes, ["operator.read"], "the original is valid on its own socket");

    const c = await TestClient.open(gw.url);
    const replayedAfter = await c.request("connect", params);
    await assertRefused(c, replayedAfter, "DEVICE_AUTH_NONCE_MISMATCH");
    a.close();
    assertDevicesUnchanged(gw, before, "no token minted, no request made by the replays");
  });

  it("A18 signed role, scopes, client id, mode, platform or token that differ from the params are refused with DEVICE_AUTH_SIGNATURE_INVALID", async () => {
    const tampers: [string, (p: Params) => Params][] = [
      ["role", (p) => ({ ...p, role: "node", scopes: [] })],
      ["scopes widened", (p) => ({ ...p, scopes: ["operator.read", "operator.admin"] })],
      ["scopes reordered", (p) => ({ ...p, scopes: ["operator.write", "operator.read"] })],
      ["client id", (p) => withClient(p, { id: "gateway-client" })],
      ["client mode", (p) => withClient(p, { mode: "backend" })],
      ["platform", (p) => withClient(p, { platform: "darwin" })],
      ["deviceFamily added", (p) => withClient(p, { deviceFamily: "server" })],
      ["token", (p) => ({ ...p, auth: { token: gw.token! } })],
      ["signedAt", (p) => withDevice(p, { signedAt: (deviceOf(p).signedAt as number) + 1 })],
    ];
    const before = listDevices(gw);
    for (const [what, tamper] of tampers) {
      const device = createTestDevice();
      const c = await TestClient.open(gw.url);
      // Signed over read+write with the token "signed-token-…", then the params are changed.
      const reply = await connectRecorded(
        c,
        { device, scopes: ["operator.read", "operator.write"], auth: { token: "signed-token-5b9d2f7e1c" }, tamper },
        ledger,
      );
      assert.equal(reply.ok, false, what);
      // The changed token case: the signature is checked before the credential.
      await assertRefused(c, reply, "DEVICE_AUTH_SIGNATURE_INVALID");
    }
    assertDevicesUnchanged(gw, before);
  });

  it("A18 a valid signature by one device presented with another device's key is refused", async () => {
    const signer = createTestDevice();
    const holder = createTestDevice();
    const c = await TestClient.open(gw.url);
    const before = listDevices(gw);
    const reply = await connectRecorded(
      c,
      {
        device: holder,
        auth: { token: gw.token! },
        tamper: (p) =>
          withDevice(p, {
            signature: signConnect(signer, {
              clientId: "cli",
              clientMode: "cli",
              role: "operator",
              scopes: [],
              token: gw.token!,
              nonce: c.nonce,
              platform: "linux",
              signedAt: deviceOf(p).signedAt as number,
              deviceId: holder.id,
            }),
          }),
      },
      ledger,
    );
    await assertRefused(c, reply, "DEVICE_AUTH_SIGNATURE_INVALID");
    assertDevicesUnchanged(gw, before);
  });

  it("A19 malformed public keys (wrong length, not base64url, small-order points, not Ed25519) are refused with DEVICE_AUTH_PUBLIC_KEY_INVALID", async () => {
    const real = createTestDevice();
    const rsa = generateKeyPairSync("rsa", { modulusLength: 1024 }).publicKey.export({ format: "pem", type: "spki" }).toString();
    const keys: string[] = [
      real.publicKeyRaw.subarray(0, 31).toString("base64url"),
      Buffer.concat([real.publicKeyRaw, Buffer.from([0])]).toString("base64url"),
      Buffer.alloc(64, 7).toString("base64url"),
      "not*base64url!",
      "ünïcödé-key",
      " ",
      rsa,
      "-----BEGIN PUBLIC KEY-----\ngarbage\n-----END PUBLIC KEY-----",
      ...SMALL_ORDER_POINTS_HEX.map((h) => Buffer.from(h, "hex").toString("base64url")),
      ...SMALL_ORDER_POINTS_HEX.slice(0, 2).map((h) => pemForRawKey(Buffer.from(h, "hex"))),
    ];
    await refusedProofs(keys.map((publicKey) => ["DEVICE_AUTH_PUBLIC_KEY_INVALID", { tamper: (p) => withDevice(p, { publicKey }) }]));
  });

  it("A20 a blank or garbled signature is refused with DEVICE_AUTH_SIGNATURE_INVALID; a missing one fails the closed schema", async () => {
    const garbled = [" ", "AAAA", "not base64!", Buffer.alloc(63).toString("base64url"), Buffer.alloc(65).toString("base64url"), Buffer.alloc(64).toString("base64url")];
    await refusedProofs([
      ...garbled.map((signature): [string, ConnectOptions] => ["DEVICE_AUTH_SIGNATURE_INVALID", { tamper: (p) => withDevice(p, { signature }) }]),
      [
        "INVALID_PARAMS",
        {
          tamper: (p) => {
            const { signature: _dropped, ...rest } = deviceOf(p);
            return { ...p, device: rest };
          },
        },
      ],
      ["INVALID_PARAMS", { tamper: (p) => withDevice(p, { signature: "" }) }],
    ]);
  });

  it("A20 a blank nonce is refused with DEVICE_AUTH_NONCE_REQUIRED; a missing or empty one fails the closed schema", async () => {
    await refusedProofs([
      ["DEVICE_AUTH_NONCE_REQUIRED", { signNonce: "   " }],
      ["DEVICE_AUTH_NONCE_REQUIRED", { tamper: (p) => withDevice(p, { nonce: "\t" }) }],
      ["INVALID_PARAMS", { tamper: (p) => withDevice(p, { nonce: "" }) }],
      [
        "INVALID_PARAMS",
        {
          tamper: (p) => {
            const { nonce: _dropped, ...rest } = deviceOf(p);
            return { ...p, device: rest };
          },
        },
      ],
    ]);
  });

  it("A47 nothing the device-proof attacks presented (tokens, signatures) appears in the gateway's logs", async () => {
    await assertLogsHoldNoSecret(gw, ledger);
  });
});
