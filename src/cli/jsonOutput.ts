/**
 * The one key style of every command's --json output: snake_case, as the database columns and
 * `status --json` spell them (`file_id`, `data_rows`, `vin_unknown_pct`).
 */
export function snakeCaseKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(snakeCaseKeys);
  if (typeof value !== 'object' || value === null || value instanceof Date) return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`), snakeCaseKeys(v)]));
}

/** One JSON line, keys in snake_case. */
export function jsonLine(value: unknown): string {
  return `${JSON.stringify(snakeCaseKeys(value))}\n`;
}
