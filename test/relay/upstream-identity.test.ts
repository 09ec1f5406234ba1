import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { identityPath } from "../../src/config.js";
import { loadUpstreamSigner, readUpstreamCredentials, upstreamCredentialsPath } from "../../src/relay/upstream-identity.js";
import { UpstreamLink } from "../../src/relay/upstream-link.js";
import { compatTarget, unavailableReason } from "../compat/openclaw-cli.js";
import { BIN } from "../support/gateway-process.js";
import { startOpenclawUpstream, type OpenclawUpstream } from "../support/openclaw-upstream.js";

// gatewarden's own identity towards a real OpenClaw gateway (issue 15, item
// 2): `gatewarden upstream pair` pairs gatewarden's device key through the
// upstream's own pairing, keeps only the device token it issues, and a
// session opened with it and fewer scopes is held to them by the upstream too.

function gatewarden(stateDir: string, args: readonly string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [BIN, "--state-dir", stateDir, ...args], { encoding: "utf8", env: { ...process.env, ...env }, timeout: 120_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

for (const version of ["2026.4.24", "2026.9.6"]) {
  const target = compatTarget(version);
  const skip = unavailableReason(target);

  describe(`gatewarden's upstream identity with OpenClaw ${version}`, { skip }, () => {
    let upstream: OpenclawUpstream;
    let stateDir: string;

    before(async () => {
      upstream = await startOpenclawUpstream(target);
      stateDir = mkdtempSync(join(tmpdir(), "gw-upstream-state-"));
    });
    after(async () => {
      await upstream?.stop();
      if (stateDir) rmSync(stateDir, { recursive: true, force: true });
    });

    it("upstream pair without the upstream's token refuses in one line and stores nothing", () => {
      const r = gatewarden(stateDir, ["upstream", "pair", "--url", upstream.url, "--wait", "0"], { GATEWARDEN_UPSTREAM_TOKEN: "" });
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /^gatewarden: set GATEWARDEN_UPSTREAM_TOKEN/);
      assert.equal(readUpstreamCredentials(upstreamCredentialsPath(stateDir)), undefined);
    });

    it("upstream pair with a wrong token is refused by the upstream, in one line", () => {
      const r = gatewarden(stateDir, ["upstream", "pair", "--url", upstream.url, "--wait", "0"], { GATEWARDEN_UPSTREAM_TOKEN: "not-the-token" });
      assert.equal(r.code, 1);
      assert.match(r.stderr, /^gatewarden: the upstream refused gatewarden: .+\n$/);
    });

    it("upstream pair pairs gatewarden's own key and keeps the issued device token 0600, never the shared token, never on stdout", () => {
      let r = gatewarden(stateDir, ["upstream", "pair", "--url", upstream.url, "--wait", "0", "--json"], { GATEWARDEN_UPSTREAM_TOKEN: upstream.token });
      if (r.code !== 0) {
        // The upstream records a request its owner approves with its own CLI (with --json the refusal is JSON on stdout).
        const id = /openclaw devices approve ([0-9a-f-]{36})/.exec(r.stdout + r.stderr)?.[1];
        assert.ok(id, `neither paired nor a request id:\n${r.stdout}${r.stderr}`);
        const approve = spawnSync(target.nodeBin, [target.entry, "devices", "approve", id, "--url", upstream.url, "--token", upstream.token], {
          encoding: "utf8",
          env: { PATH: "/usr/bin:/bin", HOME: upstream.stateDir, OPENCLAW_STATE_DIR: upstream.stateDir, npm_config_offline: "true" },
          timeout: 60_000,
        });
        assert.equal(approve.status, 0, approve.stderr);
        r = gatewarden(stateDir, ["upstream", "pair", "--url", upstream.url, "--wait", "0", "--json"], { GATEWARDEN_UPSTREAM_TOKEN: upstream.token });
      }
      assert.equal(r.code, 0, r.stderr);
      const out = JSON.parse(r.stdout) as { paired: boolean; deviceId: string; scopes: string[] };
      assert.equal(out.paired, true);
      assert.equal(out.deviceId, loadUpstreamSigner(identityPath(stateDir)).deviceId);
      const path = upstreamCredentialsPath(stateDir);
      const credentials = readUpstreamCredentials(path);
      assert.ok(credentials?.deviceToken);
      assert.equal(statSync(path).mode & 0o777, 0o600);
      assert.ok(!r.stdout.includes(credentials.deviceToken), "the device token is never printed");
      assert.ok(!readFileSync(path, "utf8").includes(upstream.token), "the upstream's shared token is not kept");
    });

    it("upstream status reports the upstream reachable and what gatewarden may do there", () => {
      const r = gatewarden(stateDir, ["upstream", "status", "--json"]);
      assert.equal(r.code, 0, r.stderr);
      const s = JSON.parse(r.stdout) as { reachable: boolean; admitted: boolean; scopes: string[] };
      assert.equal(s.reachable, true);
      assert.equal(s.admitted, true);
      assert.ok(s.scopes.includes("operator.admin"), JSON.stringify(s));
    });

    it("a session opened with the device token and only operator.read is held to it by the upstream", async () => {
      const credentials = readUpstreamCredentials(upstreamCredentialsPath(stateDir))!;
      const signer = loadUpstreamSigner(identityPath(stateDir));
      const r = await UpstreamLink.open({ url: upstream.url, signer, role: "operator", scopes: ["operator.read"], auth: { deviceToken: credentials.deviceToken } });
      assert.ok(r.ok, r.ok ? "" : JSON.stringify(r.error));
      const link = r.link;
      assert.equal((await link.request("health")).ok, true);
      const pairing = await link.request("device.pair.list", {});
      assert.equal(pairing.ok, false, "operator.pairing was not requested");
      link.close();
    });
  });
}
