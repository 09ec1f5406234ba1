import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { SecretLedger, addBackend, detailCode, openConnect } from "../support/adversarial.js";
import { compatTarget, unavailableReason } from "../compat/openclaw-cli.js";
import { BIN, startGatewayProcess, type GatewayProcess } from "../support/gateway-process.js";
import { startOpenclawUpstream, type OpenclawUpstream } from "../support/openclaw-upstream.js";
import type { TestClient } from "../support/protocol-client.js";

// Issue 15: gatewarden in front of a real OpenClaw gateway. Clients connect to
// gatewarden; what the upstream offers is relayed within the scopes gatewarden
// granted, checked by gatewarden before anything reaches the upstream.

const SHARED = "gatewarden-front-door-token-5c1e9a";

for (const version of ["2026.4.24", "2026.9.6"]) {
  const target = compatTarget(version);
  const skip = unavailableReason(target);

  describe(`gatewarden in front of OpenClaw ${version}`, { skip }, () => {
    const ledger = new SecretLedger();
    let upstream: OpenclawUpstream;
    let stateDir: string;
    let gw: GatewayProcess;

    before(async () => {
      upstream = await startOpenclawUpstream(target);
      stateDir = mkdtempSync(join(tmpdir(), "gw-front-door-"));
      let pair = spawnSync(process.execPath, [BIN, "--state-dir", stateDir, "upstream", "pair", "--url", upstream.url, "--wait", "0"], {
        encoding: "utf8",
        env: { ...process.env, GATEWARDEN_UPSTREAM_TOKEN: upstream.token },
        timeout: 60_000,
      });
      const id = /openclaw devices approve ([0-9a-f-]{36})/.exec(pair.stderr)?.[1];
      if (pair.status !== 0 && id) {
        spawnSync(target.nodeBin, [target.entry, "devices", "approve", id, "--url", upstream.url, "--token", upstream.token], {
          encoding: "utf8",
          env: { PATH: "/usr/bin:/bin", HOME: upstream.stateDir, OPENCLAW_STATE_DIR: upstream.stateDir, npm_config_offline: "true" },
          timeout: 60_000,
        });
        pair = spawnSync(process.execPath, [BIN, "--state-dir", stateDir, "upstream", "pair", "--url", upstream.url, "--wait", "0"], {
          encoding: "utf8",
          env: { ...process.env, GATEWARDEN_UPSTREAM_TOKEN: upstream.token },
          timeout: 60_000,
        });
      }
      assert.equal(pair.status, 0, pair.stderr);
      gw = await startGatewayProcess({ stateDir, args: ["--upstream", upstream.url], env: { GATEWARDEN_TOKEN: SHARED } });
      ledger.add(SHARED);
    });
    after(async () => {
      await gw?.stop();
      await upstream?.stop();
      if (stateDir) rmSync(stateDir, { recursive: true, force: true });
    });

    async function session(scopes: string[], token: string, extra: Record<string, unknown> = {}): Promise<{ client: TestClient; hello: Record<string, unknown> }> {
      const { client, reply } = await openConnect(gw, { scopes, auth: { token }, maxProtocol: 4, ...extra }, ledger);
      assert.equal(reply.ok, true, JSON.stringify(reply.error));
      return { client, hello: reply.payload as Record<string, unknown> };
    }

    it("a session holding operator.read reaches the upstream's read methods through gatewarden, and hello-ok advertises them", async () => {
      const reader = addBackend(gw, "fd-reader", ["operator.read"], ledger);
      const { client, hello } = await session(["operator.read"], reader);
      const methods = (hello.features as { methods: string[] }).methods;
      for (const m of ["sessions.list", "cron.list", "device.pair.list"]) assert.ok(methods.includes(m), m);
      // Methods only the upstream can answer, each answering without network (2026.4.24's models.list fetches a catalog).
      for (const method of ["health", "sessions.list", "cron.list", "channels.status", "tools.catalog"]) {
        const r = await client.request(method, {}, 30_000);
        assert.equal(r.ok, true, `${method}: ${JSON.stringify(r.error)}`);
      }
      client.close();
    });

    it("a write, admin or pairing method the session lacks the scope for is refused by gatewarden before it reaches the upstream", async () => {
      const reader = addBackend(gw, "fd-reader-2", ["operator.read"], ledger);
      const { client } = await session(["operator.read"], reader);
      for (const [method, scope] of [["cron.add", "operator.admin"], ["config.set", "operator.admin"]] as const) {
        const r = await client.request(method, {}, 10_000);
        assert.equal(r.ok, false);
        assert.equal(detailCode(r), "MISSING_SCOPE");
        assert.equal(r.error?.message, `missing scope: ${scope}`);
      }
      await new Promise((r) => setTimeout(r, 300));
      const denied = gw.logLines().filter((l) => l.event === "method-denied").map((l) => l.method);
      assert.ok(denied.includes("cron.add") && denied.includes("config.set"), "gatewarden refused them itself");
      client.close();
    });

    it("the seed scenario through gatewarden (shared token, gateway-client/backend, asking for admin) gets no scopes and reaches nothing that needs one", async () => {
      const { client, hello } = await session(["operator.admin"], SHARED, { clientId: "gateway-client", clientMode: "backend" });
      assert.deepEqual((hello.auth as { scopes: string[] }).scopes, []);
      assert.equal((await client.request("health", {}, 30_000)).ok, true);
      const r = await client.request("sessions.list", {}, 10_000);
      assert.equal(detailCode(r), "MISSING_SCOPE");
      client.close();
    });

    it("revoking the session's backend at gatewarden closes the client (4001)", async () => {
      const reader = addBackend(gw, "fd-revoked", ["operator.read"], ledger);
      const { client } = await session(["operator.read"], reader);
      assert.equal(gw.cli(["--state-dir", stateDir, "backends", "revoke", "fd-revoked"]).code, 0);
      assert.equal((await client.closed).code, 4001);
    });
  });
}
