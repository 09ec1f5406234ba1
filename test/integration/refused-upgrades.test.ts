import assert from "node:assert/strict";
import { connect } from "node:net";
import { after, before, describe, it } from "node:test";
import { startGatewayProcess, type GatewayProcess } from "../support/gateway-process.js";
import { TestClient } from "../support/protocol-client.js";

// An upgrade that `ws` refuses (here: an unsupported Sec-WebSocket-Version)
// is answered and ended by `ws` without a WebSocket ever existing. The
// gateway must give back the per-address budgets it took for it, or a few
// bad requests would lock an address out.

/** One raw upgrade request; resolves with the status line once the server ends the socket. */
function badUpgrade(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    let reply = "";
    socket.on("data", (d: Buffer) => (reply += d.toString("latin1")));
    socket.on("error", reject);
    socket.on("close", () => resolve(reply.split("\r\n")[0] ?? ""));
    socket.write(
      "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 99\r\n\r\n",
    );
  });
}

describe("upgrades refused by the WebSocket layer", () => {
  let gw: GatewayProcess;
  before(async () => {
    // Two sockets per address at most: any budget not given back shows at once.
    gw = await startGatewayProcess({ config: { limits: { maxPreauthPerIp: 2, maxConnectionsPerIp: 2 } } });
  });
  after(async () => {
    await gw.stop();
  });

  it("give back the address's budgets: after ten refused upgrades a client from the same address is still admitted", async () => {
    const port = Number(new URL(gw.url).port);
    for (let i = 0; i < 10; i++) assert.match(await badUpgrade(port), /^HTTP\/1\.1 400 /);
    const c = await TestClient.open(gw.url);
    const hello = await c.connect({ auth: { token: gw.token! } });
    assert.equal(hello.ok, true);
    c.close();
  });
});
