/**
 * The file system misbehaving under the daemon: a file it may not read, a file gone between discovery
 * and ingest, a file rewritten, truncated, replaced or deleted while it is read, a day folder that is
 * a link leading out of the raw tree, and the raw root missing at start or deleted while running.
 * (Links to files outside the root and directories named *.csv: test/unit/rawTree.test.ts.)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { access, chmod, mkdir, mkdtemp, open, readFile, rename, rm, stat, symlink, truncate, unlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { runDaemon } from '../../src/daemon.js';
import { Discovery } from '../../src/discovery/watcher.js';
import { generateFeed, writeFeedFile } from '../../src/sample/feedGenerator.js';
import { FileChangedError, ingestFile, type IngestResult } from '../../src/ingest/ingestFile.js';
import { statSettled } from '../../src/discovery/rawTree.js';
import { Worker, type FileOutcome } from '../../src/queue/worker.js';
import { createTestDatabase, silentLog, type TestDatabase } from '../helpers/testDatabase.js';
import { get, parseSamples, sampleValue } from '../helpers/scrape.js';
import { freePort, waitFor } from '../helpers/wait.js';

const CLI = new URL('../../dist/cli/main.js', import.meta.url).pathname;
const MAX_RECORD_BYTES = 16 * 1024 * 1024;

let db: TestDatabase;
beforeAll(async () => { db = await createTestDatabase(); });
afterAll(async () => { await db.drop(); });

const children: ChildProcess[] = [];
afterEach(() => { for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL'); });

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

async function storedFiles(path: string): Promise<{ sha256: string; row_count: number }[]> {
  const { rows } = await db.pool.query('SELECT sha256, row_count FROM raw.csv_files WHERE path = $1', [path]);
  return rows;
}

async function runsOf(path: string): Promise<{ outcome: string; reason: string | null }[]> {
  const { rows } = await db.pool.query('SELECT outcome, reason FROM audit.etl_runs WHERE path = $1 ORDER BY finished_at', [path]);
  return rows;
}

async function queueEntry(path: string): Promise<{ state: string; attempts: number; last_error: string | null } | undefined> {
  const { rows } = await db.pool.query('SELECT state, attempts, last_error FROM raw.file_queue WHERE path = $1', [path]);
  return rows[0];
}

describe('a file the daemon may not read', () => {
  it('is retried and reported (failed attempts with EACCES, metrics); once readable it is ingested exactly once', async () => {
    const raw = await mkdtemp(join(tmpdir(), 'vinops-fs-perm-'));
    const readable = join(raw, '2025/11/04/1200.csv');
    const locked = join(raw, '2025/11/04/1215.csv');
    await writeFeedFile(readable, { rows: 30, seed: 41 });
    await writeFeedFile(locked, { rows: 40, seed: 42 });
    await chmod(locked, 0o000);
    for (const d of [raw, join(raw, '2025'), join(raw, '2025/11'), join(raw, '2025/11/04')]) await chmod(d, 0o755);
    // chmod 000 does not stop root: run the daemon as root without the capabilities that bypass file
    // modes, so the file really cannot be read while a checkout in /root (0700, root's) still can.
    const asRoot = await access(locked, constants.R_OK).then(() => true, () => false);
    const port = await freePort();
    const [command, ...args] = asRoot
      ? ['setpriv', '--bounding-set=-dac_override,-dac_read_search', process.execPath, CLI, 'run']
      : [process.execPath, CLI, 'run'];
    const child = spawn(command!, args, {
      cwd: '/',
      env: { ...process.env, DATABASE_URL: db.url, VINOPS_RAW_DIR: raw, VINOPS_SETTLE_MS: '0', VINOPS_RESCAN_INTERVAL_MS: '1000',
        VINOPS_METRICS_ADDR: `127.0.0.1:${port}`, VINOPS_RETRY_BASE_MS: '100', VINOPS_RETRY_MAX_MS: '200', VINOPS_MAX_ATTEMPTS: '100' },
      stdio: ['ignore', 'ignore', 'ignore'],
    });
    children.push(child);

    await waitFor('the readable file', async () => (await storedFiles(readable)).length === 1, 60_000);
    const pending = await waitFor('two refused attempts', async () => {
      const q = await queueEntry(locked);
      return q !== undefined && q.attempts >= 2 && q.state === 'pending' ? q : undefined;
    }, 60_000);
    expect(pending.last_error).toMatch(/EACCES/);
    const failed = (await runsOf(locked)).filter((r) => r.outcome === 'failed');
    expect(failed.length).toBeGreaterThanOrEqual(2);
    for (const r of failed) expect(r.reason).toMatch(/EACCES: permission denied, open '.*1215\.csv'/);
    const samples = parseSamples((await get(`http://127.0.0.1:${port}/metrics`)).body);
    expect(sampleValue(samples, 'vinops_etl_files_total', { outcome: 'failed' })).toBeGreaterThanOrEqual(2);
    expect(await storedFiles(locked)).toEqual([]);

    await chmod(locked, 0o644);
    await waitFor('the file once readable', async () => (await queueEntry(locked))?.state === 'ingested', 60_000);
    expect((await storedFiles(locked)).map((f) => f.row_count)).toEqual([40]);
    expect((await runsOf(locked)).filter((r) => r.outcome === 'ingested')).toHaveLength(1);
    child.kill('SIGTERM');
    expect(await new Promise((r) => child.on('exit', r))).toBe(0);
  });
});

describe('a file deleted between discovery and ingest', () => {
  it('fails with ENOENT on each attempt, ends failed with its reason, stores nothing', async () => {
    const raw = await mkdtemp(join(tmpdir(), 'vinops-fs-gone-'));
    const path = join(raw, '2025/11/05/1200.csv');
    await writeFeedFile(path, { rows: 20, seed: 43 });
    const discovery = new Discovery(db.pool, silentLog, { rawDir: raw, settleMs: 0, rescanIntervalMs: 60_000 });
    await discovery.start(); // the start scan queues it
    await discovery.stop();
    expect((await queueEntry(path))?.state).toBe('pending');
    await unlink(path);

    const worker = new Worker(db.pool, silentLog, { id: 1, claimTimeoutMs: 60_000, maxAttempts: 2, retryBaseMs: 10, retryMaxMs: 10,
      maxRecordBytes: MAX_RECORD_BYTES, pollMs: 50 });
    const outcomes: FileOutcome[] = [];
    worker.onOutcome = (o) => outcomes.push(o);
    worker.start();
    try {
      await waitFor('the file to fail for good', async () => (await queueEntry(path))?.state === 'failed');
    } finally {
      await worker.stop();
    }
    const q = await queueEntry(path);
    expect(q?.attempts).toBe(2);
    expect(q?.last_error).toMatch(/^ENOENT: no such file or directory, open '.*1200\.csv'$/);
    expect((await runsOf(path)).map((r) => r.outcome)).toEqual(['failed', 'failed']);
    expect(outcomes.map((o) => (o.kind === 'failed' ? o.final : o.kind))).toEqual([false, true]);
    expect(await storedFiles(path)).toEqual([]);
  });
});

describe('a file changed while it is read', () => {
  const ctx = (): Parameters<typeof ingestFile>[0] => ({ pool: db.pool, log: silentLog, maxRecordBytes: MAX_RECORD_BYTES });

  /**
   * Runs ingestFile with the load stalled after the header was read: another session holds a lock on
   * raw.csv_files, which the load asks for before it streams the body. `meanwhile` changes the file,
   * then the lock goes and the load reads the rest.
   */
  async function ingestWhileChanged(path: string, meanwhile: () => Promise<void>): Promise<IngestResult | Error> {
    const blocker = new pg.Client({ connectionString: db.url });
    await blocker.connect();
    try {
      await blocker.query('BEGIN');
      await blocker.query('LOCK TABLE raw.csv_files IN ACCESS EXCLUSIVE MODE');
      const ingest = ingestFile(ctx(), path).then((r) => r, (e: unknown) => e as Error);
      await waitFor('the load to wait for the lock', async () => {
        const { rows } = await blocker.query(`SELECT count(*)::int AS n FROM pg_locks
          WHERE NOT granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`);
        return rows[0].n > 0;
      });
      await meanwhile();
      await blocker.query('COMMIT');
      return await ingest;
    } finally {
      await blocker.end();
    }
  }

  /** A generated file and the same bytes with every data letter moved on by one: other content, same size. */
  async function feedAndRewrite(name: string, seed: number): Promise<{ path: string; before: Buffer; after: Buffer }> {
    const dir = await mkdtemp(join(tmpdir(), 'vinops-fs-change-'));
    const path = join(dir, name);
    const before = Buffer.concat([...generateFeed({ rows: 3000, seed })]);
    const after = Buffer.from(before);
    for (let i = after.indexOf(10) + 1; i < after.length; i++) {
      const b = after[i]!;
      if (b >= 65 && b <= 90) after[i] = 65 + ((b - 65 + 1) % 26);
    }
    await writeFile(path, before);
    // Whole seconds: utimes can put such an mtime back exactly (a Date carries no nanoseconds).
    const t = Math.floor(Date.now() / 1000) - 60;
    await utimes(path, t, t);
    return { path, before, after };
  }

  async function payloadCount(): Promise<number> {
    return (await db.pool.query('SELECT count(*)::int AS n FROM raw.payloads')).rows[0].n;
  }

  it('rewritten in place, same size, old mtime put back: detected (ctime), nothing stored, then the new bytes once', async () => {
    const { path, before, after } = await feedAndRewrite('inplace.csv', 44);
    const payloads = await payloadCount();
    const outcome = await ingestWhileChanged(path, async () => {
      const st = await stat(path);
      const fh = await open(path, 'r+');
      await fh.write(after, 0, after.length, 0);
      await fh.close();
      await utimes(path, st.atime, st.mtime);
      const now = await stat(path);
      expect([now.size, now.mtimeMs]).toEqual([st.size, st.mtimeMs]); // only ctime tells
    });
    expect(outcome).toBeInstanceOf(FileChangedError);
    expect((outcome as Error).message).toMatch(/file changed while being read .*ctime changed/);
    expect(await storedFiles(path)).toEqual([]);
    expect(await payloadCount()).toBe(payloads);
    expect((await runsOf(path)).map((r) => [r.outcome, /file changed while being read/.test(r.reason ?? '')])).toEqual([['failed', true]]);

    const again = await ingestFile(ctx(), path);
    expect(again.outcome).toBe('ingested');
    expect(await storedFiles(path)).toEqual([{ sha256: sha256(after), row_count: 3000 }]);
    expect(sha256(after)).not.toBe(sha256(before));
  });

  it('truncated while read: detected, nothing stored', async () => {
    const { path, before } = await feedAndRewrite('truncated.csv', 45);
    const outcome = await ingestWhileChanged(path, () => truncate(path, Math.floor(before.length / 2)));
    expect(outcome).toBeInstanceOf(FileChangedError);
    expect((outcome as Error).message).toMatch(new RegExp(`size ${before.length} -> ${Math.floor(before.length / 2)}`));
    expect(await storedFiles(path)).toEqual([]);
  });

  it('replaced by a rename while read: the bytes opened are stored whole, never a mix', async () => {
    const { path, before, after } = await feedAndRewrite('renamed.csv', 46);
    const outcome = await ingestWhileChanged(path, async () => {
      await writeFile(`${path}.new`, after);
      await rename(`${path}.new`, path);
    });
    expect(outcome).not.toBeInstanceOf(Error);
    expect((outcome as IngestResult).outcome).toBe('ingested');
    expect(await storedFiles(path)).toEqual([{ sha256: sha256(before), row_count: 3000 }]);
    expect(await readFile(path)).toEqual(after); // the new version is a new file for the next scan
  });

  it('deleted while read: the bytes opened are stored whole', async () => {
    const { path, before } = await feedAndRewrite('deleted.csv', 47);
    const outcome = await ingestWhileChanged(path, () => unlink(path));
    expect(outcome).not.toBeInstanceOf(Error);
    expect((outcome as IngestResult).outcome).toBe('ingested');
    expect(await storedFiles(path)).toEqual([{ sha256: sha256(before), row_count: 3000 }]);
  });
});

describe('links leading out of the raw tree', () => {
  it('refuses a file under a day folder that is a link to elsewhere; a link staying inside is followed', async () => {
    const raw = await mkdtemp(join(tmpdir(), 'vinops-fs-links-'));
    const outside = await mkdtemp(join(tmpdir(), 'vinops-fs-outside-'));
    await writeFeedFile(join(outside, '04', '1200.csv'), { rows: 5, seed: 48 });
    await mkdir(join(raw, '2025'), { recursive: true });
    await symlink(outside, join(raw, '2025', '10')); // raw/2025/10/04/1200.csv is a file outside
    const inside = join(raw, '2025/12/01/1200.csv');
    await writeFeedFile(inside, { rows: 5, seed: 49 });
    await symlink(join(raw, '2025/12/01'), join(raw, '2025/12/02')); // stays inside
    const escaped = join(raw, '2025/10/04/1200.csv');
    expect(await statSettled(raw, escaped, 0)).toBeUndefined();

    const discovery = new Discovery(db.pool, silentLog, { rawDir: raw, settleMs: 0, rescanIntervalMs: 60_000 });
    await discovery.start();
    await discovery.stop();
    const { rows } = await db.pool.query(`SELECT path FROM raw.file_queue WHERE path LIKE $1 ORDER BY path`, [`${raw}/%`]);
    expect(rows.map((r) => r.path)).toEqual([inside, join(raw, '2025/12/02/1200.csv')]);
  });
});

describe('the raw root missing', () => {
  it('at start and deleted while running: the daemon stays up, says not ready, and takes files once the root is back', async () => {
    const base = await mkdtemp(join(tmpdir(), 'vinops-fs-root-'));
    await writeFile(join(base, 'mnt'), 'not a directory'); // the root cannot even be created
    const raw = join(base, 'mnt', 'copart');
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const config = loadConfig({ env: { DATABASE_URL: db.url, VINOPS_RAW_DIR: raw, VINOPS_SETTLE_MS: '0', VINOPS_RESCAN_INTERVAL_MS: '1000',
      VINOPS_METRICS_ADDR: `127.0.0.1:${port}` } });
    const stop = new AbortController();
    const daemon = runDaemon(config, silentLog, { signal: stop.signal });
    const readiness = async (): Promise<{ status: number; watcher: boolean }> => {
      const r = await get(`${url}/readyz`);
      return { status: r.status, watcher: (JSON.parse(r.body) as { watcher: boolean }).watcher };
    };
    try {
      await waitFor('the daemon to answer', async () => (await get(`${url}/healthz`)).status === 200);
      await waitFor('not ready: no root', async () => (await readiness()).status === 503);
      await new Promise((r) => setTimeout(r, 1500)); // a re-scan or two meet the missing root
      expect(await readiness()).toEqual({ status: 503, watcher: false });
      expect((await get(`${url}/healthz`)).status).toBe(200);

      await rm(join(base, 'mnt'));
      const first = join(raw, '2025/11/06/1200.csv');
      await writeFeedFile(first, { rows: 25, seed: 50 });
      await waitFor('the first file', async () => (await queueEntry(first))?.state === 'ingested');
      await waitFor('ready', async () => (await readiness()).status === 200);

      await rm(raw, { recursive: true });
      await waitFor('not ready: root deleted', async () => {
        const r = await readiness();
        return r.status === 503 && !r.watcher;
      });
      expect((await get(`${url}/healthz`)).status).toBe(200);

      const second = join(raw, '2025/11/06/1215.csv');
      await mkdir(dirname(second), { recursive: true });
      await writeFeedFile(second, { rows: 35, seed: 51 });
      await waitFor('the file in the new root', async () => (await queueEntry(second))?.state === 'ingested');
      await waitFor('ready again', async () => (await readiness()).status === 200);
      expect((await storedFiles(first)).map((f) => f.row_count)).toEqual([25]);
      expect((await storedFiles(second)).map((f) => f.row_count)).toEqual([35]);
    } finally {
      stop.abort();
      await daemon;
    }
  });
});
