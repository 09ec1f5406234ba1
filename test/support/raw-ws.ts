import { randomBytes } from "node:crypto";
import { connect, type Socket } from "node:net";

// A WebSocket client written by hand over a TCP socket, for attacks a
// well-behaved library would not make: ignoring the server's close frame and
// sending on, never reading, pinging without end.

export interface RawFrame {
  readonly opcode: number;
  readonly payload: Buffer;
}

export class RawWs {
  readonly frames: RawFrame[] = [];
  private buf = Buffer.alloc(0);
  /** Resolves when the server ends or resets the TCP connection. */
  readonly ended: Promise<void>;
  endedAt: number | undefined;

  private constructor(readonly socket: Socket) {
    this.ended = new Promise((resolve) => {
      const done = () => {
        this.endedAt ??= Date.now();
        resolve();
      };
      socket.once("close", done);
      socket.once("end", done);
    });
    socket.on("error", () => undefined);
    socket.on("data", (d: Buffer) => this.onData(d));
  }

  /** TCP connect and HTTP upgrade; resolves once the 101 arrived. */
  static open(port: number, opts: { localAddress?: string; headers?: Record<string, string> } = {}): Promise<RawWs> {
    return new Promise((resolve, reject) => {
      const socket = connect({ port, host: "127.0.0.1", ...(opts.localAddress ? { localAddress: opts.localAddress } : {}) });
      let head = Buffer.alloc(0);
      const onHead = (d: Buffer) => {
        head = Buffer.concat([head, d]);
        const end = head.indexOf("\r\n\r\n");
        if (end < 0) return;
        socket.off("data", onHead);
        if (!/^HTTP\/1\.1 101/.test(head.toString("latin1"))) return reject(new Error(head.toString("latin1").split("\r\n")[0]));
        const ws = new RawWs(socket);
        const rest = head.subarray(end + 4);
        if (rest.length > 0) ws.onData(rest);
        resolve(ws);
      };
      socket.on("data", onHead);
      socket.once("error", reject);
      socket.once("connect", () => {
        const extra = Object.entries(opts.headers ?? {}).map(([k, v]) => `${k}: ${v}\r\n`).join("");
        socket.write(
          `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
            `Sec-WebSocket-Key: ${randomBytes(16).toString("base64")}\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`,
        );
      });
    });
  }

  /** A masked client frame (text by default). Written whatever state the connection is in. */
  send(payload: string | Buffer, opcode = 0x1): boolean {
    const data = typeof payload === "string" ? Buffer.from(payload, "utf8") : payload;
    const mask = randomBytes(4);
    const len = data.length;
    const header = len < 126 ? Buffer.from([0x80 | opcode, 0x80 | len]) : len < 65536 ? Buffer.from([0x80 | opcode, 0x80 | 126, len >> 8, len & 0xff]) : undefined;
    if (!header) throw new Error("frame too large for this test client");
    const masked = Buffer.alloc(len);
    for (let i = 0; i < len; i++) masked[i] = (data[i] ?? 0) ^ (mask[i % 4] ?? 0);
    return this.socket.write(Buffer.concat([header, mask, masked]));
  }

  sendJson(value: unknown): boolean {
    return this.send(JSON.stringify(value));
  }

  /** Text frames parsed as JSON. */
  json(): Record<string, unknown>[] {
    return this.frames.filter((f) => f.opcode === 0x1).map((f) => JSON.parse(f.payload.toString("utf8")) as Record<string, unknown>);
  }

  closeFrame(): { code: number; reason: string } | undefined {
    const f = this.frames.find((x) => x.opcode === 0x8);
    return f ? { code: f.payload.readUInt16BE(0), reason: f.payload.subarray(2).toString("utf8") } : undefined;
  }

  async waitFor<T>(pick: () => T | undefined, timeoutMs = 5000): Promise<T> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const v = pick();
      if (v !== undefined) return v;
      if (Date.now() > until) throw new Error("raw client: timed out");
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  private onData(d: Buffer): void {
    this.buf = Buffer.concat([this.buf, d]);
    for (;;) {
      if (this.buf.length < 2) return;
      const b1 = this.buf[1] ?? 0;
      let len = b1 & 0x7f;
      let off = 2;
      if (len === 126) {
        if (this.buf.length < 4) return;
        len = this.buf.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (this.buf.length < 10) return;
        len = Number(this.buf.readBigUInt64BE(2));
        off = 10;
      }
      if (this.buf.length < off + len) return;
      this.frames.push({ opcode: (this.buf[0] ?? 0) & 0x0f, payload: this.buf.subarray(off, off + len) });
      this.buf = this.buf.subarray(off + len);
    }
  }
}
