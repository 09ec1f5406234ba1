import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/**
 * Write a benchmark's section to bench/<name>-results.md and between its
 * markers in BENCHMARKS.md (`<!-- <marker>:start -->` … `:end -->`), replacing
 * the previous one; a first section goes where `place` finds its spot (an
 * index into the text), or at the end.
 */
export function writeBenchmarksBlock(root: string, resultsFile: string, marker: string, section: string, place: (text: string) => number | undefined): void {
  writeFileSync(join(root, "bench", resultsFile), section);
  const path = join(root, "BENCHMARKS.md");
  const text = existsSync(path) ? readFileSync(path, "utf8") : "";
  const startMarker = `<!-- ${marker}:start -->`;
  const endMarker = `<!-- ${marker}:end -->`;
  const block = `${startMarker}\n${section}${endMarker}\n`;
  const start = text.indexOf(startMarker);
  const end = text.indexOf(endMarker);
  let next: string;
  if (start >= 0 && end > start) next = text.slice(0, start) + block + text.slice(end + endMarker.length + 1);
  else {
    const at = place(text);
    next = at === undefined ? `${text}\n${block}` : `${text.slice(0, at)}\n${block}${text.slice(at)}`;
  }
  writeFileSync(path, next);
}

/** For `writeBenchmarksBlock`'s `place`: just past the line that holds `marker` (another bench's end marker). */
export function afterLine(marker: string): (text: string) => number | undefined {
  return (text) => {
    const at = text.indexOf(marker);
    return at >= 0 ? at + marker.length + 1 : undefined; // past the marker's newline
  };
}

/** Write a side-by-side bench's section (as `writeBenchmarksBlock`, placed after another block's end marker), print it, and say where it went. */
export function publishSection(root: string, bench: string, section: string, afterMarker: string, say: (text: string) => void): void {
  writeBenchmarksBlock(root, `${bench}-results.md`, `${bench}-bench`, section, afterLine(afterMarker));
  process.stdout.write(`\n${section}\n`);
  say(`wrote bench/${bench}-results.md and its block in BENCHMARKS.md`);
}
