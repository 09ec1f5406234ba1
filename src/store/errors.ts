/**
 * A write conflicted with a uniqueness rule of the store (a backend name or
 * secret hash, a bootstrap token hash, already held by another record).
 * Both stores throw this, so callers (the CLI's "name already taken") need
 * not know which store they talk to.
 */
export class StoreConflictError extends Error {
  override readonly name = "StoreConflictError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
