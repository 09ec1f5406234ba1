import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { createTestDevice } from "../support/device.js";
import { startGatewayProcess } from "../support/gateway-process.js";
import { TestClient } from "../support/protocol-client.js";

describe("bootstrap tokens and restarts", () => {
  it("a bootstrap token pairs one device once, within its scopes, and a second use is refused", async () => {
    const gw = await startGatewayProcess();
    try {
      const made = gw.cli(["token", "bootstrap", "--roles", "operator", "--scopes", "operator.read", "--json"]);
      assert.equal(made.code, 0, made.stderr);
      const { token, setupCode } = JSON.parse(made.stdout) as { token: string; setupCode: string };
      assert.equal((JSON.parse(Buffer.from(setupCode, "base64url").toString()) as { bootstrapToken: string }).bootstrapToken, token);

      const device = createTestDevice();
      const c = await TestClient.open(gw.url);
      // protocol 4: its hello-ok names the auth method (protocol 3's closed schema has no such field)
      const hello = await c.connect({ device, maxProtocol: 4, scopes: ["operator.read", "operator.admin"], auth: { bootstrapToken: token } });
      assert.equal(hello.ok, true, JSON.stringify(hello.error));
      const auth = (hello.payload as { auth: { scopes: string[]; deviceToken: string; method: string } }).auth;
      assert.deepEqual(auth.scopes, ["operator.read"], "narrowed to the bootstrap token's scopes");
      assert.equal(auth.method, "bootstrap-token");
      assert.ok(auth.deviceToken);
      c.close();

      const again = await TestClient.open(gw.url);
      const second = await again.connect({ device: createTestDevice(), scopes: ["operator.read"], auth: { bootstrapToken: token } });
      assert.equal(second.error?.details?.code, "AUTH_BOOTSTRAP_TOKEN_INVALID", "A27 second use is refused");

      const withToken = await TestClient.open(gw.url);
      assert.equal((await withToken.connect({ device, scopes: ["operator.read"], auth: { deviceToken: auth.deviceToken } })).ok, true);
      withToken.close();
    } finally {
      await gw.stop();
    }
  });

  it("a restart keeps every pairing and token, and the generated token is not shown again", async () => {
    const stateDir = mkdtempSync(join(tmpdir(), "gatewarden-restart-"));
    try {
      const first = await startGatewayProcess({ stateDir });
      const sharedToken = first.token!;
      assert.ok(sharedToken);
      const device = createTestDevice();
      const c1 = await TestClient.open(first.url);
      const r1 = await c1.connect({ device, scopes: ["operator.read"], auth: { token: sharedToken } });
      assert.equal(first.cli(["devices", "approve", "--yes", r1.error?.details?.requestId as string]).code, 0);
      const c2 = await TestClient.open(first.url);
      const deviceToken = ((await c2.connect({ device, scopes: ["operator.read"], auth: { token: sharedToken } })).payload as { auth: { deviceToken: string } }).auth
        .deviceToken;
      c2.close();
      await first.stop();

      const second = await startGatewayProcess({ stateDir });
      try {
        assert.equal(second.token, undefined);
        const c3 = await TestClient.open(second.url);
        const hello = await c3.connect({ device, scopes: ["operator.read"], auth: { deviceToken } });
        assert.equal(hello.ok, true, JSON.stringify(hello.error));
        const c4 = await TestClient.open(second.url);
        assert.equal((await c4.connect({ auth: { token: sharedToken } })).ok, true);
        c3.close();
        c4.close();
      } finally {
        await second.stop();
      }
    } finally {
      rmSync(stateDir, { recursive: true, force: true });
    }
  });
});
