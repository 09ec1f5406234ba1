import { lstatSync, type Stats } from "node:fs";
import { dirname, resolve } from "node:path";

// The state dir is the owner's proof (the admin CLI opens its 0600 database)
// and holds the config the gateway trusts. A dir or file another local user
// can write, or owns, could have been planted or swapped: refused, as ssh
// refuses a loose ~/.ssh. Nothing is loosened or "fixed" behind the owner's
// back; the error says what to do.

export class UnsafePathError extends Error {
  override readonly name = "UnsafePathError";
}

const GROUP_OR_OTHER_WRITE = 0o022;
const STICKY = 0o1000;

function uid(): number | undefined {
  return typeof process.getuid === "function" ? process.getuid() : undefined;
}

function statOf(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
}

function ownerOk(st: Stats, me: number): boolean {
  return st.uid === me || st.uid === 0;
}

/**
 * Refuse `path` (a dir or file the gateway trusts, when it exists) if another
 * user owns it or can write it, and refuse any ancestor dir another user could
 * use to replace it (writable by others without the sticky bit, or owned by
 * another user). A symlink is judged as what it is, not what it points to.
 */
export function assertPrivatePath(path: string, what: string): void {
  const me = uid();
  if (me === undefined) return; // no POSIX owners (Windows): nothing to compare
  const full = resolve(path);
  const st = statOf(full);
  if (st) {
    if (!ownerOk(st, me)) throw new UnsafePathError(`refusing ${what} ${full}: it is owned by uid ${st.uid}, not by you (uid ${me}); move it aside and let gatewarden create it again`);
    if (st.isSymbolicLink()) throw new UnsafePathError(`refusing ${what} ${full}: it is a symbolic link; use the real path`);
    if ((st.mode & GROUP_OR_OTHER_WRITE) !== 0) {
      throw new UnsafePathError(`refusing ${what} ${full}: it is writable by other users (mode ${(st.mode & 0o7777).toString(8)}); check its contents, then chmod go-w ${full}`);
    }
  }
  for (let dir = dirname(full); ; dir = dirname(dir)) {
    const d = statOf(dir);
    if (d) {
      if (!ownerOk(d, me) && (d.mode & STICKY) === 0) throw new UnsafePathError(`refusing ${what} ${full}: its parent ${dir} is owned by uid ${d.uid}, who could replace it`);
      if ((d.mode & GROUP_OR_OTHER_WRITE) !== 0 && (d.mode & STICKY) === 0) {
        throw new UnsafePathError(`refusing ${what} ${full}: its parent ${dir} is writable by other users (mode ${(d.mode & 0o7777).toString(8)}), who could replace it; chmod go-w ${dir}`);
      }
    }
    if (dirname(dir) === dir) break;
  }
}
