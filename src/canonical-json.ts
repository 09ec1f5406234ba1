/**
 * JSON with object keys sorted at every depth and undefined fields left out:
 * the same data gives the same text whatever order its keys were built in
 * (compared by content, and hashed by the audit chain).
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v !== null && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}
