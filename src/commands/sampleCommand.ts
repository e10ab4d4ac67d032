import { join } from 'node:path';
import type { Config } from '../config.js';
import { writeFeedFile } from '../feedGenerator.js';

/**
 * `vinops-etl sample [--rows N]`: writes a generated feed file into today's folder of the raw tree
 * (`YYYY/MM/DD/HHmm.csv`, the current 15-minute window, UTC), for a first look at the daemon.
 */
export async function sampleCommand(config: Config, options: { rows: number }): Promise<number> {
  const now = new Date();
  const window = new Date(Math.floor(now.getTime() / 900_000) * 900_000);
  const p2 = (n: number): string => String(n).padStart(2, '0');
  const generation = Math.floor((window.getTime() - Date.UTC(2025, 9, 17, 12)) / 900_000);
  const path = join(config.rawDir, String(window.getUTCFullYear()), p2(window.getUTCMonth() + 1), p2(window.getUTCDate()),
    `${p2(window.getUTCHours())}${p2(window.getUTCMinutes())}.csv`);
  const tmp = `${path}.part`;
  const { bytes, rows } = await writeFeedFile(tmp, { rows: options.rows, generation: Math.max(0, generation % 10_000) });
  const { rename } = await import('node:fs/promises');
  await rename(tmp, path); // renamed into place: the daemon never sees it half-written
  process.stdout.write(`wrote ${path} (${rows} rows, ${bytes} bytes)\n`);
  return 0;
}
