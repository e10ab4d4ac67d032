import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeSample } from '../../src/cli/sampleCommand.js';
import { loadConfig } from '../../src/config.js';
import { HEADER_V4 } from '../../src/sample/feedGenerator.js';
import { ingestFile } from '../../src/ingest/ingestFile.js';
import { createTestDatabase, silentLog, type TestDatabase } from '../helpers/testDatabase.js';

const ROWS = 6000;
const LOT = HEADER_V4.indexOf('Lot number');
const UPDATED = HEADER_V4.indexOf('Last Updated Time');
const BID = HEADER_V4.indexOf('High Bid =non-vix,Sealed=Vix');

/** Data records of a file by Lot number, without the Id (a row counter that shifts between downloads). */
async function lotsOf(path: string): Promise<Map<string, string[]>> {
  const records = parse(await readFile(path)) as string[][];
  return new Map(records.slice(1).map((r) => [r[LOT]!, r.slice(1)]));
}

let db: TestDatabase;
beforeAll(async () => { db = await createTestDatabase(); });
afterAll(async () => { await db.drop(); });

describe('vinops-etl sample', () => {
  it('writes the next snapshot of one feed at each call: a new file, a realistic successor, not a duplicate', async () => {
    const raw = await mkdtemp(join(tmpdir(), 'vinops-sample-raw-'));
    const config = loadConfig({ env: { VINOPS_RAW_DIR: raw, VINOPS_DATA_DIR: await mkdtemp(join(tmpdir(), 'vinops-sample-data-')) } });
    const now = new Date('2026-03-02T10:07:31Z');

    // Twice in one 15-minute slot: the second is named after the next slot, so paths stay YYYY/MM/DD/HHmm.csv.
    const first = await writeSample(config, { rows: ROWS, now });
    const second = await writeSample(config, { rows: ROWS, now });
    expect(first).toMatchObject({ path: join(raw, '2026/03/02/1000.csv'), rows: ROWS, generation: 0 });
    expect(second).toMatchObject({ path: join(raw, '2026/03/02/1015.csv'), rows: ROWS, generation: 1 });

    const a = await lotsOf(first.path);
    const b = await lotsOf(second.path);
    const shared = [...a.keys()].filter((lot) => b.has(lot));
    const gone = [...a.keys()].filter((lot) => !b.has(lot));
    const added = [...b.keys()].filter((lot) => !a.has(lot));
    // A few lots sold and gone, as many new ones (about rows / 2000 per 15 minutes), the rest repeated.
    expect(gone).toHaveLength(3);
    expect(added).toHaveLength(3);
    expect(shared).toHaveLength(ROWS - 3);
    // About 1 % of the repeated lots changed: later Last Updated Time, a higher bid; the others are identical.
    const changed = shared.filter((lot) => a.get(lot)!.join('\u0000') !== b.get(lot)!.join('\u0000'));
    expect(changed.length).toBeGreaterThan(ROWS * 0.005);
    expect(changed.length).toBeLessThan(ROWS * 0.02);
    for (const lot of changed) {
      const [was, now2] = [a.get(lot)!, b.get(lot)!];
      expect(Date.parse(now2[UPDATED - 1]!)).toBeGreaterThan(Date.parse(was[UPDATED - 1]!));
      expect(Date.parse(now2[UPDATED - 1]!)).toBeGreaterThanOrEqual(Date.parse('2026-03-02T10:00:00Z'));
      expect(Number(now2[BID - 1])).toBeGreaterThan(Number(was[BID - 1]));
    }
    // The first snapshot's lots were last updated before it was taken.
    for (const r of a.values()) expect(Date.parse(r[UPDATED - 1]!)).toBeLessThan(Date.parse('2026-03-02T10:00:00Z'));

    // Both are stored: the second is new content whose changed lots update the core tables.
    const ingest = (path: string): ReturnType<typeof ingestFile> => ingestFile({ pool: db.pool, log: silentLog, maxRecordBytes: 1 << 20 }, path);
    const one = await ingest(first.path);
    const two = await ingest(second.path);
    expect(one.outcome).toBe('ingested');
    expect(two.outcome).toBe('ingested');
    expect(two.upserts?.lots).toMatchObject({ inserted: 3, updated: changed.length });
  });

  it('after a pause, jumps to the current slot with what changed meanwhile; never overwrites a file in the tree', async () => {
    const raw = await mkdtemp(join(tmpdir(), 'vinops-sample-raw-'));
    const config = loadConfig({ env: { VINOPS_RAW_DIR: raw, VINOPS_DATA_DIR: await mkdtemp(join(tmpdir(), 'vinops-sample-data-')) } });
    const occupied = join(raw, '2026/03/02/1015.csv');
    await mkdir(dirname(occupied), { recursive: true });
    await writeFile(occupied, 'a real download\n');

    const first = await writeSample(config, { rows: 200, now: new Date('2026-03-02T10:01:00Z') });
    const next = await writeSample(config, { rows: 200, now: new Date('2026-03-02T10:02:00Z') });
    const later = await writeSample(config, { rows: 200, now: new Date('2026-03-02T12:20:00Z') });
    expect([first, next, later].map((w) => [w.path, w.generation])).toEqual([
      [join(raw, '2026/03/02/1000.csv'), 0],
      [join(raw, '2026/03/02/1030.csv'), 2], // 10:15 is taken
      [join(raw, '2026/03/02/1215.csv'), 9],
    ]);
    expect(await readFile(occupied, 'utf8')).toBe('a real download\n');
    // Another row count starts a new feed.
    expect((await writeSample(config, { rows: 300, now: new Date('2026-03-02T12:20:00Z') })).generation).toBe(0);
  });
});
