import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { Command } from "commander";
import { backupSqliteDatabase, restoreSqliteDatabase } from "../store/sqlite-store.js";
import { CliError, privateDatabasePath } from "./admin-store.js";
import type { StateDirOption } from "./state-dir-option.js";

// Backups of the gateway's state with SQLite's online backup API: consistent
// while the gateway runs, checked before they are kept or put back.

export function storeCommand(opts: StateDirOption): Command {
  const cmd = new Command("store").description("back up and restore the gateway's state");

  cmd
    .command("backup")
    .description("write a consistent, checked copy of the state database to <file> (0600); safe while the gateway runs")
    .argument("<file>", "where to write the copy (must not exist)")
    .action(async (file: string) => {
      const path = privateDatabasePath(opts.stateDir());
      if (!existsSync(path)) throw new CliError(`no gateway state at ${opts.stateDir()}`);
      const dest = resolve(file);
      if (existsSync(dest)) throw new CliError(`${dest} already exists; choose a new file`);
      await backupSqliteDatabase(path, dest);
      process.stdout.write(`backed up ${path} to ${dest}\n`);
    });

  cmd
    .command("restore")
    .description("replace the state database with a checked backup; stop the gateway first (a running one sees its file replaced and admits nobody until restarted)")
    .argument("<file>", "a file written by `gatewarden store backup`")
    .action((file: string) => {
      const path = privateDatabasePath(opts.stateDir());
      const backup = resolve(file);
      if (!existsSync(backup)) throw new CliError(`no such backup: ${backup}`);
      restoreSqliteDatabase(path, backup);
      process.stdout.write(`restored ${path} from ${backup}; start the gateway (gatewarden serve)\n`);
    });

  return cmd;
}
