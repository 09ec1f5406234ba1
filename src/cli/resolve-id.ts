import { CliError } from "./admin-store.js";

/** What an id the store does not hold may mean, and where to look. */
const UNKNOWN_HINTS: Readonly<Record<string, string>> = {
  request: "never made, already approved or rejected, or expired and cleared; `gatewarden devices list` shows what is pending",
  device: "never paired, or removed; `gatewarden devices list` shows the paired devices",
  backend: "`gatewarden backends list` shows them",
};

/** An exact id, or a unique prefix of at least 6 characters. */
export function resolveId(kind: string, wanted: string, ids: readonly string[]): string {
  if (ids.includes(wanted)) return wanted;
  if (wanted.length >= 6) {
    const matches = ids.filter((id) => id.startsWith(wanted));
    if (matches.length === 1 && matches[0] !== undefined) return matches[0];
    if (matches.length > 1) throw new CliError(`${kind} ${wanted} is ambiguous (${matches.length} match); give more characters`);
  }
  throw new CliError(`unknown ${kind}: ${wanted} (${UNKNOWN_HINTS[kind] ?? "`gatewarden --help` shows where to list them"})`);
}
