import { copyFile, mkdtemp } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { statusCommand } from '../../src/cli/statusCommand.js';
import { loadConfig } from '../../src/config.js';
import { DaemonStatus } from '../../src/observe/health.js';
import { writeFeedFile } from '../../src/sample/feedGenerator.js';
import { ingestFile, type IngestProgress, type IngestResult } from '../../src/ingest/ingestFile.js';
import { Metrics } from '../../src/observe/metrics.js';
import { enqueueFile, type QueuedFile } from '../../src/queue/fileQueue.js';
import { listRecentFiles, listRunningFiles } from '../../src/observe/statusQueries.js';
import { loadStatusPage, renderStatusPage } from '../../src/observe/statusPage.js';
import { Worker } from '../../src/queue/worker.js';
import { createTestDatabase, databaseUrl, silentLog, type TestDatabase } from '../helpers/testDatabase.js';
import { parseSamples, sampleValue } from '../helpers/scrape.js';
import { waitFor } from '../helpers/wait.js';

/** The advisory lock every load takes before its promote (src/db/locks.ts): holding it keeps a load in flight. */
const PAYLOAD_LOCK = [0x76696e6f, 2];

let db: TestDatabase;
let dir: string;
beforeAll(async () => {
  db = await createTestDatabase();
  dir = await mkdtemp(join(tmpdir(), 'vinops-status-'));
});
afterAll(async () => { await db.drop(); });

function ingest(path: string, options: Parameters<typeof ingestFile>[2] = {}): Promise<IngestResult> {
  return ingestFile({ pool: db.pool, log: silentLog, maxRecordBytes: 1 << 20 }, path, options);
}

/** Holds the payload lock from another session until release() is called. */
async function holdPayloadLock(url = db.url): Promise<{ release: () => Promise<void> }> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query('SELECT pg_advisory_lock($1, $2)', PAYLOAD_LOCK);
  return { release: async () => { await client.query('SELECT pg_advisory_unlock($1, $2)', PAYLOAD_LOCK); await client.end(); } };
}

/** Runs `vinops-etl status` in this process against `url`, capturing what it writes. */
async function status(url: string, options: { json: boolean; limit?: number }): Promise<{ code: number; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const write = { out: process.stdout.write, err: process.stderr.write };
  process.stdout.write = ((s: string | Uint8Array) => { out.push(String(s)); return true; }) as typeof process.stdout.write;
  process.stderr.write = ((s: string | Uint8Array) => { err.push(String(s)); return true; }) as typeof process.stderr.write;
  try {
    const code = await statusCommand(loadConfig({ env: { DATABASE_URL: url } }), silentLog, { json: options.json, limit: options.limit ?? 50 });
    return { code, stdout: out.join(''), stderr: err.join('') };
  } finally {
    process.stdout.write = write.out;
    process.stderr.write = write.err;
  }
}

describe('audit.etl_runs.finished_at and the last success', () => {
  it('an ingested file finishes when it is done, not when its transaction began', async () => {
    const path = join(dir, '2025/10/23/1200.csv');
    await writeFeedFile(path, { rows: 50, seed: 1 });
    const lock = await holdPayloadLock();
    const t0 = performance.now();
    const loading = ingest(path);
    await new Promise((r) => setTimeout(r, 1200)); // the load waits for the lock inside its transaction
    await lock.release();
    const r = await loading;
    const measuredMs = performance.now() - t0;
    expect(r.outcome).toBe('ingested');
    const { rows } = await db.pool.query<{ run_ms: number; duration_ms: number; ingested_after_finish_ms: number }>(
      `SELECT extract(epoch FROM r.finished_at - r.started_at)::float8 * 1000 AS run_ms, r.duration_ms,
              extract(epoch FROM f.ingested_at - r.finished_at)::float8 * 1000 AS ingested_after_finish_ms
         FROM audit.etl_runs r JOIN raw.csv_files f USING (file_id) WHERE r.run_id = $1`, [r.runId]);
    const run = rows[0]!;
    expect(run.run_ms).toBeGreaterThan(1150);
    expect(Math.abs(run.run_ms - measuredMs)).toBeLessThan(250);
    expect(Math.abs(run.run_ms - r.seconds * 1000)).toBeLessThan(50);
    expect(run.duration_ms).toBe(Math.round(run.run_ms));
    expect(Math.abs(run.ingested_after_finish_ms)).toBeLessThan(250); // the registry's clock agrees
  });

  it('a duplicate is not a success: the status page and the metric keep the last file stored', async () => {
    const first = join(dir, '2025/10/23/1215.csv');
    await writeFeedFile(first, { rows: 30, seed: 2 });
    const stored = await ingest(first);
    const copy = join(dir, '2025/10/23/1230.csv');
    await copyFile(first, copy);
    await new Promise((r) => setTimeout(r, 50));
    expect((await ingest(copy)).outcome).toBe('duplicate');
    const { rows } = await db.pool.query<{ outcome: string; finished_at: Date }>(
      `SELECT outcome, finished_at FROM audit.etl_runs WHERE path = ANY($1) ORDER BY finished_at`, [[first, copy]]);
    expect(rows.map((r) => r.outcome)).toEqual(['ingested', 'duplicate']);
    const storedAt = rows[0]!.finished_at;

    const s = new DaemonStatus(silentLog);
    s.attach({ pool: db.pool });
    expect((await s.checkDatabase()).lastSuccessAt).toEqual(storedAt);
    const html = renderStatusPage(await loadStatusPage(s));
    expect(html).toContain(`<span id="last-success">${storedAt.toISOString().slice(0, 19).replace('T', ' ')} UTC</span>`);

    const m = new Metrics({ checkDatabase: async () => ({ up: false, schemaCurrent: false, queue: undefined, lastSuccessAt: undefined, error: 'down' }),
      longestRunningSeconds: () => 0 }, { defaultMetrics: false });
    const queued: QueuedFile = { queueId: '1', path: copy, size: 1, mtime: new Date(), attempts: 1 };
    m.recordOutcome({ kind: 'done', file: queued, result: { ...stored, outcome: 'duplicate' } }, 5_000_000);
    expect(sampleValue(parseSamples((await m.scrape()).body), 'vinops_etl_last_success_timestamp_seconds')).toBe(0);
    m.recordOutcome({ kind: 'done', file: queued, result: stored }, 6_000_000);
    expect(sampleValue(parseSamples((await m.scrape()).body), 'vinops_etl_last_success_timestamp_seconds')).toBe(6000);
  });
});

describe('vinops-etl status', () => {
  it('lists files ingested outside the queue with their file_id, and a queue entry once, not once per attempt', async () => {
    const byHand = join(dir, '2025/10/24/0900.csv');
    await writeFeedFile(byHand, { rows: 40, seed: 3 });
    const r = await ingest(byHand);
    expect(r.outcome).toBe('ingested');
    const again = join(dir, '2025/10/24/0901.csv');
    await copyFile(byHand, again);
    expect((await ingest(again)).outcome).toBe('duplicate');

    // A queue entry whose first attempt failed and whose second stored the file: two runs, one entry.
    const queued = join(dir, '2025/10/24/0915.csv');
    await writeFeedFile(queued, { rows: 20, seed: 4 });
    await enqueueFile(db.pool, { path: queued, size: 1, mtime: new Date() });
    const { rows: [entry] } = await db.pool.query<{ queue_id: string }>('SELECT queue_id::text FROM raw.file_queue WHERE path = $1', [queued]);
    await expect(ingestFile({ pool: db.pool, log: silentLog, maxRecordBytes: 1 << 20, queueId: entry!.queue_id }, `${queued}.gone`)).rejects.toThrow();
    const done = await ingestFile({ pool: db.pool, log: silentLog, maxRecordBytes: 1 << 20, queueId: entry!.queue_id }, queued);
    await db.pool.query(`UPDATE raw.file_queue SET state = 'ingested', attempts = 2, file_id = $2, run_id = $3, finished_at = now() WHERE queue_id = $1`,
      [entry!.queue_id, done.fileId, done.runId]);

    const { code, stdout, stderr } = await status(db.url, { json: true });
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const out = JSON.parse(stdout) as { queue: Record<string, number>; in_flight: unknown[]; files: Record<string, unknown>[] };
    expect(out.in_flight).toEqual([]);
    const mine = out.files.filter((f) => f.path === byHand);
    expect(mine).toEqual([expect.objectContaining({ file_id: r.fileId, queue_id: null, state: 'ingested', rows: 40, attempts: 1,
      worker_name: `vinops-etl ingest on ${hostname()}/${process.pid}` })]);
    expect(mine[0]!.rows_per_second).toBeGreaterThan(0);
    const entries = out.files.filter((f) => String(f.path).startsWith(queued));
    expect(entries).toEqual([expect.objectContaining({ queue_id: entry!.queue_id, file_id: done.fileId, state: 'ingested', attempts: 2, rows: 20 })]);
    // A duplicate says which file it repeats, and shows that file's id.
    expect(out.files.filter((f) => f.path === again)).toEqual([expect.objectContaining({ state: 'duplicate', file_id: r.fileId, rows: 0,
      reason: `same bytes as file ${r.fileId} (${byHand})` })]);

    const text = await status(db.url, { json: false });
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(r.fileId!);
    expect(text.stdout).toContain(byHand);
    expect(text.stdout).not.toContain('no files');
  });

  it('does not migrate: an empty database is named as such, and left empty', async () => {
    const name = `vinops_status_empty_${process.pid}`;
    const admin = new pg.Client({ connectionString: databaseUrl('postgres') });
    await admin.connect();
    try {
      await admin.query(`DROP DATABASE IF EXISTS ${name}`);
      await admin.query(`CREATE DATABASE ${name}`);
      const { code, stdout, stderr } = await status(databaseUrl(name), { json: true });
      expect(code).toBe(1);
      expect(stdout).toBe('');
      expect(stderr).toMatch(/^vinops-etl status: the database has no vinops-etl schema yet \(no migration applied\): .*vinops-etl migrate/);
      const probe = new pg.Client({ connectionString: databaseUrl(name) });
      await probe.connect();
      const { rows } = await probe.query(`SELECT to_regclass('public.vinops_migrations') AS t, to_regnamespace('raw') AS raw`);
      await probe.end();
      expect(rows[0]).toEqual({ t: null, raw: null });
    } finally {
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
    }
  });

  it('works for a read-only role, and says what is missing when the role cannot read', async () => {
    // A file of its own for the role to read, whichever tests ran before.
    const path = join(dir, '2025/10/24/1000.csv');
    await writeFeedFile(path, { rows: 10, seed: 7 });
    expect((await ingest(path)).outcome).toBe('ingested');
    const role = `vinops_ro_${process.pid}`;
    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    const url = new URL(db.url);
    url.username = role;
    url.password = 'ro';
    try {
      await admin.query(`DROP ROLE IF EXISTS ${role}`);
      await admin.query(`CREATE ROLE ${role} LOGIN PASSWORD 'ro'`);
      await expect(status(url.toString(), { json: true })).rejects.toThrow(/permission denied for table vinops_migrations .*read access/);
      for (const schema of ['public', 'raw', 'audit']) {
        await admin.query(`GRANT USAGE ON SCHEMA ${schema} TO ${role}`);
        await admin.query(`GRANT SELECT ON ALL TABLES IN SCHEMA ${schema} TO ${role}`);
      }
      const r = await status(url.toString(), { json: true });
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect((JSON.parse(r.stdout) as { files: unknown[] }).files.length).toBeGreaterThan(0);
    } finally {
      await admin.query(`REASSIGN OWNED BY ${role} TO CURRENT_USER`).catch(() => undefined);
      await admin.query(`DROP OWNED BY ${role}`).catch(() => undefined);
      await admin.query(`DROP ROLE IF EXISTS ${role}`);
      await admin.end();
    }
  });
});

describe('progress of a long load', () => {
  it('is logged every few seconds with rows, MB/s and phase, and reported while the file is read', async () => {
    const path = join(dir, '2025/10/25/1200.csv');
    await writeFeedFile(path, { rows: 20_000, seed: 5 });
    const lines: Record<string, unknown>[] = [];
    const log = pino({ level: 'info' }, new Writable({ write(chunk: Buffer, _e, cb) { lines.push(JSON.parse(chunk.toString())); cb(); } }));
    const reports: IngestProgress[] = [];
    const lock = await holdPayloadLock();
    const loading = ingestFile({ pool: db.pool, log, maxRecordBytes: 1 << 20 }, path, { progressIntervalMs: 1, onProgress: (p) => reports.push(p) });
    await waitFor('the load to wait for the lock', async () => reports.some((p) => p.phase === 'promoting'));
    await lock.release();
    const r = await loading;
    expect(r.outcome).toBe('ingested');
    const reading = reports.filter((p) => p.phase === 'reading' && p.bytesRead > 0 && p.bytesRead < r.bytes);
    expect(reading.length).toBeGreaterThan(0);
    expect(reading.some((p) => p.rows > 0 && p.rows < 20_000)).toBe(true);
    expect(reports.map((p) => p.bytesRead)).toEqual([...reports.map((p) => p.bytesRead)].sort((a, b) => a - b));
    const promoting = reports.filter((p) => p.phase === 'promoting');
    expect(promoting[0]).toMatchObject({ rows: 20_000, bytesRead: r.bytes, bytes: r.bytes });
    expect(promoting[0]!.mbPerSecond).toBeGreaterThan(0);
    const logged = lines.filter((l) => l.msg === 'ingest progress');
    expect(logged.length).toBeGreaterThan(0);
    expect(logged.at(-1)).toMatchObject({ path, phase: expect.stringMatching(/^(promoting|upserting|committing)$/), rows: 20_000, bytes_read: r.bytes, read_pct: 100 });
    expect(logged.find((l) => l.phase === 'reading')).toMatchObject({ rows: expect.any(Number), mb_per_s: expect.any(Number), read_pct: expect.any(Number) });
    // The timer stops with the load.
    const n = lines.length;
    await new Promise((res) => setTimeout(res, 50));
    expect(lines.length).toBe(n);
  });

  it('a daemon worker stores it on the queue entry: status (another process) and the status page show the file in flight', async () => {
    const path = join(dir, '2025/10/25/1215.csv');
    const { bytes } = await writeFeedFile(path, { rows: 5000, seed: 6 });
    const worker = new Worker(db.pool, silentLog, { id: 3, claimTimeoutMs: 60_000, maxAttempts: 1, retryBaseMs: 100, retryMaxMs: 100, maxRecordBytes: 1 << 20,
      pollMs: 50, progressIntervalMs: 30 });
    const lock = await holdPayloadLock();
    try {
      await enqueueFile(db.pool, { path, size: bytes, mtime: new Date() });
      worker.start();
      const running = await waitFor('the progress on the queue entry', async () => {
        const [f] = await listRunningFiles(db.pool);
        return f?.phase === 'promoting' ? f : undefined;
      });
      expect(running).toMatchObject({ path, bytes, rows: 5000, bytes_read: bytes, worker: `${hostname()}:${process.pid}:3` });

      const json = await status(db.url, { json: true });
      expect(JSON.parse(json.stdout).in_flight).toEqual([expect.objectContaining({
        path, phase: 'promoting', rows: 5000, bytes_read: bytes, read_pct: 100, worker_name: `worker 3 on ${hostname()}/${process.pid}` })]);
      const text = await status(db.url, { json: false });
      expect(text.stdout).toMatch(new RegExp(`in flight:\\n  ${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\n    worker 3 on ${hostname()}/${process.pid}, for \\d+ s · promoting: 5,000 rows read, 100 % of `));

      const s = new DaemonStatus(silentLog);
      s.attach({ pool: db.pool, workers: [worker] });
      const html = renderStatusPage(await loadStatusPage(s));
      expect(html).toContain(`worker 3 on ${hostname()}/${process.pid}, for`);
      expect(html).toMatch(/promoting: 5,000 rows read, 100 % of [\d.]+ MB <progress max="100" value="100.0">/);
    } finally {
      await lock.release();
    }
    await waitFor('the file to be ingested', async () => (await listRecentFiles(db.pool, 100)).find((f) => f.path === path && f.state === 'ingested'));
    await worker.stop();
    expect(await listRunningFiles(db.pool)).toEqual([]);
  });
});
