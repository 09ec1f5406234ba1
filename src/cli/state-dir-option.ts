/** The global `--state-dir` and `--store`, read lazily so subcommands see the parsed values. */
export interface StateDirOption {
  stateDir(): string;
  /** `--store`, when given (a postgres:// URL without a password). */
  storeFlag(): string | undefined;
}
