/** The global `--state-dir`, read lazily so subcommands see the parsed value. */
export interface StateDirOption {
  stateDir(): string;
}
