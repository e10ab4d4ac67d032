import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Writable } from 'node:stream';
import pg from 'pg';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { runDaemon } from '../../src/daemon.js';
import { startEmbeddedPostgres } from '../../src/db/embedded.js';
import { writeFeedFile } from '../../src/sample/feedGenerator.js';
import { silentLog } from '../helpers/testDatabase.js';
import { get, parseSamples, sampleValue } from '../helpers/scrape.js';
import { freePort, waitFor } from '../helpers/wait.js';

/** /readyz's status and what /metrics says about the database, each within the scrape's bound. */
async function probe(base: string): Promise<{ ready: number; dbUp: number | undefined; pending: number | undefined }> {
  const t0 = Date.now();
  const [ready, metrics] = await Promise.all([get(`${base}/readyz`), get(`${base}/metrics`)]);
  expect(Date.now() - t0).toBeLessThan(5000); // a scrape never hangs on the database
  const s = parseSamples(metrics.body);
  return { ready: ready.status, dbUp: sampleValue(s, 'vinops_etl_db_up'), pending: sampleValue(s, 'vinops_etl_queue_files', { state: 'pending' }) };
}



// Its own PostgreSQL (not the shared test server), stopped and started under a running daemon.
describe('daemon: the database goes away and comes back', () => {
  it('stays up, retries, says not ready meanwhile, and ingests what arrived meanwhile exactly once', async () => {
    const dir = join(tmpdir(), `vinops-outage-pg-${process.pid}-${Date.now()}`);
    const port = await freePort();
    const metricsPort = await freePort();
    const base = `http://127.0.0.1:${metricsPort}`;
    const start = (): ReturnType<typeof startEmbeddedPostgres> =>
      startEmbeddedPostgres({ dir, port, log: silentLog, postgresFlags: ['-c', 'fsync=off'] });
    let cluster = await start();
    const raw = await mkdtemp(join(tmpdir(), 'vinops-outage-raw-'));
    const config = loadConfig({ env: { DATABASE_URL: cluster.url, VINOPS_RAW_DIR: raw, VINOPS_SETTLE_MS: '200', VINOPS_RESCAN_INTERVAL_MS: '1000',
      VINOPS_METRICS_ADDR: `127.0.0.1:${metricsPort}` } });
    const stop = new AbortController();
    const daemon = runDaemon(config, silentLog, { signal: stop.signal });
    const count = async (): Promise<number | undefined> => {
      const c = new pg.Client({ connectionString: cluster.url });
      await c.connect();
      try {
        const { rows } = await c.query(`SELECT count(*)::int AS n FROM raw.file_queue WHERE state = 'ingested'`);
        return rows[0].n as number;
      } finally {
        await c.end();
      }
    };
    try {
      const first = join(raw, '2025/10/21/1200.csv');
      await mkdir(dirname(first), { recursive: true });
      await writeFeedFile(first, { rows: 100, seed: 1 });
      await waitFor('the first file', async () => ((await count()) === 1 ? true : undefined));
      expect(await probe(base)).toEqual({ ready: 200, dbUp: 1, pending: 0 });

      await cluster.stop(); // the database goes away
      expect(await probe(base)).toEqual({ ready: 503, dbUp: 0, pending: undefined });
      const second = join(raw, '2025/10/21/1215.csv');
      await writeFeedFile(second, { rows: 120, seed: 2 });
      await new Promise((r) => setTimeout(r, 2500)); // the daemon meets the outage (claims, re-scans)
      expect((await get(`${base}/healthz`)).status).toBe(200);

      cluster = await start(); // and comes back on the same port
      await waitFor('the file that arrived during the outage', async () => ((await count()) === 2 ? true : undefined), 90_000);
      await waitFor('ready again', async () => (await get(`${base}/readyz`)).status === 200);
      const c = new pg.Client({ connectionString: cluster.url });
      await c.connect();
      const { rows } = await c.query(`SELECT path, row_count FROM raw.csv_files ORDER BY path`);
      await c.end();
      expect(rows).toEqual([{ path: first, row_count: 100 }, { path: second, row_count: 120 }]);
    } finally {
      stop.abort();
      await daemon;
      await cluster.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('waits for a database that is not there at start (its error logged whole once, then one line per retry), then migrates and works', async () => {
    const dir = join(tmpdir(), `vinops-late-pg-${process.pid}-${Date.now()}`);
    const port = await freePort();
    const raw = await mkdtemp(join(tmpdir(), 'vinops-late-raw-'));
    const file = join(raw, '2025/10/22/1200.csv');
    await mkdir(dirname(file), { recursive: true });
    await writeFeedFile(file, { rows: 80, seed: 3 });
    // The URL the cluster will have once it runs: made (with its own password) and stopped first.
    const made = await startEmbeddedPostgres({ dir, port, log: silentLog, postgresFlags: ['-c', 'fsync=off'] });
    const url = made.url;
    await made.stop();
    const config = loadConfig({ env: { DATABASE_URL: url, VINOPS_RAW_DIR: raw, VINOPS_SETTLE_MS: '200', VINOPS_RESCAN_INTERVAL_MS: '1000',
      VINOPS_METRICS_ADDR: '127.0.0.1:0' } });
    let logged = '';
    const log = pino({ level: 'debug' }, new Writable({ write(chunk, _enc, done) { logged += String(chunk); done(); } }));
    const stop = new AbortController();
    const daemon = runDaemon(config, log, { signal: stop.signal, reconnect: { outageBaseMs: 200, outageMaxMs: 400 } });
    await new Promise((r) => setTimeout(r, 1500)); // the daemon fails to connect and keeps retrying
    expect(logged.match(/database still not available; retrying/g)?.length).toBeGreaterThanOrEqual(2);
    expect(logged.match(/"stack"/g)).toHaveLength(1);
    const cluster = await startEmbeddedPostgres({ dir, port, log: silentLog, postgresFlags: ['-c', 'fsync=off'] });
    try {
      expect(cluster.url).toBe(url);
      await waitFor('the file', async () => {
        const c = new pg.Client({ connectionString: url });
        await c.connect();
        try {
          const { rows } = await c.query(`SELECT row_count FROM raw.csv_files WHERE path = $1`, [file]);
          return rows[0]?.row_count === 80 ? true : undefined;
        } finally {
          await c.end();
        }
      }, 90_000);
    } finally {
      stop.abort();
      await daemon;
      await cluster.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
