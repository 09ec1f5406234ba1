import { Command, InvalidArgumentError } from "commander";
import { ConfigError, defaultStateDir } from "../config.js";
import { packageVersion } from "../start-gateway.js";
import { CliError } from "./admin-store.js";
import { auditCommand } from "./audit-command.js";
import { backendsCommand } from "./backends-command.js";
import { devicesCommand } from "./devices-command.js";
import { serveCommand } from "./serve-command.js";
import { tokenCommand } from "./token-command.js";
import { storeCommand } from "./store-command.js";
import { upstreamCommand } from "./upstream-command.js";

function portArg(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError("must be a port number (0-65535)");
  return n;
}

const collect = (v: string, prev: string[] = []) => [...prev, v];

export function buildProgram(): Command {
  const program = new Command("gatewarden")
    .description("A WebSocket gateway for OpenClaw-style agent hosts: only server-verified evidence grants access.")
    .version(packageVersion())
    .option("--state-dir <dir>", "state directory (env GATEWARDEN_STATE_DIR; default ~/.gatewarden)")
    .option("--store <url>", "a postgres:// database shared by several instances instead of SQLite in the state dir (env GATEWARDEN_STORE, config store.url; no password here: use PGPASSWORD)")
    .showHelpAfterError();

  const stateDir = {
    stateDir: () => (program.opts() as { stateDir?: string }).stateDir ?? defaultStateDir(process.env),
    storeFlag: () => (program.opts() as { store?: string }).store,
  };

  program
    .command("serve")
    .description("start the gateway (default: 127.0.0.1:18789, SQLite in the state dir, a generated token shown once)")
    .option("--host <host>", "address to bind (env GATEWARDEN_HOST)")
    .option("--port <port>", "port to listen on (env GATEWARDEN_PORT)", portArg)
    .option("--config <file>", "JSON config file (env GATEWARDEN_CONFIG; default <state-dir>/gatewarden.json if present)")
    .option("--auth-mode <mode>", "token | password | trusted-proxy | none (env GATEWARDEN_AUTH_MODE)")
    .option("--allow-origin <origin>", "browser origin allowed to connect (repeatable)", collect)
    .option("--trusted-proxy <cidr>", "reverse proxy whose forwarding headers are believed (repeatable)", collect)
    .option("--silent-local-pairing", "auto-approve first pairings from loopback clients holding the shared token, up to the configured ceiling")
    .option("--log-level <level>", "fatal|error|warn|info|debug|trace|silent (env GATEWARDEN_LOG_LEVEL)")
    .option("--upstream <url>", "stand in front of this OpenClaw gateway (env GATEWARDEN_UPSTREAM; pair first: gatewarden upstream pair)")
    .option("--metrics-port <port>", "serve Prometheus metrics at http://<metrics-host>:<port>/metrics (env GATEWARDEN_METRICS_PORT; off by default)", portArg)
    .option("--metrics-host <host>", "address for the metrics listener (env GATEWARDEN_METRICS_HOST; default 127.0.0.1)")
    .addHelpText(
      "after",
      "\nSecrets come from the environment or the config file, never flags: GATEWARDEN_TOKEN, GATEWARDEN_PASSWORD.\nSee docs/configuration.md for every setting.",
    )
    .action(
      (o: {
        host?: string;
        port?: number;
        config?: string;
        authMode?: string;
        allowOrigin?: string[];
        trustedProxy?: string[];
        silentLocalPairing?: boolean;
        logLevel?: string;
        upstream?: string;
        metricsPort?: number;
        metricsHost?: string;
      }) =>
        serveCommand({
          stateDir: stateDir.stateDir(),
          store: stateDir.storeFlag(),
          host: o.host,
          port: o.port,
          config: o.config,
          authMode: o.authMode,
          allowOrigins: o.allowOrigin,
          trustedProxies: o.trustedProxy,
          silentLocalPairing: o.silentLocalPairing,
          upstream: o.upstream,
          logLevel: o.logLevel,
          metricsPort: o.metricsPort,
          metricsHost: o.metricsHost,
        }),
    );

  program.addCommand(devicesCommand(stateDir));
  program.addCommand(backendsCommand(stateDir));
  program.addCommand(tokenCommand(stateDir));
  program.addCommand(upstreamCommand(stateDir));
  program.addCommand(storeCommand(stateDir));
  program.addCommand(auditCommand(stateDir));
  return program;
}

/**
 * A reader that went away (`gatewarden devices list | head -1`) is not an
 * error: stop writing, exit quietly, as the standard tools do.
 */
function quietOnClosedPipe(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on("error", (e: NodeJS.ErrnoException) => {
      if (e.code === "EPIPE") process.exit(process.exitCode ?? 0);
      throw e;
    });
  }
}

/** One failure, said once: a line on stderr, or with --json a JSON object on stdout (what a script reads). */
function report(message: string, code: string, exitCode: number, json: boolean): void {
  if (json) process.stdout.write(`${JSON.stringify({ error: { code, message } })}\n`);
  else process.stderr.write(`gatewarden: ${message}\n`);
  process.exitCode = exitCode;
}

export async function main(argv: readonly string[]): Promise<void> {
  quietOnClosedPipe();
  const json = argv.includes("--json");
  try {
    await buildProgram().parseAsync([...argv]);
  } catch (e) {
    if (e instanceof CliError) return report(e.message, e.code, e.exitCode, json);
    if (e instanceof ConfigError) return report(e.message, "CONFIG_INVALID", 2, json);
    // Anything else (a full disk, a locked or damaged store) in one line, never a stack trace.
    const code = (e as { code?: unknown } | null)?.code;
    const message = e instanceof Error ? e.message : String(e);
    report(`${message.split("\n")[0]}${typeof code === "string" && !message.includes(code) ? ` (${code})` : ""}`, typeof code === "string" ? code : "ERROR", 1, json);
  }
}
