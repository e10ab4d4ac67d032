import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { HEADER_V4 } from '../../src/feed/headers.js';
import { writeFeedFile } from '../../src/sample/feedGenerator.js';
import { ingestFile, type IngestResult } from '../../src/ingest/ingestFile.js';
import { createTestDatabase, silentLog, type TestDatabase } from '../helpers/testDatabase.js';

const FIXTURES = new URL('../fixtures/', import.meta.url).pathname;
const REAL_FILES = ['real-2025-v3.csv', 'real-2026-v4.csv', 'real-2020-v1.csv'];
let dir: string;
let base: string[];
const col = (name: string): number => HEADER_V4.indexOf(name);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vinops-upsert-'));
  base = (parse(await readFile(join(FIXTURES, 'real-2026-v4.csv'))) as string[][])[1]!;
});

function ingest(db: TestDatabase, path: string): Promise<IngestResult> {
  return ingestFile({ pool: db.pool, log: silentLog, maxRecordBytes: 1 << 20 }, path);
}

/** A V4 file of rows built from a real row: each entry sets some columns by header name. */
async function file(name: string, rows: Record<string, string>[]): Promise<string> {
  const q = (v: string): string => `"${v.replaceAll('"', '""')}"`;
  const lines = [HEADER_V4.map(q).join(',')];
  rows.forEach((r, i) => {
    const values = [...base];
    values[0] = String(i + 1);
    for (const [k, v] of Object.entries(r)) values[col(k)] = v;
    lines.push(values.map(q).join(','));
  });
  const path = join(dir, name);
  await writeFile(path, `${lines.join('\n')}\n`);
  return path;
}

/** public.lots without the columns that record arrival (ids, timestamps, source file and row). */
async function lotsOf(db: TestDatabase): Promise<Record<string, unknown>[]> {
  const { rows } = await db.pool.query(`SELECT * FROM public.lots ORDER BY lot_external_id`);
  return rows.map(({ lot_id: _a, first_seen_at: _b, updated_at: _c, source_file_id: _d, source_row_no: _e, ...rest }) => rest);
}

describe('core upsert', () => {
  // The real files are there from the start, under the lots each test adds (as in file order, where the first test loaded them).
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
    for (const f of REAL_FILES) expect((await ingest(db, join(FIXTURES, f))).outcome).toBe('ingested');
  });
  afterAll(async () => { await db.drop(); });

  it('fills lots and vehicles from the real rows; a lot without a valid VIN is still a lot', async () => {
    // An empty database of its own: it counts every lot, and the other tests here add theirs.
    const own = await createTestDatabase();
    onTestFinished(() => own.drop());
    for (const f of REAL_FILES) await ingest(own, join(FIXTURES, f));
    const { rows: [n] } = await own.pool.query(`SELECT (SELECT count(*) FROM public.lots)::int AS lots,
      (SELECT count(*) FROM public.vehicles)::int AS vehicles,
      (SELECT count(DISTINCT vin_normalized) FROM staging.copart_typed WHERE vin_valid)::int AS valid_vins`);
    expect(n.lots).toBe(150); // 109 + 38 + 3, all distinct lot numbers
    expect(n.vehicles).toBe(n.valid_vins);
    const { rows: [lot] } = await own.pool.query(`SELECT * FROM public.lots WHERE lot_external_id = '24570139'`);
    expect(lot).toMatchObject({ vin: '2C3CDYCJ2DH744113', has_keys: 'EXM', sale_status: 'On Minimum Bid', color: 'GRAY', odometer: null });
    expect(lot.auction_at.toISOString()).toBe('2025-03-28T17:00:00.000Z');
    const { rows: [vehicle] } = await own.pool.query(`SELECT * FROM public.vehicles WHERE vin = '2C3CDYCJ2DH744113'`);
    expect(vehicle).toMatchObject({ year: 2013, make: 'DODGE', model_group: 'CHALLENGER', engine: '6.4L  8' });
  });

  it('keeps a lot whose VIN is empty or invalid, with the reason', async () => {
    const path = await file('bad-vins.csv', [
      { 'Lot number': '70000001', VIN: '', 'Last Updated Time': '2025-11-01T00:00:00Z' },
      { 'Lot number': '70000002', VIN: 'AB', 'Last Updated Time': '2025-11-01T00:00:00Z' },
    ]);
    await ingest(db, path);
    const { rows } = await db.pool.query(`SELECT lot_external_id, vin, vin_raw, vin_issue FROM public.lots WHERE lot_external_id LIKE '7000000%' ORDER BY 1`);
    expect(rows).toEqual([
      { lot_external_id: '70000001', vin: null, vin_raw: null, vin_issue: 'empty' },
      { lot_external_id: '70000002', vin: null, vin_raw: 'AB', vin_issue: 'invalid' },
    ]);
  });

  it('keeps an unknown Sale Status as it came and counts it; YES, NO and EXM keys stay apart', async () => {
    const path = await file('statuses.csv', [
      { 'Lot number': '73000001', 'Sale Status': 'Future Sale', 'Has Keys-Yes or No': 'YES', 'Last Updated Time': '2025-11-01T00:00:00Z' },
      { 'Lot number': '73000002', 'Sale Status': 'Pure Sale', 'Has Keys-Yes or No': 'NO', 'Last Updated Time': '2025-11-01T00:00:00Z' },
      { 'Lot number': '73000003', 'Sale Status': 'On Approval', 'Has Keys-Yes or No': 'EXM', 'Last Updated Time': '2025-11-01T00:00:00Z' },
    ]);
    const r = await ingest(db, path);
    expect(r.upserts?.unknownSaleStatus).toBe(1);
    const { rows } = await db.pool.query(`SELECT lot_external_id, sale_status, has_keys FROM public.lots WHERE lot_external_id LIKE '7300000%' ORDER BY 1`);
    expect(rows).toEqual([
      { lot_external_id: '73000001', sale_status: 'Future Sale', has_keys: 'YES' },
      { lot_external_id: '73000002', sale_status: 'Pure Sale', has_keys: 'NO' },
      { lot_external_id: '73000003', sale_status: 'On Approval', has_keys: 'EXM' },
    ]);
    const { rows: view } = await db.pool.query(`SELECT sale_status, known, lots FROM audit.v_sale_status WHERE sale_status = 'Future Sale'`);
    expect(view).toEqual([{ sale_status: 'Future Sale', known: false, lots: 1 }]);
  });

  it('picks the newest row of a lot repeated in one file and records the other', async () => {
    const path = await file('repeated.csv', [
      { 'Lot number': '71000001', 'High Bid =non-vix,Sealed=Vix': '900.0', 'Last Updated Time': '2025-11-02T10:00:00Z' },
      { 'Lot number': '71000001', 'High Bid =non-vix,Sealed=Vix': '500.0', 'Last Updated Time': '2025-11-02T09:00:00Z' },
    ]);
    const r = await ingest(db, path);
    const { rows: [lot] } = await db.pool.query(`SELECT high_bid, source_row_no FROM public.lots WHERE lot_external_id = '71000001'`);
    expect(lot).toEqual({ high_bid: '900.0', source_row_no: 1 });
    const { rows } = await db.pool.query(`SELECT row_no, reason FROM audit.upsert_conflicts WHERE file_id = $1`, [r.fileId]);
    expect(rows).toEqual([{ row_no: 2, reason: 'a newer row of the same lot in this file' }]);
  });

  it('an exact repeat of a row (only the Id differs) is no conflict; a stale row creates no vehicle', async () => {
    const row = { 'Lot number': '74000001', VIN: '1HGCM82633A000002', 'Last Updated Time': '2025-11-02T10:00:00Z' };
    const r = await ingest(db, await file('exact-repeat.csv', [row, row]));
    expect(r.upserts?.lots).toEqual({ inserted: 1, updated: 0, unchanged: 0, stale: 0 });
    const { rows } = await db.pool.query('SELECT reason FROM audit.upsert_conflicts WHERE file_id = $1', [r.fileId]);
    expect(rows).toEqual([]);

    const older = await ingest(db, await file('stale-new-vin.csv', [{ ...row, VIN: 'WBA3A5C50CF000002', 'Last Updated Time': '2025-11-02T09:00:00Z' }]));
    expect(older.upserts?.lots.stale).toBe(1);
    expect(older.upserts?.vehicles.inserted).toBe(0);
    const { rows: v } = await db.pool.query(`SELECT vin FROM public.vehicles WHERE vin = 'WBA3A5C50CF000002'`);
    expect(v).toEqual([]);
  });

  it('lets the newer Last Updated Time win whatever the arrival order, records the stale row and a changed VIN', async () => {
    const newer = await file('newer.csv', [{ 'Lot number': '72000001', VIN: '1FTFW1ET5DFC10312', Color: '', 'Sale Status': 'On Approval', 'Last Updated Time': '2025-11-03T12:00:00Z' }]);
    const older = await file('older.csv', [{ 'Lot number': '72000001', VIN: '2C3CDYCJ2DH744113', Color: 'RED', 'Sale Status': 'Pure Sale', 'Last Updated Time': '2025-11-03T08:00:00Z' }]);
    await ingest(db, older);
    await ingest(db, newer);
    const { rows: [lot] } = await db.pool.query(`SELECT vin, color, sale_status, source_updated_at FROM public.lots WHERE lot_external_id = '72000001'`);
    expect(lot.vin).toBe('1FTFW1ET5DFC10312');
    expect(lot.sale_status).toBe('On Approval');
    expect(lot.color).toBe('RED'); // an empty value does not erase a known one
    const { rows: changes } = await db.pool.query(`SELECT kind, old_value, new_value FROM audit.vin_conflicts WHERE lot_external_id = '72000001'`);
    expect(changes).toEqual([{ kind: 'lot_vin_changed', old_value: '2C3CDYCJ2DH744113', new_value: '1FTFW1ET5DFC10312' }]);

    // The older file again, under new bytes: rejected by last write wins, recorded as stale.
    const olderAgain = await file('older-again.csv', [{ 'Lot number': '72000001', VIN: '2C3CDYCJ2DH744113', Color: 'RED', 'Sale Status': 'Pure Sale', 'Last Updated Time': '2025-11-03T08:00:01Z' }]);
    const r = await ingest(db, olderAgain);
    expect(r.upserts?.lots.stale).toBe(1);
    const { rows: [still] } = await db.pool.query(`SELECT sale_status FROM public.lots WHERE lot_external_id = '72000001'`);
    expect(still.sale_status).toBe('On Approval');
    const { rows: stale } = await db.pool.query(`SELECT reason FROM audit.upsert_conflicts WHERE file_id = $1`, [r.fileId]);
    expect(stale).toEqual([{ reason: 'older than the stored lot (last write wins)' }]);
  });

  it('deleting stored files (retention) clears the source of their lots in one statement, TRUNCATE of them too; the lots keep their data', async () => {
    const a = await ingest(db, await file('source-a.csv', [{ 'Lot number': '76000001', Color: 'BLUE', 'Last Updated Time': '2025-11-04T00:00:00Z' }]));
    const b = await ingest(db, await file('source-b.csv', [{ 'Lot number': '76000002', Color: 'GREEN', 'Last Updated Time': '2025-11-04T00:00:00Z' }]));
    const kept = await ingest(db, await file('source-kept.csv', [{ 'Lot number': '76000003', Color: 'RED', 'Last Updated Time': '2025-11-04T00:00:00Z' }]));
    const before = await lotsOf(db);
    await db.pool.query('DELETE FROM raw.csv_files WHERE file_id = ANY ($1::uuid[])', [[a.fileId, b.fileId]]);
    const { rows } = await db.pool.query(`SELECT lot_external_id, color, source_file_id FROM public.lots WHERE lot_external_id LIKE '7600000%' ORDER BY 1`);
    expect(rows).toEqual([
      { lot_external_id: '76000001', color: 'BLUE', source_file_id: null },
      { lot_external_id: '76000002', color: 'GREEN', source_file_id: null },
      { lot_external_id: '76000003', color: 'RED', source_file_id: kept.fileId },
    ]);
    expect(await lotsOf(db)).toEqual(before); // nothing else about any lot changed

    // TRUNCATE … CASCADE empties the registry and what hangs on it, and keeps every lot, sourceless.
    await db.pool.query('TRUNCATE raw.csv_files CASCADE');
    const { rows: [after] } = await db.pool.query<{ lots: number; sourced: number }>(
      'SELECT count(*)::int AS lots, count(source_file_id)::int AS sourced FROM public.lots');
    expect(after).toEqual({ lots: before.length, sourced: 0 });
    expect(await lotsOf(db)).toEqual(before);
  });
});

describe('core upsert: arrival order does not matter', () => {
  let a: TestDatabase;
  let b: TestDatabase;
  beforeAll(async () => { [a, b] = await Promise.all([createTestDatabase(), createTestDatabase()]); });
  afterAll(async () => { await Promise.all([a.drop(), b.drop()]); });

  it('newer file first or older file first: the same public.lots and public.vehicles', async () => {
    const g0 = join(dir, 'g0.csv');
    const g1 = join(dir, 'g1.csv');
    const g2 = join(dir, 'g2.csv');
    await writeFeedFile(g0, { rows: 800, seed: 5, generation: 0, updateFraction: 0.05 });
    await writeFeedFile(g1, { rows: 800, seed: 5, generation: 1, updateFraction: 0.05 });
    await writeFeedFile(g2, { rows: 800, seed: 5, generation: 2, updateFraction: 0.05 });
    for (const f of [g0, g1, g2]) await ingest(a, f);
    for (const f of [g2, g0, g1]) await ingest(b, f);
    const [la, lb] = await Promise.all([lotsOf(a), lotsOf(b)]);
    expect(la.length).toBe(802); // 800 + the two lots that left
    expect(lb).toEqual(la);
    const vehicles = 'SELECT * FROM public.vehicles ORDER BY vin';
    const strip = (rows: Record<string, unknown>[]): unknown[] => rows.map(({ first_seen_at: _a, updated_at: _b, ...r }) => r);
    expect(strip((await b.pool.query(vehicles)).rows)).toEqual(strip((await a.pool.query(vehicles)).rows));
  });
});
