/**
 * A FIFO async mutex: callers of `run` execute one at a time, in call order.
 *
 * Stores use it to serialize `transact` bodies, which are async and may hold
 * the lock across awaits. Not reentrant: calling `run` from inside `run` on
 * the same mutex waits for itself forever.
 */
export class AsyncMutex {
  // The promise the next caller waits on; it settles when the current holder releases.
  private tail: Promise<void> = Promise.resolve();

  async run<T>(fn: () => Promise<T>): Promise<T> {
    const previous = this.tail;
    let release!: () => void;
    this.tail = new Promise<void>((resolve) => {
      release = resolve;
    });
    await previous;
    try {
      return await fn();
    } finally {
      release();
    }
  }
}
