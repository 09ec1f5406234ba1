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

/** Send the error, then close with the error's close code (queued after the send). */
export function rejectAndClose(ws: WebSocket, id: string, error: GatewayError): void {
  sendRes(ws, id, { ok: false, error });
  if (error.close && ws.readyState === ws.OPEN) ws.close(error.close.code, error.close.reason);
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
