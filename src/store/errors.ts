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

/**
 * The store could not be written in bounded time (another process holds its
 * write lock: a backup tool, a second CLI, a stuck migration). Retryable: the
 * server answers UNAVAILABLE with retryAfterMs instead of waiting on the lock
 * with its event loop blocked.
 */
export class StoreUnavailableError extends Error {
  override readonly name = "StoreUnavailableError";
  constructor(
    message: string,
    readonly retryAfterMs: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
