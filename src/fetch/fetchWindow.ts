import { createHash } from 'node:crypto';
import { link, mkdir, open, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type pg from 'pg';
import type { Logger } from 'pino';
import { sleep } from '../abortable.js';
import { fsyncPath } from '../fsync.js';

/**
 * One window's download of the feed (docs/fetch.md): claimed in raw.fetches so that several daemons
 * fetch a window once, conditional on the last download's validators, streamed to a hidden `.part`
 * file with its sha256, checked (length, CSV header), fsynced and linked into the raw tree under the
 * window's name, never over an existing file. The fetcher knows nothing of ingesting: discovery finds
 * the file like any other.
 */

export type FetchOutcome = 'downloaded' | 'unchanged' | 'not_modified' | 'blocked' | 'failed';
export const FETCH_OUTCOMES: readonly FetchOutcome[] = ['downloaded', 'unchanged', 'not_modified', 'blocked', 'failed'];

/** Where and how to download. `url` and `cookie` are secrets: they never reach a log line or an error. */
export interface FetchSource {
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly cookie: string | undefined;
  /** One request, headers to last byte. */
  readonly timeoutMs: number;
}

export interface FetchContext {
  readonly pool: pg.Pool;
  readonly log: Logger;
  readonly rawDir: string;
  readonly source: FetchSource;
  readonly signal?: AbortSignal;
  readonly worker?: string;
  /** Backoff of retries within the window (5xx, network errors). */
  readonly retryBaseMs?: number;
  readonly retryMaxMs?: number;
  readonly now?: () => Date;
}

export interface FetchResult {
  /** skipped: another daemon has this window (in flight or done). */
  readonly outcome: FetchOutcome | 'skipped';
  readonly windowStart: Date;
  readonly httpStatus: number | null;
  readonly requests: number;
  readonly bytes: number | null;
  readonly sha256: string | null;
  readonly path: string | null;
  readonly error: string | null;
  readonly seconds: number;
}

const WINDOW_MS = 15 * 60_000;
/** How much of a refused answer the ledger keeps. */
const BODY_HEAD_BYTES = 1024;

/** The 15-minute UTC window that holds `t`. */
export function windowOf(t: Date): Date {
  return new Date(Math.floor(t.getTime() / WINDOW_MS) * WINDOW_MS);
}

/** `YYYY/MM/DD/HHmm.csv` of a window, the raw tree's layout. */
export function windowPath(w: Date): string {
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${w.getUTCFullYear()}/${p(w.getUTCMonth() + 1)}/${p(w.getUTCDate())}/${p(w.getUTCHours())}${p(w.getUTCMinutes())}.csv`;
}

/** The URL as it may be shown: host and path, no query (it holds the key), no credentials. */
export function describeSource(url: string): string {
  const u = URL.parse(url);
  return u === null ? '(an invalid URL)' : `${u.host}${u.pathname}`;
}

/** Why a download is refused or fails; `retry` when another request in the window may succeed. */
class FetchFailure extends Error {
  constructor(readonly outcome: 'blocked' | 'failed', message: string, readonly retry: boolean,
    readonly httpStatus: number | null = null, readonly bodyHead: string | null = null, readonly retryAfterMs: number | null = null) {
    super(message);
  }
}

export async function fetchWindow(ctx: FetchContext): Promise<FetchResult> {
  const t0 = performance.now();
  const now = ctx.now ?? (() => new Date());
  const windowStart = windowOf(now());
  const windowEnd = windowStart.getTime() + WINDOW_MS;
  const source = describeSource(ctx.source.url);
  const log = ctx.log.child({ window: windowStart.toISOString(), source });
  const redact = redactor(ctx.source);
  const done = (r: Omit<FetchResult, 'windowStart' | 'seconds'>): FetchResult => ({ ...r, windowStart, seconds: Math.round(performance.now() - t0) / 1000 });

  const fetchId = await claimWindow(ctx.pool, windowStart, source, ctx.worker ?? `${hostname()}:${process.pid}`, ctx.source.timeoutMs);
  if (fetchId === null) {
    log.debug('window taken by another fetch');
    return done({ outcome: 'skipped', httpStatus: null, requests: 0, bytes: null, sha256: null, path: null, error: null });
  }
  const target = join(ctx.rawDir, windowPath(windowStart));
  const last = await lastDownload(ctx.pool);
  let requests = 0;
  let result: Omit<FetchResult, 'windowStart' | 'seconds'>;
  let bodyHead: string | null = null;
  let validators: Validators = { etag: null, lastModified: null };
  try {
    if (await exists(target)) throw new FetchFailure('failed', `${target} exists already: it is never overwritten`, false);
    for (let attempt = 1; ; attempt++) {
      requests++;
      try {
        const r = await download(ctx, target, last, redact);
        validators = r.validators;
        result = { ...r.result, requests };
        break;
      } catch (err) {
        const f = err instanceof FetchFailure ? err : new FetchFailure('failed', redact(describeError(err)), !(ctx.signal?.aborted ?? false));
        const wait = f.retryAfterMs ?? backoff(attempt, ctx.retryBaseMs ?? 2000, ctx.retryMaxMs ?? 60_000);
        if (!f.retry || ctx.signal?.aborted === true || now().getTime() + wait >= windowEnd) throw f;
        log.warn({ attempt, http_status: f.httpStatus, retry_in_ms: wait, err: f.message }, 'fetch failed; retrying within the window');
        await sleep(wait, ctx.signal);
      }
    }
  } catch (err) {
    const f = err instanceof FetchFailure ? err : new FetchFailure('failed', redact(describeError(err)), false);
    bodyHead = f.bodyHead;
    result = { outcome: f.outcome, httpStatus: f.httpStatus, requests, bytes: null, sha256: null, path: null, error: f.message };
  }
  await finishFetch(ctx.pool, fetchId, result, validators, bodyHead);
  const fields = { outcome: result.outcome, http_status: result.httpStatus, requests, bytes: result.bytes, sha256: result.sha256, path: result.path };
  if (result.outcome === 'blocked') log.error({ ...fields, err: result.error }, 'feed download blocked');
  else if (result.outcome === 'failed') log.error({ ...fields, err: result.error }, 'feed download failed');
  else log.info(fields, `feed ${result.outcome.replace('_', ' ')}`);
  return done(result);
}

/** One request and, for a 200, its body into the raw tree. Throws FetchFailure. */
type Downloaded = Omit<FetchResult, 'windowStart' | 'seconds' | 'requests'>;
interface Validators { readonly etag: string | null; readonly lastModified: string | null }

async function download(ctx: FetchContext, target: string, last: LastDownload | undefined, redact: (s: string) => string)
  : Promise<{ result: Downloaded; validators: Validators }> {
  const headers: Record<string, string> = { ...ctx.source.headers };
  if (ctx.source.cookie !== undefined) headers.cookie = ctx.source.cookie;
  if (last?.etag) headers['if-none-match'] = last.etag;
  if (last?.lastModified) headers['if-modified-since'] = last.lastModified;
  const timeout = AbortSignal.timeout(ctx.source.timeoutMs);
  const signal = ctx.signal ? AbortSignal.any([ctx.signal, timeout]) : timeout;
  let res: Response;
  try {
    res = await fetch(ctx.source.url, { headers, signal, redirect: 'manual' });
  } catch (err) {
    throw new FetchFailure('failed', redact(describeError(err, timeout)), true);
  }
  const status = res.status;
  const validators = { etag: res.headers.get('etag'), lastModified: res.headers.get('last-modified') };
  if (status === 304) {
    await res.body?.cancel();
    return { result: { outcome: 'not_modified', httpStatus: 304, bytes: 0, sha256: null, path: null, error: null }, validators: { etag: last?.etag ?? null, lastModified: last?.lastModified ?? null } };
  }
  if (status !== 200) {
    const head = await readHead(res);
    if (status === 429) {
      throw new FetchFailure('failed', 'HTTP 429 Too Many Requests', true, status, null, retryAfterMs(res.headers.get('retry-after')) ?? 60_000);
    }
    if (status >= 500) throw new FetchFailure('failed', `HTTP ${status}`, true, status);
    if (status === 401 || status === 403 || (status >= 300 && status < 400) || isBlockPage(head)) {
      const why = status === 403 ? 'HTTP 403: the address is blocked' : status === 401 || status >= 300
        ? `HTTP ${status}: a login is asked for (the session cookie expired?)` : `HTTP ${status}: a block page`;
      throw new FetchFailure('blocked', why, false, status, head);
    }
    throw new FetchFailure('failed', `HTTP ${status}`, false, status, head);
  }

  const dir = join(target, '..');
  await mkdir(dir, { recursive: true });
  const part = join(dir, `.${target.slice(dir.length + 1)}.part`);
  await unlink(part).catch(() => undefined); // a crashed earlier attempt's
  const handle = await open(part, 'wx');
  const hash = createHash('sha256');
  let bytes = 0;
  let head = Buffer.alloc(0);
  try {
    try {
      for await (const chunk of Readable.fromWeb(res.body! as import('node:stream/web').ReadableStream<Uint8Array>, { signal })) {
        const b = chunk as Buffer;
        if (head.length < BODY_HEAD_BYTES) head = Buffer.concat([head, b.subarray(0, BODY_HEAD_BYTES - head.length)]);
        hash.update(b);
        bytes += b.length;
        await handle.write(b);
      }
    } catch (err) {
      throw new FetchFailure('failed', `${redact(describeError(err, timeout))} after ${bytes} bytes`, true, status);
    }
    const headText = head.toString('utf8');
    if (isBlockPage(headText)) throw new FetchFailure('blocked', 'HTTP 200 with a block page instead of the file', false, status, headText);
    const length = res.headers.get('content-length');
    if (length !== null && res.headers.get('content-encoding') === null && Number(length) !== bytes) {
      throw new FetchFailure('failed', `Content-Length ${length}, ${bytes} bytes received`, true, status);
    }
    if (!looksLikeFeedHeader(headText)) {
      throw new FetchFailure('failed', 'the body does not start with a CSV header naming "Lot number" and "VIN"', false, status, headText);
    }
    await handle.sync();
    const sha256 = hash.digest('hex');
    if (sha256 === last?.sha256) return { result: { outcome: 'unchanged', httpStatus: status, bytes, sha256, path: null, error: null }, validators };
    try {
      await link(part, target); // never over an existing file (rename would replace it)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new FetchFailure('failed', `${target} appeared meanwhile: it is never overwritten`, false, status);
      throw err;
    }
    await fsyncPath(dir);
    return { result: { outcome: 'downloaded', httpStatus: status, bytes, sha256, path: target, error: null }, validators };
  } finally {
    // The window's name is a second link by now, or nothing was kept: the .part name goes either way.
    await handle.close().catch(() => undefined);
    await unlink(part).catch(() => undefined);
  }
}

/** The feed's block page (Incapsula) or any HTML where a CSV should be. */
function isBlockPage(head: string): boolean {
  return /^\s*</.test(head) || /incapsula|request unsuccessful/i.test(head);
}

/** The first line names the two columns every variant has. */
function looksLikeFeedHeader(head: string): boolean {
  const line = head.replace(/^\uFEFF/, '').split(/\r?\n/, 1)[0] ?? '';
  return /(^|,)"?lot number"?(,|$)/i.test(line) && /(^|,)"?vin"?(,|$)/i.test(line);
}

async function readHead(res: Response): Promise<string> {
  try {
    const text = await res.text();
    return text.slice(0, BODY_HEAD_BYTES);
  } catch {
    return '';
  }
}

/** Retry-After: seconds, or an HTTP date. */
function retryAfterMs(v: string | null): number | null {
  if (v === null) return null;
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? null : Math.max(0, at - Date.now());
}

/** Capped exponential backoff with full jitter. */
function backoff(attempt: number, baseMs: number, maxMs: number): number {
  const cap = Math.min(maxMs, baseMs * 2 ** (attempt - 1));
  return Math.round(cap / 2 + Math.random() * cap / 2);
}

function describeError(err: unknown, timeout?: AbortSignal): string {
  if (timeout?.aborted === true) return 'timed out';
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e?.name === 'AbortError') return 'stopped';
  const cause = e?.cause?.code ?? e?.cause?.message;
  return `${e?.message ?? String(err)}${cause ? ` (${cause})` : ''}`;
}

/** Removes the secrets (URL, its query values, the cookie) from a text. */
function redactor(source: FetchSource): (s: string) => string {
  const secrets = [source.url, source.cookie, ...[...(URL.parse(source.url)?.searchParams.values() ?? [])]]
    .filter((s): s is string => s !== undefined && s.length >= 4)
    .sort((a, b) => b.length - a.length);
  return (s) => secrets.reduce((t, x) => t.split(x).join('***'), s);
}


async function exists(path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false);
}


interface LastDownload {
  readonly etag: string | null;
  readonly lastModified: string | null;
  readonly sha256: string | null;
}

/** Validators and sha256 of the last download that wrote or confirmed a file. */
async function lastDownload(pool: pg.Pool): Promise<LastDownload | undefined> {
  const { rows } = await pool.query<{ etag: string | null; last_modified: string | null; sha256: string | null }>(
    `SELECT etag, last_modified, sha256 FROM raw.fetches WHERE outcome IN ('downloaded', 'unchanged')
      ORDER BY finished_at DESC LIMIT 1`);
  const r = rows[0];
  return r === undefined ? undefined : { etag: r.etag, lastModified: r.last_modified, sha256: r.sha256 };
}

/**
 * The window's ledger row, or null when another fetch holds or finished it. An attempt still in
 * flight long after its timeout belongs to a dead process: it is marked failed first.
 */
async function claimWindow(pool: pg.Pool, windowStart: Date, source: string, worker: string, timeoutMs: number): Promise<string | null> {
  await pool.query(`UPDATE raw.fetches SET outcome = 'failed', finished_at = clock_timestamp(), error = 'abandoned: its process stopped'
    WHERE outcome IS NULL AND window_start = $1 AND started_at < clock_timestamp() - make_interval(secs => $2)`, [windowStart, timeoutMs / 1000 * 2 + 60]);
  const { rows } = await pool.query<{ fetch_id: string }>(
    `INSERT INTO raw.fetches (window_start, source, worker) VALUES ($1, $2, $3)
     ON CONFLICT (window_start) WHERE outcome IS DISTINCT FROM 'failed' DO NOTHING RETURNING fetch_id`, [windowStart, source, worker]);
  return rows[0]?.fetch_id ?? null;
}

async function finishFetch(pool: pg.Pool, fetchId: string, r: Omit<FetchResult, 'windowStart' | 'seconds'>,
  v: Validators, bodyHead: string | null): Promise<void> {
  await pool.query(
    `UPDATE raw.fetches SET finished_at = clock_timestamp(), outcome = $2, http_status = $3, requests = $4, bytes = $5, sha256 = $6,
       etag = $7, last_modified = $8, path = $9, error = $10, body_head = $11 WHERE fetch_id = $1`,
    [fetchId, r.outcome, r.httpStatus, r.requests, r.bytes, r.sha256, v.etag, v.lastModified, r.path, r.error, bodyHead]);
}
