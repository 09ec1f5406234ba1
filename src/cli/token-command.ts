import { Command } from "commander";
import { systemClock, systemRandom } from "../clock.js";
import { createBootstrapToken, setupCode } from "../pairing/bootstrap-tokens.js";
import { rotateSharedToken } from "../pairing/shared-token.js";
import { CliError, withAdminStore } from "./admin-store.js";
import { parseScopes } from "./devices-command.js";
import { printJson } from "./output.js";
import type { StateDirOption } from "./state-dir-option.js";
import { SETTING_LISTEN_URL, SETTING_SHARED_TOKEN_SOURCE } from "../store/store.js";

function parseDuration(text: string): number {
  const m = /^(\d+)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) throw new CliError(`invalid duration ${JSON.stringify(text)} (e.g. 90s, 10m, 1h)`);
  const n = Number(m[1]);
  const unit = m[2] ?? "ms";
  return n * (unit === "h" ? 3_600_000 : unit === "m" ? 60_000 : unit === "s" ? 1000 : 1);
}

export function tokenCommand(opts: StateDirOption): Command {
  const cmd = new Command("token").description("the shared operator token and one-time bootstrap tokens");

  cmd
    .command("rotate")
    .description("replace the shared operator token (shown once); sessions admitted with the old one are closed")
    .option("--json", "print JSON")
    .action((o: { json?: boolean }) =>
      withAdminStore(opts, async (store) => {
        const source = await store.getSetting(SETTING_SHARED_TOKEN_SOURCE);
        if (source === "config") {
          throw new CliError("the gateway takes its shared token from GATEWARDEN_TOKEN or auth.token in its config, so a rotated token would be refused: change it there and restart the gateway");
        }
        if (source === "none") throw new CliError("the gateway does not use a shared token (its auth mode is not token)");
        const token = await rotateSharedToken(store, { nowMs: systemClock.now(), random: systemRandom });
        if (o.json) return printJson({ token });
        process.stdout.write(`new operator token (shown once; only its hash is stored):\n  ${token}\n`);
      }),
    );

  cmd
    .command("bootstrap")
    .description("create a one-time, expiring token that pairs one new device without an operator at connect time")
    .option("--roles <roles>", "roles it may pair (comma separated)", "node,operator")
    .option("--scopes <scopes...>", "scopes it may approve (default: operator.read)")
    .option("--ttl <duration>", "lifetime, e.g. 10m (max 24h)", "10m")
    .option("--url <url>", "gateway URL to put in the setup code (default: where the gateway last started listening; pass the address devices reach)")
    .option("--json", "print JSON")
    .action((o: { roles: string; scopes?: string[]; ttl: string; url?: string; json?: boolean }) =>
      withAdminStore(opts, async (store) => {
        const url = o.url ?? (await store.getSetting(SETTING_LISTEN_URL)) ?? "ws://127.0.0.1:18789";
        const r = await createBootstrapToken(
          store,
          { roles: o.roles.split(",").map((s) => s.trim()), scopes: parseScopes(o.scopes) ?? ["operator.read"], ttlMs: parseDuration(o.ttl) },
          { nowMs: systemClock.now(), random: systemRandom },
        );
        if (!r.ok) throw new CliError(r.error.message, 1, r.error.detailCode);
        const { token, record } = r.value;
        const code = setupCode(url, token);
        if (o.json) return printJson({ token, setupCode: code, roles: record.roles, scopes: record.scopes, expiresAtMs: record.expiresAtMs });
        process.stdout.write(
          `bootstrap token (one use, expires ${new Date(record.expiresAtMs).toISOString()}; roles ${record.roles.join(",")}; scopes ${record.scopes.join(",") || "none"}):\n` +
            `  ${token}\nsetup code:\n  ${code}\n`,
        );
      }),
    );
  return cmd;
}
