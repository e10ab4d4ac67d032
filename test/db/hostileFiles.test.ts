/**
 * Hostile CSV files, fed to the daemon as operators run it (runDaemon on a raw tree, default
 * maxRecordBytes): each must end ingested or rejected, never failed, with a clear error per bad
 * record (file, line, what is wrong) and every valid row kept. Cases already covered elsewhere are not
 * repeated here (test/db/ingestFile.test.ts: 58/60 fields, one NUL, one Latin-1 row, a final unbalanced
 * quote, BOM, CRLF, duplicate header names, empty, header-only, HTML block page, binary file).
 *
 * The expected outcome of every file comes from an independent reading of its bytes (see `oracle`):
 * a physical line is a valid row when it is UTF-8 without NUL, no longer than maxRecordBytes, and
 * csv-parse reads it strictly as one record of the header's width; every other non-blank line is
 * one parse error at that line.
 */
import { createHash } from 'node:crypto';
import { Writable } from 'node:stream';
import { ExportError, exportFile } from '../../src/archive/exportFile.js';
import { isUtf8 } from 'node:buffer';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { runDaemon } from '../../src/daemon.js';
import { generateFeed } from '../../src/sample/feedGenerator.js';
import { createTestDatabase, silentLog, type TestDatabase } from '../helpers/testDatabase.js';
import { get } from '../helpers/scrape.js';
import { freePort, waitFor } from '../helpers/wait.js';

const ROWS = 2000;
const MAX_RECORD_BYTES = loadConfig({ env: {} }).maxRecordBytes; // the default, 16 MiB
const MiB = 1024 * 1024;

/** The generated feed's physical lines (one record per line: the generator writes no line breaks in values). */
function feedLines(seed: number, rows = ROWS): string[] {
  const text = Buffer.concat([...generateFeed({ rows, seed })]).toString('utf8');
  return text.slice(0, -1).split('\n');
}

const joinLf = (lines: readonly string[]): Buffer => Buffer.from(`${lines.join('\n')}\n`);

/** A seeded byte source (xorshift32), so the junk is the same on every run. */
function junk(bytes: number, seed: number): Buffer {
  const out = Buffer.alloc(bytes);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < bytes; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

/** What a file must give, read independently of the daemon's reader. */
interface Expected {
  readonly header: string[];
  /** Valid rows in file order: record number and header -> value. */
  readonly rows: { recordNo: number; values: Record<string, string> }[];
  /** Bad records: physical line and record number. */
  readonly errors: { lineNo: number; recordNo: number }[];
}

function oracle(bytes: Buffer): Expected {
  const lines: Buffer[] = [];
  for (let at = 0; at < bytes.length;) {
    const nl = bytes.indexOf(10, at);
    const end = nl === -1 ? bytes.length : nl;
    lines.push(bytes.subarray(at, end > at && bytes[end - 1] === 13 ? end - 1 : end));
    at = nl === -1 ? bytes.length : nl + 1;
  }
  const header = (parse(lines[0]!) as string[][])[0]!;
  const rows: Expected['rows'] = [];
  const errors: Expected['errors'] = [];
  let recordNo = 0;
  lines.slice(1).forEach((line, i) => {
    if (line.length === 0) return; // a blank line is not a record
    recordNo++;
    let values: string[] | undefined;
    if (isUtf8(line) && !line.includes(0) && line.length <= MAX_RECORD_BYTES) {
      try {
        const records = parse(line, { relax_column_count: true }) as string[][];
        if (records.length === 1 && records[0]!.length === header.length) values = records[0];
      } catch {
        values = undefined;
      }
    }
    if (values === undefined) errors.push({ lineNo: i + 2, recordNo });
    else rows.push({ recordNo, values: Object.fromEntries(header.map((h, k) => [h, values![k]!])) });
  });
  return { header, rows, errors };
}

interface Case {
  readonly name: string;
  readonly bytes: Buffer;
  /** What every parse error of this file must say. */
  readonly error?: RegExp;
  /** Refused as a whole: the reason. */
  readonly rejected?: RegExp;
}

function buildCases(): Case[] {
  const cases: Case[] = [];
  const add = (c: Case): void => { cases.push(c); };
  const noteColumn = feedLines(1, 1)[0]!.slice(1, -1).split('","').indexOf('Special Note');
  const withValue = (line: string, column: number, value: string): string => {
    const cells = line.slice(1, -1).split('","');
    cells[column] = value;
    return `"${cells.join('","')}"`;
  };

  {
    // A quote that is never closed near the end: on the third-last line the last value loses its
    // closing quote (RFC 4180 would run on into the next line), on the last line a value is cut
    // right after its opening quote (runs on to the end of the file).
    const l = feedLines(11);
    l[ROWS - 2] = l[ROWS - 2]!.slice(0, -1);
    l[ROWS] = l[ROWS]!.slice(0, l[ROWS]!.indexOf('","', 200) + 4);
    add({ name: 'unbalanced-quote', bytes: joinLf(l), error: /unterminated quoted field/ });
  }
  {
    const l = feedLines(12);
    l[1000] = new Array(100_000).fill('"x"').join(',');
    add({ name: 'hundred-thousand-columns', bytes: joinLf(l), error: /^expected 59 fields, found 100000$/ });
  }
  {
    // 10 MiB in one value: within maxRecordBytes, so a valid row, stored whole.
    const l = feedLines(13);
    l[500] = withValue(l[500]!, noteColumn, 'N'.repeat(10 * MiB));
    add({ name: 'ten-megabyte-field', bytes: joinLf(l) });
  }
  {
    // A value larger than maxRecordBytes: that record is the error, the rest is read.
    const l = feedLines(14);
    l[700] = withValue(l[700]!, noteColumn, 'N'.repeat(MAX_RECORD_BYTES + MiB));
    add({ name: 'field-over-max-record-bytes', bytes: joinLf(l), error: new RegExp(`^record longer than ${MAX_RECORD_BYTES} bytes \\(maxRecordBytes\\)$`) });
  }
  {
    // A file preallocated and cut short by a crash of the writer: its tail is NUL bytes.
    const body = joinLf(feedLines(15));
    add({ name: 'nul-padded-tail', bytes: Buffer.concat([body, Buffer.alloc(64 * 1024)]), error: /NUL byte/ });
  }
  {
    // A torn write: 4 KiB of NUL bytes over the middle of the file, line breaks included.
    const body = joinLf(feedLines(16));
    body.fill(0, Math.floor(body.length / 2) + 123, Math.floor(body.length / 2) + 123 + 4096);
    add({ name: 'nul-block-inside', bytes: body, error: /NUL byte/ });
  }
  {
    // The whole file in Latin-1 (characters outside it as '?'): rows with accents are invalid UTF-8.
    const text = `${feedLines(17).join('\n')}\n`.replace(/[^\u0000-\u00ff]/g, '?');
    add({ name: 'latin1', bytes: Buffer.from(text, 'latin1'), error: /^invalid UTF-8 at byte \d+ of the record$/ });
  }
  {
    // 8 KiB of binary junk in the middle (quotes, commas, line breaks, NULs among it).
    const l = feedLines(18);
    const bytes = Buffer.concat([joinLf(l.slice(0, 1001)), junk(8192, 18), Buffer.from('\n'), joinLf(l.slice(1001))]);
    add({ name: 'binary-junk-inside', bytes, error: /NUL byte|invalid UTF-8|expected 59 fields|unterminated quoted field/ });
  }
  {
    // Line endings mixed: every third record ends CRLF. Every row is valid; no value keeps a CR.
    const l = feedLines(19);
    add({ name: 'mixed-crlf-lf', bytes: Buffer.from(l.map((x, i) => `${x}${i % 3 === 0 ? '\r\n' : '\n'}`).join('')) });
  }
  {
    // A download cut in the middle of the last row.
    const body = joinLf(feedLines(20));
    const lastRowStart = body.lastIndexOf(10, body.length - 2) + 1;
    add({ name: 'truncated-mid-row', bytes: body.subarray(0, lastRowStart + 250), error: /unterminated quoted field|expected 59 fields/ });
  }
  // Refused as a whole, with nothing stored.
  add({ name: 'all-nul-preallocated', bytes: Buffer.alloc(MiB), rejected: /^binary data, not a CSV \(NUL byte at offset 0\)$/ });
  add({
    name: 'utf16-export',
    bytes: Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(feedLines(21, 20).join('\r\n'), 'utf16le')]),
    rejected: /^binary data, not a CSV/,
  });
  return cases;
}

let db: TestDatabase;
let raw: string;
let base: string;
let stopDaemon: (() => Promise<void>) | undefined;
const cases = buildCases();
const pathOf = new Map<string, string>();

beforeAll(async () => {
  db = await createTestDatabase();
  raw = await mkdtemp(join(tmpdir(), 'vinops-hostile-'));
  for (const [i, c] of cases.entries()) {
    const path = join(raw, '2025', '11', '03', `${String(i).padStart(2, '0')}00.csv`);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, c.bytes);
    pathOf.set(c.name, path);
  }
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  const config = loadConfig({ env: { DATABASE_URL: db.url, VINOPS_RAW_DIR: raw, VINOPS_SETTLE_MS: '0', VINOPS_RESCAN_INTERVAL_MS: '1000',
    VINOPS_METRICS_ADDR: `127.0.0.1:${port}` } });
  const stop = new AbortController();
  const done = runDaemon(config, silentLog, { signal: stop.signal });
  stopDaemon = async () => { stop.abort(); await done; };
  await waitFor('every hostile file to be finished', async () => {
    const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM raw.file_queue WHERE state IN ('ingested', 'rejected', 'failed', 'duplicate')`);
    return rows[0].n === cases.length;
  }, 110_000);
});

afterAll(async () => {
  await stopDaemon?.();
  await db?.drop();
  await rm(raw, { recursive: true, force: true }); // ~30 MB of hostile files
});

describe('hostile files through the daemon', () => {
  it('none crashes it or fails: each is ingested or rejected, and the daemon stays ready', async () => {
    const { rows } = await db.pool.query(`SELECT path, state, attempts FROM raw.file_queue ORDER BY path`);
    expect(rows.map((r) => [r.path, r.state, r.attempts])).toEqual(
      cases.map((c) => [pathOf.get(c.name), c.rejected ? 'rejected' : 'ingested', 1]));
    expect((await get(`${base}/healthz`)).status).toBe(200);
    expect((await get(`${base}/readyz`)).status).toBe(200);
    const counts = await db.pool.query('SELECT count(*)::int AS n FROM audit.v_ingest_count WHERE declared_rows <> actual_rows');
    expect(counts.rows[0].n).toBe(0);
  });

  it.each(cases.filter((c) => !c.rejected).map((c) => [c.name, c] as const))('%s: a clear error per bad record, every valid row kept', async (_name, c) => {
    const path = pathOf.get(c.name)!;
    const expected = oracle(c.bytes);
    if (c.error !== undefined) expect(expected.errors.length).toBeGreaterThan(0); // the case really holds bad records
    const run = await db.pool.query(`SELECT run_id, file_id, outcome, data_rows, parse_errors, reason FROM audit.etl_runs WHERE path = $1`, [path]);
    expect(run.rows).toHaveLength(1);
    const r = run.rows[0];
    expect([r.outcome, r.data_rows, r.parse_errors, r.reason]).toEqual(['ingested', expected.rows.length, expected.errors.length, null]);

    // Every parse error: this file, its line, and what is wrong.
    const errs = await db.pool.query(`SELECT path, file_id, line_no::int, record_no::int, error FROM audit.parse_errors WHERE run_id = $1 ORDER BY line_no`, [r.run_id]);
    expect(errs.rows.map((e) => ({ lineNo: e.line_no, recordNo: e.record_no }))).toEqual(expected.errors);
    for (const e of errs.rows) {
      expect(e.path).toBe(path);
      expect(e.file_id).toBe(r.file_id);
      expect(e.error).toMatch(c.error!);
    }

    // Every valid row, every value exactly as in the file, in file order; rows + errors = records.
    const file = await db.pool.query(`SELECT sha256, row_count, record_count, parse_error_count, line_ending FROM raw.csv_files WHERE file_id = $1`, [r.file_id]);
    expect(file.rows[0]).toMatchObject({
      sha256: createHash('sha256').update(c.bytes).digest('hex'),
      row_count: expected.rows.length,
      record_count: expected.rows.length + expected.errors.length,
      parse_error_count: expected.errors.length,
    });
    const stored = await db.pool.query(`SELECT row_no, payload_jsonb FROM raw.rows WHERE file_id = $1 ORDER BY row_no`, [r.file_id]);
    expect(stored.rows.map((s) => s.row_no)).toEqual(expected.rows.map((x) => x.recordNo));
    expect(stored.rows.map((s) => s.payload_jsonb)).toEqual(expected.rows.map((x) => x.values));
    if (c.name === 'mixed-crlf-lf') expect(file.rows[0].line_ending).toBe('mixed');
  });

  it.each(cases.filter((c) => !c.rejected).map((c) => [c.name, c] as const))('%s: export gives back the original bytes (or the file says why it cannot)', async (_name, c) => {
    const { rows: [f] } = await db.pool.query(`SELECT file_id, export_exact, export_note FROM raw.csv_files WHERE path = $1`, [pathOf.get(c.name)]);
    const chunks: Buffer[] = [];
    const sink = new Writable({ write(chunk: Buffer, _e, done) { chunks.push(chunk); done(); } });
    const client = await db.pool.connect();
    try {
      if (c.name === 'field-over-max-record-bytes') {
        // Its tail was skipped unread (memory stays flat): the one input that cannot come back.
        expect(f).toMatchObject({ export_exact: false, export_note: expect.stringMatching(/^line 701: a record longer than \d+ bytes \(maxRecordBytes\) was not kept whole$/) });
        await expect(exportFile(client, f.file_id, sink)).rejects.toThrow(ExportError);
        return;
      }
      expect(f.export_exact).toBe(true);
      await exportFile(client, f.file_id, sink);
    } finally {
      client.release();
    }
    expect(Buffer.concat(chunks).equals(c.bytes)).toBe(true);
  });

  it('keeps the raw bytes of an oversized bad record, capped, with its true length', async () => {
    const c = cases.find((x) => x.name === 'hundred-thousand-columns')!;
    const line = c.bytes.toString('utf8').split('\n')[1000]!; // l[1000] of the case: physical line 1001
    const { rows } = await db.pool.query(`SELECT raw_length::int, raw_bytes FROM audit.parse_errors WHERE path = $1`, [pathOf.get(c.name)]);
    expect(rows).toHaveLength(1);
    expect(rows[0].raw_length).toBe(Buffer.byteLength(line));
    expect(rows[0].raw_bytes.length).toBeLessThan(rows[0].raw_length);
    expect(Buffer.compare(rows[0].raw_bytes, Buffer.from(line).subarray(0, rows[0].raw_bytes.length))).toBe(0);
  });

  it.each(cases.filter((c) => c.rejected).map((c) => [c.name, c] as const))('%s: refused with a clear reason, nothing stored', async (_name, c) => {
    const path = pathOf.get(c.name)!;
    const run = await db.pool.query(`SELECT outcome, reason, file_id FROM audit.etl_runs WHERE path = $1`, [path]);
    expect(run.rows).toHaveLength(1);
    expect(run.rows[0].outcome).toBe('rejected');
    expect(run.rows[0].reason).toMatch(c.rejected!);
    expect(run.rows[0].file_id).toBeNull();
    const q = await db.pool.query(`SELECT state, last_error FROM raw.file_queue WHERE path = $1`, [path]);
    expect(q.rows[0]).toEqual({ state: 'rejected', last_error: run.rows[0].reason });
    const files = await db.pool.query(`SELECT count(*)::int AS n FROM raw.csv_files WHERE path = $1`, [path]);
    expect(files.rows[0].n).toBe(0);
  });
});
