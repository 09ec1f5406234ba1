import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ConnectParamsValidator, ReqFrameValidator } from "../../src/protocol/frames.js";
import {
  SecretLedger,
  addBackend,
  assertDevicesUnchanged,
  assertGatewayServes,
  assertLogsHoldNoSecret,
  detailCode,
  helloAuth,
  listDevices,
  openConnect,
} from "../support/adversarial.js";
import { createTestDevice } from "../support/device.js";
import { startGatewayProcess, type GatewayProcess } from "../support/gateway-process.js";
import { TestClient } from "../support/protocol-client.js";

// A40–A46: the transport bounds what an unauthenticated socket can cost,
// refuses anything but a first `connect`, and survives malformed input.

const HANDSHAKE_TIMEOUT_MS = 1500;
const deep = (n: number, open: string, close: string, leaf = "1") => open.repeat(n) + leaf + close.repeat(n);

describe("A40–A46 transport, limits and parsing over real sockets", () => {
  const ledger = new SecretLedger();
  let gw: GatewayProcess;
  let slow: GatewayProcess;

  before(async () => {
    [gw, slow] = await Promise.all([startGatewayProcess(), startGatewayProcess({ config: { limits: { handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS } } })]);
    ledger.add(gw.token, slow.token);
  });
  after(async () => {
    await Promise.all([gw.stop(), slow.stop()]);
  });

  async function admitted(opts: Parameters<typeof openConnect>[1] = { auth: { token: gw.token! } }): Promise<TestClient> {
    const { client, reply } = await openConnect(gw, opts, ledger);
    helloAuth(reply);
    return client;
  }

  it("A40 a 200 KiB frame (or 64 KiB + 1) before connect closes the socket with 1009 and the server stays healthy", async () => {
    for (const size of [200 * 1024, 64 * 1024 + 1]) {
      const c = await TestClient.open(gw.url);
      const head = '{"type":"req","id":"1","method":"connect","params":{"pad":"';
      c.sendRaw(head + "x".repeat(size - head.length - 3) + '"}}');
      assert.equal((await c.closed).code, 1009, `${size} bytes`);
      assert.equal(c.frames.filter((f) => f.type === "res").length, 0, "no reply was computed");
    }
    await assertGatewayServes(gw);
  });

  it("A40 after hello the cap is hello-ok.policy.maxPayload: a frame just under is answered, one above closes with 1009", async () => {
    const { client, reply } = await openConnect(gw, { auth: { token: gw.token! } }, ledger);
    const max = (reply.payload as { policy: { maxPayload: number } }).policy.maxPayload;
    const frame = (n: number) => {
      const head = '{"type":"req","id":"big","method":"health","params":{"pad":"';
      return head + "x".repeat(n - head.length - 3) + '"}}';
    };
    client.sendRaw(frame(max - 16));
    const r = await client.waitFor((f) => f.type === "res" && f.id === "big");
    assert.equal(detailCode(r), "INVALID_PARAMS", "under the cap the frame is parsed and refused by the method's schema");
    client.sendRaw(frame(max + 1));
    assert.equal((await client.closed).code, 1009);
    await assertGatewayServes(gw);
  });

  it("A41 a request before connect is refused and closed, and no method runs", async () => {
    const device = createTestDevice();
    const first = await openConnect(gw, { device, scopes: ["operator.read"], auth: { token: gw.token! } }, ledger);
    const requestId = first.reply.error?.details?.requestId as string;
    const before = listDevices(gw);
    for (const [method, params] of [
      ["device.pair.approve", { requestId }],
      ["device.pair.remove", { deviceId: device.id }],
      ["health", {}],
      ["status", {}],
    ] as const) {
      const c = await TestClient.open(gw.url);
      const r = await c.request(method, params);
      assert.equal(r.error?.code, "INVALID_REQUEST", method);
      assert.equal(detailCode(r), "HANDSHAKE_REQUIRED");
      assert.equal(r.error?.message, "invalid handshake: first request must be connect");
      assert.equal((await c.closed).code, 1008);
    }
    assertDevicesUnchanged(gw, before, "the pending request is untouched: approve and remove never ran");
  });

  it("A42 a second connect on an admitted socket is refused and the session's grant is unchanged", async () => {
    const admin = addBackend(gw, "a42-admin", ["operator.admin"], ledger);
    const c = await admitted({ scopes: ["operator.admin"], auth: { token: gw.token! } });
    assert.equal(detailCode(await c.request("status", {})), "MISSING_SCOPE");
    const params = c.buildConnect({ scopes: ["operator.admin"], auth: { token: admin } });
    ledger.addConnectParams(params);
    for (const p of [params, {}, { minProtocol: 3 }]) {
      const second = await c.request("connect", p);
      assert.equal(detailCode(second), "ALREADY_CONNECTED");
      assert.equal(second.error?.message, "connect is only valid as the first request");
    }
    assert.equal(detailCode(await c.request("status", {})), "MISSING_SCOPE", "still no scopes");
    assert.equal(detailCode(await c.request("device.pair.list", {})), "MISSING_SCOPE");
    assert.equal((await c.request("health", {})).ok, true, "the session is still open");
    c.close();
  });

  it("A43 sockets that never send connect are capped per IP (HTTP 503) and closed at the handshake timeout with 1000", async () => {
    const opened = Date.now();
    const idle = await Promise.all(Array.from({ length: 32 }, () => TestClient.open(slow.url, { localAddress: "127.0.43.1" })));
    await assert.rejects(TestClient.open(slow.url, { localAddress: "127.0.43.1", skipChallenge: true }), /HTTP 503/, "the 33rd unauthenticated socket from one IP");
    // another address is not starved meanwhile
    const other = await TestClient.open(slow.url, { localAddress: "127.0.43.2" });
    const hello = await other.connect({ auth: { token: slow.token! } });
    assert.equal(hello.ok, true);
    const closes = await Promise.all(idle.map((c) => c.closed));
    const elapsed = Date.now() - opened;
    assert.deepEqual([...new Set(closes.map((c) => c.code))], [1000]);
    assert.ok(elapsed >= HANDSHAKE_TIMEOUT_MS - 300, `closed after ${elapsed} ms, not before the timeout`);
    assert.ok(elapsed < HANDSHAKE_TIMEOUT_MS + 10_000, `closed after ${elapsed} ms`);
    assert.equal((await other.request("health", {})).ok, true, "an admitted session is not subject to the handshake timeout");
    other.close();
    // the budget is released: the same IP may open sockets again
    const again = await TestClient.open(slow.url, { localAddress: "127.0.43.1" });
    assert.equal((await again.connect({ auth: { token: slow.token! } })).ok, true);
    again.close();
  });

  it("A43 a connect sent after the handshake timeout finds the socket closed", async () => {
    const c = await TestClient.open(slow.url, { localAddress: "127.0.43.3" });
    const closed = await c.closed;
    assert.equal(closed.code, 1000);
    assert.equal(c.frames.filter((f) => f.type === "res").length, 0);
  });

  it("A44 malformed JSON, binary frames, invalid UTF-8 and 10 000-deep nesting before connect are refused with a close, and the server survives", async () => {
    const inputs: [string, string | Buffer, boolean, number][] = [
      ["malformed JSON", '{"type":"req","id":', false, 1008],
      ["empty text", "", false, 1008],
      ["JSON scalar", "42", false, 1008],
      ["JSON null", "null", false, 1008],
      ["binary frame", Buffer.from('{"type":"req","id":"1","method":"connect"}'), true, 1008],
      ["invalid UTF-8", Buffer.from([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x3a, 0x31, 0x7d]), false, 1007],
      ["lone surrogate bytes", Buffer.from([0x22, 0xed, 0xa0, 0x80, 0x22]), false, 1007],
      ["10 000-deep array", deep(10_000, "[", "]"), false, 1008],
      ["10 000-deep object", deep(10_000, '{"a":', "}"), false, 1008],
    ];
    for (const [what, data, binary, code] of inputs) {
      const c = await TestClient.open(gw.url);
      c.sendRaw(data, binary);
      assert.equal((await c.closed).code, code, what);
    }
    // deep nesting inside otherwise valid connect params: refused by the schema with a reply
    const c = await TestClient.open(gw.url);
    c.sendRaw(`{"type":"req","id":"n","method":"connect","params":{"minProtocol":3,"maxProtocol":3,"client":${deep(10_000, "[", "]")}}}`);
    const r = await c.waitFor((f) => f.type === "res");
    assert.equal(detailCode(r), "INVALID_PARAMS");
    assert.equal((await c.closed).code, 1008);
    await assertGatewayServes(gw);
  });

  it("A44 after connect, malformed frames get an INVALID_REQUEST reply and the session stays usable; invalid UTF-8 closes it with 1007", async () => {
    const c = await admitted();
    const junk: [string | Buffer, boolean][] = [
      ["][", false],
      ["", false],
      ['{"type":"req"}', false],
      ['{"type":"res","id":"x","ok":true}', false],
      [Buffer.from([1, 2, 3]), true],
      [deep(100_000, "[", "]"), false],
      [`{"type":"req","id":"deep","method":"health","params":${deep(50_000, '{"a":', "}")}}`, false],
    ];
    for (const [data, binary] of junk) {
      const before = c.frames.length;
      c.sendRaw(data, binary);
      const reply = await c.waitFor((f, i = c.frames.indexOf(f)) => f.type === "res" && i >= before);
      assert.equal(reply.ok, false);
      assert.equal(reply.error?.code, "INVALID_REQUEST");
    }
    assert.equal((await c.request("health", {})).ok, true, "still usable");
    c.sendRaw(Buffer.from([0x22, 0xff, 0xfe, 0x22]), false);
    assert.equal((await c.closed).code, 1007);
    await assertGatewayServes(gw);
  });

  it("A45 __proto__, constructor and prototype keys in connect params are refused by the closed schema or stay inert data, and grant nothing", async () => {
    const base = '"minProtocol":3,"maxProtocol":3,"client":{"id":"cli","version":"1","platform":"linux","mode":"cli"}';
    const token = JSON.stringify(gw.token!);
    const refused = [
      `{${base},"auth":{"token":${token}},"__proto__":{"scopes":["operator.admin"]}}`,
      `{${base},"auth":{"token":${token},"__proto__":{"isAdmin":true}}}`,
      `{"minProtocol":3,"maxProtocol":3,"client":{"id":"cli","version":"1","platform":"linux","mode":"cli","__proto__":{"id":"gateway-client"}},"auth":{"token":${token}}}`,
      `{${base},"auth":{"token":${token}},"constructor":{"prototype":{"role":"admin"}}}`,
      `{${base},"auth":{"token":${token}},"prototype":{"scopes":["operator.admin"]}}`,
      `{${base},"auth":{"token":${token}},"device":{"__proto__":{"id":"x"}}}`,
    ];
    for (const params of refused) {
      const c = await TestClient.open(gw.url);
      c.sendRaw(`{"type":"req","id":"p","method":"connect","params":${params}}`);
      const r = await c.waitFor((f) => f.type === "res");
      assert.equal(detailCode(r), "INVALID_PARAMS", params);
      assert.match(r.error?.message ?? "", /unexpected property '(__proto__|constructor|prototype)'/);
      assert.equal((await c.closed).code, 1008);
    }
    // record-typed fields (never read, never copied by the gateway) keep __proto__ as an inert own key; the connect grants nothing extra
    const c = await TestClient.open(gw.url);
    c.sendRaw(`{"type":"req","id":"p","method":"connect","params":{${base},"scopes":["operator.read"],"auth":{"token":${token}},"permissions":{"__proto__":true,"constructor":true},"computerUse":{"__proto__":{"scopes":["operator.admin"]}}}}`);
    const r = await c.waitFor((f) => f.type === "res");
    assert.deepEqual(helloAuth(r).scopes, []);
    assert.equal(detailCode(await c.request("status", {})), "MISSING_SCOPE");
    c.close();
    // and the frame envelope itself is closed
    const f = await TestClient.open(gw.url);
    f.sendRaw(`{"type":"req","id":"p","method":"connect","__proto__":{"method":"health"},"params":{${base},"auth":{"token":${token}}}}`);
    assert.equal((await f.closed).code, 1008);
    await assertGatewayServes(gw);
  });

  it("A45 prototype keys inside method params after connect pollute nothing: grants and replies stay the same", async () => {
    const c = await admitted();
    for (const params of ['{"__proto__":{"scopes":["operator.admin"]}}', '{"constructor":{"prototype":{"operator.admin":true}}}', '{"prototype":{"role":"admin"}}']) {
      for (const method of ["health", "status", "device.pair.list"]) {
        c.sendRaw(`{"type":"req","id":"x-${method}","method":"${method}","params":${params}}`);
        const r = await c.waitFor((f) => f.type === "res" && f.id === `x-${method}`);
        c.frames.length = 0;
        if (method === "health") assert.equal(detailCode(r), "INVALID_PARAMS", `health params are closed: ${params}`);
        else assert.equal(detailCode(r), "MISSING_SCOPE", `${method} still needs its scope`);
      }
    }
    c.close();
    const fresh = await admitted();
    assert.equal(detailCode(await fresh.request("status", {})), "MISSING_SCOPE", "a new session is not affected either");
    fresh.close();
    // the same inputs through the schemas in this process
    for (const text of [
      '{"type":"req","id":"1","method":"connect","__proto__":{"polluted":true}}',
      '{"minProtocol":3,"maxProtocol":3,"client":{"id":"cli","version":"1","platform":"linux","mode":"cli"},"permissions":{"__proto__":{"polluted":true}}}',
    ]) {
      ReqFrameValidator.check(JSON.parse(text));
      ReqFrameValidator.issues(JSON.parse(text));
      ConnectParamsValidator.check(JSON.parse(text));
      ConnectParamsValidator.issues(JSON.parse(text));
    }
    assert.equal(({} as Record<string, unknown>).polluted, undefined, "Object.prototype is untouched");
  });

  it("A46 an unknown method after connect is refused: it needs operator.admin to be routed, then UNKNOWN_METHOD", async () => {
    const admin = addBackend(gw, "a46-admin", ["operator.admin"], ledger);
    const plain = await admitted();
    const root = await admitted({ scopes: ["operator.admin"], auth: { token: admin } });
    for (const method of ["no.such.method", "constructor", "__proto__", "toString", "hasOwnProperty", "config.apply", "x".repeat(128)]) {
      const denied = await plain.request(method, {});
      assert.equal(detailCode(denied), "MISSING_SCOPE", method);
      assert.equal(denied.error?.message, "missing scope: operator.admin");
      const unknown = await root.request(method, {});
      assert.equal(detailCode(unknown), "UNKNOWN_METHOD", method);
      assert.equal(unknown.error?.message, `unknown method: ${method}`);
    }
    assert.equal((await root.request("health", {})).ok, true);
    plain.close();
    root.close();
  });

  it("A46 probing unknown methods without scopes closes the session after repeated refusals", async () => {
    const c = await admitted();
    for (let i = 0; i < 11; i++) await c.request(`probe.${i}`, {});
    const closed = await c.closed;
    assert.equal(closed.code, 1008);
    assert.equal(closed.reason, "repeated unauthorized calls");
  });

  it("A47 nothing the transport attacks presented appears in the gateways' logs", async () => {
    for (const g of [gw, slow]) await assertLogsHoldNoSecret(g, ledger);
  });
});
