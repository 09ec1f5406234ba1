/** Counts per key with a cap: pre-auth sockets per IP, connections per IP. */
export class KeyedCounter {
  private readonly counts = new Map<string, number>();

  constructor(private readonly cap: number) {}

  /** Take one slot; false when the key is at its cap. */
  tryAcquire(key: string): boolean {
    const n = this.counts.get(key) ?? 0;
    if (n >= this.cap) return false;
    this.counts.set(key, n + 1);
    return true;
  }

  release(key: string): void {
    const n = this.counts.get(key) ?? 0;
    if (n <= 1) this.counts.delete(key);
    else this.counts.set(key, n - 1);
  }

  count(key: string): number {
    return this.counts.get(key) ?? 0;
  }
}
