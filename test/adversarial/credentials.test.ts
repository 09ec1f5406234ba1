import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { verifySharedSecret } from "../../src/admission/credentials/shared-secret.js";
import { secretDigest } from "../../src/admission/secret-digest.js";
import {
  admitEffects,
  BOOTSTRAP_TOKEN,
  SHARED_TOKEN,
  assertAdmit,
  assertReject,
  bootstrapRecord,
  decide,
  pairedDeviceRecord,
  tokenAuth,
} from "../support/admission-fixtures.js";
import {
  SecretLedger,
  addBackend,
  assertDevicesUnchanged,
  assertLogsHoldNoSecret,
  assertNoTraceOf,
  assertRefused,
  connectRecorded,
  delay,
  detailCode,
  helloAuth,
  listDevices,
  openConnect,
  pairDevice,
} from "../support/adversarial.js";
import { createTestDevice } from "../support/device.js";
import { startGatewayProcess, viaProxy, type GatewayProcess } from "../support/gateway-process.js";
import { TestClient, type Frame } from "../support/protocol-client.js";

// A21–A28: presented secrets become evidence only when they verify; guessing
// is bounded per client address; revoked, rotated and one-time tokens stay dead.

const WRONG = (i: number) => `gwt_wrong-guess-${String(i).padStart(4, "0")}-7c1d9e`;

/** Open `n` sockets from one address at once, then send every connect at once. */
async function concurrentConnects(
  gw: GatewayProcess,
  n: number,
  ledger: SecretLedger,
  build: (i: number) => Parameters<TestClient["buildConnect"]>[0],
  open: (i: number) => { localAddress?: string; headers?: Record<string, string> },
): Promise<Frame[]> {
  const clients = await Promise.all(Array.from({ length: n }, (_, i) => TestClient.open(gw.url, open(i))));
  const replies = await Promise.all(
    clients.map((c, i) => {
      const params = c.buildConnect(build(i));
      ledger.addConnectParams(params);
      return c.request("connect", params);
    }),
  );
  for (const c of clients) c.close();
  return replies;
}

const count = (replies: readonly Frame[], code: string) => replies.filter((r) => detailCode(r) === code).length;

describe("A21–A28 credentials and tokens over real sockets", () => {
  const ledger = new SecretLedger();
  let gw: GatewayProcess;
  let unlimited: GatewayProcess;

  before(async () => {
    [gw, unlimited] = await Promise.all([startGatewayProcess(), startGatewayProcess({ config: { rateLimit: { maxFailures: 100_000 } } })]);
    ledger.add(gw.token, unlimited.token);
  });
  after(async () => {
    await Promise.all([gw.stop(), unlimited.stop()]);
  });

  it("A21 50 wrong tokens from one IP: locked out after 10 with retry information, the correct token is refused during the lockout, another IP is unaffected", async () => {
    const before = listDevices(gw);
    const replies: Frame[] = [];
    for (let i = 0; i < 50; i++) {
      const { client, reply } = await openConnect(gw, { auth: { token: WRONG(i) } }, ledger, viaProxy("203.0.113.21"));
      replies.push(reply);
      assert.equal((await client.closed).code, 1008);
    }
    assert.deepEqual(replies.slice(0, 10).map(detailCode), Array(10).fill("AUTH_TOKEN_MISMATCH"));
    assert.deepEqual(replies.slice(10).map(detailCode), Array(40).fill("AUTH_RATE_LIMITED"));
    for (const r of replies.slice(10)) {
      assert.equal(r.error?.retryable, true);
      assert.ok((r.error?.retryAfterMs ?? 0) > 0 && (r.error?.retryAfterMs ?? 0) <= 300_000, "retryAfterMs tells when to come back");
      assert.equal(r.error?.details?.recommendedNextStep, "wait_then_retry");
    }

    const correct = await openConnect(gw, { auth: { token: gw.token! } }, ledger, viaProxy("203.0.113.21"));
    await assertRefused(correct.client, correct.reply, "AUTH_RATE_LIMITED");
    const backendSecret = addBackend(gw, "a21-backend", ["operator.read"], ledger);
    const backend = await openConnect(gw, { auth: { token: backendSecret } }, ledger, viaProxy("203.0.113.21"));
    await assertRefused(backend.client, backend.reply, "AUTH_RATE_LIMITED");

    const elsewhere = await openConnect(gw, { maxProtocol: 4, auth: { token: gw.token! } }, ledger, viaProxy("203.0.113.121"));
    assert.equal(helloAuth(elsewhere.reply).method, "token", "another IP is unaffected");
    elsewhere.client.close();
    assertDevicesUnchanged(gw, before);
  });

  it("A22 the same guesses spread over 30 sockets at once share one budget per IP", async () => {
    const replies = await concurrentConnects(gw, 30, ledger, (i) => ({ auth: { token: WRONG(100 + i) } }), () => viaProxy("203.0.113.22"));
    assert.equal(count(replies, "AUTH_TOKEN_MISMATCH"), 10, "exactly the budget was spent on guesses");
    assert.equal(count(replies, "AUTH_RATE_LIMITED"), 20);
  });

  it("A57 wrong secrets from 127.0.0.1, then from 127.0.9.1 … 127.0.9.30, with and without an Origin, spend one budget for all of loopback", async () => {
    const local = await startGatewayProcess();
    ledger.add(local.token);
    try {
      const codes: unknown[] = [];
      for (let i = 0; i < 40; i++) {
        const localAddress = i < 5 ? "127.0.0.1" : `127.0.9.${(i % 30) + 1}`;
        const headers: Record<string, string> = i % 2 ? { origin: `http://localhost:${3000 + i}` } : {};
        const client = await TestClient.open(local.url, { localAddress, headers });
        codes.push(detailCode(await connectRecorded(client, { auth: { token: WRONG(200 + i) } }, ledger)));
        client.close();
      }
      assert.equal(codes.filter((c) => c === "AUTH_TOKEN_MISMATCH").length, 10, "one budget of 10 for every loopback address and origin");
      assert.ok(codes.slice(10).every((c) => c === "AUTH_RATE_LIMITED"), JSON.stringify(codes));
      const right = await openConnect(local, { auth: { token: local.token! } }, ledger, { localAddress: "127.0.9.200" });
      await assertRefused(right.client, right.reply, "AUTH_RATE_LIMITED");
    } finally {
      await local.stop();
    }
  });

  it("A22 successful logins from the same IP in between do not refill the guessing budget", async () => {
    const own = addBackend(gw, "a22-attacker-own", [], ledger);
    const codes: unknown[] = [];
    for (let round = 0; round < 6; round++) {
      for (let i = 0; i < 3; i++) {
        const { client, reply } = await openConnect(gw, { auth: { token: WRONG(300 + round * 3 + i) } }, ledger, viaProxy("203.0.113.23"));
        codes.push(detailCode(reply));
        client.close();
      }
      // the attacker's own valid credential
      const mine = await openConnect(gw, { auth: { token: own } }, ledger, viaProxy("203.0.113.23"));
      if (mine.reply.ok) mine.client.close();
    }
    assert.equal(codes.filter((c) => c === "AUTH_TOKEN_MISMATCH").length, 10, "18 guesses, only 10 ever compared");
    assert.deepEqual(codes.slice(10), Array(8).fill("AUTH_RATE_LIMITED"));
  });

  it("A23 wrong tokens of every length are compared as equal-length digests and all give AUTH_TOKEN_MISMATCH (pure core)", () => {
    const policy = tokenAuth();
    const candidates = [
      ...Array.from({ length: 300 }, (_, n) => "x".repeat(n + 1)),
      SHARED_TOKEN.slice(0, -1),
      SHARED_TOKEN + "x",
      SHARED_TOKEN.toUpperCase(),
      SHARED_TOKEN.slice(1),
      "x".repeat(1024),
      "\u0000".repeat(64),
      "é".repeat(40),
    ];
    for (const token of candidates) {
      assert.equal(secretDigest(token).length, 32, "every presented secret becomes a 32-byte digest");
      assert.deepEqual(verifySharedSecret(policy, { token }), { status: "rejected", reason: "token_mismatch" }, `length ${token.length}`);
      assert.equal(assertReject(decide({ presented: { token } }), "AUTH_TOKEN_MISMATCH").authFailure, true);
    }
  });

  it("A23 over the wire, wrong tokens of lengths 1–64, 512 and 1024 all give AUTH_TOKEN_MISMATCH", async () => {
    const lengths = [...Array.from({ length: 64 }, (_, i) => i + 1), 512, 1024];
    const codes = new Set<unknown>();
    for (const n of lengths) {
      const token = "g".repeat(n);
      const { client, reply } = await openConnect(unlimited, { auth: { token } }, ledger);
      codes.add(detailCode(reply));
      client.close();
    }
    assert.deepEqual([...codes], ["AUTH_TOKEN_MISMATCH"]);
    const over = await openConnect(unlimited, { auth: { token: "g".repeat(1025) } }, ledger);
    await assertRefused(over.client, over.reply, "INVALID_PARAMS");
  });

  it("A24 device A's token presented with device B's key is refused and changes no pairing", async () => {
    const a = createTestDevice();
    const b = createTestDevice();
    const { deviceToken } = await pairDevice(unlimited, a, ledger, { scopes: ["operator.read"] });
    const before = listDevices(unlimited);
    const explicit = await openConnect(unlimited, { device: b, scopes: ["operator.read"], auth: { deviceToken } }, ledger);
    await assertRefused(explicit.client, explicit.reply, "AUTH_DEVICE_TOKEN_MISMATCH");
    const inToken = await openConnect(unlimited, { device: b, scopes: ["operator.read"], auth: { token: deviceToken } }, ledger);
    await assertRefused(inToken.client, inToken.reply, "AUTH_TOKEN_MISMATCH");
    assertDevicesUnchanged(unlimited, before);
    assertNoTraceOf(unlimited, b.id);
  });

  it("A25 revoking or rotating a device token closes its live session with 4001 at once", async () => {
    for (const action of ["revoke", "rotate"] as const) {
      const device = createTestDevice();
      const { deviceToken } = await pairDevice(unlimited, device, ledger, { scopes: ["operator.read"] });
      const live = await openConnect(unlimited, { device, maxProtocol: 4, scopes: ["operator.read"], auth: { deviceToken } }, ledger);
      assert.equal(helloAuth(live.reply).method, "device-token");
      const r = unlimited.cli(["devices", action, "--device", device.id, "--role", "operator", "--json"]);
      assert.equal(r.code, 0, r.stderr);
      if (action === "rotate") ledger.add((JSON.parse(r.stdout) as { token: string }).token);
      const closed = await live.client.closed;
      assert.equal(closed.code, 4001, action);
      assert.equal(closed.reason, action === "rotate" ? "device token rotated" : "device token revoked", "the close says what happened");
    }
  });

  it("A26 a revoked or rotated-away device token on a new connection is unauthorized and nothing is persisted", async () => {
    const revokedDevice = createTestDevice();
    const revoked = await pairDevice(unlimited, revokedDevice, ledger, { scopes: ["operator.read"] });
    assert.equal(unlimited.cli(["devices", "revoke", "--device", revokedDevice.id, "--role", "operator"]).code, 0);

    const rotatedDevice = createTestDevice();
    const rotated = await pairDevice(unlimited, rotatedDevice, ledger, { scopes: ["operator.read"] });
    const r = unlimited.cli(["devices", "rotate", "--device", rotatedDevice.id, "--role", "operator", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const fresh = (JSON.parse(r.stdout) as { token: string }).token;
    ledger.add(fresh);

    const before = listDevices(unlimited);
    for (const [device, token] of [
      [revokedDevice, revoked.deviceToken],
      [rotatedDevice, rotated.deviceToken],
    ] as const) {
      const { client, reply } = await openConnect(unlimited, { device, scopes: ["operator.read"], auth: { deviceToken: token } }, ledger);
      await assertRefused(client, reply, "AUTH_DEVICE_TOKEN_MISMATCH");
    }
    assertDevicesUnchanged(unlimited, before, "no pending request, no token, no pairing change");

    const ok = await openConnect(unlimited, { device: rotatedDevice, scopes: ["operator.read"], auth: { deviceToken: fresh } }, ledger);
    assert.deepEqual(helloAuth(ok.reply).scopes, ["operator.read"], "the rotated-in token works");
    ok.client.close();
  });

  it("A27 a bootstrap token pairs one device once: a second use, by the same or another device, is refused", async () => {
    const r = unlimited.cli(["token", "bootstrap", "--scopes", "operator.read", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const { token } = JSON.parse(r.stdout) as { token: string };
    ledger.add(token);

    const first = createTestDevice();
    const ok = await openConnect(unlimited, { device: first, maxProtocol: 4, scopes: ["operator.read"], auth: { bootstrapToken: token } }, ledger);
    const auth = helloAuth(ok.reply);
    ledger.add(auth.deviceToken);
    assert.equal(auth.method, "bootstrap-token");
    assert.deepEqual(auth.scopes, ["operator.read"]);
    ok.client.close();

    const before = listDevices(unlimited);
    const second = createTestDevice();
    for (const device of [second, first]) {
      const { client, reply } = await openConnect(unlimited, { device, scopes: ["operator.read"], auth: { bootstrapToken: token } }, ledger);
      await assertRefused(client, reply, "AUTH_BOOTSTRAP_TOKEN_INVALID");
    }
    assertDevicesUnchanged(unlimited, before);
    assertNoTraceOf(unlimited, second.id);
  });

  it("A27 a bootstrap token presented by an already-paired device is used up by that use: a second use, by it or a new device, is refused", async () => {
    const pairedDevice = createTestDevice();
    await pairDevice(unlimited, pairedDevice, ledger, { scopes: ["operator.read"] });
    const r = unlimited.cli(["token", "bootstrap", "--scopes", "operator.read", "--json"]);
    const { token } = JSON.parse(r.stdout) as { token: string };
    ledger.add(token);
    const first = await openConnect(unlimited, { device: pairedDevice, scopes: ["operator.read"], auth: { bootstrapToken: token } }, ledger);
    ledger.add(helloAuth(first.reply).deviceToken);
    first.client.close();

    const before = listDevices(unlimited);
    const newcomer = createTestDevice();
    for (const device of [pairedDevice, newcomer]) {
      const { client, reply } = await openConnect(unlimited, { device, scopes: ["operator.read"], auth: { bootstrapToken: token } }, ledger);
      await assertRefused(client, reply, "AUTH_BOOTSTRAP_TOKEN_INVALID");
    }
    assertDevicesUnchanged(unlimited, before);
    assertNoTraceOf(unlimited, newcomer.id);
  });

  it("A27 (pure core) whatever a valid bootstrap token admits, the decision has it used up", () => {
    const device = createTestDevice();
    const opts = { device, presented: { bootstrapToken: BOOTSTRAP_TOKEN }, claims: { requestedScopes: ["operator.read"] as const } };
    const first = assertAdmit(decide({ ...opts, facts: { bootstrap: bootstrapRecord() } }), { credential: "bootstrap-token" });
    assert.equal(first.silentApproval, "bootstrap", "a first pairing consumes it with the pairing");
    assert.equal(admitEffects(first).consumesBootstrap, bootstrapRecord().tokenHash);
    const repeat = assertAdmit(decide({ ...opts, facts: { bootstrap: bootstrapRecord(), pairedDevice: pairedDeviceRecord(device, { approvedScopes: ["operator.read"] }) } }), {
      credential: "bootstrap-token",
      scopes: ["operator.read"],
    });
    assert.equal(repeat.silentApproval, undefined);
    assert.equal(admitEffects(repeat).consumesBootstrap, bootstrapRecord().tokenHash, "an already-paired device uses it up too");
    assert.equal(admitEffects(repeat).mints, undefined, "and is handed no token: the bootstrap profile is not its grant");
  });

  it("A27 two devices racing with one bootstrap token: exactly one is paired", async () => {
    const r = unlimited.cli(["token", "bootstrap", "--scopes", "operator.read", "--json"]);
    const { token } = JSON.parse(r.stdout) as { token: string };
    ledger.add(token);
    const devices = Array.from({ length: 6 }, () => createTestDevice());
    const replies = await concurrentConnects(unlimited, devices.length, ledger, (i) => ({ device: devices[i], scopes: ["operator.read"], auth: { bootstrapToken: token } }), () => ({
      localAddress: "127.0.27.1",
    }));
    for (const reply of replies) if (reply.ok) ledger.add(helloAuth(reply).deviceToken);
    assert.equal(replies.filter((x) => x.ok).length, 1, JSON.stringify(replies.map((x) => detailCode(x) ?? "ok")));
    const paired = listDevices(unlimited).paired.filter((p) => devices.some((d) => d.id === p.deviceId));
    assert.equal(paired.length, 1);
  });

  it("A27 a bootstrap token used after its expiry is refused and pairs nothing", async () => {
    const r = unlimited.cli(["token", "bootstrap", "--scopes", "operator.read", "--ttl", "1s", "--json"]);
    const { token } = JSON.parse(r.stdout) as { token: string };
    ledger.add(token);
    await delay(1200);
    const device = createTestDevice();
    const { client, reply } = await openConnect(unlimited, { device, scopes: ["operator.read"], auth: { bootstrapToken: token } }, ledger);
    await assertRefused(client, reply, "AUTH_BOOTSTRAP_TOKEN_INVALID");
    assertNoTraceOf(unlimited, device.id);
  });

  it("A28 the shared operator token presented as a backend credential skips nothing: no device → [], fresh device → PAIRING_REQUIRED", async () => {
    const backendsBefore = unlimited.cli(["backends", "list", "--json"]).stdout;
    const claim = { clientId: "gateway-client", clientMode: "backend" };
    const noDevice = await openConnect(unlimited, { ...claim, maxProtocol: 4, scopes: ["operator.admin"], auth: { token: unlimited.token! } }, ledger);
    const auth = helloAuth(noDevice.reply);
    assert.deepEqual(auth.scopes, []);
    assert.equal(auth.method, "token");
    noDevice.client.close();
    const device = createTestDevice();
    const withDevice = await openConnect(unlimited, { ...claim, device, scopes: ["operator.admin"], auth: { token: unlimited.token! } }, ledger);
    await assertRefused(withDevice.client, withDevice.reply, "PAIRING_REQUIRED");
    assert.equal(listDevices(unlimited).paired.filter((p) => p.deviceId === device.id).length, 0);
    assert.equal(unlimited.cli(["backends", "list", "--json"]).stdout, backendsBefore, "no backend credential was created");
  });

  it("A47 nothing the credential attacks presented appears in the gateways' logs", async () => {
    for (const g of [gw, unlimited]) await assertLogsHoldNoSecret(g, ledger);
  });
});
