/**
 * The database connection lost in the middle of a file's COPY: the backend terminated
 * (pg_terminate_backend), and the server restarted. The daemon must stay up, count and record the
 * failed attempt, retry, and store the file exactly once. (The server stopped between files:
 * test/db/databaseOutage.test.ts.) And the other way round: the daemon killed mid-statement, whose
 * backend must not linger.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { runDaemon } from '../../src/daemon.js';
import { startEmbeddedPostgres } from '../../src/db/embedded.js';
import { writeFeedFile } from '../../src/sample/feedGenerator.js';
import { createTestDatabase, silentLog, type TestDatabase } from '../helpers/testDatabase.js';
import { get, parseSamples, sampleValue } from '../helpers/scrape.js';
import { freePort, waitFor } from '../helpers/wait.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Rows enough for the COPY to last well over a second on a slow machine. */
const ROWS = 30_000;

/** Runs `fn` on a short-lived connection to `url`. */
async function withDb<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  c.on('error', () => undefined);
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** Polls until a backend of the current database runs the load's COPY; returns its pid. */
async function copyInFlight(c: pg.Client): Promise<number> {
  for (const until = Date.now() + 60_000; Date.now() < until;) {
    const { rows } = await c.query(`SELECT pid FROM pg_stat_activity
      WHERE datname = current_database() AND state = 'active' AND query LIKE 'COPY vinops_load%'`);
    if (rows[0] !== undefined) return rows[0].pid as number;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error('no COPY seen within 60 s');
}

async function metrics(base: string): Promise<{ failed: number | undefined; ingested: number | undefined; dbUp: number | undefined }> {
  const s = parseSamples((await get(`${base}/metrics`)).body);
  return {
    failed: sampleValue(s, 'vinops_etl_files_total', { outcome: 'failed' }),
    ingested: sampleValue(s, 'vinops_etl_files_total', { outcome: 'ingested' }),
    dbUp: sampleValue(s, 'vinops_etl_db_up'),
  };
}

function startDaemon(url: string, raw: string, port: number, env: Record<string, string> = {}): () => Promise<void> {
  const config = loadConfig({ env: { DATABASE_URL: url, VINOPS_RAW_DIR: raw, VINOPS_SETTLE_MS: '0', VINOPS_RESCAN_INTERVAL_MS: '1000',
    VINOPS_METRICS_ADDR: `127.0.0.1:${port}`, VINOPS_RETRY_BASE_MS: '100', ...env } });
  const stop = new AbortController();
  const done = runDaemon(config, silentLog, { signal: stop.signal });
  return async () => { stop.abort(); await done; };
}

describe('the connection killed in the middle of a COPY', () => {
  let db: TestDatabase;
  beforeAll(async () => { db = await createTestDatabase(); });
  afterAll(async () => { await db.drop(); });

  it('pg_terminate_backend: the attempt fails and is counted, the retry stores the file once', async () => {
    const raw = await mkdtemp(join(tmpdir(), 'vinops-terminate-'));
    const path = join(raw, '2025/11/07/1200.csv');
    await writeFeedFile(path, { rows: ROWS, seed: 71 });
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const stop = startDaemon(db.url, raw, port);
    try {
      const terminated = await withDb(db.url, async (c) => {
        const pid = await copyInFlight(c);
        return (await c.query('SELECT pg_terminate_backend($1) AS ok', [pid])).rows[0].ok as boolean;
      });
      expect(terminated).toBe(true);
      await waitFor('the file after the retry', async () => {
        const { rows } = await db.pool.query(`SELECT state FROM raw.file_queue WHERE path = $1`, [path]);
        return rows[0]?.state === 'ingested';
      });
      const q = await db.pool.query(`SELECT attempts, last_error FROM raw.file_queue WHERE path = $1`, [path]);
      expect(q.rows[0]).toEqual({ attempts: 2, last_error: null });
      const runs = await db.pool.query(`SELECT outcome, reason, data_rows FROM audit.etl_runs WHERE path = $1 ORDER BY finished_at`, [path]);
      expect(runs.rows.map((r) => r.outcome)).toEqual(['failed', 'ingested']);
      // Which error surfaces first depends on where the COPY stream was: the server's message or the socket's.
      expect(runs.rows[0].reason).toMatch(/terminating connection due to administrator command|EPIPE|ECONNRESET|Connection terminated/);
      const files = await db.pool.query(`SELECT f.row_count, v.actual_rows FROM raw.csv_files f JOIN audit.v_ingest_count v USING (file_id) WHERE f.path = $1`, [path]);
      expect(files.rows).toEqual([{ row_count: ROWS, actual_rows: ROWS }]);
      expect(await metrics(base)).toEqual({ failed: 1, ingested: 1, dbUp: 1 });
      expect((await get(`${base}/readyz`)).status).toBe(200);
    } finally {
      await stop();
    }
  });
});

// Its own PostgreSQL, restarted under the running daemon.
describe('the server restarted in the middle of a COPY', () => {
  it('the daemon stays up, says the database is down, then stores the file once', async () => {
    const dir = join(tmpdir(), `vinops-restart-pg-${process.pid}-${Date.now()}`);
    const pgPort = await freePort();
    const start = (): ReturnType<typeof startEmbeddedPostgres> =>
      startEmbeddedPostgres({ dir, port: pgPort, log: silentLog, postgresFlags: ['-c', 'fsync=off'] });
    let cluster = await start();
    const raw = await mkdtemp(join(tmpdir(), 'vinops-restart-raw-'));
    const path = join(raw, '2025/11/07/1215.csv');
    await writeFeedFile(path, { rows: ROWS, seed: 72 });
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    // The failure cannot be written while the server is down: the claim is taken over after claimTimeoutMs.
    const stop = startDaemon(cluster.url, raw, port, { VINOPS_CLAIM_TIMEOUT_MS: '5000' });
    try {
      await withDb(cluster.url, copyInFlight);
      await cluster.stop();
      await waitFor('the daemon to see the database down', async () => (await get(`${base}/readyz`)).status === 503);
      expect((await metrics(base)).dbUp).toBe(0);
      expect((await get(`${base}/healthz`)).status).toBe(200);
      cluster = await start();

      const url = cluster.url;
      await waitFor('the file after the restart', async () => withDb(url, async (c) =>
        (await c.query(`SELECT state FROM raw.file_queue WHERE path = $1`, [path])).rows[0]?.state === 'ingested'), 90_000);
      await withDb(url, async (c) => {
        const files = await c.query(`SELECT f.row_count, v.actual_rows FROM raw.csv_files f JOIN audit.v_ingest_count v USING (file_id)`);
        expect(files.rows).toEqual([{ row_count: ROWS, actual_rows: ROWS }]);
        const runs = await c.query(`SELECT outcome FROM audit.etl_runs WHERE path = $1 AND outcome <> 'failed'`, [path]);
        expect(runs.rows).toEqual([{ outcome: 'ingested' }]);
        const q = await c.query(`SELECT attempts FROM raw.file_queue WHERE path = $1`, [path]);
        expect(q.rows[0].attempts).toBeGreaterThanOrEqual(2);
      });
      const m = await metrics(base);
      expect(m.failed).toBeGreaterThanOrEqual(1);
      expect([m.ingested, m.dbUp]).toEqual([1, 1]);
      await waitFor('ready again', async () => (await get(`${base}/readyz`)).status === 200);
    } finally {
      await stop();
      await cluster.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

// The process killed in the middle of a long statement: its backend must not go on running it
// (holding the file's locks while the retry waits) once the connection is gone.
describe('the daemon killed in the middle of a statement', () => {
  let db: TestDatabase;
  beforeAll(async () => { db = await createTestDatabase(); });
  afterAll(async () => { await db.drop(); });

  it('its backend notices the lost connection within seconds and ends the statement', { timeout: 60_000 }, async () => {
    // A process with the daemon's pool (src/db/pool.ts, built) runs a 120-second statement, then is killed.
    const child = spawn(process.execPath, ['--input-type=module', '-e', `
      import pino from 'pino';
      import { createPool } from ${JSON.stringify(pathToFileURL(join(ROOT, 'dist/db/pool.js')).href)};
      const pool = createPool(${JSON.stringify(db.url)}, pino({ level: 'silent' }), 1);
      await pool.query("SELECT 'vinops-long-statement', pg_sleep(120)");`], { cwd: ROOT, stdio: 'ignore' });
    try {
      const pid = await waitFor('the long statement', async () => (await withDb(db.url, (c) => c.query(`SELECT pid FROM pg_stat_activity
        WHERE datname = current_database() AND query LIKE '%vinops-long-statement%' AND pid <> pg_backend_pid()`))).rows[0]?.pid as number | undefined, 20_000);
      child.kill('SIGKILL');
      const killedAt = Date.now();
      await waitFor('its backend to end', async () => (await withDb(db.url, (c) => c.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid]))).rows.length === 0, 30_000);
      expect(Date.now() - killedAt).toBeLessThan(20_000);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
