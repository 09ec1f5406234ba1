import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { connect } from "node:net";
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

/** Frames the server sent on a raw socket: opcode and payload, parsed from the bytes after the 101 response. */
function serverFrames(bytes: Buffer): { opcode: number; payload: Buffer }[] {
  const frames: { opcode: number; payload: Buffer }[] = [];
  let at = 0;
  while (at + 2 <= bytes.length) {
    const opcode = (bytes[at] as number) & 0x0f;
    let len = (bytes[at + 1] as number) & 0x7f;
    let head = 2;
    if (len === 126) {
      if (at + 4 > bytes.length) break;
      len = bytes.readUInt16BE(at + 2);
      head = 4;
    } else if (len === 127) {
      if (at + 10 > bytes.length) break;
      len = Number(bytes.readBigUInt64BE(at + 2));
      head = 10;
    }
    if (at + head + len > bytes.length) break;
    frames.push({ opcode, payload: bytes.subarray(at + head, at + head + len) });
    at += head + len;
  }
  return frames;
}

/** A masked text frame, as a client must send it. */
function maskedText(text: string): Buffer {
  const payload = Buffer.from(text);
  const mask = Buffer.from([1, 2, 3, 4]);
  const masked = Buffer.from(payload.map((b, i) => b ^ (mask[i % 4] as number)));
  return Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, masked]);
}

describe("close after a protocol error", () => {
  let gw: GatewayProcess;
  before(async () => {
    gw = await startGatewayProcess();
  });
  after(async () => {
    await gw.stop();
  });

  it("a client that breaks the framing and keeps sending still receives the 1002 close frame, and no reset", async () => {
    const port = Number(new URL(gw.url).port);
    const { frames, error } = await new Promise<{ frames: { opcode: number; payload: Buffer }[]; error: string | undefined }>((resolve) => {
      const socket = connect(port, "127.0.0.1");
      let received = Buffer.alloc(0);
      let upgraded = false;
      let error: string | undefined;
      let flood: NodeJS.Timeout | undefined;
      socket.on("error", (e) => (error = e.message));
      socket.on("data", (d: Buffer) => {
        received = Buffer.concat([received, d]);
        if (upgraded) return;
        const end = received.indexOf("\r\n\r\n");
        if (end < 0) return;
        upgraded = true;
        received = received.subarray(end + 4);
        // An unmasked frame: a protocol error (RFC 6455 §5.1), then more frames for a while.
        socket.write(Buffer.from([0x81, 0x02, 0x68, 0x69]));
        let sent = 0;
        flood = setInterval(() => {
          if (sent++ < 40 && !socket.destroyed) socket.write(maskedText(`{"junk":${sent}}`));
          else {
            clearInterval(flood);
            socket.end();
          }
        }, 5);
      });
      socket.on("close", () => {
        clearInterval(flood);
        resolve({ frames: serverFrames(received), error });
      });
      socket.write(
        "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
      );
    });
    assert.equal(error, undefined, "no reset");
    const close = frames.find((f) => f.opcode === 0x8);
    assert.ok(close, `a close frame among ${frames.length} frames`);
    assert.equal(close.payload.readUInt16BE(0), 1002);
  });
});
