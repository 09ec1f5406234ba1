import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import WebSocket from "ws";
import { startGatewayProcess, type GatewayProcess } from "../support/gateway-process.js";

// After the close handshake the gateway closes the TCP connection itself,
// without waiting for the client's FIN (src/server/gateway.ts). The client
// must still see a clean close: the gateway's close frame, then the end of
// the stream, never a reset.

interface CloseSeen {
  readonly code: number;
  readonly reason: string;
  readonly errors: readonly string[];
}

/** Open a socket, wait for the challenge, run `act`, and report how the socket closed. */
function closeAfterChallenge(url: string, act: (ws: WebSocket) => void): Promise<CloseSeen> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    const errors: string[] = [];
    ws.on("error", (e) => errors.push(e.message));
    ws.once("message", () => act(ws));
    ws.on("close", (code, reason) => resolve({ code, reason: reason.toString(), errors }));
    setTimeout(() => reject(new Error("socket did not close within 5 s")), 5000).unref();
  });
}

describe("close handshake", () => {
  let gw: GatewayProcess;
  before(async () => {
    // One connection per address: a socket the gateway has not let go of blocks the next.
    gw = await startGatewayProcess({ config: { limits: { maxPreauthPerIp: 1, maxConnectionsPerIp: 1 } } });
  });
  after(async () => {
    await gw.stop();
  });

  it("a client's close is answered with the gateway's close frame and a clean end, and frees the address's connection at once", async () => {
    for (let i = 0; i < 20; i++) {
      const seen = await closeAfterChallenge(gw.url, (ws) => ws.close(1000, "bye"));
      assert.deepEqual(seen, { code: 1000, reason: "bye", errors: [] }, `round ${i}`);
    }
  });

  it("a close the gateway starts (a frame it refuses) reaches the client as 1008 with a clean end", async () => {
    const seen = await closeAfterChallenge(gw.url, (ws) => ws.send("not json"));
    assert.equal(seen.code, 1008);
    assert.deepEqual(seen.errors, []);
  });
});
