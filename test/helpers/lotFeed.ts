/**
 * Feed files for the lifecycle tests: lots described by what differs from a real row (the first of
 * test/fixtures/real-2026-v4.csv), written as the feed writes them (V4, every field quoted) into a
 * raw tree under 2025/10/17/HHmm.csv.
 */
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { HEADER_V4 } from '../../src/feed/headers.js';
import { ingestFile, type IngestResult } from '../../src/ingest/ingestFile.js';
import { seededRandom } from '../../src/sample/feedGenerator.js';
import { silentLog, type TestDatabase } from './testDatabase.js';

const BASE = (parse(readFileSync(new URL('../fixtures/real-2026-v4.csv', import.meta.url))) as string[][])[1]!;

/** One row of a lot in one file: what differs from the real base row. */
export interface Lot {
  lot: string;
  vin: string;
  /** [Sale Date, Sale time] in EDT; null: not scheduled (Sale Date 0). */
  sale?: [string, string] | null;
  status?: string;
  bid?: string;
  updated: string;
  damage?: string;
  keys?: string;
  yard?: string;
  odometer?: string;
  retail?: string;
  repair?: string;
  buyNow?: string;
}

/** A valid 17-character VIN numbered n. */
export const vin = (n: number): string => `1HGCM82633A${String(n).padStart(6, '0')}`;

/** n lots listed in every file, never scheduled, that keep the files' row counts steady (lots 9000xxxx). */
export const fillers = (n: number): Lot[] => Array.from({ length: n }, (_, i) => ({ lot: `9000${String(i).padStart(4, '0')}`, vin: vin(9000 + i), sale: null, updated: '2025-10-16T10:00:00Z' }));

/** The raw-tree file `<root>/2025/10/17/<hhmm>.csv` of the given rows. */
export async function feedFile(root: string, hhmm: string, lots: readonly Lot[]): Promise<string> {
  const q = (v: string): string => `"${v.replaceAll('"', '""')}"`;
  const col = (name: string): number => HEADER_V4.indexOf(name);
  const lines = [HEADER_V4.map(q).join(',')];
  lots.forEach((l, i) => {
    const v = [...BASE];
    v[col('Id')] = `${hhmm}${i + 1}`; // Id is not part of a row's content: files of the same lots still differ
    v[col('Lot number')] = l.lot;
    v[col('VIN')] = l.vin;
    v[col('Sale Date M/D/CY')] = l.sale ? l.sale[0] : '0';
    v[col('Sale time (HHMM)')] = l.sale ? l.sale[1] : '';
    v[col('Day of Week')] = l.sale ? 'FRIDAY' : '';
    v[col('Time Zone')] = 'EDT';
    v[col('Location country')] = 'USA';
    v[col('Sale Status')] = l.status ?? 'Pure Sale';
    v[col('High Bid =non-vix,Sealed=Vix')] = l.bid ?? '0.0';
    v[col('Last Updated Time')] = l.updated;
    v[col('Damage Description')] = l.damage ?? 'FRONT END';
    v[col('Has Keys-Yes or No')] = l.keys ?? 'YES';
    v[col('Yard number')] = l.yard ?? '30';
    v[col('Odometer')] = l.odometer ?? '120000.0';
    v[col('Est. Retail Value')] = l.retail ?? '9000.0';
    v[col('Repair cost')] = l.repair ?? '4000.0';
    v[col('Buy-It-Now Price')] = l.buyNow ?? '0.0';
    lines.push(v.map(q).join(','));
  });
  const path = join(root, '2025/10/17', `${hhmm}.csv`);
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, `${lines.join('\n')}\n`);
  return path;
}

export function ingest(db: TestDatabase, path: string): Promise<IngestResult> {
  return ingestFile({ pool: db.pool, log: silentLog, maxRecordBytes: 1 << 20 }, path);
}

/** A deterministic shuffle. */
export function shuffled<T>(items: readonly T[], seed: number): T[] {
  const rnd = seededRandom(seed);
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
