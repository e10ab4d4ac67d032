import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { gzipSync } from 'node:zlib';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { fetchWindow, type FetchContext, type FetchResult } from '../../src/fetch/fetchWindow.js';
import { generateFeed } from '../../src/sample/feedGenerator.js';
import { ingestFile } from '../../src/ingest/ingestFile.js';
import { Fetcher } from '../../src/fetch/fetcher.js';
import { spawn, spawnSync } from 'node:child_process';
import { loadConfig } from '../../src/config.js';
import { runDaemon } from '../../src/daemon.js';
import { freePort } from '../helpers/wait.js';
import { listRecentFetches } from '../../src/observe/statusQueries.js';
import { formatFetchStatus } from '../../src/cli/statusCommand.js';
import { createTestDatabase, silentLog, type TestDatabase } from '../helpers/testDatabase.js';

const KEY = 'sEcReTkEy-4711';
const COOKIE = 'incap_ses_123=sEcReTcOoKiE';
const BLOCK_PAGE = '<html><head><META NAME="robots" CONTENT="noindex,nofollow"></head><body>Request unsuccessful. Incapsula incident ID: 123-456</body></html>';

type Handler = (req: IncomingMessage, res: ServerResponse, n: number) => void;
let server: Server;
let base: string;
let handler: Handler;
let requests: IncomingMessage[] = [];
let feed: Buffer;
let feed2: Buffer;
let db: TestDatabase;
let rawDir: string;
const logText: string[] = [];

function capturing(): pino.Logger {
  return pino({ level: 'debug' }, new Writable({ write(chunk, _e, done) { logText.push(String(chunk)); done(); } }));
}

beforeAll(async () => {
  feed = Buffer.concat([...generateFeed({ rows: 300, generation: 0 })]);
  feed2 = Buffer.concat([...generateFeed({ rows: 300, generation: 1 })]);
  server = createServer((req, res) => { requests.push(req); handler(req, res, requests.length); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const addr = server.address() as { port: number };
  base = `http://127.0.0.1:${addr.port}/cgi-bin/salesdata.cgi?authKey=${KEY}`;
});
afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
});
beforeEach(async () => {
  requests = [];
  db = await createTestDatabase();
  rawDir = await mkdtemp(join(tmpdir(), 'vinops-fetch-'));
  return async () => { await db.drop(); };
});

/** A clock that runs from `start` as real time does (the window ends while a test retries). */
const runningFrom = (start: Date): (() => Date) => { const t0 = Date.now(); return () => new Date(start.getTime() + Date.now() - t0); };

/** 12:05 UTC of a day in October 2025, plus `windows` quarter hours. */
const at = (windows = 0): (() => Date) => () => new Date(Date.UTC(2025, 9, 17, 12, 5) + windows * 15 * 60_000);

function ctx(over: Partial<FetchContext> = {}): FetchContext {
  return { pool: db.pool, log: capturing(), rawDir, source: { url: base, headers: { 'user-agent': 'Mozilla/5.0 test' }, cookie: COOKIE, timeoutMs: 5000 },
    retryBaseMs: 20, retryMaxMs: 100, now: at(), ...over };
}

/** Every file under the raw tree, hidden ones included, relative to it. */
async function tree(): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      if (e.isDirectory()) await walk(join(d, e.name));
      else out.push(relative(rawDir, join(d, e.name)));
    }
  };
  await walk(rawDir);
  return out.sort();
}

async function ledger(): Promise<Record<string, unknown>[]> {
  const { rows } = await db.pool.query(`SELECT outcome, http_status, requests, bytes, sha256, etag, last_modified, path, error, body_head, source
    FROM raw.fetches ORDER BY fetch_id`);
  return rows;
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const csv = (body: Buffer, headers: Record<string, string> = {}): Handler => (_req, res) => {
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(body.length), ...headers });
  res.end(body);
};

describe('fetching the feed', () => {
  it('downloads into the window\'s file; with the ETag the next window is a 304 that writes nothing', async () => {
    handler = (req, res) => {
      if (req.headers['if-none-match'] === '"v1"') { res.writeHead(304); res.end(); return; }
      csv(feed, { etag: '"v1"' })(req, res, 0);
    };
    const r = await fetchWindow(ctx());
    expect(r).toMatchObject({ outcome: 'downloaded', httpStatus: 200, requests: 1, bytes: feed.length, sha256: sha(feed), path: join(rawDir, '2025/10/17/1200.csv') });
    expect(await tree()).toEqual(['2025/10/17/1200.csv']);
    expect((await readFile(r.path!)).equals(feed)).toBe(true);
    expect(requests[0]!.headers.cookie).toBe(COOKIE);
    expect(requests[0]!.headers['user-agent']).toBe('Mozilla/5.0 test');

    const again = await fetchWindow(ctx({ now: at(1) }));
    expect(again).toMatchObject({ outcome: 'not_modified', httpStatus: 304, path: null });
    expect(requests[1]!.headers['if-none-match']).toBe('"v1"');
    expect(await tree()).toEqual(['2025/10/17/1200.csv']);
    const l = await ledger();
    expect(l.map((x) => x.outcome)).toEqual(['downloaded', 'not_modified']);
    expect(l[0]).toMatchObject({ etag: '"v1"', sha256: sha(feed), source: `${new URL(base).host}/cgi-bin/salesdata.cgi` });
  });

  it('sends If-Modified-Since when the server gives only Last-Modified; the same bytes again write nothing', async () => {
    const lm = 'Fri, 17 Oct 2025 11:59:00 GMT';
    handler = csv(feed, { 'last-modified': lm });
    expect((await fetchWindow(ctx())).outcome).toBe('downloaded');
    const same = await fetchWindow(ctx({ now: at(1) }));
    expect(requests[1]!.headers['if-modified-since']).toBe(lm);
    expect(same).toMatchObject({ outcome: 'unchanged', sha256: sha(feed), path: null });
    expect(await tree()).toEqual(['2025/10/17/1200.csv']);
    handler = csv(feed2, { 'last-modified': 'Fri, 17 Oct 2025 12:29:00 GMT' });
    expect((await fetchWindow(ctx({ now: at(2) }))).path).toBe(join(rawDir, '2025/10/17/1230.csv'));
  });

  it('the block page, even with 200, and a 403 are `blocked`: nothing written, the first KB kept for the operator', async () => {
    handler = (_req, res) => { res.writeHead(200, { 'content-type': 'text/html' }); res.end(BLOCK_PAGE); };
    const r = await fetchWindow(ctx());
    expect(r).toMatchObject({ outcome: 'blocked', httpStatus: 200, requests: 1 });
    handler = (_req, res) => { res.writeHead(403); res.end('Forbidden'); };
    expect(await fetchWindow(ctx({ now: at(1) }))).toMatchObject({ outcome: 'blocked', httpStatus: 403, error: 'HTTP 403: the address is blocked' });
    handler = (_req, res) => { res.writeHead(302, { location: '/login' }); res.end(); };
    expect((await fetchWindow(ctx({ now: at(2) }))).outcome).toBe('blocked');
    expect(await tree()).toEqual([]);
    const l = await ledger();
    expect(l[0]!.body_head).toBe(BLOCK_PAGE);
    // Blocked waits for the next window: the same window is not tried again.
    expect((await fetchWindow(ctx())).outcome).toBe('skipped');
  });

  it('429 honours Retry-After, 5xx and a reset connection are retried within the window', async () => {
    handler = (_req, res, n) => {
      if (n === 1) { res.writeHead(429, { 'retry-after': '1' }); res.end(); return; }
      if (n === 2) { res.writeHead(503); res.end(); return; }
      if (n === 3) { res.writeHead(200, { 'content-length': String(feed.length) }); res.write(feed.subarray(0, 5000)); res.socket!.destroy(); return; }
      csv(feed)(_req, res, n);
    };
    const t = Date.now();
    const r = await fetchWindow(ctx());
    expect(Date.now() - t).toBeGreaterThanOrEqual(1000);
    expect(r).toMatchObject({ outcome: 'downloaded', requests: 4, bytes: feed.length });
    expect(await tree()).toEqual(['2025/10/17/1200.csv']);
  });

  it('a body shorter than its Content-Length, or a reset that lasts, fails with nothing left behind', async () => {
    // The server closes the connection 10 bytes short of its Content-Length, every time; retried until the window ends.
    handler = (_req, res) => { res.writeHead(200, { 'content-length': String(feed.length + 10) }); res.write(feed, () => res.socket!.end()); };
    const r = await fetchWindow(ctx({ now: runningFrom(new Date(Date.UTC(2025, 9, 17, 12, 14, 59, 500))) }));
    expect(r.outcome).toBe('failed');
    expect(r.requests).toBeGreaterThan(1);
    expect(r.error).toMatch(/after \d+ bytes/);
    expect(await tree()).toEqual([]);
    // A reset on every request, likewise.
    handler = (_req, res) => { res.socket!.destroy(); };
    const reset = await fetchWindow(ctx({ now: runningFrom(new Date(Date.UTC(2025, 9, 17, 12, 29, 59, 500))) }));
    expect(reset).toMatchObject({ outcome: 'failed' });
    expect(await tree()).toEqual([]);
  });

  it('gzip Content-Encoding: the file is the decoded bytes', async () => {
    handler = (_req, res) => { const z = gzipSync(feed); res.writeHead(200, { 'content-encoding': 'gzip', 'content-length': String(z.length) }); res.end(z); };
    const r = await fetchWindow(ctx());
    expect(r).toMatchObject({ outcome: 'downloaded', bytes: feed.length, sha256: sha(feed) });
  });

  it('a slow trickle (the body over a second, in small pieces) is downloaded whole', async () => {
    handler = (_req, res) => {
      res.writeHead(200, { 'content-length': String(feed.length) });
      const step = Math.ceil(feed.length / 20);
      let at = 0;
      const t = setInterval(() => {
        res.write(feed.subarray(at, at + step));
        at += step;
        if (at >= feed.length) { clearInterval(t); res.end(); }
      }, 50);
    };
    const r = await fetchWindow(ctx());
    expect(r).toMatchObject({ outcome: 'downloaded', bytes: feed.length, sha256: sha(feed), requests: 1 });
    expect(r.seconds).toBeGreaterThanOrEqual(0.9);
  });

  it('a stop signal during a slow download leaves no .csv and no .part', async () => {
    handler = (_req, res) => {
      res.writeHead(200, { 'content-length': String(feed.length) });
      res.write(feed.subarray(0, 1000));
      const t = setInterval(() => { if (!res.write(feed.subarray(1000, 1100))) clearInterval(t); }, 50);
      res.on('close', () => clearInterval(t));
    };
    const stop = new AbortController();
    setTimeout(() => stop.abort(), 300);
    const r = await fetchWindow(ctx({ signal: stop.signal }));
    expect(r.outcome).toBe('failed');
    expect(r.error).toMatch(/stopped/);
    expect(await tree()).toEqual([]);
  });

  it('a body that is not the feed is refused; an existing file is never overwritten', async () => {
    handler = csv(Buffer.from('a,b,c\n1,2,3\n'));
    expect((await fetchWindow(ctx())).error).toMatch(/does not start with a CSV header/);
    await writeFile(join(rawDir, 'x'), '');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(join(rawDir, '2025/10/17'), { recursive: true });
    await writeFile(join(rawDir, '2025/10/17/1215.csv'), 'mine');
    handler = csv(feed);
    const r = await fetchWindow(ctx({ now: at(1) }));
    expect(r).toMatchObject({ outcome: 'failed' });
    expect(await readFile(join(rawDir, '2025/10/17/1215.csv'), 'utf8')).toBe('mine');
  });

  it('two fetchers on one window download it once', async () => {
    handler = (_req, res) => setTimeout(() => csv(feed)(_req, res, 0), 200);
    const [a, b] = await Promise.all([fetchWindow(ctx()), fetchWindow(ctx())]);
    expect([a.outcome, b.outcome].sort()).toEqual(['downloaded', 'skipped']);
    expect(requests).toHaveLength(1);
  });

  it('the key and the cookie never reach a log line, an error or the ledger', async () => {
    logText.length = 0;
    handler = (_req, res) => { res.socket!.destroy(); };
    const r: FetchResult = await fetchWindow(ctx({ now: runningFrom(new Date(Date.UTC(2025, 9, 17, 12, 14, 59, 700))) }));
    expect(r.outcome).toBe('failed');
    handler = (_req, res) => { res.writeHead(200); res.end(BLOCK_PAGE); };
    await fetchWindow(ctx({ now: at(1) }));
    const everything = `${logText.join('')}${JSON.stringify(await ledger())}${JSON.stringify(r)}`;
    expect(everything).toContain('salesdata.cgi');
    expect(everything).not.toContain(KEY);
    expect(everything).not.toContain('sEcReTcOoKiE');
  });

  it('end to end: fetched, then ingested like any file, public.lots filled', async () => {
    handler = csv(feed, { etag: '"e2e"' });
    const r = await fetchWindow(ctx({ log: silentLog }));
    const ing = await ingestFile({ pool: db.pool, log: silentLog, maxRecordBytes: 1 << 20 }, r.path!);
    expect(ing.outcome).toBe('ingested');
    const { rows: [n] } = await db.pool.query('SELECT count(*)::int AS n FROM public.lots');
    expect(n!.n).toBe(300);
    const { rows: [f] } = await db.pool.query('SELECT snapshot_at, snapshot_rule FROM raw.csv_files');
    expect(f).toEqual({ snapshot_at: new Date('2025-10-17T12:00:00Z'), snapshot_rule: 'window' });
  });

  it('the daemon\'s Fetcher fetches the current window at start, then waits; stop() is idempotent and ends a download in flight', async () => {
    handler = csv(feed);
    const f = new Fetcher(db.pool, silentLog, { rawDir, source: ctx().source, intervalMs: 60_000, delayMaxMs: 0, now: at() });
    const results: FetchResult[] = [];
    f.onResult = (r) => results.push(r);
    f.start();
    f.start();
    for (let i = 0; i < 100 && results.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    await f.stop();
    await f.stop();
    expect(results.map((r) => r.outcome)).toEqual(['downloaded']);
    expect(await tree()).toEqual(['2025/10/17/1200.csv']);

    handler = (_req, res) => { res.writeHead(200, { 'content-length': String(feed.length) }); res.write(feed.subarray(0, 100)); };
    const g = new Fetcher(db.pool, silentLog, { rawDir, source: ctx().source, intervalMs: 60_000, delayMaxMs: 0, now: at(1) });
    g.start();
    for (let i = 0; i < 100 && requests.length < 2; i++) await new Promise((r) => setTimeout(r, 20));
    await g.stop();
    expect(await tree()).toEqual(['2025/10/17/1200.csv']);
    expect((await ledger()).map((x) => x.outcome)).toEqual(['downloaded', 'failed']);
  });

  it('`vinops-etl fetch --once`: the exit status says the outcome; neither stdout nor stderr shows the key or the cookie', async () => {
    const CLI = new URL('../../dist/cli/main.js', import.meta.url).pathname;
    const run = (): Promise<{ code: number | null; out: string; err: string }> => new Promise((resolve) => {
      const child = spawn(process.execPath, [CLI, 'fetch', '--once', '--json'], { env: { ...process.env, DATABASE_URL: db.url, VINOPS_RAW_DIR: rawDir,
        VINOPS_FETCH_URL: base, VINOPS_FETCH_COOKIE: COOKIE, VINOPS_LOG_LEVEL: 'debug' } });
      let out = '';
      let err = '';
      child.stdout.on('data', (d) => { out += d; });
      child.stderr.on('data', (d) => { err += d; });
      child.on('exit', (code) => resolve({ code, out, err }));
    });
    handler = csv(feed);
    const ok = await run();
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.out)).toMatchObject({ outcome: 'downloaded', http_status: 200, bytes: feed.length });
    handler = (_req, res) => { res.writeHead(403); res.end(); };
    await db.pool.query(`DELETE FROM raw.fetches`); // the same window again
    const { rm } = await import('node:fs/promises');
    await rm(JSON.parse(ok.out).path as string);
    const blocked = await run();
    expect(blocked.code).toBe(3);
    for (const r of [ok, blocked]) {
      expect(`${r.out}${r.err}`).not.toContain(KEY);
      expect(`${r.out}${r.err}`).not.toContain('sEcReTcOoKiE');
    }
    expect(ok.err).toContain('salesdata.cgi');
  });

  it('end to end with the daemon: fetched at start, found by discovery, ingested, public.lots filled, counted on /metrics', async () => {
    handler = csv(feed, { etag: '"daemon"' });
    const port = await freePort();
    const config = loadConfig({ env: { DATABASE_URL: db.url, VINOPS_RAW_DIR: rawDir, VINOPS_SETTLE_MS: '200', VINOPS_RESCAN_INTERVAL_MS: '1000',
      VINOPS_METRICS_ADDR: `127.0.0.1:${port}`, VINOPS_FETCH_URL: base, VINOPS_FETCH_COOKIE: COOKIE } });
    const stop = new AbortController();
    const done = runDaemon(config, silentLog, { signal: stop.signal });
    try {
      let lots = 0;
      for (let i = 0; i < 150 && lots < 300; i++) {
        await new Promise((r) => setTimeout(r, 100));
        lots = (await db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM public.lots')).rows[0]!.n;
      }
      expect(lots).toBe(300);
      const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      expect(metrics).toMatch(/^vinops_etl_fetches_total\{outcome="downloaded"\} 1$/m);
      expect(metrics).toMatch(/^vinops_etl_fetch_enabled 1$/m);
      expect(metrics).not.toContain(KEY);
      const page = await (await fetch(`http://127.0.0.1:${port}/`)).text();
      expect(page).toContain('<h2>Fetch</h2>');
      expect(page).not.toContain(KEY);
    } finally {
      stop.abort();
      await done;
    }
    expect((await tree()).filter((f) => f.endsWith('.part'))).toEqual([]);
  });

  it('`status` shows the last attempt and, when it failed, the last success; host and path only', async () => {
    handler = csv(feed);
    await fetchWindow(ctx());
    handler = (_req, res) => { res.writeHead(403); res.end(); };
    await fetchWindow(ctx({ now: at(1) }));
    const text = formatFetchStatus(await listRecentFetches(db.pool, 5));
    const host = new URL(base).host;
    expect(text).toBe(`fetch from ${host}/cgi-bin/salesdata.cgi: blocked for 2025-10-17 12:15 (HTTP 403: the address is blocked)\n` +
      `  last success: downloaded for 2025-10-17 12:00 (${join(rawDir, '2025/10/17/1200.csv')})\n`);
  });

  // A full disk needs a small file system: a 64 KiB tmpfs, which only root may mount (CI runs as root).
  const canMount = process.getuid?.() === 0 && spawnSync('sh', ['-c', 'd=$(mktemp -d) && mount -t tmpfs -o size=64k tmpfs "$d" && umount "$d"']).status === 0;
  it.skipIf(!canMount)('a full disk (ENOSPC) mid-body leaves no .csv and no .part', async () => {
    const small = await mkdtemp(join(tmpdir(), 'vinops-fetch-full-'));
    expect(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', small]).status).toBe(0);
    try {
      handler = csv(feed);
      const r = await fetchWindow(ctx({ rawDir: small, now: runningFrom(new Date(Date.UTC(2025, 9, 17, 12, 14, 59, 500))) }));
      expect(r.outcome).toBe('failed');
      expect(r.error).toMatch(/ENOSPC|no space/i);
      const left = spawnSync('find', [small, '-type', 'f'], { encoding: 'utf8' }).stdout.trim();
      expect(left).toBe('');
    } finally {
      spawnSync('umount', [small]);
    }
  });
});
