import type { WebSocket } from "ws";
import { toWireError, type GatewayError } from "../protocol/gateway-error.js";
import type { ResFrame } from "../protocol/frames.js";

export function sendRes(ws: WebSocket, id: string, result: { ok: true; payload: unknown } | { ok: false; error: GatewayError }): void {
  if (ws.readyState !== ws.OPEN) return;
  const frame: ResFrame = result.ok ? { type: "res", id, ok: true, payload: result.payload } : { type: "res", id, ok: false, error: toWireError(result.error) };
  ws.send(JSON.stringify(frame));
}

/** A successful `res` whose payload is already JSON text (hello-ok). */
export function sendResJson(ws: WebSocket, id: string, payloadJson: string): void {
  if (ws.readyState !== ws.OPEN) return;
  ws.send(`{"type":"res","id":${JSON.stringify(id)},"ok":true,"payload":${payloadJson}}`);
}

/**
 * The one way the server closes a socket. From this call on the socket is
 * CLOSING, and nothing it sends is acted on (Connection drops every frame of a
 * socket that is not OPEN); a peer that ignores the close frame is cut after
 * `graceMs` instead of holding the socket until TCP gives up.
 */
export function closeSocket(ws: WebSocket, code: number, reason: string | undefined, graceMs: number): void {
  if (ws.readyState === ws.CLOSED) return;
  if (ws.readyState === ws.OPEN) ws.close(code, reason);
  setTimeout(() => ws.terminate(), graceMs).unref();
}

/** Send the error, then close with the error's close code (queued after the send). */
export function rejectAndClose(ws: WebSocket, id: string, error: GatewayError, graceMs: number): void {
  sendRes(ws, id, { ok: false, error });
  if (error.close && ws.readyState === ws.OPEN) closeSocket(ws, error.close.code, error.close.reason, graceMs);
}

/**
 * Whether `ws` may be written to: over `maxBufferedBytes` queued, the peer is
 * not reading, and the socket is closed as a slow consumer instead (every
 * write path asks this first, so nothing a peer provokes grows without bound).
 */
export function writable(ws: WebSocket, maxBufferedBytes: number, graceMs: number): boolean {
  if (ws.readyState !== ws.OPEN) return false;
  if (ws.bufferedAmount <= maxBufferedBytes) return true;
  closeSocket(ws, 1008, "slow consumer", graceMs);
  return false;
}

/** Frame text from a `ws` message, or `undefined` for binary frames (the protocol is text-only). */
export function frameText(data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean): string | undefined {
  if (isBinary) return undefined;
  if (Array.isArray(data)) return Buffer.concat(data).toString("utf8");
  return Buffer.isBuffer(data) ? data.toString("utf8") : Buffer.from(data).toString("utf8");
}

/** Raise the receiver's payload cap after admission (`ws` fixes it per server). */
export function raiseMaxPayload(ws: WebSocket, bytes: number): void {
  const receiver = (ws as unknown as { _receiver?: { _maxPayload?: unknown } })._receiver;
  if (receiver && typeof receiver._maxPayload === "number") receiver._maxPayload = bytes;
}

/** For 'error' on sockets and WebSockets: 'close' follows and does the cleanup (ws has already closed with the right code). */
export const ignoreError = (): void => undefined;
