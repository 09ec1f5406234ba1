import { closeSync, existsSync, openSync, renameSync, statSync, unlinkSync, writeSync } from "node:fs";

/**
 * Space set aside beside the database so that a revocation can still be
 * written when the disk is full: the store frees it, retries the revocation,
 * and sets it aside again once space is back. A revocation writes a few pages;
 * 1 MiB holds dozens of them.
 */
export const DISK_RESERVE_BYTES = 1024 * 1024;
const REFILL_INTERVAL_MS = 60_000;
const CHUNK = Buffer.alloc(64 * 1024);

export interface DiskReserve {
  readonly path: string;
  /** Whether the space is set aside now. */
  present(): boolean;
  /** Frees the space; true when there was space to free. */
  release(): boolean;
  /**
   * Sets the space aside when it is not (at most once a minute when that
   * fails). Returns what went wrong, or `undefined`.
   */
  refill(nowMs: number): string | undefined;
}

export function diskReserve(path: string, bytes = DISK_RESERVE_BYTES): DiskReserve {
  let lastTryMs = Number.NEGATIVE_INFINITY;
  const present = (): boolean => {
    try {
      return statSync(path).size >= bytes;
    } catch {
      return false;
    }
  };
  return {
    path,
    present,
    release() {
      if (!existsSync(path)) return false;
      unlinkSync(path);
      return true;
    },
    refill(nowMs) {
      if (present() || nowMs - lastTryMs < REFILL_INTERVAL_MS) return undefined;
      lastTryMs = nowMs;
      // Written, not truncated: a sparse file would hold no space at all.
      const tmp = `${path}.${process.pid}.tmp`;
      let fd: number | undefined;
      try {
        fd = openSync(tmp, "w", 0o600);
        for (let written = 0; written < bytes; written += CHUNK.length) writeSync(fd, CHUNK, 0, Math.min(CHUNK.length, bytes - written));
        closeSync(fd);
        fd = undefined;
        renameSync(tmp, path);
        return undefined;
      } catch (e) {
        if (fd !== undefined) closeSync(fd);
        try {
          unlinkSync(tmp);
        } catch {
          // Nothing was created.
        }
        return `cannot set aside ${bytes} bytes for revocations at ${path}: ${(e as Error).message}`;
      }
    },
  };
}
