import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { runDaemon } from '../../src/daemon.js';
import { Discovery } from '../../src/discovery/watcher.js';
import { writeFeedFile } from '../../src/sample/feedGenerator.js';
import { ingestFile } from '../../src/ingest/ingestFile.js';
import { createTestDatabase, silentLog, type TestDatabase } from '../helpers/testDatabase.js';
import { get } from '../helpers/scrape.js';
import { freePort, waitFor } from '../helpers/wait.js';

let db: TestDatabase;
let dir: string;
beforeAll(async () => {
  db = await createTestDatabase();
  dir = await mkdtemp(join(tmpdir(), 'vinops-paths-'));
});
afterAll(async () => { await db.drop(); });

describe('paths are stored absolute', () => {
  it('ingest of a relative path (stored, rejected) records the absolute, normalised one', async () => {
    const good = join(dir, 'copart/2025/10/23/1200.csv');
    await writeFeedFile(good, { rows: 10, seed: 1 });
    await mkdir(join(dir, 'bad'));
    const empty = join(dir, 'bad/empty.csv');
    await writeFile(empty, '');
    // As typed from another folder: `../bad/empty.csv`-style, relative to the working directory.
    const typedGood = `${relative(process.cwd(), join(dir, 'copart/2025/10/23'))}/../23/./1200.csv`;
    const typedEmpty = relative(process.cwd(), empty);
    expect(typedGood.startsWith('/')).toBe(false);
    expect(typedEmpty).toMatch(/^\.\.\//);

    const r1 = await ingestFile({ pool: db.pool, log: silentLog, maxRecordBytes: 1 << 20 }, typedGood);
    const r2 = await ingestFile({ pool: db.pool, log: silentLog, maxRecordBytes: 1 << 20 }, typedEmpty);
    expect([r1.outcome, r2.outcome]).toEqual(['ingested', 'rejected']);
    expect([r1.path, r2.path]).toEqual([good, empty]);
    const files = await db.pool.query('SELECT path FROM raw.csv_files WHERE file_id = $1', [r1.fileId]);
    expect(files.rows).toEqual([{ path: good }]);
    const runs = await db.pool.query('SELECT path FROM audit.etl_runs WHERE run_id = ANY($1) ORDER BY path', [[r1.runId, r2.runId]]);
    expect(runs.rows.map((r) => r.path)).toEqual([empty, good].sort());
  });

  it('discovery of a relative raw directory queues absolute paths', async () => {
    const raw = join(dir, 'tree');
    const file = join(raw, '2025/10/23/1215.csv');
    await writeFeedFile(file, { rows: 5, seed: 2 });
    const discovery = new Discovery(db.pool, silentLog, { rawDir: relative(process.cwd(), raw), settleMs: 0, rescanIntervalMs: 60_000 });
    await discovery.start();
    await discovery.stop();
    const { rows } = await db.pool.query(`SELECT path FROM raw.file_queue WHERE path LIKE '%/tree/%' OR path NOT LIKE '/%'`);
    expect(rows).toEqual([{ path: file }]);
  });
});

describe('a raw directory that does not exist', () => {
  it('is not created by the daemon: /readyz fails with the reason, the log and the status page say so until it appears, then it is watched', async () => {
    const raw = join(dir, 'copratt'); // a typo
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const lines: Record<string, unknown>[] = [];
    const log = pino({ level: 'info' }, new Writable({ write(chunk: Buffer, _e, cb) { lines.push(JSON.parse(chunk.toString())); cb(); } }));
    const config = loadConfig({ env: { DATABASE_URL: db.url, VINOPS_RAW_DIR: raw, VINOPS_SETTLE_MS: '0', VINOPS_RESCAN_INTERVAL_MS: '1000',
      VINOPS_METRICS_ADDR: `127.0.0.1:${port}` } });
    const stop = new AbortController();
    const daemon = runDaemon(config, log, { signal: stop.signal });
    try {
      const ready = await waitFor('the daemon to look at the raw directory', async () => {
        const r = await get(`${base}/readyz`);
        const body = JSON.parse(r.body) as Record<string, unknown>;
        return body.watcher_error !== undefined ? { status: r.status, body } : undefined;
      });
      expect(ready).toEqual({ status: 503, body: { ready: false, database: true, schema: true, watcher: false, watcher_error: `raw directory ${raw} does not exist` } });
      await new Promise((r) => setTimeout(r, 1500)); // a re-scan or two
      expect(existsSync(raw)).toBe(false);
      const errors = lines.filter((l) => l.level === 50 && l.raw_dir === raw);
      expect(errors[0]).toMatchObject({ problem: 'ENOENT', reason: `raw directory ${raw} does not exist`, msg: expect.stringMatching(/VINOPS_RAW_DIR/) });
      const page = (await get(`${base}/`)).body;
      expect(page).toContain(`<p class="alert" id="watcher-error">raw directory ${raw} does not exist: no file is found until it exists.`);

      const file = join(raw, '2025/10/23/1230.csv');
      await writeFeedFile(file, { rows: 7, seed: 3 });
      await waitFor('the file in the directory once it exists', async () => {
        const { rows } = await db.pool.query(`SELECT state FROM raw.file_queue WHERE path = $1`, [file]);
        return rows[0]?.state === 'ingested';
      });
      const again = await waitFor('ready', async () => {
        const r = await get(`${base}/readyz`);
        return r.status === 200 ? JSON.parse(r.body) : undefined;
      });
      expect(again).toEqual({ ready: true, database: true, schema: true, watcher: true });
      expect((await get(`${base}/`)).body).not.toContain('watcher-error');
      expect(lines.some((l) => l.msg === 'raw directory back: watching it again')).toBe(true);
    } finally {
      stop.abort();
      await daemon;
    }
  });
});
