import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { describe, it } from "node:test";
import { closeAfterCloseHandshake } from "../../src/server/close-after-handshake.js";

/** A socket stand-in: an emitter that counts destroy() calls. */
class CountingSocket extends EventEmitter {
  destroyed = 0;
  destroy(): void {
    this.destroyed++;
  }
}

describe("closeAfterCloseHandshake", () => {
  it("closes the socket once ws has ended it (finish) after a clean close handshake", () => {
    const socket = new CountingSocket();
    const ws = new EventEmitter();
    closeAfterCloseHandshake(socket, ws);
    assert.equal(socket.destroyed, 0, "nothing happens before the socket is ended");
    socket.emit("finish");
    assert.equal(socket.destroyed, 1);
    socket.emit("finish");
    assert.equal(socket.destroyed, 1, "once");
  });

  it("leaves the socket to ws when ws reported a protocol error before ending it", () => {
    const socket = new CountingSocket();
    const ws = new EventEmitter();
    closeAfterCloseHandshake(socket, ws);
    ws.emit("error", new Error("Invalid WebSocket frame: MASK must be set"));
    socket.emit("finish");
    assert.equal(socket.destroyed, 0);
  });
});
