import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExportError, exportFile } from '../../src/archive/exportFile.js';
import { ingestFile } from '../../src/ingest/ingestFile.js';
import { generateFeed } from '../../src/sample/feedGenerator.js';
import { createTestDatabase, silentLog, type TestDatabase } from '../helpers/testDatabase.js';

const SAMPLES = new URL('../fixtures/', import.meta.url).pathname;
const CLI = new URL('../../dist/cli/main.js', import.meta.url).pathname;

let db: TestDatabase;
let dir: string;
beforeAll(async () => {
  db = await createTestDatabase();
  dir = await mkdtemp(join(tmpdir(), 'vinops-export-'));
});
afterAll(async () => {
  await db.drop();
  await rm(dir, { recursive: true, force: true });
});

/** A writable that keeps what it is given. */
function collector(): { sink: Writable; bytes: () => Buffer } {
  const chunks: Buffer[] = [];
  return { sink: new Writable({ write(c: Buffer, _e, done) { chunks.push(c); done(); } }), bytes: () => Buffer.concat(chunks) };
}

async function ingestBytes(name: string, bytes: Buffer, maxRecordBytes = 1 << 20): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, bytes);
  const r = await ingestFile({ pool: db.pool, log: silentLog, maxRecordBytes }, path);
  expect(r.outcome).toBe('ingested');
  return r.fileId!;
}

async function exported(fileId: string): Promise<Buffer> {
  const { sink, bytes } = collector();
  const client = await db.pool.connect();
  try {
    await exportFile(client, fileId, sink);
  } finally {
    client.release();
  }
  return bytes();
}

async function residualsOf(fileId: string): Promise<{ n: number; bytes: number }> {
  const { rows } = await db.pool.query(`SELECT count(*)::int AS n, coalesce(sum(octet_length(bytes)), 0)::int AS bytes FROM raw.file_residuals WHERE file_id = $1`, [fileId]);
  return rows[0];
}

const feedText = (rows: number, seed: number, generation = 0, bareQuotes = false): string =>
  Buffer.concat([...generateFeed({ rows, seed, generation, bareQuotes })]).toString('utf8');

describe('vinops-etl export: a stored file\'s bytes from the database alone', () => {
  it('gives back each real sample byte for byte', async () => {
    for (const name of (await readdir(SAMPLES)).filter((n) => n.endsWith('.csv'))) {
      const original = await readFile(join(SAMPLES, name));
      const fileId = await ingestBytes(name, original);
      expect([name, (await exported(fileId)).equals(original)]).toEqual([name, true]);
      // The 2025/2026 samples are in today's style (all quoted, LF): nothing kept but the header. The
      // 2020 download left numbers unquoted: every record is kept verbatim.
      const { rows: [f] } = await db.pool.query(`SELECT record_count FROM raw.csv_files WHERE file_id = $1`, [fileId]);
      expect([name, (await residualsOf(fileId)).n]).toEqual([name, name === 'real-2020-v1.csv' ? f.record_count : 0]);
    }
  });

  it('the feed\'s own style (all quoted, LF) keeps nothing besides the values: a first file and its successor, no residuals', async () => {
    const first = Buffer.from(feedText(3000, 81));
    const next = Buffer.from(feedText(3000, 81, 1));
    const a = await ingestBytes('first.csv', first);
    const b = await ingestBytes('next.csv', next);
    expect((await exported(a)).equals(first)).toBe(true);
    expect((await exported(b)).equals(next)).toBe(true);
    expect(await residualsOf(a)).toEqual({ n: 0, bytes: 0 });
    expect(await residualsOf(b)).toEqual({ n: 0, bytes: 0 });
    const { rows: [f] } = await db.pool.query(`SELECT export_exact, octet_length(header_bytes) AS h, trailer_bytes FROM raw.csv_files WHERE file_id = $1`, [b]);
    expect(f).toMatchObject({ export_exact: true, trailer_bytes: null });
    expect(f.h).toBe(first.indexOf(10) + 1);
  });

  it('gives back every quirk: BOM, CRLF, mixed endings, blank lines anywhere, unquoted fields, bare quotes, U+001F, line breaks in values, parse errors, no final newline', async () => {
    const lines = feedText(400, 82, 0, true).split('\n').slice(0, -1);
    const header = lines[0]!;
    const unquote = (l: string): string => l.slice(1, -1).split('","').map((v) => (/[",\r\n]/.test(v) ? `"${v}"` : v)).join(',');
    const cells = (l: string): string[] => l.slice(1, -1).split('","');
    const withCell = (l: string, i: number, v: string): string => { const c = cells(l); c[i] = v; return `"${c.join('","')}"`; };
    const note = cells(header).indexOf('Special Note');
    const body = lines.slice(1);
    body[10] = unquote(body[10]!);                              // unquoted fields
    body[20] = withCell(body[20]!, note, 'unit\x1fseparator');  // U+001F in a value
    body[30] = withCell(body[30]!, note, 'two\nlines\r\nthree'); // line breaks in a value
    body[40] = '"too","few","fields"';                          // a parse error
    body[50] = `${body[50]!.slice(0, -1)}`;                     // an unterminated quote: a parse error
    body[60] = withCell(body[60]!, note, 'ab\u00e9\u4e2d\ud83d\ude97'); // multi-byte UTF-8
    const text = `\ufeff${header}\r\n\r\n${body.map((l, i) => `${l}${i % 7 === 3 ? '\r\n' : '\n'}${i === 70 ? '\n\n' : ''}`).join('')}`;
    const original = Buffer.concat([Buffer.from(text.replace(/\n$/, '')), Buffer.from('\n\r\n\n')]);
    const fileId = await ingestBytes('quirks.csv', original);
    const { rows: [f] } = await db.pool.query(`SELECT has_bom, line_ending, blank_lines, parse_error_count, export_exact FROM raw.csv_files WHERE file_id = $1`, [fileId]);
    expect(f.parse_error_count).toBeGreaterThanOrEqual(2);
    expect(f).toMatchObject({ has_bom: true, line_ending: 'mixed', export_exact: true });
    expect(f.blank_lines).toBeGreaterThanOrEqual(3);
    expect((await exported(fileId)).equals(original)).toBe(true);

    // No final newline; invalid UTF-8 and a NUL byte in records; a header without an Id column.
    const noId = lines.map((l) => `"${cells(l).slice(1).join('","')}"`);
    const tail = Buffer.concat([Buffer.from(`${noId.slice(0, 100).join('\n')}\n`), Buffer.from([0x22, 0xff, 0xfe, 0x22, 0x0a]),
      Buffer.from(`${noId[100]!.replace('"', '"\0')}\n${noId.slice(101, 120).join('\n')}`)]);
    const other = await ingestBytes('no-id-no-final-newline.csv', tail);
    expect((await exported(other)).equals(tail)).toBe(true);
  });

  it('a generated file with bare quotes comes back exactly, with only its irregular records kept verbatim', async () => {
    const original = Buffer.from(feedText(5000, 83, 0, true));
    const fileId = await ingestBytes('bare.csv', original);
    expect((await exported(fileId)).equals(original)).toBe(true);
    const { n } = await residualsOf(fileId);
    expect(n).toBeGreaterThan(0);
    expect(n).toBeLessThan(50); // ~0.1 % of the rows, not the file again
  });

  it('a record too long to keep is flagged at ingest and the export refuses, naming it; the CLI leaves no file behind', async () => {
    const lines = feedText(50, 84).split('\n');
    const cells = lines[5]!.slice(1, -1).split('","');
    cells[20] = 'N'.repeat(3 << 20); // 3 MiB, over a 2 MiB maxRecordBytes, longer than a read chunk
    lines[5] = `"${cells.join('","')}"`;
    const fileId = await ingestBytes('too-long.csv', Buffer.from(lines.join('\n')), 2 << 20);
    const { rows: [f] } = await db.pool.query(`SELECT export_exact, export_note FROM raw.csv_files WHERE file_id = $1`, [fileId]);
    expect(f.export_exact).toBe(false);
    expect(f.export_note).toMatch(/^line 6: a record longer than 2097152 bytes \(maxRecordBytes\) was not kept whole$/);
    await expect(exported(fileId)).rejects.toThrow(ExportError);
    await expect(exported(fileId)).rejects.toThrow(/cannot be written back exactly: line 6/);

    const out = join(dir, 'too-long.out.csv');
    const r = await cli(['export', fileId, '--out', out]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('cannot be written back exactly');
    expect((await readdir(dir)).filter((n) => n.startsWith('too-long.out'))).toEqual([]);
  });

  it('megabytes of blank lines are not kept in memory: counted, and the file flagged as not exactly exportable', async () => {
    const lines = feedText(20, 88).split('\n');
    // 1.5 MB of newlines after the tenth line, over a 1 MiB maxRecordBytes.
    const text = `${lines.slice(0, 10).join('\n')}\n${'\n'.repeat(1_500_000)}${lines.slice(10).join('\n')}`;
    const fileId = await ingestBytes('padded.csv', Buffer.from(text));
    const { rows: [f] } = await db.pool.query(`SELECT export_exact, export_note, blank_lines, row_count FROM raw.csv_files WHERE file_id = $1`, [fileId]);
    expect(f).toMatchObject({ export_exact: false, row_count: 20 });
    expect(f.blank_lines).toBe(1_500_000);
    expect(f.export_note).toMatch(/bytes of blank lines in a row \(maxRecordBytes\) were not kept$/);
    expect((await residualsOf(fileId)).bytes).toBeLessThanOrEqual((1 << 20) + 2000);
  });

  it('the CLI writes the file (--out) or stdout, byte for byte', async () => {
    const original = Buffer.from(feedText(2000, 85));
    const fileId = await ingestBytes('cli-copy.csv', original);
    const out = join(dir, 'cli.out.csv');
    const r = await cli(['export', fileId, '--out', out]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/cli\.out\.csv: \d+ bytes, sha256 [0-9a-f]{64} \(the original's\)/);
    expect((await readFile(out)).equals(original)).toBe(true);
    const piped = await cli(['export', fileId], true);
    expect(piped.code).toBe(0);
    expect(piped.raw.equals(original)).toBe(true);
    expect((await cli(['export', '00000000-0000-0000-0000-000000000000'])).stderr).toContain('no stored file');
  });

  it('a file stored before byte-exact export: the canonical rendering, checked by its sha256', async () => {
    const canonical = Buffer.from(feedText(300, 86));
    const a = await ingestBytes('old-canonical.csv', canonical);
    const irregular = Buffer.from(feedText(300, 87).replace('\n', '\n\n')); // a blank line after the header
    const b = await ingestBytes('old-irregular.csv', irregular);
    await db.pool.query(`UPDATE raw.csv_files SET header_bytes = NULL, trailer_bytes = NULL, export_exact = NULL WHERE file_id = ANY($1)`, [[a, b]]);
    await db.pool.query(`DELETE FROM raw.file_residuals WHERE file_id = ANY($1)`, [[a, b]]);
    expect((await exported(a)).equals(canonical)).toBe(true);
    await expect(exported(b)).rejects.toThrow(/not the original's .*stored before byte-exact export \(migration 0014\)/);
  });
});

function cli(args: string[], binary = false): Promise<{ code: number; stdout: string; stderr: string; raw: Buffer }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH, DATABASE_URL: db.url, VINOPS_LOG_LEVEL: 'warn' }, encoding: 'buffer', maxBuffer: 1 << 30 },
      (err, stdout, stderr) => resolve({ code: err === null ? 0 : Number((err as { code?: number }).code), stdout: stdout.toString(), stderr: stderr.toString(), raw: stdout }));
  });
}

