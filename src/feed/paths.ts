/**
 * The 15-minute window a file belongs to, from its place in the raw tree:
 * `.../YYYY/MM/DD/HHmm.csv` -> that instant in UTC. Any other path -> null.
 */
export function windowFromPath(path: string): Date | null {
  const m = /(?:^|[\\/])(\d{4})[\\/](\d{2})[\\/](\d{2})[\\/](\d{2})(\d{2})(?:\.[0-9a-f]{16})?\.csv(?:\.gz)?$/i.exec(path);
  if (m === null) return null;
  const [y, mo, d, h, mi] = m.slice(1).map(Number) as [number, number, number, number, number];
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59) return null;
  const date = new Date(Date.UTC(y, mo - 1, d, h, mi));
  return date.getUTCDate() === d && date.getUTCMonth() === mo - 1 ? date : null;
}
