import { spawn, type ChildProcess } from 'node:child_process';
import { statSync } from 'node:fs';
import { mkdir, mkdtemp, open, rename } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { runDaemon } from '../../src/daemon.js';
import { generateFeed, writeFeedFile } from '../../src/sample/feedGenerator.js';
import { createTestDatabase, silentLog, type TestDatabase } from '../helpers/testDatabase.js';
import { freePort, waitFor } from '../helpers/wait.js';

const CLI = new URL('../../dist/cli/main.js', import.meta.url).pathname;

let db: TestDatabase;
beforeAll(async () => { db = await createTestDatabase(); });
afterAll(async () => { await db.drop(); });

const children: ChildProcess[] = [];
afterEach(() => { for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL'); });

async function newRawDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'vinops-raw-'));
}

function dayPath(root: string, day: string, hhmm: string): string {
  return join(root, ...day.split('-'), `${hhmm}.csv`);
}

async function feed(path: string, rows: number, seed: number): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFeedFile(path, { rows, seed });
}

/** The daemon in this process, stopped by the returned function. */
function startInProcess(rawDir: string, env: Record<string, string> = {}): () => Promise<void> {
  const config = loadConfig({ env: { DATABASE_URL: db.url, VINOPS_RAW_DIR: rawDir, VINOPS_SETTLE_MS: '300', VINOPS_RESCAN_INTERVAL_MS: '1000', VINOPS_METRICS_ADDR: '127.0.0.1:0', ...env } });
  const stop = new AbortController();
  const done = runDaemon(config, silentLog, { signal: stop.signal });
  return async () => {
    stop.abort();
    await done;
  };
}

/** The daemon as operators run it: `node dist/cli/main.js run`. */
function startProcess(rawDir: string, env: Record<string, string> = {}): ChildProcess & { output: () => string } {
  const child = spawn(process.execPath, [CLI, 'run'], {
    env: { ...process.env, DATABASE_URL: db.url, VINOPS_RAW_DIR: rawDir, VINOPS_SETTLE_MS: '300', VINOPS_RESCAN_INTERVAL_MS: '1000', VINOPS_METRICS_ADDR: '127.0.0.1:0', VINOPS_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { out += d; });
  children.push(child);
  return Object.assign(child, { output: () => out });
}


async function queueOf(rawDir: string): Promise<{ path: string; state: string; size: number }[]> {
  const { rows } = await db.pool.query(`SELECT path, state, size::int FROM raw.file_queue WHERE path LIKE $1 ORDER BY path`, [`${rawDir}/%`]);
  return rows;
}

async function ingestedRows(path: string): Promise<number[]> {
  const { rows } = await db.pool.query('SELECT row_count FROM raw.csv_files WHERE path = $1', [path]);
  return rows.map((r) => r.row_count);
}

function allDone(rawDir: string, n: number) {
  return async () => {
    const q = await queueOf(rawDir);
    return q.length === n && q.every((f) => f.state === 'ingested') ? q : undefined;
  };
}

describe('daemon: discovery and queue', () => {
  it('ingests files present before start and files dropped later, including a new day folder', async () => {
    const raw = await newRawDir();
    const before = dayPath(raw, '2025-10-17', '1200');
    await feed(before, 200, 1);
    const stop = startInProcess(raw);
    try {
      await waitFor('the file present at start', allDone(raw, 1));
      const later = dayPath(raw, '2025-10-18', '0015'); // a day folder created after start
      await feed(later, 150, 2);
      await waitFor('the file dropped while running', allDone(raw, 2));
      expect(await ingestedRows(before)).toEqual([200]);
      expect(await ingestedRows(later)).toEqual([150]);
    } finally {
      await stop();
    }
  });

  it('takes a renamed-into-place file and never a partial or hidden name', async () => {
    const raw = await newRawDir();
    const stop = startInProcess(raw);
    try {
      const final = dayPath(raw, '2025-10-17', '1230');
      await feed(`${final}.part`, 120, 3);
      await feed(join(dirname(final), '.hidden.csv'), 10, 4);
      await feed(join(dirname(final), '1245.csv.tmp'), 10, 5);
      await new Promise((r) => setTimeout(r, 800));
      expect(await queueOf(raw)).toEqual([]);
      await rename(`${final}.part`, final);
      const q = await waitFor('the renamed file', allDone(raw, 1));
      expect(q.map((f) => f.path)).toEqual([final]);
      expect(await ingestedRows(final)).toEqual([120]);
    } finally {
      await stop();
    }
  });

  it('never ingests a slowly written file half-way', async () => {
    const raw = await newRawDir();
    const stop = startInProcess(raw, { VINOPS_SETTLE_MS: '1000' });
    try {
      const path = dayPath(raw, '2025-10-17', '1300');
      await mkdir(dirname(path), { recursive: true });
      const chunks = [...generateFeed({ rows: 4000, seed: 6 })];
      const all = Buffer.concat(chunks);
      const handle = await open(path, 'w');
      // ~100 KB every quarter second
      for (let at = 0; at < all.length; at += 100_000) {
        await handle.write(all.subarray(at, Math.min(all.length, at + 100_000)));
        await new Promise((r) => setTimeout(r, 250));
      }
      await handle.close();
      const q = await waitFor('the finished file', allDone(raw, 1));
      expect(q[0]!.size).toBe(all.length);
      expect(await ingestedRows(path)).toEqual([4000]);
    } finally {
      await stop();
    }
  });

  it('queues new bytes at the same path as a new file', async () => {
    const raw = await newRawDir();
    const path = dayPath(raw, '2025-10-17', '1315');
    await feed(path, 50, 7);
    const stop = startInProcess(raw);
    try {
      await waitFor('first version', allDone(raw, 1));
      await new Promise((r) => setTimeout(r, 20));
      await feed(path, 60, 8);
      await waitFor('second version', allDone(raw, 2));
      expect((await ingestedRows(path)).sort()).toEqual([50, 60]);
    } finally {
      await stop();
    }
  });

  it('retries a failing file with backoff, then leaves it failed with its reason', async () => {
    const raw = await newRawDir();
    const path = dayPath(raw, '2025-10-17', '1330');
    await feed(path, 10, 9);
    // A queue entry whose file vanished: every attempt fails (ENOENT).
    await db.pool.query(`INSERT INTO raw.file_queue (path, size, mtime) VALUES ($1, 1, now() - interval '1 hour')`, [`${path}.gone.csv`]);
    const stop = startInProcess(raw, { VINOPS_MAX_ATTEMPTS: '3', VINOPS_RETRY_BASE_MS: '50', VINOPS_RETRY_MAX_MS: '100' });
    try {
      const failed = await waitFor('the failed file', async () => {
        const { rows } = await db.pool.query(`SELECT state, attempts, last_error FROM raw.file_queue WHERE path = $1`, [`${path}.gone.csv`]);
        return rows[0]?.state === 'failed' ? rows[0] : undefined;
      });
      expect(failed.attempts).toBe(3);
      expect(failed.last_error).toMatch(/ENOENT/);
      await waitFor('the good file', async () => (await ingestedRows(path)).length === 1);
    } finally {
      await stop();
    }
  });
});

describe('daemon: claims and bursts', () => {
  it('takes over a claim whose worker died (heartbeat older than claimTimeoutMs)', async () => {
    const raw = await newRawDir();
    const path = dayPath(raw, '2025-10-17', '1400');
    await feed(path, 40, 12);
    // A claim left by a dead worker: running, its heartbeat long gone.
    await db.pool.query(`INSERT INTO raw.file_queue (path, size, mtime, state, attempts, locked_by, heartbeat_at)
      SELECT $1, size, mtime, 'running', 1, 'gone-host:1:1', now() - interval '1 hour'
        FROM (SELECT $2::bigint AS size, to_timestamp(floor($3::float8) / 1000) AS mtime) v`,
      [path, statSync(path).size, statSync(path).mtimeMs]);
    const stop = startInProcess(raw, { VINOPS_CLAIM_TIMEOUT_MS: '5000' });
    try {
      const q = await waitFor('the taken-over file', allDone(raw, 1));
      expect(q[0]!.path).toBe(path);
      const { rows } = await db.pool.query('SELECT attempts, locked_by FROM raw.file_queue WHERE path = $1', [path]);
      expect(rows[0]).toEqual({ attempts: 2, locked_by: null });
      expect(await ingestedRows(path)).toEqual([40]);
    } finally {
      await stop();
    }
  });

  it('works through a burst of 200 files', async () => {
    const raw = await newRawDir();
    const files = Array.from({ length: 200 }, (_, i) => dayPath(raw, `2025-11-${String(1 + Math.floor(i / 96)).padStart(2, '0')}`,
      `${String(Math.floor((i % 96) / 4)).padStart(2, '0')}${String((i % 4) * 15).padStart(2, '0')}`));
    await Promise.all(files.map((f, i) => feed(f, 5, 1000 + i)));
    const stop = startInProcess(raw, { VINOPS_WORKERS: '2' });
    try {
      await waitFor('200 files', allDone(raw, 200), 120_000);
      const { rows } = await db.pool.query(`SELECT count(*)::int AS n, sum(row_count)::int AS rows FROM raw.csv_files WHERE path LIKE $1`, [`${raw}/%`]);
      expect(rows[0]).toEqual({ n: 200, rows: 1000 });
    } finally {
      await stop();
    }
  });
});

describe('daemon: processes', () => {
  it('two daemons on one tree ingest each file exactly once', async () => {
    const raw = await newRawDir();
    const files = Array.from({ length: 8 }, (_, i) => dayPath(raw, '2025-10-19', `${String(i).padStart(2, '0')}00`));
    for (const [i, f] of files.entries()) await feed(f, 300, 100 + i);
    const a = startProcess(raw);
    const b = startProcess(raw);
    await waitFor('all files', allDone(raw, files.length), 90_000);
    a.kill('SIGTERM');
    b.kill('SIGTERM');
    const codes = await Promise.all([a, b].map((c) => new Promise((r) => c.on('exit', r))));
    expect(codes).toEqual([0, 0]);
    for (const f of files) expect(await ingestedRows(f)).toEqual([300]);
    const { rows } = await db.pool.query(`SELECT count(*)::int AS n, count(DISTINCT worker)::int AS workers FROM audit.etl_runs
      WHERE path LIKE $1 AND outcome = 'ingested'`, [`${raw}/%`]);
    expect(rows[0].n).toBe(files.length);
  });

  it('SIGTERM during an ingest stops cleanly; the file is finished or rolled back, then ingested once', async () => {
    const raw = await newRawDir();
    const path = dayPath(raw, '2025-10-20', '1200');
    await feed(path, 60_000, 11);
    const d = startProcess(raw, { VINOPS_DRAIN_TIMEOUT_MS: '200' });
    await waitFor('the ingest to start', async () => (await queueOf(raw))[0]?.state === 'running');
    d.kill('SIGTERM');
    const code = await new Promise((r) => d.on('exit', r));
    expect(code).toBe(0);
    expect(d.output()).toMatch(/stopped cleanly/);
    const state = (await queueOf(raw))[0]!.state;
    expect(['pending', 'ingested']).toContain(state);
    expect((await ingestedRows(path)).length).toBe(state === 'ingested' ? 1 : 0);
    // The next start finishes the job, exactly once.
    const again = startProcess(raw);
    await waitFor('the file after restart', allDone(raw, 1), 90_000);
    again.kill('SIGTERM');
    await new Promise((r) => again.on('exit', r));
    expect(await ingestedRows(path)).toEqual([60_000]);
  });

  it('refuses a bad configuration value with one clear error naming the key', async () => {
    const c = spawn(process.execPath, [CLI, 'run'], { env: { ...process.env, VINOPS_WORKERS: 'many' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    c.stderr.on('data', (d) => { err += d; });
    const code = await new Promise((r) => c.on('exit', r));
    expect(code).toBe(2); // a configuration error, as a usage error (README, exit status)
    expect(err).toMatch(/VINOPS_WORKERS/);
    expect(err).toMatch(/"many"/);
  });
});


describe('daemon: a stop requested while it starts', () => {
  /** A debug logger that calls onLine with each line's msg, synchronously (as the daemon logs it). */
  function watchingLog(onLine: (msg: string) => void): pino.Logger {
    return pino({ level: 'debug' }, new Writable({ write(chunk, _enc, done) { onLine((JSON.parse(String(chunk)) as { msg: string }).msg); done(); } }));
  }
  /** Whether `daemon` ends within ms. */
  async function endsWithin(daemon: Promise<void>, ms: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<false>((r) => { timer = setTimeout(() => r(false), ms); });
    try {
      return await Promise.race([daemon.then(() => true), late]);
    } finally {
      clearTimeout(timer);
    }
  }
  const env = (raw: string, url = db.url): ReturnType<typeof loadConfig> =>
    loadConfig({ env: { DATABASE_URL: url, VINOPS_RAW_DIR: raw, VINOPS_RESCAN_INTERVAL_MS: '1000', VINOPS_METRICS_ADDR: '127.0.0.1:0' } });

  // /readyz says ready once the tree is watched, before the first scan has ended: a stop then used to
  // be lost (the daemon waited for an 'abort' that had already fired) and the daemon ran on.
  it('during the first scan: the daemon stops', async () => {
    const stop = new AbortController();
    const log = watchingLog((msg) => { if (msg === 'raw tree scanned') stop.abort(); });
    const daemon = runDaemon(env(await newRawDir()), log, { signal: stop.signal });
    expect(await endsWithin(daemon, 10_000)).toBe(true);
    expect(stop.signal.aborted).toBe(true);
  });

  it('before it starts: the daemon stops', async () => {
    expect(await endsWithin(runDaemon(env(await newRawDir()), silentLog, { signal: AbortSignal.abort() }), 10_000)).toBe(true);
  });

  it('while the database is being opened: the daemon does not wait for the retry delay', async () => {
    const stop = new AbortController();
    const log = watchingLog((msg) => { if (msg === 'database not available; retrying') stop.abort(); });
    const nobody = `postgres://nobody@127.0.0.1:${await freePort()}/none`;
    const daemon = runDaemon(env(await newRawDir(), nobody), log, { signal: stop.signal, reconnect: { outageBaseMs: 60_000 } });
    expect(await endsWithin(daemon, 10_000)).toBe(true);
    expect(stop.signal.aborted).toBe(true);
  });
});
