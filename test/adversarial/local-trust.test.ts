import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { SecretLedger, assertRefused, helloAuth, openConnect } from "../support/adversarial.js";
import { createTestDevice } from "../support/device.js";
import { BIN, startGatewayProcess, type GatewayProcess } from "../support/gateway-process.js";

// A55, A56, A61: the state dir and its config are trusted only if nobody else
// could have written them; client-supplied text cannot rewrite what the owner
// reads; a trusted proxy's own connection is never direct local.

const ESC = "\u001b";

function gatewarden(args: readonly string[], stateDir: string) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8", env: { ...process.env, GATEWARDEN_STATE_DIR: stateDir }, timeout: 20_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

describe("A55 a state dir or config another local user could have written is refused", () => {
  let parent: string;
  before(() => {
    parent = mkdtempSync(join(tmpdir(), "gatewarden-a55-"));
    chmodSync(parent, 0o755);
  });
  after(() => rmSync(parent, { recursive: true, force: true }));

  const planted = { auth: { mode: "password", password: "planted-by-another-user" }, pairing: { silentLocal: { enabled: true, scopes: ["operator.admin"] } } };

  it("A55 a world-writable state dir with a planted gatewarden.json: serve and the admin CLI refuse in one line naming the path, and trust nothing in it", () => {
    const dir = join(parent, "loose");
    mkdirSync(dir);
    chmodSync(dir, 0o777);
    writeFileSync(join(dir, "gatewarden.json"), JSON.stringify(planted));
    for (const args of [["serve", "--port", "0"], ["devices", "list"]]) {
      const r = gatewarden(args, dir);
      assert.notEqual(r.code, 0, args.join(" "));
      assert.match(r.stderr, new RegExp(`^gatewarden: refusing state dir ${dir}: it is writable by other users .*\\n$`));
      assert.doesNotMatch(r.stdout, /listening/);
    }
  });

  it("A55 a config file writable by others is refused even in a private state dir, and is not loosened or fixed behind the owner's back", () => {
    const dir = join(parent, "private");
    mkdirSync(dir, { mode: 0o700 });
    chmodSync(dir, 0o700);
    writeFileSync(join(dir, "gatewarden.json"), JSON.stringify(planted));
    chmodSync(join(dir, "gatewarden.json"), 0o666);
    const r = gatewarden(["serve", "--port", "0"], dir);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /^gatewarden: refusing config file .*gatewarden\.json: it is writable by other users/);
  });

  it("A55 a state dir owned by another user is refused (run as root: the test chowns it)", (t) => {
    if (process.getuid?.() !== 0) return t.skip("needs root to give the dir to another user");
    const dir = join(parent, "theirs");
    mkdirSync(dir, { mode: 0o700 });
    chownSync(dir, 65534, 65534);
    const r = gatewarden(["serve", "--port", "0"], dir);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /^gatewarden: refusing state dir .*: it is owned by uid 65534/);
  });
});

describe("A56, A61 over real sockets", () => {
  const ledger = new SecretLedger();
  let gw: GatewayProcess;
  let proxied: GatewayProcess;

  before(async () => {
    [gw, proxied] = await Promise.all([
      startGatewayProcess(),
      startGatewayProcess({ config: { trustedProxies: ["127.0.61.1"], pairing: { silentLocal: { enabled: true } } } }),
    ]);
    ledger.add(gw.token, proxied.token);
  });
  after(async () => {
    await Promise.all([gw.stop(), proxied.stop()]);
  });

  it("A56 a displayName with terminal escapes cannot rewrite a row of devices list; approve names the scopes it granted", async () => {
    const device = createTestDevice();
    const displayName = `${ESC}[1A${ESC}[2K\rphone  operator.read${ESC}[0m\u202e`;
    const { client, reply } = await openConnect(gw, { device, displayName, scopes: ["operator.admin"], auth: { token: gw.token! } }, ledger);
    await assertRefused(client, reply, "PAIRING_REQUIRED");
    const list = gw.cli(["devices", "list"]);
    assert.equal(list.code, 0);
    assert.ok(!list.stdout.includes(ESC) && !list.stdout.includes("\r") && !list.stdout.includes("\u202e"), JSON.stringify(list.stdout));
    assert.match(list.stdout, /\\x1b\[1A/);
    assert.match(list.stdout, /operator\.admin/, "the requested scope is shown as it is");
    const approved = gw.cli(["devices", "approve", "--yes", reply.error?.details?.requestId as string]);
    assert.equal(approved.code, 0, approved.stderr);
    assert.match(approved.stdout, /granted role operator with scopes operator\.admin/);
    assert.ok(!approved.stdout.includes(ESC));
  });

  it("A61 a configured trusted proxy's own connection, without forwarding headers, is not direct local: no silent pairing", async () => {
    const device = createTestDevice();
    const { client, reply } = await openConnect(proxied, { device, scopes: ["operator.read"], auth: { token: proxied.token! } }, ledger, { localAddress: "127.0.61.1" });
    await assertRefused(client, reply, "PAIRING_REQUIRED");
    // A direct loopback peer is silently paired under the same policy.
    const direct = await openConnect(proxied, { device: createTestDevice(), scopes: ["operator.read"], auth: { token: proxied.token! } }, ledger, { localAddress: "127.0.61.2" });
    ledger.add(helloAuth(direct.reply).deviceToken);
    assert.deepEqual(helloAuth(direct.reply).scopes, ["operator.read"]);
    direct.client.close();
  });
});
