import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { CallerSession, MethodServices } from "../../src/methods/define-method.js";
import { DEVICE_METHODS } from "../../src/methods/device-methods.js";
import { HOST_METHODS } from "../../src/methods/host-methods.js";
import { ConnectParamsValidator, ReqFrameValidator } from "../../src/protocol/frames.js";

// The compiled frame, connect and method-param validators: closed objects,
// bounds, and the one-line issue summary sent on the wire.

const CONNECT = '"minProtocol":3,"maxProtocol":3,"client":{"id":"cli","version":"1","platform":"linux","mode":"cli"}';
const connect = (extra = "") => JSON.parse(`{${CONNECT}${extra}}`) as unknown;

describe("closed objects refuse prototype keys as JSON.parse makes them (own properties)", () => {
  const frames = [
    '{"type":"req","id":"1","method":"connect","__proto__":{"method":"health"}}',
    '{"type":"req","id":"1","method":"connect","constructor":{"prototype":{"x":1}}}',
  ];
  for (const text of frames) {
    it(`the req frame: ${text}`, () => {
      const value = JSON.parse(text) as unknown;
      assert.equal(ReqFrameValidator.check(value), false);
      assert.match(ReqFrameValidator.issues(value), /^at root: unexpected property '(__proto__|constructor)'$/);
    });
  }

  const params: [string, string][] = [
    [',"__proto__":{"scopes":["operator.admin"]}', "root"],
    [',"constructor":{"prototype":{"role":"admin"}}', "root"],
    [',"prototype":{}', "root"],
    [',"auth":{"token":"t","__proto__":{"isAdmin":true}}', "/auth"],
    [',"auth":{"constructor":true}', "/auth"],
    [',"device":{"__proto__":{"id":"x"}}', "/device"],
  ];
  for (const [extra, at] of params) {
    it(`connect params: ${extra}`, () => {
      const value = connect(extra);
      assert.equal(ConnectParamsValidator.check(value), false);
      assert.match(ConnectParamsValidator.issues(value), new RegExp(`at ${at}: unexpected property '(__proto__|constructor|prototype)'`));
    });
  }

  it("inside client, too", () => {
    const value = JSON.parse('{"minProtocol":3,"maxProtocol":3,"client":{"id":"cli","version":"1","platform":"linux","mode":"cli","__proto__":{"id":"gateway-client"}}}') as unknown;
    assert.equal(ConnectParamsValidator.check(value), false);
    assert.equal(ConnectParamsValidator.issues(value), "at /client: unexpected property '__proto__'");
  });

  it("validation pollutes no prototype and leaves the value as parsed (no copy)", () => {
    const value = connect(',"permissions":{"__proto__":{"polluted":true},"constructor":true}');
    assert.equal(ConnectParamsValidator.check(value), false, "a permissions value must be a boolean");
    const ok = connect(',"permissions":{"__proto__":true,"constructor":true}');
    assert.equal(ConnectParamsValidator.check(ok), true, "record names are free-form: an own __proto__ key is inert data");
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    const parsed = ConnectParamsValidator.parse(ok);
    assert.ok(parsed.success);
    assert.equal(parsed.data, ok, "the same object comes back");
  });
});

describe("bounds", () => {
  it("record property names: permissions 1–256, feature declarations 0–128 code units", () => {
    const withPermission = (name: string) => ({ ...(connect() as object), permissions: { [name]: true } });
    assert.equal(ConnectParamsValidator.check(withPermission("p".repeat(256))), true);
    assert.equal(ConnectParamsValidator.check(withPermission("😀".repeat(128))), true, "256 UTF-16 code units");
    assert.equal(ConnectParamsValidator.check(withPermission("line\nbreak")), true);
    for (const name of ["", "p".repeat(257), "😀".repeat(128) + "p"]) {
      const value = withPermission(name);
      assert.equal(ConnectParamsValidator.check(value), false, `${name.length} code units`);
      assert.match(ConnectParamsValidator.issues(value), /^at \/permissions: property name '.*' must be 1 to 256 characters$/);
    }
    const withWorkerRuns = (name: string) => ({ ...(connect() as object), workerRuns: { [name]: { any: ["json"] } } });
    assert.equal(ConnectParamsValidator.check(withWorkerRuns("")), true);
    assert.equal(ConnectParamsValidator.check(withWorkerRuns("w".repeat(128))), true);
    assert.equal(ConnectParamsValidator.issues(withWorkerRuns("w".repeat(129))), `at /workerRuns: property name '${"w".repeat(64)}…' must be 0 to 128 characters`);
  });

  it("feature declarations are a boolean or an object, nothing else", () => {
    for (const v of ["true", "{}", '{"a":null}']) assert.equal(ConnectParamsValidator.check(connect(`,"computerUse":${v}`)), true, v);
    for (const v of ["null", "1", '"yes"', "[]", "[true]"]) {
      assert.equal(ConnectParamsValidator.issues(connect(`,"computerUse":${v}`)), "at /computerUse: Expected boolean or object", v);
    }
  });

  it("strings, arrays and integers keep their limits", () => {
    const base = connect() as { client: object };
    const at = (value: unknown) => (ConnectParamsValidator.check(value) ? "ok" : ConnectParamsValidator.issues(value));
    assert.equal(at({ ...base, client: { ...base.client, version: "v".repeat(128) } }), "ok");
    assert.equal(at({ ...base, client: { ...base.client, version: "v".repeat(129) } }), "at /client/version: Expected string length less or equal to 128");
    assert.equal(at({ ...base, client: { ...base.client, version: "" } }), "at /client/version: Expected string length greater or equal to 1");
    assert.equal(at({ ...base, client: { ...base.client, buildId: "b".repeat(97) } }), "at /client/buildId: Expected string length less or equal to 96");
    assert.equal(at({ ...base, pathEnv: "" }), "ok", "optional free text may be empty");
    assert.equal(at({ ...base, scopes: Array(64).fill("operator.read") }), "ok");
    assert.equal(at({ ...base, scopes: Array(65).fill("operator.read") }), "at /scopes: Expected array length to be less or equal to 64");
    assert.equal(at({ ...base, minProtocol: 1.5 }), "at /minProtocol: Expected integer");
    assert.equal(at({ ...base, maxProtocol: 1001 }), "at /maxProtocol: Expected integer to be less or equal to 1000");
    const device = { id: "d", publicKey: "k", signature: "s", nonce: "n" };
    assert.equal(at({ ...base, device: { ...device, signedAt: Number.MAX_SAFE_INTEGER } }), "ok");
    assert.equal(at({ ...base, device: { ...device, signedAt: -1 } }), "at /device/signedAt: Expected integer to be greater or equal to 0");
  });
});

describe("the issue summary", () => {
  it("names the path, lists an enumeration, reports a missing property once", () => {
    const value = { minProtocol: 3, maxProtocol: 3, client: { id: "Gateway-Client", mode: "backend" } };
    assert.equal(
      ConnectParamsValidator.issues(value),
      "at /client/version: Expected required property; at /client/platform: Expected required property; at /client/id: Expected one of " +
        "'webchat-ui', 'openclaw-control-ui', 'openclaw-tui', 'webchat', 'cli', 'gateway-client', 'openclaw-macos', 'openclaw-ios', " +
        "'openclaw-android', 'node-host', 'test', 'fingerprint', 'openclaw-probe', 'openclaw-browser-copilot', 'openclaw-linux', " +
        "'openclaw-watchos', 'openclaw-worker'",
    );
  });

  it("says 'root' for the top level, unescapes and cuts property names, and stops at 8 issues", () => {
    assert.equal(ConnectParamsValidator.issues("x"), "at root: Expected object");
    assert.equal(ConnectParamsValidator.issues(connect(',"a/b~c":1')), "at root: unexpected property 'a/b~c'");
    const long = "k".repeat(100);
    assert.equal(ConnectParamsValidator.issues(connect(`,"${long}":1`)), `at root: unexpected property '${"k".repeat(64)}…'`);
    const many = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`x${i}`, i]));
    assert.equal(ConnectParamsValidator.issues({ ...(connect() as object), ...many }).split("; ").length, 8);
  });

  it("a frame's issues", () => {
    const value = { type: "res", id: "", method: "m", extra: 1 };
    assert.equal(ReqFrameValidator.issues(value), "at root: unexpected property 'extra'; at /type: Expected 'req'; at /id: Expected string length greater or equal to 1");
  });
});

describe("method params", () => {
  const caller = { connId: "c" } as unknown as CallerSession;
  // Validation fails before the handler runs, so it never touches the services.
  const services = new Proxy({}, { get: () => assert.fail("the handler ran") }) as MethodServices;
  const method = (name: string) => [...DEVICE_METHODS, ...HOST_METHODS].find((m) => m.name === name)!;
  const refusal = async (name: string, params: unknown) => {
    const r = await method(name).call(params, caller, services);
    assert.equal(r.ok, false);
    return r.ok ? "" : r.error.message;
  };

  it("roles and scopes are closed enumerations, objects are closed", async () => {
    assert.equal(await refusal("device.token.revoke", { deviceId: "d", role: "admin" }), "invalid device.token.revoke params: at /role: Expected one of 'operator', 'node'");
    assert.equal(
      await refusal("device.token.rotate", { deviceId: "d", role: "node", scopes: ["operator.read", "operator.root", "node.Bad"] }),
      "invalid device.token.rotate params: at /scopes/1: unknown scope; at /scopes/2: unknown scope",
    );
    assert.equal(await refusal("device.pair.approve", JSON.parse('{"requestId":"r","__proto__":{}}')), "invalid device.pair.approve params: at root: unexpected property '__proto__'");
    assert.equal(await refusal("channels.status", { timeoutMs: 600_001 }), "invalid channels.status params: at /timeoutMs: Expected integer to be less or equal to 600000");
    assert.equal(await refusal("device.pair.list", []), "invalid device.pair.list params: at root: Expected object");
  });
});
