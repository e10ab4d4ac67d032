import { spawnSync } from 'node:child_process';
import { appendFile, copyFile, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { runDaemon } from '../../src/daemon.js';
import { generateFeed } from '../../src/sample/feedGenerator.js';
import { Metrics } from '../../src/observe/metrics.js';
import { countQueue, type QueuedFile } from '../../src/queue/fileQueue.js';
import type { IngestResult } from '../../src/ingest/ingestFile.js';
import { createTestDatabase, silentLog, type TestDatabase } from '../helpers/testDatabase.js';
import { get, parseSamples, sampleValue, type Sample } from '../helpers/scrape.js';
import { freePort, waitFor } from '../helpers/wait.js';

let db: TestDatabase;
let raw: string;
let base: string;
let stopDaemon: () => Promise<void>;
const paths = {} as Record<'first' | 'second' | 'withErrors' | 'copy' | 'html' | 'gone', string>;

/**
 * One daemon over a tree holding every kind of outcome: two clean files, one with parse errors, a
 * copy of the first (duplicate), an HTML page (rejected) and a queue entry whose file is gone (fails
 * twice, then stays failed). The raw directory's name carries HTML metacharacters, so every path the
 * status page shows must come out escaped.
 */
beforeAll(async () => {
  db = await createTestDatabase();
  raw = await mkdtemp(join(tmpdir(), 'vinops-<b>&"metrics\'-'));
  const at = (hhmm: string): string => join(raw, '2025', '10', '23', `${hhmm}.csv`);
  Object.assign(paths, { first: at('1200'), second: at('1215'), withErrors: at('1230'), copy: at('1245'), html: at('1300'), gone: at('1100') });
  await mkdir(dirname(paths.first), { recursive: true });
  await feedWithUnknowns(paths.first, { rows: 300, seed: 21 }, 4, 10);
  await feedWithUnknowns(paths.second, { rows: 250, seed: 22 }, 5, 25);
  await feedWithUnknowns(paths.withErrors, { rows: 200, seed: 23 }, 3, 8);
  await appendFile(paths.withErrors, 'too,few,fields\n"unterminated,quote\n');
  await copyFile(paths.first, paths.copy);
  await writeFile(paths.html, '<html><body>Request blocked</body></html>\n');
  await db.pool.query(`INSERT INTO raw.file_queue (path, size, mtime) VALUES ($1, 1, now() - interval '1 hour')`, [paths.gone]);

  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  const config = loadConfig({ env: {
    DATABASE_URL: db.url, VINOPS_RAW_DIR: raw, VINOPS_METRICS_ADDR: `127.0.0.1:${port}`, VINOPS_SETTLE_MS: '200',
    VINOPS_RESCAN_INTERVAL_MS: '1000', VINOPS_MAX_ATTEMPTS: '2', VINOPS_RETRY_BASE_MS: '50', VINOPS_RETRY_MAX_MS: '100',
  } });
  const stop = new AbortController();
  const done = runDaemon(config, silentLog, { signal: stop.signal });
  stopDaemon = async () => { stop.abort(); await done; };
  await waitFor('every file to reach its final state', async () => {
    const { rows } = await db.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM raw.file_queue WHERE state IN ('ingested', 'duplicate', 'rejected', 'failed')`);
    return rows[0]!.n === 6;
  });
});

afterAll(async () => {
  await stopDaemon?.();
  await db?.drop();
});

/** A generated feed file whose every `vinEvery`-th row has no VIN and every `lotEvery`-th no lot number. */
async function feedWithUnknowns(path: string, options: { rows: number; seed: number }, vinEvery: number, lotEvery: number): Promise<void> {
  const lines = Buffer.concat([...generateFeed(options)]).toString('utf8').split('\n');
  const header = lines[0]!.split('","');
  const vin = header.indexOf('VIN');
  const lot = header.indexOf('Lot number');
  for (let i = 1; i < lines.length; i++) {
    if (lines[i] === '') continue;
    const cells = lines[i]!.split('","');
    if (i % vinEvery === 0) cells[vin] = '';
    if (i % lotEvery === 0) cells[lot] = '';
    lines[i] = cells.join('","');
  }
  await writeFile(path, lines.join('\n'));
}

async function scrape(): Promise<Sample[]> {
  const res = await get(`${base}/metrics`);
  expect(res.status).toBe(200);
  expect(res.type).toMatch(/^text\/plain; version=0\.0\.4/);
  return parseSamples(res.body);
}

describe('/metrics', () => {
  it('agrees with what raw.csv_files, raw.file_rows, audit and the queue hold', async () => {
    const s = await scrape();
    const v = (name: string, labels: Record<string, string> = {}): number | undefined => sampleValue(s, name, labels);

    const runs = await db.pool.query<{ outcome: string; n: number }>(`SELECT outcome, count(*)::int AS n FROM audit.etl_runs GROUP BY outcome`);
    const byOutcome = Object.fromEntries(runs.rows.map((r) => [r.outcome, r.n]));
    expect(byOutcome).toMatchObject({ ingested: 3, duplicate: 1, rejected: 1 });
    for (const outcome of ['ingested', 'duplicate', 'rejected'] as const) expect(v('vinops_etl_files_total', { outcome })).toBe(byOutcome[outcome]);
    // A failed attempt is recorded on its queue entry (the file may be gone before a run is written).
    const failed = await db.pool.query<{ n: number }>(
      `SELECT coalesce(sum(CASE WHEN state = 'failed' THEN attempts ELSE attempts - 1 END), 0)::int AS n FROM raw.file_queue`);
    expect(failed.rows[0]!.n).toBe(2);
    expect(v('vinops_etl_files_total', { outcome: 'failed' })).toBe(2);

    const stored = await db.pool.query<{ files: number; rows: number; bytes: number; parse_errors: number }>(
      `SELECT count(*)::int AS files, sum(row_count)::int AS rows, sum(bytes)::float8 AS bytes, sum(parse_error_count)::int AS parse_errors FROM raw.csv_files`);
    const fileRows = await db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM raw.file_rows');
    const parseErrors = await db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM audit.parse_errors');
    expect(stored.rows[0]).toEqual({ files: 3, rows: 750, bytes: expect.any(Number), parse_errors: 2 });
    expect(v('vinops_etl_rows_total')).toBe(stored.rows[0]!.rows);
    expect(v('vinops_etl_rows_total')).toBe(fileRows.rows[0]!.n);
    expect(v('vinops_etl_bytes_total')).toBe(stored.rows[0]!.bytes);
    expect(v('vinops_etl_parse_errors_total')).toBe(parseErrors.rows[0]!.n);

    // One duration per finished file (ingested, duplicate, rejected); one lag per ingested file.
    expect(v('vinops_etl_file_duration_seconds_count')).toBe(5);
    expect(v('vinops_etl_file_duration_seconds_bucket', { le: '+Inf' })).toBe(5);
    expect(v('vinops_etl_file_duration_seconds_bucket', { le: '600' })).toBe(5);
    expect(v('vinops_etl_lag_seconds_count')).toBe(3);

    const last = await db.pool.query<{ vin: number; lot: number }>(
      `SELECT round(vin_empty_rows::numeric / row_count, 4)::float8 AS vin, round(lot_empty_rows::numeric / row_count, 4)::float8 AS lot
         FROM raw.csv_files ORDER BY ingested_at DESC LIMIT 1`);
    expect(last.rows[0]!.vin).toBeGreaterThan(0.1);
    expect(v('vinops_etl_unknown_ratio', { field: 'vin' })).toBeCloseTo(last.rows[0]!.vin, 4);
    expect(v('vinops_etl_unknown_ratio', { field: 'lot' })).toBeCloseTo(last.rows[0]!.lot, 4);
    expect(v('vinops_etl_rows_per_second')).toBeGreaterThan(0);

    const queue = await countQueue(db.pool);
    for (const state of ['pending', 'running', 'failed'] as const) expect(v('vinops_etl_queue_files', { state })).toBe(queue[state]);
    expect(queue.failed).toBe(1);

    const success = await db.pool.query<{ at: number }>(
      `SELECT extract(epoch FROM max(finished_at))::float8 AS at FROM audit.etl_runs WHERE outcome = 'ingested'`);
    expect(v('vinops_etl_last_success_timestamp_seconds')).toBeGreaterThanOrEqual(success.rows[0]!.at - 1);
    expect(v('vinops_etl_last_success_timestamp_seconds')).toBeLessThanOrEqual(Date.now() / 1000);
    expect(v('vinops_etl_db_up')).toBe(1);
    expect(v('vinops_etl_file_running_seconds')).toBe(0);

    // The core upsert: every lot of the three files was new content, each inserted or updated once;
    // the counters agree with public.lots / public.vehicles and with the conflicts audited.
    const core = await db.pool.query<{ lots: number; vehicles: number; stale: number; conflicts: number }>(
      `SELECT (SELECT count(*) FROM public.lots)::int AS lots, (SELECT count(*) FROM public.vehicles)::int AS vehicles,
              (SELECT count(*) FROM audit.upsert_conflicts WHERE table_name = 'lots')::int AS stale,
              (SELECT count(*) FROM audit.vin_conflicts)::int AS conflicts`);
    const c = core.rows[0]!;
    expect(c.lots).toBeGreaterThan(0);
    expect(v('vinops_etl_upserts_total', { table: 'lots', action: 'inserted' })).toBe(c.lots);
    expect(v('vinops_etl_upserts_total', { table: 'vehicles', action: 'inserted' })).toBe(c.vehicles);
    expect(v('vinops_etl_upserts_total', { table: 'lots', action: 'stale' })).toBe(c.stale);
    expect(v('vinops_etl_vin_conflicts_total')).toBe(c.conflicts);
    for (const action of ['updated', 'unchanged', 'stale'] as const) {
      expect(v('vinops_etl_upserts_total', { table: 'vehicles', action })).toBeGreaterThanOrEqual(0);
    }

    // The lifecycle: every event recorded was counted (a pair computed again counts its events again),
    // the listed gauge is the lots of the newest full snapshot, the partial files are counted.
    const events = await db.pool.query<{ kind: string; n: number }>('SELECT kind, count(*)::int AS n FROM public.lot_events GROUP BY kind');
    expect(events.rows.length).toBeGreaterThan(0);
    for (const { kind, n } of events.rows) expect(v('vinops_etl_lot_events_total', { kind }), kind).toBeGreaterThanOrEqual(n);
    const lc = await db.pool.query<{ listed: number; partial: number }>(
      `SELECT (SELECT count(*) FROM public.lots WHERE listed)::int AS listed, (SELECT count(*) FROM raw.csv_files WHERE partial)::int AS partial`);
    expect(v('vinops_etl_lots_listed')).toBe(lc.rows[0]!.listed);
    expect(v('vinops_etl_partial_files_total')).toBe(lc.rows[0]!.partial);
  });

  it('carries the default process and Node.js metrics, and no unbounded label values', async () => {
    const s = await scrape();
    expect(s.some((x) => x.name === 'process_cpu_seconds_total')).toBe(true);
    expect(s.some((x) => x.name === 'nodejs_heap_size_used_bytes')).toBe(true);
    const allowed: Record<string, readonly string[]> = {
      outcome: ['ingested', 'duplicate', 'failed', 'rejected', 'sold', 'not_sold', 'on_approval', 'withdrawn',
        'downloaded', 'unchanged', 'not_modified', 'blocked'], state: ['pending', 'running', 'failed'],
      field: ['vin', 'lot'], table: ['lots', 'vehicles'], action: ['inserted', 'updated', 'unchanged', 'stale'],
      kind: ['appeared', 'disappeared', 'reappeared', 'relisted', 'changed'], where: ['raw_tree', 'database'],
    };
    for (const x of s.filter((x) => x.name.startsWith('vinops_etl_'))) {
      for (const [k, value] of Object.entries(x.labels)) {
        if (k === 'le') continue;
        expect(allowed[k], `${x.name}{${k}}`).toContain(value);
      }
    }
  });
});

describe('/metrics lint', () => {
  it('passes Prometheus\' own lint: no gauge carries a counter\'s _total suffix, and promtool check metrics is clean', async () => {
    const body = await (await fetch(`${base}/metrics`)).text();
    const gaugesNamedLikeCounters = [...body.matchAll(/^# TYPE (\S+_total) gauge$/gm)].map((m) => m[1]);
    expect(gaugesNamedLikeCounters).toEqual([]);
    expect(body).toMatch(/^nodejs_active_handles\{type="/m); // the per-type totals stay
    const found = spawnSync('sh', ['-c', 'command -v promtool'], { encoding: 'utf8' }).stdout.trim();
    // CI installs Debian's prometheus; a developer without it still gets the suffix check above.
    if (found === '' && process.env.CI) throw new Error('promtool is not installed (apt-get install prometheus)');
    if (found === '') return;
    const lint = spawnSync(found, ['check', 'metrics'], { input: body, encoding: 'utf8' });
    expect(`${lint.stdout}${lint.stderr}`.trim()).toBe('');
    expect(lint.status).toBe(0);
  });
});

describe('status page and probes', () => {
  it('GET / lists recent files, the queue and the last error, with every dynamic text escaped', async () => {
    const res = await get(`${base}/`);
    expect(res.status).toBe(200);
    expect(res.type).toMatch(/^text\/html/);
    const html = res.body;
    const escaped = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
    for (const p of Object.values(paths)) expect(html).toContain(escaped(p));
    expect(html).not.toContain('<b>'); // the raw directory's name, unescaped
    expect(html).toContain('ready</span></h1>');
    const queue = await countQueue(db.pool);
    for (const state of ['pending', 'running', 'failed', 'ingested', 'duplicate', 'rejected'] as const) {
      expect(html).toContain(`id="queue-${state}">${queue[state]}</td>`);
    }
    expect(queue).toMatchObject({ ingested: 3, duplicate: 1, rejected: 1, failed: 1 });
    const lastError = /<p id="last-error">(.*?)<\/p>/s.exec(html)?.[1] ?? '';
    expect(lastError).toMatch(/ENOENT|an HTML page/);
    expect(html).toContain('ENOENT'); // the failed file's error in the table
    expect(html).toContain('an HTML page, not a CSV');
    expect(html).toMatch(/3 files stored, 750 rows, 2 parse errors/);
  });

  it('/healthz and /readyz answer 200 while running; unknown paths 404, other methods 405, HEAD has no body', async () => {
    expect(await get(`${base}/healthz`)).toMatchObject({ status: 200, body: 'ok\n' });
    const ready = await get(`${base}/readyz`);
    expect(ready.status).toBe(200);
    expect(JSON.parse(ready.body)).toEqual({ ready: true, database: true, schema: true, watcher: true });
    expect((await get(`${base}/nope`)).status).toBe(404);
    expect((await get(`${base}/metrics`, { method: 'POST' })).status).toBe(405);
    expect(await get(`${base}/metrics`, { method: 'HEAD' })).toMatchObject({ status: 200, body: '' });
  });
});

describe('Metrics.recordOutcome', () => {
  const file: QueuedFile = { queueId: '1', path: '/raw/2025/10/23/1200.csv', size: 10, mtime: new Date(1_000_000), attempts: 1 };
  const source = {
    checkDatabase: async () => ({ up: false, schemaCurrent: false, queue: undefined, lastSuccessAt: undefined, error: 'down' }),
    longestRunningSeconds: () => 0,
  };
  const result = (r: Partial<IngestResult>): IngestResult => ({
    outcome: 'ingested', runId: 'r', path: file.path, fileId: 'f', sha256: 'x', bytes: 1000, dataRows: 10, parseErrors: 1, records: 11,
    newPayloads: 10, vinUnknownPct: 30, lotUnknownPct: 0, seconds: 2, rowsPerSecond: 5, reason: null, ...r,
  });

  it('counts failures but not a drain roll-back, successes but not rejections; lag from the file mtime', async () => {
    const m = new Metrics(source, { defaultMetrics: false });
    m.recordOutcome({ kind: 'failed', file, error: new Error('x'), final: false, aborted: true });
    m.recordOutcome({ kind: 'failed', file, error: new Error('x'), final: true, aborted: false });
    m.recordOutcome({ kind: 'done', file, result: result({ outcome: 'rejected', dataRows: 0, parseErrors: 3, bytes: 5 }) }, 2_000_000);
    let s = parseSamples((await m.scrape()).body);
    expect(sampleValue(s, 'vinops_etl_files_total', { outcome: 'failed' })).toBe(1);
    expect(sampleValue(s, 'vinops_etl_files_total', { outcome: 'rejected' })).toBe(1);
    expect(sampleValue(s, 'vinops_etl_parse_errors_total')).toBe(3);
    expect(sampleValue(s, 'vinops_etl_bytes_total')).toBe(0);
    expect(sampleValue(s, 'vinops_etl_last_success_timestamp_seconds')).toBe(0);
    expect(sampleValue(s, 'vinops_etl_db_up')).toBe(0);

    expect(sampleValue(s, 'vinops_etl_upserts_total', { table: 'lots', action: 'inserted' })).toBe(0);

    const tally = (inserted: number, updated: number, unchanged: number, stale: number) => ({ inserted, updated, unchanged, stale });
    m.recordOutcome({ kind: 'done', file, result: result({ upserts: { lots: tally(6, 2, 1, 1), vehicles: tally(5, 1, 2, 0), vinConflicts: 2, unknownSaleStatus: 3 } }) }, 1_061_000);
    s = parseSamples((await m.scrape()).body);
    expect(sampleValue(s, 'vinops_etl_upserts_total', { table: 'lots', action: 'inserted' })).toBe(6);
    expect(sampleValue(s, 'vinops_etl_upserts_total', { table: 'lots', action: 'stale' })).toBe(1);
    expect(sampleValue(s, 'vinops_etl_upserts_total', { table: 'vehicles', action: 'unchanged' })).toBe(2);
    expect(sampleValue(s, 'vinops_etl_vin_conflicts_total')).toBe(2);
    expect(sampleValue(s, 'vinops_etl_unknown_sale_status_total')).toBe(3);
    expect(sampleValue(s, 'vinops_etl_rows_total')).toBe(10);
    expect(sampleValue(s, 'vinops_etl_unknown_ratio', { field: 'vin' })).toBe(0.3);
    expect(sampleValue(s, 'vinops_etl_lag_seconds_sum')).toBe(61);
    expect(sampleValue(s, 'vinops_etl_lag_seconds_bucket', { le: '60' })).toBe(0);
    expect(sampleValue(s, 'vinops_etl_lag_seconds_bucket', { le: '120' })).toBe(1);
    // The database is down: the last success seen here stays.
    expect(sampleValue(s, 'vinops_etl_last_success_timestamp_seconds')).toBe(1061);
  });
});
