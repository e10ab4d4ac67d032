import { mkdtemp } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { runDaemon } from '../../src/daemon.js';
import { DaemonStatus } from '../../src/observe/health.js';
import { HttpServer } from '../../src/observe/httpServer.js';
import { Metrics } from '../../src/observe/metrics.js';
import { renderStatusPage, type StatusPageData } from '../../src/observe/statusPage.js';
import { silentLog } from '../helpers/testDatabase.js';
import { get, parseSamples, sampleValue } from '../helpers/scrape.js';
import { freePort, waitFor } from '../helpers/wait.js';

describe('before the database is up', () => {
  it('/healthz answers, /readyz says 503, /metrics reports db_up 0 without queue figures, / renders', async () => {
    const dbPort = await freePort(); // nothing listens there: the daemon keeps retrying
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const config = loadConfig({ env: {
      DATABASE_URL: `postgresql://nobody:x@127.0.0.1:${dbPort}/vinops`, VINOPS_RAW_DIR: await mkdtemp(join(tmpdir(), 'vinops-notready-')),
      VINOPS_METRICS_ADDR: `127.0.0.1:${port}`,
    } });
    const stop = new AbortController();
    const daemon = runDaemon(config, silentLog, { signal: stop.signal });
    try {
      await waitFor('the HTTP server', async () => (await get(`${base}/healthz`)).status === 200);
      const ready = await get(`${base}/readyz`);
      expect(ready.status).toBe(503);
      expect(JSON.parse(ready.body)).toMatchObject({ ready: false, database: false, schema: false, watcher: false });

      const t0 = Date.now();
      const metrics = await get(`${base}/metrics`);
      expect(Date.now() - t0).toBeLessThan(3000);
      expect(metrics.status).toBe(200);
      const s = parseSamples(metrics.body);
      expect(sampleValue(s, 'vinops_etl_db_up')).toBe(0);
      expect(s.filter((x) => x.name === 'vinops_etl_queue_files')).toEqual([]);
      expect(sampleValue(s, 'vinops_etl_files_total', { outcome: 'ingested' })).toBe(0);

      const page = await get(`${base}/`);
      expect(page.status).toBe(200);
      expect(page.body).toContain('not ready</span></h1>');
      // Before the first attempt ends it is not connected yet; after, the attempt's error (DaemonStatus.noteDatabaseError).
      expect(page.body).toMatch(/Database: (not connected yet|connect ECONNREFUSED 127\.0\.0\.1:\d+)</);
    } finally {
      stop.abort();
      await daemon;
    }
    // Stopped: the port is free again.
    await expect(get(`${base}/healthz`, { timeoutMs: 1000 })).rejects.toThrow();
  });

  it('a metrics address already in use stops the start with an error naming metricsAddr', async () => {
    const blocker = createServer();
    const port = await new Promise<number>((resolve) => blocker.listen(0, '127.0.0.1', () => resolve((blocker.address() as { port: number }).port)));
    try {
      const config = loadConfig({ env: { DATABASE_URL: 'postgresql://x:y@127.0.0.1:1/db', VINOPS_METRICS_ADDR: `127.0.0.1:${port}` } });
      await expect(runDaemon(config, silentLog)).rejects.toThrow(/metricsAddr.*EADDRINUSE/);
    } finally {
      blocker.close();
    }
  });
});

describe('HttpServer', () => {
  it('start and stop are idempotent, and it can start again', async () => {
    const port = await freePort();
    const status = new DaemonStatus(silentLog);
    const metrics = new Metrics(status, { defaultMetrics: false });
    const server = new HttpServer(`127.0.0.1:${port}`, silentLog, {
      metrics: () => metrics.scrape(), readiness: () => status.readiness(), statusPage: async () => 'page',
    });
    await Promise.all([server.start(), server.start()]);
    expect(server.address).toEqual({ host: '127.0.0.1', port });
    expect((await get(`http://127.0.0.1:${port}/`)).body).toBe('page');
    await Promise.all([server.stop(), server.stop()]);
    await server.stop();
    expect(server.address).toBeUndefined();
    await server.start();
    expect((await get(`http://127.0.0.1:${port}/readyz`)).status).toBe(503);
    await server.stop();
  });

  it('a failing endpoint answers 500 and the server keeps serving', async () => {
    const server = new HttpServer('127.0.0.1:0', silentLog, {
      metrics: () => Promise.reject(new Error('boom')), readiness: () => Promise.reject(new Error('boom')), statusPage: async () => 'page',
    });
    await server.start();
    try {
      const base = `http://127.0.0.1:${server.address!.port}`;
      expect((await get(`${base}/metrics`)).status).toBe(500);
      expect((await get(`${base}/`)).status).toBe(200);
    } finally {
      await server.stop();
    }
  });
});

describe('renderStatusPage', () => {
  it('escapes every value that comes from the database or the file system', () => {
    const evil = `/raw/<script>alert("x")</script>&'`;
    const data: StatusPageData = {
      now: new Date('2025-10-23T12:00:00Z'),
      readiness: { ready: false, database: true, schema: true, watcher: false },
      database: { up: true, schemaCurrent: true, queue: { pending: 1, running: 0, failed: 0, ingested: 2, duplicate: 0, rejected: 0 }, lastSuccessAt: null, error: '<db>' },
      inFlight: [{ worker: 'worker 1 on h<1>/2', path: evil, since: new Date('2025-10-23T11:59:00Z'), bytes: 100, progress: { phase: '<p>', rows: 5, bytesRead: 50 } }],
      activity: {
        files: [{ file_id: null, queue_id: '1', path: evil, state: 'failed', attempts: 3, rows: null, parse_errors: null, vin_unknown_pct: null, lot_unknown_pct: null,
          seconds: null, rows_per_second: null, started_at: null, finished_at: null, reason: '<err>', worker: 'h<1>:2:1' }],
        lastError: { path: evil, state: 'failed', attempts: 3, last_error: 'ENOENT <x>', at: new Date('2025-10-23T11:58:00Z') },
        lastDay: { files: 0, rows: 0, parse_errors: 0, vin_unknown_pct: null, lot_unknown_pct: null },
        lifecycle: { file_id: 'f', path: evil, snapshot_at: null, partial: true, partial_reason: '<why>', events: { '<k>': 1 }, lots_listed: 0, partial_last_day: 1 },
        archives: [],
        fetches: [{ window_start: new Date('2025-10-23T12:00:00Z'), source: '<src>', outcome: 'failed', http_status: null, bytes: null, path: null,
          error: '<ferr>', started_at: new Date('2025-10-23T12:00:00Z'), finished_at: null }],
        hours: [],
      },
    };
    const html = renderStatusPage(data);
    expect(html).not.toMatch(/<script|<db>|<err>|<x>|<1>|<p>:|<why>|<k>|<src>|<ferr>/);
    expect(html).toContain('/raw/&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;');
    expect(html).toContain('ENOENT &lt;x&gt;');
    expect(html).toContain('worker 1 on h&lt;1&gt;/2, for 1 min');
    expect(html).toContain('&lt;p&gt;: 5 rows read, 50 % of 100 B');
  });
});
