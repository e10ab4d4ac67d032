import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { HEADER_V4 } from '../../src/feed/headers.js';
import { writeFeedFile } from '../../src/sample/feedGenerator.js';
import { ingestFile } from '../../src/ingest/ingestFile.js';
import { ReplayError, createReplayedSet, listStoredFiles, replayFile, type ReplayResult } from '../../src/core/replay.js';
import { createTestDatabase, silentLog, type TestDatabase } from '../helpers/testDatabase.js';

const FIXTURES = new URL('../fixtures/', import.meta.url).pathname;
const CLI = new URL('../../dist/cli/main.js', import.meta.url).pathname;
const run = promisify(execFile);

/** The database and its snapshot the helpers and tests use: the file's shared pair or, while a test that called ownFilledDatabase() runs, its own. */
let db: TestDatabase;
let snapshot: Snapshot;

interface Snapshot {
  lots: Record<string, unknown>[];
  vehicles: Record<string, unknown>[];
  typed: Record<string, unknown>[];
  vinConflicts: Record<string, unknown>[];
  upsertConflicts: Record<string, unknown>[];
}

/** What the application reads, without the columns that record when a row was written. */
async function takeSnapshot(): Promise<Snapshot> {
  const lots = await db.pool.query('SELECT * FROM public.lots ORDER BY lot_external_id');
  const vehicles = await db.pool.query('SELECT * FROM public.vehicles ORDER BY vin');
  const typed = await db.pool.query('SELECT * FROM staging.copart_typed ORDER BY payload_hash');
  const vinConflicts = await db.pool.query(`SELECT kind, lot_external_id, vin_normalized, old_value, new_value, file_id, row_no
    FROM audit.vin_conflicts ORDER BY file_id, row_no, kind`);
  const upsertConflicts = await db.pool.query(`SELECT table_name, lot_external_id, file_id, row_no, incoming_updated_at, current_updated_at, reason
    FROM audit.upsert_conflicts ORDER BY file_id, row_no`);
  return {
    lots: lots.rows.map(({ lot_id: _a, first_seen_at: _b, updated_at: _c, ...r }) => r),
    vehicles: vehicles.rows.map(({ first_seen_at: _a, updated_at: _b, ...r }) => r),
    typed: typed.rows,
    vinConflicts: vinConflicts.rows,
    upsertConflicts: upsertConflicts.rows,
  };
}

/** Every stored file, replayed the way `vinops-etl replay --all` does it. */
async function replayAll(): Promise<ReplayResult[]> {
  const client = await db.pool.connect();
  try {
    await createReplayedSet(client);
    await client.query('TRUNCATE vinops_replayed');
    const out: ReplayResult[] = [];
    for (const id of await listStoredFiles(client)) out.push(await replayFile(client, id, { skipReplayed: true }));
    return out;
  } finally {
    client.release();
  }
}

async function replayOne(fileId: string): Promise<ReplayResult> {
  const client = await db.pool.connect();
  try {
    return await replayFile(client, fileId);
  } finally {
    client.release();
  }
}

/**
 * Fills `db` by the live path: three real files, a generated file and two successors (lots updated,
 * lots gone, so Ids shift), and hand-made files with a lot repeated in one file, an older file
 * arriving after a newer one, a VIN that changes and an empty value that must not erase a known
 * one. Then every CSV is deleted: a replay has raw and nothing else. Returns what the live path wrote.
 */
async function fill(): Promise<Snapshot> {
  const dir = await mkdtemp(join(tmpdir(), 'vinops-replay-'));
  const files: string[] = [];
  for (const f of ['real-2020-v1.csv', 'real-2025-v3.csv', 'real-2026-v4.csv']) {
    await copyFile(join(FIXTURES, f), join(dir, f));
    files.push(join(dir, f));
  }
  for (const generation of [0, 1, 2]) {
    const path = join(dir, `g${generation}.csv`);
    await writeFeedFile(path, { rows: 600, seed: 9, generation, updateFraction: 0.05, bareQuotes: generation === 1 });
    files.push(path);
  }
  const base = (parse(await readFile(join(FIXTURES, 'real-2026-v4.csv'))) as string[][])[1]!;
  const q = (v: string): string => `"${v.replaceAll('"', '""')}"`;
  const handMade = async (name: string, rows: Record<string, string>[], header: readonly string[] = HEADER_V4): Promise<string> => {
    const lines = [header.map(q).join(',')];
    rows.forEach((r, i) => {
      const values = header.map((h) => base[HEADER_V4.indexOf(h)] ?? '');
      if (header[0] === 'Id') values[0] = String(i + 1);
      for (const [k, v] of Object.entries(r)) values[header.indexOf(k)] = v;
      lines.push(values.map(q).join(','));
    });
    await writeFile(join(dir, name), `${lines.join('\n')}\n`);
    return join(dir, name);
  };
  files.push(await handMade('newer.csv', [
    { 'Lot number': '81000001', VIN: '1FTFW1ET5DFC10312', Color: '', 'Sale Status': 'On Approval', 'Last Updated Time': '2025-11-03T12:00:00Z' },
    { 'Lot number': '81000002', VIN: '', 'Last Updated Time': '2025-11-03T12:00:00Z' },
    { 'Lot number': '81000003', VIN: 'not a vin!', 'High Bid =non-vix,Sealed=Vix': '700.0', 'Last Updated Time': '2025-11-03T11:00:00Z' },
    { 'Lot number': '81000003', VIN: 'not a vin!', 'High Bid =non-vix,Sealed=Vix': '900.0', 'Last Updated Time': '2025-11-03T12:00:00Z' },
  ]));
  files.push(await handMade('older.csv', [
    { 'Lot number': '81000001', VIN: '2C3CDYCJ2DH744113', Color: 'RED', 'Sale Status': 'Pure Sale', 'Last Updated Time': '2025-11-03T08:00:00Z' },
  ]));
  files.push(await handMade('fill.csv', [
    { 'Lot number': '81000004', VIN: '2C3CDYCJ2DH744113', Color: 'BLUE', 'Last Updated Time': '2025-11-03T08:00:00Z' },
    { 'Lot number': '81000005', VIN: '2c3cdycj2dh744113 ', Color: 'GRAY', 'Last Updated Time': '2025-11-03T09:00:00Z' },
  ]));
  files.push(await handMade('fill-later.csv', [
    { 'Lot number': '81000004', VIN: '5YJSA1E26HF000001', Color: '', 'Last Updated Time': '2025-11-03T10:00:00Z' },
  ]));
  // A lot twice in one file under two VINs, then a file repeating its older row (stale: it must
  // create no vehicle, live or replayed); a stale row bringing a VIN never seen.
  files.push(await handMade('two-vins.csv', [
    { 'Lot number': '82000001', VIN: '1HGCM82633A000001', 'Last Updated Time': '2025-11-04T08:00:00Z' },
    { 'Lot number': '82000001', VIN: '3VWFE21C04M000001', 'Last Updated Time': '2025-11-04T10:00:00Z' },
    { 'Lot number': '82000002', VIN: '3VWFE21C04M000001', 'Last Updated Time': '2025-11-04T10:00:00Z' },
  ]));
  files.push(await handMade('two-vins-again.csv', [
    { 'Lot number': '82000001', VIN: '1HGCM82633A000001', 'Last Updated Time': '2025-11-04T08:00:00Z' },
    { 'Lot number': '82000002', VIN: 'WBA3A5C50CF000001', 'Last Updated Time': '2025-11-04T07:00:00Z' },
  ]));
  // No Id column, a repeated column name, a value holding U+001F (stored as text[]), a VIN new in
  // this file in two raw forms.
  const odd = [...HEADER_V4.filter((h) => h !== 'Id'), 'Color'];
  files.push(await handMade('odd-header.csv', [
    { 'Lot number': '83000001', 'Model Detail': 'A\u001fB', VIN: '5YJ3E1EA7KF000001', Color: 'RED', 'Last Updated Time': '2025-11-05T08:00:00Z' },
    { 'Lot number': '83000002', VIN: '5yj3e1ea7kf000001', 'Last Updated Time': '2025-11-05T09:00:00Z' },
  ], odd));
  for (const f of files) {
    const r = await ingestFile({ pool: db.pool, log: silentLog, maxRecordBytes: 1 << 20 }, f);
    expect(r.outcome).toBe('ingested');
  }
  const written = await takeSnapshot();
  const kinds = new Set(written.vinConflicts.map((c) => c.kind));
  expect(kinds).toEqual(new Set(['lot_vin_changed', 'vin_raw_variant']));
  expect(written.upsertConflicts.length).toBeGreaterThan(0);
  // The stale rows created no vehicle.
  const vins = new Set(written.vehicles.map((v) => v.vin));
  expect(vins.has('WBA3A5C50CF000001')).toBe(false);
  expect(vins.has('1HGCM82633A000001')).toBe(false);
  // A VIN new in one file in two raw forms is a conflict there already.
  expect(written.vinConflicts).toContainEqual(expect.objectContaining({
    kind: 'vin_raw_variant', vin_normalized: '5YJ3E1EA7KF000001', old_value: '5yj3e1ea7kf000001', new_value: '5YJ3E1EA7KF000001' }));
  // The U+001F value made its payload a text[]: replay must read that form too.
  const { rows: [arrays] } = await db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM raw.payloads WHERE vals IS NOT NULL');
  expect(arrays!.n).toBe(1);
  expect(written.lots.find((l) => l.lot_external_id === '82000001')).toMatchObject({ vin: '3VWFE21C04M000001' });
  await rm(dir, { recursive: true });
  return written;
}

beforeAll(async () => {
  db = await createTestDatabase();
  snapshot = await fill();
});

afterAll(async () => {
  await db?.drop();
});

/** Gives the calling test a database of its own, filled as the shared one is, with its snapshot, until it ends. */
async function ownFilledDatabase(): Promise<void> {
  const shared = { db, snapshot };
  const own = await createTestDatabase();
  db = own;
  onTestFinished(async () => {
    ({ db, snapshot } = shared);
    await own.drop();
  });
  snapshot = await fill();
}

describe('replay from raw', () => {
  it('on a database the live path filled, changes nothing: staging and the core tables are already what raw gives', async () => {
    const results = await replayAll();
    expect(results.length).toBe(13);
    for (const r of results) {
      expect(r.typedInserted + r.typedUpdated, r.path).toBe(0);
      expect(r.upserts.lots.inserted + r.upserts.lots.updated, r.path).toBe(0);
      expect(r.upserts.vehicles.inserted + r.upserts.vehicles.updated, r.path).toBe(0);
    }
    expect(await takeSnapshot()).toEqual(snapshot);
  });

  it('`replay --all` rebuilds emptied staging and core tables to exactly what the live path wrote (the CSVs are gone)', async () => {
    // Its own database, replayed once in full first (13 of the replays counted at the end): the
    // other tests here replay files of the shared one too.
    await ownFilledDatabase();
    await replayAll();
    // VIN conflicts too: the replay must find them again itself.
    await db.pool.query('TRUNCATE public.lots, public.vehicles, staging.copart_typed, audit.vin_conflicts');
    const { stdout } = await run(process.execPath, [CLI, 'replay', '--all', '--json'], {
      env: { ...process.env, DATABASE_URL: db.url, VINOPS_LOG_LEVEL: 'silent' },
    });
    // --json keys are snake_case, as in the database and `status --json`.
    const lines = stdout.trim().split('\n').map((l) => JSON.parse(l) as { outcome: string; typed_inserted: number; upserts: ReplayResult['upserts'] });
    // One line per file, then the lifecycle computed again over every pair in feed order.
    expect(lines.map((l) => l.outcome)).toEqual([...Array(13).fill('replayed'), 'lifecycle']);
    expect(lines.at(-1)).toMatchObject({ outcome: 'lifecycle', pairs: expect.any(Number) });
    lines.pop();
    const typedRows = lines.reduce((n, l) => n + l.typed_inserted, 0);
    expect(typedRows).toBe(snapshot.typed.length); // each payload typed once, though files repeat them
    expect(lines.reduce((n, l) => n + l.upserts.lots.inserted, 0)).toBe(snapshot.lots.length);
    // The same lots, vehicles, typed rows and VIN conflicts; the stale-row records untouched.
    expect(await takeSnapshot()).toEqual(snapshot);
    const { rows: [replays] } = await db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM audit.replays');
    expect(replays!.n).toBe(26);
  });

  it('`replay --file` twice: the second run finds nothing to do', async () => {
    const { rows: [f] } = await db.pool.query<{ file_id: string }>(`SELECT file_id FROM raw.csv_files WHERE path LIKE '%/g2.csv'`);
    const first = await replayOne(f!.file_id);
    expect(first.dataRows).toBe(600);
    expect(first.payloads).toBe(600);
    const second = await replayOne(f!.file_id);
    expect(second.typedInserted + second.typedUpdated).toBe(0);
    expect(second.upserts.lots.inserted + second.upserts.lots.updated).toBe(0);
    expect(second.upserts.lots.unchanged + second.upserts.lots.stale).toBe(first.upserts.lots.unchanged + first.upserts.lots.stale + first.upserts.lots.updated);
    expect(await takeSnapshot()).toEqual(snapshot);
  });

  it('repairs a typed row and a lot that no longer agree with raw, and keeps last write wins', async () => {
    const lot = '81000003';
    await db.pool.query(`UPDATE staging.copart_typed SET high_bid = NULL, auction_at = NULL WHERE lot_external_id = $1`, [lot]);
    await db.pool.query(`UPDATE public.lots SET high_bid = 1, sale_status = 'garbage', vin_issue = NULL WHERE lot_external_id = $1`, [lot]);
    await db.pool.query(`UPDATE public.lots SET sale_status = 'garbage' WHERE lot_external_id = '81000001'`);
    const { rows: [f] } = await db.pool.query<{ file_id: string }>(`SELECT file_id FROM raw.csv_files WHERE path LIKE '%/newer.csv'`);
    const r = await replayOne(f!.file_id);
    expect(r.typedUpdated).toBe(2); // both rows of lot 81000003 (700.0 and 900.0)
    expect(r.upserts.lots.updated).toBe(2); // 81000003 and 81000001
    expect(r.upserts.lots.stale).toBe(1); // the older row of 81000003 in the same file
    expect(await takeSnapshot()).toEqual(snapshot);
    const { rows: [row] } = await db.pool.query(`SELECT high_bid, vin, vin_issue FROM public.lots WHERE lot_external_id = $1`, [lot]);
    expect(row).toEqual({ high_bid: '900.0', vin: null, vin_issue: 'invalid' });

    // The older file replayed after the newer one does not win.
    const { rows: [o] } = await db.pool.query<{ file_id: string }>(`SELECT file_id FROM raw.csv_files WHERE path LIKE '%/older.csv'`);
    const older = await replayOne(o!.file_id);
    expect(older.upserts.lots).toEqual({ inserted: 0, updated: 0, unchanged: 0, stale: 1 });
    const { rows: [l] } = await db.pool.query(`SELECT sale_status, color FROM public.lots WHERE lot_external_id = '81000001'`);
    // The newer row arrived first and the older one was stale on arrival, so its Color never applied.
    expect(l).toEqual({ sale_status: 'On Approval', color: null });
  });

  it('names an unknown file and leaves everything as it was; the CLI refuses a malformed id', async () => {
    await expect(replayOne('00000000-0000-0000-0000-000000000000')).rejects.toThrow(ReplayError);
    await expect(replayOne('00000000-0000-0000-0000-000000000000')).rejects.toThrow(/no stored file with file_id 00000000-/);
    const bad = await run(process.execPath, [CLI, 'replay', '--file', 'nope'], { env: { ...process.env, DATABASE_URL: db.url } })
      .then(() => ({ code: 0, stderr: '' }), (e: { code: number; stderr: string }) => e);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/not a file_id/);
    expect(await takeSnapshot()).toEqual(snapshot);
  });
});
