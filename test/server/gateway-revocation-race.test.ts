import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { resolveConfig } from "../../src/config.js";
import { revokeDeviceToken } from "../../src/pairing/device-tokens.js";
import { silentLogger } from "../../src/server/logger.js";
import { startGateway } from "../../src/start-gateway.js";
import { createMemoryStore } from "../../src/store/memory-store.js";
import type { Store } from "../../src/store/store.js";
import { pairedDeviceRecord } from "../support/admission-fixtures.js";
import { createTestDevice } from "../support/device.js";
import { TestClient } from "../support/protocol-client.js";

// An in-process gateway over a store whose change-feed reads take time, as a
// database over the network would. It checks one interleaving of the device
// read cache, the change feed and a revocation committed by another process
// (the admin CLI), step by step:
//
// 1. the gateway commits something itself (a pairing request), which drops
//    its device read cache, and starts reading the change feed;
// 2. while that read is on its way, the device reconnects (its record is read
//    and cached again) and then the CLI revokes the device's token;
// 3. the feed read returns the revocation: live sessions are closed;
// 4. the device connects again with the revoked token.
//
// The session of step 4 must not survive: it is refused, or closed with 4001.

const SHARED_TOKEN = "shared-token-race-test-8d7c6b5a";
const DEVICE_TOKEN = "device-token-race-test-1a2b3c4d";
const DEADLINE_MS = 5_000;

async function within<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`not within ${DEADLINE_MS} ms: ${what}`)), DEADLINE_MS))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

describe("gateway: a device token revoked by another process while the gateway reads its change feed", () => {
  it(
    "a handshake with the revoked token after the gateway applied the revocation does not leave a live session (refused, or closed with 4001)",
    async () => {
      const stateDir = mkdtempSync(join(tmpdir(), "gatewarden-race-"));
      const device = createTestDevice();
      const base = createMemoryStore();
      await base.transact((tx) =>
        tx.putPairedDevice(pairedDeviceRecord(device, { approvedScopes: ["operator.read"], tokens: { operator: { token: DEVICE_TOKEN, scopes: ["operator.read"] } } })),
      );

      // The store the gateway is given: change-feed reads can be held (step 2), and
      // the commit marker the poll sees can be held still, so that no poll happens
      // to run inside the interleaving (it would hide it, by chance).
      let duringNextFeedRead: (() => Promise<void>) | undefined;
      let heldMarker: number | undefined;
      const store: Store = {
        ...base,
        async changesSince(afterId, limit) {
          const hook = duringNextFeedRead;
          duringNextFeedRead = undefined;
          if (hook) await hook();
          return base.changesSince(afterId, limit);
        },
        async commitMarker() {
          return heldMarker ?? base.commitMarker();
        },
      };

      const config = resolveConfig({ host: "127.0.0.1", port: 0, stateDir }, { GATEWARDEN_TOKEN: SHARED_TOKEN });
      const running = await startGateway(config, { logger: silentLogger(), store });
      const url = `ws://127.0.0.1:${running.address.port}`;
      const connectDevice = async (): Promise<{ client: TestClient; ok: boolean | undefined }> => {
        const client = await TestClient.open(url);
        const reply = await client.connect({ device, scopes: ["operator.read"], auth: { deviceToken: DEVICE_TOKEN } });
        return { client, ok: reply.ok };
      };
      try {
        const first = await connectDevice();
        assert.equal(first.ok, true, "the device is admitted with its token");

        heldMarker = await base.commitMarker();
        let reconnected: { client: TestClient; ok: boolean | undefined } | undefined;
        let stepTwoDone!: () => void;
        const stepTwo = new Promise<void>((r) => (stepTwoDone = r));
        duringNextFeedRead = async () => {
          reconnected = await connectDevice();
          await revokeDeviceToken(base, { deviceId: device.id, role: "operator" }, { kind: "owner" }, Date.now()); // the CLI
          stepTwoDone();
        };

        // Step 1: a new device's pairing request is the gateway's own commit.
        const newcomer = await TestClient.open(url);
        const pairing = await newcomer.connect({ device: createTestDevice(), auth: { token: SHARED_TOKEN } });
        assert.equal(pairing.error?.details?.code, "PAIRING_REQUIRED");
        await within(stepTwo, "the reconnect and the CLI's revocation");
        assert.equal(reconnected?.ok, true, "the reconnect before the revocation was admitted");

        // Step 3: the revocation reached the gateway through the feed.
        assert.equal((await within(first.client.closed, "the first session is closed")).code, 4001);
        assert.equal((await within(reconnected.client.closed, "the reconnected session is closed")).code, 4001);

        // Step 4, then let the gateway poll again.
        const late = await connectDevice();
        heldMarker = undefined;
        if (late.ok) assert.equal((await within(late.client.closed, "a session admitted with the revoked token is closed")).code, 4001);
        late.client.close();
      } finally {
        await running.stop();
        rmSync(stateDir, { recursive: true, force: true });
      }
    },
  );
});
