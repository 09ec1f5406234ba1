import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { ConfigError, resolveConfig } from "../../src/config.js";

// The config file's closed schema: errors name the offending path, and a
// valid file is taken as written (defaults come from resolveConfig only).

describe("config file", () => {
  const dir = mkdtempSync(join(tmpdir(), "gatewarden-config-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  let n = 0;
  const resolveFile = (json: string) => {
    const path = join(dir, `c${n++}.json`);
    writeFileSync(path, json);
    return resolveConfig({ config: path, stateDir: dir }, {});
  };
  const refusal = (json: string): string => {
    try {
      resolveFile(json);
    } catch (e) {
      assert.ok(e instanceof ConfigError, String(e));
      return e.message.replace(/^invalid config file \S+: /, "");
    }
    return assert.fail("accepted");
  };

  it("names misspelt and prototype keys at any depth", () => {
    assert.equal(refusal('{"prot":1}'), "at root: unexpected property 'prot'");
    assert.equal(refusal('{"limits":{"maxPayload":1}}'), "at /limits: unexpected property 'maxPayload'");
    assert.equal(refusal('{"pairing":{"silentLocal":{"__proto__":{"enabled":true}}}}'), "at /pairing/silentLocal: unexpected property '__proto__'");
  });

  it("names the offending value's path and the bound it misses", () => {
    assert.equal(refusal('{"port":65536}'), "at /port: Expected integer to be less or equal to 65535");
    assert.equal(refusal('{"limits":{"tickIntervalMs":0}}'), "at /limits/tickIntervalMs: Expected integer to be greater than 0");
    assert.equal(refusal('{"limits":{"maxPreauthPayloadBytes":1048577}}'), "at /limits/maxPreauthPayloadBytes: Expected integer to be less or equal to 1048576");
    assert.equal(refusal('{"auth":{"mode":"open"}}'), "at /auth/mode: Expected one of 'token', 'password', 'trusted-proxy', 'none'");
    assert.equal(refusal('{"auth":{"token":"short"}}'), "at /auth/token: Expected string length greater or equal to 16");
    assert.equal(refusal('{"auth":{"trustedProxy":{}}}'), "at /auth/trustedProxy/userHeader: Expected required property");
    assert.equal(refusal('{"pairing":{"silentLocal":{"roles":["admin"]}}}'), "at /pairing/silentLocal/roles/0: Expected one of 'operator', 'node'");
    assert.equal(refusal("[]"), "at root: Expected object");
  });

  it("a valid file is used as written, with defaults only where it says nothing", () => {
    const config = resolveFile('{"port":0,"limits":{"tickIntervalMs":5000},"pairing":{"silentLocal":{"enabled":true,"roles":["operator"]}},"log":{"level":"warn"}}');
    assert.equal(config.port, 0);
    assert.equal(config.limits.tickIntervalMs, 5000);
    assert.ok(config.limits.maxPayloadBytes > 0, "other limits keep their defaults");
    assert.deepEqual(config.silentLocalPairing.roles, ["operator"]);
    assert.equal(config.silentLocalPairing.enabled, true);
    assert.equal(config.logLevel, "warn");
    assert.equal(config.host, "127.0.0.1");
  });
});
