import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { SecretLedger, cliAsync, delay, detailCode, helloAuth, openConnect, pairDevice } from "../support/adversarial.js";
import { createTestDevice, type TestDevice } from "../support/device.js";
import { startGatewayProcess, type GatewayProcess } from "../support/gateway-process.js";
import type { Frame, TestClient } from "../support/protocol-client.js";

// The admin CLI writes the gateway's store from another process. The gateway
// serves paired-device reads from memory and learns of such a commit by
// polling, so these tests check what that must never cost: a revoked or
// removed device keeps no session, and its token stops working, within a
// bounded time. Handshakes with the token keep arriving while the CLI runs,
// so some decide on the device's cached, pre-revocation record.

/** Generous: the gateway polls every 250 ms. No assertion is made on speed. */
const DEADLINE_MS = 5_000;

/** `promise`, or a failure naming `what` if it has not settled within the deadline. */
async function within<T>(promise: Promise<T>, what: string, ms = DEADLINE_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`not within ${ms} ms: ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

interface Race {
  /** Sessions admitted with the token while the CLI ran (and until the gateway saw its commit). */
  readonly admitted: TestClient[];
  /** The first handshake refused for good. */
  readonly refused: { readonly client: TestClient; readonly reply: Frame };
}

/**
 * Connect with `deviceToken` again and again while `cli` runs, until a
 * handshake is refused (a retryable "credentials changed during the
 * handshake" answer is retried). Fails if none is refused within the
 * deadline after the CLI exited.
 */
async function handshakeUntilRefused(
  gw: GatewayProcess,
  ledger: SecretLedger,
  device: TestDevice,
  deviceToken: string,
  cli: Promise<{ code: number; stderr: string }>,
): Promise<Race> {
  let cliExitedAt: number | undefined;
  void cli.then(() => (cliExitedAt = Date.now()));
  const admitted: TestClient[] = [];
  for (;;) {
    const attempt = await openConnect(gw, { device, scopes: ["operator.read"], auth: { deviceToken } }, ledger);
    if (attempt.reply.ok) admitted.push(attempt.client);
    else if (attempt.reply.error?.retryable === true) attempt.client.close();
    else return { admitted, refused: attempt };
    if (cliExitedAt !== undefined && Date.now() - cliExitedAt > DEADLINE_MS) {
      assert.fail(`a handshake with the device's old token was still admitted ${DEADLINE_MS} ms after the CLI committed`);
    }
    await delay(5);
  }
}

describe("a device revoked or removed by the admin CLI (another process) against a running gateway", () => {
  const ledger = new SecretLedger();
  let gw: GatewayProcess;
  before(async () => {
    gw = await startGatewayProcess({ config: { rateLimit: { maxFailures: 100_000 } } });
    ledger.add(gw.token);
  });
  after(async () => {
    await gw.stop();
  });

  const cases = [
    { command: "devices revoke --device <id> --role operator", args: (id: string) => ["devices", "revoke", "--device", id, "--role", "operator"], reason: "device token revoked" },
    { command: "devices remove <id>", args: (id: string) => ["devices", "remove", id], reason: "device removed" },
  ] as const;

  for (const { command, args, reason } of cases) {
    it(`after \`gatewarden ${command}\`, the device's live session and every session admitted while the CLI ran are closed with 4001, and a new handshake with its token is refused, each within ${DEADLINE_MS / 1000} s`, async () => {
      const device = createTestDevice();
      const { deviceToken } = await pairDevice(gw, device, ledger, { scopes: ["operator.read"] });
      // The device is connected (so its record was just read, and is cached).
      const live = await openConnect(gw, { device, maxProtocol: 4, scopes: ["operator.read"], auth: { deviceToken } }, ledger);
      assert.equal(helloAuth(live.reply).method, "device-token");

      const cli = cliAsync(gw, args(device.id));
      const { admitted, refused } = await handshakeUntilRefused(gw, ledger, device, deviceToken, cli);
      const done = await within(cli, "the CLI exits");
      assert.equal(done.code, 0, done.stderr);

      // (a) no session of the device outlives the change
      assert.deepEqual(await within(live.client.closed, "the live session is closed"), { code: 4001, reason });
      const closes = await within(Promise.all(admitted.map((c) => c.closed)), `all ${admitted.length} sessions admitted during the race are closed`);
      assert.deepEqual(
        closes.map((c) => c.code),
        admitted.map(() => 4001),
      );

      // (b) the token no longer admits: refused, and every later try is refused too
      assert.equal(detailCode(refused.reply), "AUTH_DEVICE_TOKEN_MISMATCH", JSON.stringify(refused.reply.error));
      assert.equal((await within(refused.client.closed, "the refused socket is closed")).code, 1008);
      for (let i = 0; i < 3; i++) {
        const again = await openConnect(gw, { device, scopes: ["operator.read"], auth: { deviceToken } }, ledger);
        assert.equal(again.reply.ok, false, `try ${i + 1} after the refusal`);
        assert.equal(detailCode(again.reply), "AUTH_DEVICE_TOKEN_MISMATCH");
        await within(again.client.closed, "the refused socket is closed");
      }
    });
  }
});
