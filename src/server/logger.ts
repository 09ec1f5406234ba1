import pino, { type Logger } from "pino";

export type { Logger };

/**
 * Paths that could ever hold a secret are redacted, as a second line of
 * defence: the code logs labels and decisions, never params or headers.
 */
export const REDACT_PATHS = [
  "token",
  "password",
  "secret",
  "deviceToken",
  "bootstrapToken",
  "signature",
  "auth",
  "authorization",
  "*.token",
  "*.password",
  "*.secret",
  "*.deviceToken",
  "*.bootstrapToken",
  "*.signature",
  "*.auth",
  "*.authorization",
  "headers.cookie",
];

export function createLogger(options: { level?: string; destination?: pino.DestinationStream } = {}): Logger {
  const opts: pino.LoggerOptions = {
    level: options.level ?? "info",
    base: { service: "gatewarden" },
    redact: { paths: REDACT_PATHS, censor: "[redacted]" },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return options.destination ? pino(opts, options.destination) : pino(opts);
}

export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
