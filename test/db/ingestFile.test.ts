import { copyFile, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { HEADER_V2, HEADER_V4 } from '../../src/feed/headers.js';
import { writeFeedFile } from '../../src/sample/feedGenerator.js';
import { ingestFile, type IngestResult } from '../../src/ingest/ingestFile.js';
import { TYPED_COLUMNS } from '../../src/feed/columns.js';
import { inNorthAmericanDst } from '../../src/feed/typing.js';
import { createTestDatabase, silentLog, type TestDatabase } from '../helpers/testDatabase.js';

const SAMPLES = new URL('../fixtures/', import.meta.url).pathname;
const REAL_FILES = ['real-2025-v3.csv', 'real-2026-v4.csv', 'real-2020-v1.csv'];

/**
 * The database the helpers below use: the file's shared one, which holds the three real files from
 * the start (as every test but the first three saw it when the tests ran in file order), or, for
 * the duration of a test that called ownDatabase(), that test's own.
 */
let db: TestDatabase;
let dir: string;
beforeAll(async () => {
  db = await createTestDatabase();
  dir = await mkdtemp(join(tmpdir(), 'vinops-ingest-'));
  for (const name of REAL_FILES) expect((await ingest(join(SAMPLES, name))).outcome).toBe('ingested');
});
afterAll(async () => { await db.drop(); });

/** Gives the calling test an empty database of its own (a clone of the migrated template) until it ends. */
async function ownDatabase(): Promise<void> {
  const shared = db;
  const own = await createTestDatabase();
  db = own;
  onTestFinished(async () => {
    db = shared;
    await own.drop();
  });
}

function ingest(path: string, options: { signal?: AbortSignal } = {}): Promise<IngestResult> {
  return ingestFile({ pool: db.pool, log: silentLog, maxRecordBytes: 1024 * 1024 }, path, options);
}

async function fixture(name: string, content: string | Buffer): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, content);
  return path;
}

/** raw.rows of a file, in row order. */
async function storedRows(fileId: string): Promise<{ row_no: number; payload_jsonb: Record<string, string> }[]> {
  const { rows } = await db.pool.query('SELECT row_no, payload_jsonb FROM raw.rows WHERE file_id = $1 ORDER BY row_no', [fileId]);
  return rows;
}

/** Every field of every row of a well-formed file, parsed independently by csv-parse, as header -> value. */
async function independentlyParsed(path: string): Promise<Record<string, string>[]> {
  const records = parse(await readFile(path), { bom: true, relax_column_count: false }) as string[][];
  const [header, ...data] = records;
  return data.map((r) => Object.fromEntries(header!.map((h, i) => [h, r[i]!])));
}

async function expectLossless(path: string, result: IngestResult): Promise<void> {
  expect(result.outcome).toBe('ingested');
  const expected = await independentlyParsed(path);
  const stored = await storedRows(result.fileId!);
  expect(stored.map((r) => r.row_no)).toEqual(expected.map((_, i) => i + 1));
  expect(stored.map((r) => r.payload_jsonb)).toEqual(expected);
}

/**
 * A pool over `pool` whose clients run `before(text)` ahead of each statement the ingest sends: a
 * hook to act in the middle of a load (another session's change, or a throw as a crash).
 */
function hookedPool(pool: pg.Pool, before: (text: string) => Promise<void>): pg.Pool {
  return {
    connect: async () => {
      const client = await pool.connect();
      const query = client.query.bind(client) as (...args: unknown[]) => Promise<unknown>;
      (client as { query: unknown }).query = (text: unknown, ...rest: unknown[]) =>
        typeof text === 'string' ? before(text).then(() => query(text, ...rest)) : query(text, ...rest);
      const release = client.release.bind(client);
      client.release = (err?: Error | boolean) => { (client as { query: unknown }).query = query; release(err); };
      return client;
    },
  } as unknown as pg.Pool;
}

const q = (v: string): string => `"${v.replaceAll('"', '""')}"`;
const line = (values: readonly string[]): string => `${values.map(q).join(',')}\n`;

/** A small V4 file from sample values: `rows` rows, each a copy of the first sample row with its own lot. */
async function smallV4(name: string, edit: (values: string[], i: number) => void = () => {}, rows = 5): Promise<string> {
  const sample = parse(await readFile(join(SAMPLES, 'real-2026-v4.csv'))) as string[][];
  let text = line(HEADER_V4);
  for (let i = 0; i < rows; i++) {
    const values = [...sample[1]!];
    values[0] = String(i + 1);
    values[8] = String(90000000 + i);
    edit(values, i);
    text += line(values);
  }
  return fixture(name, text);
}

describe('ingest: lossless and exactly once', () => {
  it.each(REAL_FILES)('%s: every field of every row, exactly as in the file', async (name) => {
    await ownDatabase(); // the shared one holds the real files already: here the file is new
    const result = await ingest(join(SAMPLES, name));
    await expectLossless(join(SAMPLES, name), result);
    const { rows } = await db.pool.query('SELECT * FROM audit.v_ingest_count WHERE file_id = $1', [result.fileId]);
    expect(rows[0].declared_rows).toBe(rows[0].actual_rows);
    expect(result.parseErrors).toBe(0);
  });

  it('records the header variant and what it lacks', async () => {
    const { rows } = await db.pool.query(`SELECT path, header_variant, missing_columns, jsonb_array_length(headers_jsonb) AS n
      FROM raw.csv_files WHERE path LIKE '%real-20%' ORDER BY path`);
    expect(rows.map((r) => [r.header_variant, r.n])).toEqual([['v1', 49], ['v3', 59], ['v4', 59]]);
    expect(rows[0].missing_columns).toContain('Seller Name');
    expect(rows[2].missing_columns).toEqual([]);
  });

  it('ingests a 56-column (v2) file mapped by name', async () => {
    const path = join(dir, 'v2.csv');
    await writeFeedFile(path, { rows: 50, header: HEADER_V2, seed: 7 });
    const result = await ingest(path);
    await expectLossless(path, result);
    const { rows } = await db.pool.query('SELECT header_variant FROM raw.csv_files WHERE file_id = $1', [result.fileId]);
    expect(rows[0].header_variant).toBe('v2');
  });

  it('skips the same bytes under any name, leaving the data untouched', async () => {
    const original = join(SAMPLES, 'real-2026-v4.csv');
    const before = await db.pool.query('SELECT count(*)::int AS files, (SELECT count(*)::int FROM raw.payloads) AS payloads FROM raw.csv_files');
    const again = await ingest(original);
    const copy = join(dir, 'renamed.csv');
    await copyFile(original, copy);
    const renamed = await ingest(copy);
    expect([again.outcome, renamed.outcome]).toEqual(['duplicate', 'duplicate']);
    const first = await db.pool.query(`SELECT file_id FROM raw.csv_files WHERE path = $1`, [original]);
    expect(renamed.fileId).toBe(first.rows[0].file_id);
    const after = await db.pool.query('SELECT count(*)::int AS files, (SELECT count(*)::int FROM raw.payloads) AS payloads FROM raw.csv_files');
    expect(after.rows[0]).toEqual(before.rows[0]);
    const runs = await db.pool.query(`SELECT outcome FROM audit.etl_runs WHERE path = $1`, [copy]);
    expect(runs.rows).toEqual([{ outcome: 'duplicate' }]);
  });

  it('stores a successor file by reference: only changed lots cost a new payload, every row still reads back', async () => {
    const a = join(dir, 'gen0.csv');
    const b = join(dir, 'gen1.csv');
    await writeFeedFile(a, { rows: 3000, seed: 42, generation: 0 });
    await writeFeedFile(b, { rows: 3000, seed: 42, generation: 1 });
    const first = await ingest(a);
    const second = await ingest(b);
    await expectLossless(a, first);
    await expectLossless(b, second);
    expect(first.newPayloads).toBe(3000);
    expect(second.newPayloads).toBeGreaterThan(0);
    expect(second.newPayloads).toBeLessThan(3000 * 0.05); // ~1 % updated + the new lot
  });

  it('loads a successor again in full when the file it was sent against is deleted with its payloads mid-load', async () => {
    const a = join(dir, 'gone0.csv');
    const b = join(dir, 'gone1.csv');
    await writeFeedFile(a, { rows: 2000, seed: 77, generation: 0 });
    await writeFeedFile(b, { rows: 2000, seed: 77, generation: 1 });
    const first = await ingest(a);
    // Once B's rows are in the temp table (most of them by A's payload addresses), an operator
    // deletes A and every payload only it used, as a retention job would.
    let deleted = false;
    const pool = hookedPool(db.pool, async (text) => {
      if (deleted || !text.startsWith('ANALYZE vinops_load')) return;
      deleted = true;
      await db.pool.query(`WITH gone AS (DELETE FROM raw.payloads WHERE hash IN
          (SELECT unnest(payload_hashes) FROM raw.file_contents WHERE file_id = $1) RETURNING hash)
        DELETE FROM staging.copart_typed WHERE payload_hash IN (SELECT hash FROM gone)`, [first.fileId]);
      await db.pool.query('DELETE FROM raw.csv_files WHERE file_id = $1', [first.fileId]);
    });
    const second = await ingestFile({ pool, log: silentLog, maxRecordBytes: 1024 * 1024 }, b);
    expect(deleted).toBe(true);
    await expectLossless(b, second);
    expect(second.newPayloads).toBe(2000); // nothing of A was left to refer to
    const { rows } = await db.pool.query('SELECT count(*)::int AS n FROM staging.copart_raw WHERE file_id = $1', [second.fileId]);
    expect(rows[0].n).toBe(2000);
  });
});

describe('ingest: statistics left by a rolled-back load', () => {
  // Regressions (kill -9 soak). A first load rolled back, then vacuumed, leaves raw.payloads and
  // staging "empty" (reltuples 0) over many pages, and public.lots / public.vehicles empty with no
  // pages. The next load planned (a) the core upsert's joins over the fresh payloads as nested loops
  // over sequential scans (20,000 rows: 170 s on PostgreSQL 15) and (b) its INSERT … WHERE NOT
  // EXISTS into lots and vehicles as a nested loop re-reading the table it was filling (60,000
  // rows: over 5 minutes); a 300,000-row file ran for hours. It must take seconds.
  it('a large load after a rolled-back one plans on fresh statistics and never re-reads the table it fills', { timeout: 60_000 }, async () => {
    const own = await createTestDatabase();
    try {
      const path = join(dir, 'after-rollback.csv');
      await writeFeedFile(path, { rows: 40_000, seed: 5 });
      const crashing = hookedPool(own.pool, async (text) => {
        if (text.startsWith('CREATE TEMP TABLE vinops_candidates')) throw new Error('simulated crash after the promote');
      });
      await expect(ingestFile({ pool: crashing, log: silentLog, maxRecordBytes: 1024 * 1024 }, path)).rejects.toThrow('simulated crash');
      // As autovacuum leaves them: it may not get the lock to truncate a table, or it may.
      await own.pool.query('VACUUM (TRUNCATE false) raw.payloads, staging.copart_typed');
      await own.pool.query('VACUUM public.lots, public.vehicles');
      const { rows: stats } = await own.pool.query(`SELECT relname, reltuples, relpages > 0 AS pages FROM pg_class
        WHERE oid IN ('raw.payloads'::regclass, 'staging.copart_typed'::regclass, 'public.lots'::regclass, 'public.vehicles'::regclass)
        ORDER BY relname`);
      expect(stats).toEqual([
        { relname: 'copart_typed', reltuples: 0, pages: true }, { relname: 'lots', reltuples: 0, pages: false },
        { relname: 'payloads', reltuples: 0, pages: true }, { relname: 'vehicles', reltuples: 0, pages: false },
      ]);
      const result = await ingestFile({ pool: own.pool, log: silentLog, maxRecordBytes: 1024 * 1024 }, path);
      expect(result.outcome).toBe('ingested');
      expect(result.upserts?.lots.inserted).toBe(40_000);
    } finally {
      await own.drop();
    }
  });
});

describe('ingest: real-feed tolerance', () => {
  it('keeps a bare quote inside a quoted field as a literal character', async () => {
    const make = HEADER_V4.indexOf('Make');
    const path = await smallV4('bare-quote.csv', (v, i) => { if (i === 0) v[make] = 'PLACEHOLDER'; if (i === 3) v[make] = 'ENDS WITH QUOTE PLACEHOLDER'; });
    const text = (await readFile(path, 'utf8'))
      .replace('"PLACEHOLDER"', '"125" SLEEPER CAB"')
      .replace('"ENDS WITH QUOTE PLACEHOLDER"', '"12" X 8""');
    await writeFile(path, text);
    const result = await ingest(path);
    expect(result.outcome).toBe('ingested');
    expect(result.parseErrors).toBe(0);
    const rows = await storedRows(result.fileId!);
    expect(rows).toHaveLength(5);
    expect(rows[0]!.payload_jsonb.Make).toBe('125" SLEEPER CAB');
    expect(rows[3]!.payload_jsonb.Make).toBe('12" X 8"');
    const { rows: file } = await db.pool.query('SELECT first_irregularity FROM raw.csv_files WHERE file_id = $1', [result.fileId]);
    expect(file[0].first_irregularity).toBe('line 2: quote inside a field');
    expect(rows[0]!.payload_jsonb.Model).toBe(rows[1]!.payload_jsonb.Model);
    expect(Object.keys(rows[0]!.payload_jsonb)).toHaveLength(59);
  });

  it('handles BOM, CRLF, a missing final newline, commas, doubled quotes, unicode and newlines in values', async () => {
    const values = HEADER_V4.map((_, i) => `v${i}`);
    const odd = [...values];
    odd[13] = 'A, B "C" \u00c9T\u00c9  x';
    odd[35] = 'line one\r\nline two\nthree';
    odd[36] = '';
    odd[43] = '  B030';
    const body = [HEADER_V4, values, odd, values].map((v) => v.map(q).join(',')).join('\r\n');
    const path = await fixture('bom-crlf.csv', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(body)]));
    const result = await ingest(path);
    await expectLossless(path, result);
    const { rows } = await db.pool.query('SELECT has_bom, line_ending FROM raw.csv_files WHERE file_id = $1', [result.fileId]);
    expect(rows[0]).toEqual({ has_bom: true, line_ending: 'CRLF' });
  });

  it('stores a value holding U+001F (the payload separator) losslessly', async () => {
    const color = HEADER_V4.indexOf('Color');
    // Lot numbers of their own: other fixtures' lots carry the same Last Updated Time.
    const path = await smallV4('unit-separator.csv', (v, i) => { v[8] = String(91000000 + i); if (i === 2) { v[13] = 'a\u001fb'; v[color] = 'c\u001fd'; } });
    const result = await ingest(path);
    await expectLossless(path, result);
    // The core tables read such a payload from its text[] form, at the same positions.
    const { rows } = await db.pool.query(`SELECT lot_external_id, color, location_zip FROM public.lots
      WHERE lot_external_id IN ('91000001', '91000002') ORDER BY lot_external_id`);
    const zip = (await independentlyParsed(path))[0]!['Location ZIP'];
    expect(rows).toEqual([
      { lot_external_id: '91000001', color: expect.not.stringContaining('\u001f'), location_zip: zip },
      { lot_external_id: '91000002', color: 'c\u001fd', location_zip: zip },
    ]);
  });

  it('keeps every value of a header with a repeated name', async () => {
    const header = [...HEADER_V4, 'Make'];
    const path = await fixture('dup-header.csv', line(header) + line(header.map((_, i) => `x${i}`)));
    const result = await ingest(path);
    expect(result.outcome).toBe('ingested');
    const rows = await storedRows(result.fileId!);
    expect(rows[0]!.payload_jsonb.Make).toBe('x11');
    expect(rows[0]!.payload_jsonb['Make (2)']).toBe('x59');
    expect(Object.keys(rows[0]!.payload_jsonb)).toHaveLength(60);
  });
});

describe('ingest: bad rows are recorded, the rest is kept', () => {
  it('routes malformed rows to audit.parse_errors with line numbers and raw text', async () => {
    const good = (i: number): string[] => HEADER_V4.map((_, c) => (c === 0 ? String(i) : c === 8 ? String(80000000 + i) : `r${i}c${c}`));
    const lines = [
      line(HEADER_V4),
      line(good(1)), // line 2
      line(good(2).slice(0, 58)), // line 3: 58 fields
      line([...good(3), 'extra']), // line 4: 60 fields
      line(good(4)).replace('r4c5', 'r4\u0000c5'), // line 5: NUL
      line(good(6)), // line 6
    ];
    const latin1 = Buffer.from(line(good(5)).replace('r5c5', 'caf\u00e9'), 'latin1'); // line 7: invalid UTF-8
    const tail = `"9","unbalanced`; // line 8: a quote never closed
    const path = await fixture('bad-rows.csv', Buffer.concat([Buffer.from(lines.join('')), latin1, Buffer.from(tail)]));
    const result = await ingest(path);
    expect(result.outcome).toBe('ingested');
    expect(result.dataRows).toBe(2);
    expect(result.parseErrors).toBe(5);
    expect(result.records).toBe(7);
    const { rows } = await db.pool.query(`SELECT line_no::int, record_no::int, error, raw_text, raw_length::int, raw_bytes
      FROM audit.parse_errors WHERE file_id = $1 ORDER BY line_no`, [result.fileId]);
    expect(rows.map((r) => [r.line_no, r.record_no])).toEqual([[3, 2], [4, 3], [5, 4], [7, 6], [8, 7]]);
    expect(rows[0].error).toBe('expected 59 fields, found 58');
    expect(rows[1].error).toBe('expected 59 fields, found 60');
    expect(rows[2].error).toMatch(/NUL byte/);
    expect(rows[3].error).toMatch(/invalid UTF-8/);
    expect(rows[4].error).toMatch(/unterminated quoted field/);
    expect(rows[0].raw_text).toBe(line(good(2).slice(0, 58)).trimEnd());
    expect(Buffer.compare(rows[3].raw_bytes, latin1.subarray(0, latin1.length - 1))).toBe(0);
    const stored = await storedRows(result.fileId!);
    expect(stored.map((r) => [r.row_no, r.payload_jsonb.Id])).toEqual([[1, '1'], [5, '6']]);
    const { rows: file } = await db.pool.query('SELECT row_count, record_count, parse_error_count FROM raw.csv_files WHERE file_id = $1', [result.fileId]);
    expect(file[0]).toEqual({ row_count: 2, record_count: 7, parse_error_count: 5 });
  });

  it.each([
    ['empty.csv', '', /empty file/],
    ['header-only.csv', line(HEADER_V4), /header only/],
    ['blocked.csv', '<html style="height:100%"><head><META NAME="ROBOTS" CONTENT="NOINDEX, NOFOLLOW"></head><body>Request unsuccessful. Incapsula incident ID: 1234</body></html>', /HTML page/],
    ['junk.bin', Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48]), /binary/],
    ['no-vin.csv', line(HEADER_V4.filter((h) => h !== 'VIN')) + line(HEADER_V4.slice(1).map(() => 'x')), /no "VIN" column/],
    ['no-lot.csv', line(['Id', 'Make']) + line(['1', 'FORD']), /no "Lot number" and "VIN" column/],
  ])('refuses %s with a clear reason and writes nothing but the audit record', async (name, content, reason) => {
    const path = await fixture(name, content);
    const before = await db.pool.query('SELECT (SELECT count(*) FROM raw.csv_files)::int AS f, (SELECT count(*) FROM raw.payloads)::int AS p');
    const result = await ingest(path);
    expect(result.outcome).toBe('rejected');
    expect(result.reason).toMatch(reason);
    const after = await db.pool.query('SELECT (SELECT count(*) FROM raw.csv_files)::int AS f, (SELECT count(*) FROM raw.payloads)::int AS p');
    expect(after.rows[0]).toEqual(before.rows[0]);
    const runs = await db.pool.query('SELECT outcome, reason FROM audit.etl_runs WHERE path = $1', [path]);
    expect(runs.rows).toHaveLength(1);
    expect(runs.rows[0].outcome).toBe('rejected');
    expect(runs.rows[0].reason).toMatch(reason);
  });

  it('leaves nothing behind when the load is aborted half-way', async () => {
    const path = join(dir, 'aborted.csv');
    await writeFeedFile(path, { rows: 20000, seed: 99 });
    const before = await db.pool.query('SELECT (SELECT count(*) FROM raw.csv_files)::int AS f, (SELECT count(*) FROM raw.payloads)::int AS p, (SELECT count(*) FROM staging.copart_typed)::int AS t');
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 30);
    await expect(ingest(path, { signal: controller.signal })).rejects.toThrow();
    const after = await db.pool.query('SELECT (SELECT count(*) FROM raw.csv_files)::int AS f, (SELECT count(*) FROM raw.payloads)::int AS p, (SELECT count(*) FROM staging.copart_typed)::int AS t');
    expect(after.rows[0]).toEqual(before.rows[0]);
    const runs = await db.pool.query('SELECT outcome FROM audit.etl_runs WHERE path = $1', [path]);
    expect(runs.rows).toEqual([{ outcome: 'failed' }]);
    // and the same file then ingests normally
    const result = await ingest(path);
    await expectLossless(path, result);
  });
});

describe('staging typing (docs/feed.md)', () => {
  it('types the real rows: auction time in UTC, 0.0 -> NULL, keys, dates, VINs', async () => {
    const { rows } = await db.pool.query(`SELECT s.* FROM staging.copart_raw s JOIN raw.csv_files f USING (file_id)
      WHERE f.path LIKE '%real-2025-v3.csv' ORDER BY s.row_no`);
    expect(rows).toHaveLength(109);
    const first = rows[0];
    expect(first.lot_external_id).toBe('24570139');
    expect(first.vin_normalized).toBe('2C3CDYCJ2DH744113');
    expect(first.vin_valid).toBe(true);
    expect(first.sale_date).toBeInstanceOf(Date);
    expect(first.auction_at.toISOString()).toBe('2025-03-28T17:00:00.000Z'); // 12:00 CDT
    expect(first.odometer).toBeNull(); // "0.0"
    expect(first.est_retail_value).toBe('22866.0');
    expect(first.repair_cost).toBe('22157.88');
    expect(first.high_bid).toBe('2000.0');
    expect(first.has_keys).toBe('EXM');
    expect(first.source_updated_at.toISOString()).toBe('2025-03-27T13:12:54.000Z');
    expect(first.processing_error).toBeNull();
    // Nova Scotia lots say AKST whatever the season: Atlantic local time, UTC-4, UTC-3 in summer.
    const ns = rows.filter((r) => r.time_zone === 'AKST');
    expect(ns).toHaveLength(3);
    for (const r of ns) {
      expect(r.currency_code).toBe('CAD');
      const day = (r.sale_date as Date).toISOString().slice(0, 10);
      const utcHour = (r.sale_time_hhmm as number) / 100 + (inNorthAmericanDst(day) ? 3 : 4);
      expect(r.auction_at.toISOString()).toBe(`${day}T${String(utcHour).padStart(2, '0')}:00:00.000Z`);
    }
    // Unscheduled: Sale Date 0 -> no sale date, no auction time, no error note.
    const unscheduled = rows.filter((r) => r.sale_date === null);
    expect(unscheduled).toHaveLength(2);
    expect(unscheduled.every((r) => r.auction_at === null && r.processing_error === null)).toBe(true);
    // Legacy short identifiers are valid VINs.
    const legacy = rows.find((r) => r.lot_external_id === '31476171');
    expect([legacy.vin_raw, legacy.vin_valid]).toEqual(['44305R', true]);
  });

  it('types rows into columns of the names, order and types of staging.copart_typed', async () => {
    const { rows } = await db.pool.query(`SELECT array_agg(attname::text ORDER BY attnum) AS cols,
        array_agg(atttypid::regtype::text ORDER BY attnum) AS types,
        (SELECT array_agg(t::regtype::text ORDER BY n) FROM unnest($1::text[]) WITH ORDINALITY AS u(t, n)) AS expected_types
      FROM pg_attribute WHERE attrelid = 'staging.copart_typed'::regclass AND attnum > 0 AND NOT attisdropped`,
    [['uuid', ...TYPED_COLUMNS.map(([, type]) => type), 'uuid']]);
    // After the typed columns: the file that first brought the payload (migrations/0011).
    expect(rows[0].cols).toEqual(['payload_hash', ...TYPED_COLUMNS.map(([name]) => name), 'first_file_id']);
    expect(rows[0].types).toEqual(rows[0].expected_types);
  });

  it('agrees with public.normalize_vin / is_valid_vin on every stored VIN', async () => {
    const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM staging.copart_typed
      WHERE vin_normalized IS DISTINCT FROM public.normalize_vin(vin_raw) OR vin_valid <> public.is_valid_vin(vin_raw)`);
    expect(rows[0].n).toBe(0);
  });

  it('keeps a row with odd values, typing them NULL with a note', async () => {
    const path = await smallV4('odd-values.csv', (v, i) => {
      if (i !== 1) return;
      v[HEADER_V4.indexOf('Sale Date M/D/CY')] = '20250230';
      v[HEADER_V4.indexOf('Odometer')] = '12,000';
      v[HEADER_V4.indexOf('Last Updated Time')] = 'yesterday';
      v[HEADER_V4.indexOf('VIN')] = '  1hgcm82633a004352 ';
    });
    const result = await ingest(path);
    expect(result.dataRows).toBe(5);
    const { rows } = await db.pool.query('SELECT * FROM staging.copart_raw WHERE file_id = $1 AND row_no = 2', [result.fileId]);
    const r = rows[0];
    expect(r.sale_date).toBeNull();
    expect(r.odometer).toBeNull();
    expect(r.source_updated_at).toBeNull();
    expect(r.vin_normalized).toBe('1HGCM82633A004352');
    expect(r.processing_error).toMatch(/Sale Date not YYYYMMDD: 20250230/);
    expect(r.processing_error).toMatch(/Odometer not a number/);
    expect(r.processing_error).toMatch(/Last Updated Time not ISO 8601 UTC/);
  });
});

describe('audit views', () => {
  it('declared rows equal stored rows for every file; unknown rates come from the rows', async () => {
    const { rows } = await db.pool.query('SELECT count(*)::int AS n FROM audit.v_ingest_count WHERE declared_rows <> actual_rows');
    expect(rows[0].n).toBe(0);
    const path = await smallV4('unknowns.csv', (v, i) => { if (i < 2) v[HEADER_V4.indexOf('VIN')] = ''; }, 4);
    const result = await ingest(path);
    expect(result.vinUnknownPct).toBe(50);
    const rate = await db.pool.query('SELECT vin_null_pct::float, lot_null_pct::float, total_rows FROM audit.v_unknown_rate WHERE file_id = $1', [result.fileId]);
    expect(rate.rows[0]).toEqual({ vin_null_pct: 50, lot_null_pct: 0, total_rows: 4 });
  });
});
