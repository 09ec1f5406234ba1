import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { startGatewayProcess, type GatewayProcess } from "../support/gateway-process.js";
import { TestClient } from "../support/protocol-client.js";

describe("bad input is refused with the protocol's errors and the server stays up", () => {
  let gw: GatewayProcess;
  before(async () => {
    gw = await startGatewayProcess();
  });
  after(async () => {
    await gw.stop();
  });

  async function stillServes(): Promise<void> {
    const c = await TestClient.open(gw.url);
    const hello = await c.connect({ auth: { token: gw.token! } });
    assert.equal(hello.ok, true, "the gateway still admits a good client");
    c.close();
  }

  it("malformed JSON before connect closes the socket with 1008", async () => {
    const c = await TestClient.open(gw.url);
    c.sendRaw("{not json");
    assert.equal((await c.closed).code, 1008);
    await stillServes();
  });

  it("a request other than connect first is refused and closed", async () => {
    const c = await TestClient.open(gw.url);
    const r = await c.request("health", {});
    assert.equal(r.error?.code, "INVALID_REQUEST");
    assert.match(r.error?.message ?? "", /first request must be connect/);
    assert.equal((await c.closed).code, 1008);
  });

  it("unknown fields in connect params are refused by the closed schema", async () => {
    const c = await TestClient.open(gw.url);
    const r = await c.connect({ auth: { token: gw.token! }, tamper: (p) => ({ ...p, extra: true }) });
    assert.equal(r.error?.code, "INVALID_REQUEST");
    assert.match(r.error?.message ?? "", /unexpected property 'extra'/);
    assert.equal((await c.closed).code, 1008);
  });

  it("__proto__ keys in params are refused and pollute nothing", async () => {
    const c = await TestClient.open(gw.url);
    c.sendRaw(
      '{"type":"req","id":"1","method":"connect","params":{"minProtocol":3,"maxProtocol":3,"client":{"id":"cli","version":"1","platform":"linux","mode":"cli","__proto__":{"admin":true}},"auth":{"token":"x"}}}',
    );
    const r = await c.waitFor((f) => f.type === "res");
    assert.equal(r.error?.code, "INVALID_REQUEST");
    assert.equal(({} as Record<string, unknown>).admin, undefined);
    await stillServes();
  });

  it("a frame over 64 KiB before connect closes with 1009", async () => {
    const c = await TestClient.open(gw.url);
    c.sendRaw(JSON.stringify({ type: "req", id: "1", method: "connect", params: { pad: "x".repeat(200 * 1024) } }));
    assert.equal((await c.closed).code, 1009);
    await stillServes();
  });

  it("a protocol range without 3 or 4 is refused with close 1002", async () => {
    const c = await TestClient.open(gw.url);
    const r = await c.connect({ minProtocol: 5, maxProtocol: 6, auth: { token: gw.token! } });
    assert.equal(r.error?.message, "protocol mismatch");
    assert.equal((await c.closed).code, 1002);
  });

  it("an unknown role is refused with INVALID_REQUEST and close 1008", async () => {
    const c = await TestClient.open(gw.url);
    const r = await c.connect({ role: "superuser", auth: { token: gw.token! } });
    assert.equal(r.error?.message, "invalid role");
    assert.equal((await c.closed).code, 1008);
  });

  it("after connect, malformed frames get an error reply and the session stays open", async () => {
    const c = await TestClient.open(gw.url);
    await c.connect({ auth: { token: gw.token! } });
    c.sendRaw("][");
    const r = await c.waitFor((f) => f.type === "res" && f.id === "invalid");
    assert.equal(r.error?.code, "INVALID_REQUEST");
    const second = await c.request("connect", {});
    assert.match(second.error?.message ?? "", /only valid as the first request/);
    const unknown = await c.request("no.such.method", {});
    assert.equal(unknown.error?.details?.code, "MISSING_SCOPE", "an unknown method needs operator.admin before it is even routed");
    assert.equal((await c.request("health", {})).ok, true);
    c.close();
  });
});
