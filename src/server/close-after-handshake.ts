/** The upgraded TCP socket, as far as this needs it (a `net.Socket`). */
export interface UpgradedSocket {
  once(event: "finish", listener: () => void): unknown;
  destroy(): unknown;
}

/** The `ws` WebSocket on that socket, as far as this needs it. */
export interface ErrorSource {
  once(event: "error", listener: () => void): unknown;
}

/**
 * Close an upgraded socket as soon as `ws` has ended it, unless `ws` ended it
 * over a protocol error.
 *
 * `ws` ends the socket (our FIN) once the close handshake is done: the peer's
 * close frame was read, so it sends nothing more. Waiting for the peer's FIN
 * as well, `ws` then called end() on its receiver and on the socket, both
 * already finished, building an error with a stack trace each time
 * (BENCHMARKS.md, sixth round). After a protocol error `ws` ends the
 * socket without waiting for the peer's close frame; a peer may still be
 * sending then, and closing would answer it with a reset that can destroy
 * the close frame it has not read yet, so that socket is left to `ws`.
 */
export function closeAfterCloseHandshake(socket: UpgradedSocket, ws: ErrorSource): void {
  let protocolError = false;
  ws.once("error", () => {
    protocolError = true;
  });
  socket.once("finish", () => {
    if (!protocolError) socket.destroy();
  });
}
