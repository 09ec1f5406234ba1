// WebSocket close codes used by the gateway (spec §11.5).
export const CloseCode = {
  normal: 1000,
  protocolError: 1002,
  unsupportedData: 1003,
  policyViolation: 1008,
  messageTooBig: 1009,
  internalError: 1011,
  serviceRestart: 1012,
  tryAgainLater: 1013,
  authChanged: 4001,
} as const;
export type CloseCodeValue = (typeof CloseCode)[keyof typeof CloseCode];

/** Close reasons are capped at 123 bytes by RFC 6455; the protocol uses 120 (spec §2.2). */
export const MAX_CLOSE_REASON_BYTES = 120;

export function truncateCloseReason(reason: string): string {
  const trimmed = reason.trim();
  if (trimmed.length === 0) return "invalid handshake";
  const bytes = Buffer.from(trimmed, "utf8");
  if (bytes.length <= MAX_CLOSE_REASON_BYTES) return trimmed;
  // Cut on a character boundary: decode and drop a trailing partial character.
  let cut = bytes.subarray(0, MAX_CLOSE_REASON_BYTES).toString("utf8");
  if (cut.endsWith("\uFFFD")) cut = cut.slice(0, -1);
  return cut;
}
