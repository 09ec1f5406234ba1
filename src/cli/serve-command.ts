import { resolveConfig, type ConfigOverrides } from "../config.js";
import { redactPostgresUrl } from "../store/postgres-store.js";
import { batchedDestination, createLogger } from "../server/logger.js";
import { startGateway } from "../start-gateway.js";

export async function serveCommand(flags: ConfigOverrides): Promise<void> {
  const config = resolveConfig(flags, process.env);
  // Logs are JSON lines on stderr; stdout carries what a person reads.
  const destination = batchedDestination(2);
  const logger = createLogger({ level: config.logLevel, destination });
  const running = await startGateway(config, { logger });
  const { address } = running;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  const lines = [
    `gatewarden ${running.gateway.services.version} listening on ws://${host}:${address.port}`,
    `  auth: ${config.auth.mode}   store: ${config.store.kind === "sqlite" ? `sqlite ${config.store.path}` : `postgres ${redactPostgresUrl(config.store.url)}`}`,
    `  silent local pairing: ${config.silentLocalPairing.enabled ? `on (ceiling: ${config.silentLocalPairing.scopeCeiling.join(", ") || "none"})` : "off"}`,
  ];
  const m = running.metricsAddress;
  if (m) lines.push(`  metrics: http://${m.family === "IPv6" ? `[${m.address}]` : m.address}:${m.port}/metrics`);
  const relay = running.gateway.relay;
  if (relay) lines.push(`  upstream: ${config.upstream} (OpenClaw ${relay.info.serverVersion ?? "unknown"}, protocol ${relay.info.protocol})`);
  if (running.generatedToken) {
    lines.push(
      "",
      "Operator token (shown once; only its hash is stored):",
      `  ${running.generatedToken}`,
      "Save it now. Clients pass it as auth.token; rotate it with: gatewarden token rotate",
    );
  }
  process.stdout.write(lines.join("\n") + "\n");
  logger.info({ event: "listening", host: address.address, port: address.port, authMode: config.auth.mode, ...(m ? { metricsPort: m.port } : {}) }, "gateway listening");

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ event: "stopping", signal }, "gateway stopping");
    running.stop().then(
      () => {
        try {
          // Synchronously: the last lines (this stop's included) are written before exit.
          destination.flushSync();
        } catch {
          // stderr is gone: nothing more to write
        }
        process.exit(0);
      },
      () => process.exit(1),
    );
  };
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGTERM", () => stop("SIGTERM"));
}
