import { Command } from "commander";
import { systemClock, systemRandom } from "../clock.js";
import { addBackend, revokeBackend } from "../pairing/backends.js";
import { CliError, withAdminReader, withAdminStore } from "./admin-store.js";
import { parseScopes } from "./devices-command.js";
import { ago, printJson, table } from "./output.js";
import type { StateDirOption } from "./state-dir-option.js";

export function backendsCommand(opts: StateDirOption): Command {
  const cmd = new Command("backends").description("register, list and revoke backend credentials (services admitted without device pairing)");

  cmd
    .command("add")
    .description("register a backend; prints its secret once (clients send it as auth.token)")
    .argument("<name>", "a name for the service (a-z, 0-9, '.', '_', '-')")
    .option("--scopes <scopes...>", "operator scopes the backend may hold (comma or space separated); default none")
    .option("--json", "print JSON")
    .action((name: string, o: { scopes?: string[]; json?: boolean }) =>
      withAdminStore(opts, async (store) => {
        const r = await addBackend(store, { name, scopes: parseScopes(o.scopes) ?? [] }, { nowMs: systemClock.now(), random: systemRandom });
        if (!r.ok) throw new CliError(r.error.message, 1, r.error.detailCode);
        const { backend, secret } = r.value;
        if (o.json) return printJson({ id: backend.id, name: backend.name, scopes: backend.scopes, secret });
        process.stdout.write(
          `registered backend ${backend.name} (scopes: ${backend.scopes.join(",") || "none"})\n` +
            `secret (shown once; only its hash is stored):\n  ${secret}\n`,
        );
      }),
    );

  cmd
    .command("list")
    .description("list registered backends")
    .option("--json", "print JSON")
    .action((o: { json?: boolean }) =>
      withAdminReader(opts, async (store) => {
        const backends = await store.listBackends();
        if (o.json) return printJson(backends.map(({ secretHash: _h, ...b }) => b));
        const now = systemClock.now();
        process.stdout.write(
          table(
            ["NAME", "SCOPES", "STATUS", "CREATED"],
            backends.map((b) => [b.name, b.scopes.join(",") || "-", b.revokedAtMs !== undefined ? `revoked ${ago(b.revokedAtMs, now)}` : "active", ago(b.createdAtMs, now)]),
          ) + "\n",
        );
      }),
    );

  cmd
    .command("revoke")
    .description("revoke a backend credential; sessions it admitted are closed")
    .argument("<name>", "backend name")
    .option("--json", "print JSON")
    .action((name: string, o: { json?: boolean }) =>
      withAdminStore(opts, async (store) => {
        const r = await revokeBackend(store, name, systemClock.now());
        if (!r.ok) throw new CliError(r.error.message, 1, r.error.detailCode);
        if (o.json) return printJson({ name: r.value.backend.name, revokedAtMs: r.value.backend.revokedAtMs });
        process.stdout.write(`revoked backend ${name}\n`);
      }),
    );
  return cmd;
}
