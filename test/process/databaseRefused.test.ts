import { spawn } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { runDaemon } from '../../src/daemon.js';
import { DatabaseConfigError, openDatabase } from '../../src/db/open.js';
import { Worker } from '../../src/queue/worker.js';
import { databaseUrl, silentLog } from '../helpers/testDatabase.js';
import { get } from '../helpers/scrape.js';
import { freePort, waitFor } from '../helpers/wait.js';

const CLI = new URL('../../dist/cli/main.js', import.meta.url).pathname;

// The test server checks passwords (scram-sha-256): a role of our own, with a password we know.
const ROLE = `vinops_refused_${process.pid}`;
const PASSWORD = 'the-right-password';
const WRONG = 'a-wrong-password';
const OWNED_DB = `vinops_refused_db_${process.pid}`;

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: inject('adminUrl') });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

function urlFor(password: string, database = OWNED_DB): string {
  const u = new URL(databaseUrl(database));
  u.username = ROLE;
  u.password = password;
  return u.toString();
}

/** A pino logger whose lines are kept, parsed. */
function capturingLog(): { log: pino.Logger; lines: () => Record<string, unknown>[]; text: () => string } {
  const raw: string[] = [];
  const stream = new Writable({ write(chunk, _enc, done) { raw.push(String(chunk)); done(); } });
  const text = (): string => raw.join('');
  const lines = (): Record<string, unknown>[] => text().split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
  return { log: pino({ level: 'debug' }, stream), lines, text };
}

beforeAll(async () => {
  await admin(async (c) => {
    await c.query(`DROP DATABASE IF EXISTS ${OWNED_DB} WITH (FORCE)`);
    await c.query(`DROP ROLE IF EXISTS ${ROLE}`);
    await c.query(`CREATE ROLE ${ROLE} LOGIN PASSWORD '${PASSWORD}'`);
    await c.query(`CREATE DATABASE ${OWNED_DB} OWNER ${ROLE}`);
  });
});
// Every test starts from the right password, whatever an earlier one left behind. A server that
// trusts every login (TEST_DATABASE_URL at a trust-auth service) cannot refuse one: those runs skip,
// the embedded server (scram-sha-256) runs them.
let checksPasswords = true;
beforeEach(async (ctx) => {
  await admin((c) => c.query(`ALTER ROLE ${ROLE} PASSWORD '${PASSWORD}'`));
  const probe = new pg.Client({ connectionString: urlFor(WRONG) });
  probe.on('error', () => undefined);
  checksPasswords = await probe.connect().then(() => false, () => true);
  await probe.end().catch(() => undefined);
  if (!checksPasswords) ctx.skip('the server does not check passwords');
});
afterAll(async () => {
  await admin(async (c) => {
    await c.query(`DROP DATABASE IF EXISTS ${OWNED_DB} WITH (FORCE)`);
    await c.query(`DROP ROLE IF EXISTS ${ROLE}`);
  });
});

describe('a database that refuses the login, a privilege or the database', () => {
  it('the daemon says why on /readyz, logs one clear error line and no stack trace, backs off ever longer, and starts once the password is right', async () => {
    const metricsPort = await freePort();
    const raw = await mkdtemp(join(tmpdir(), 'vinops-refused-raw-'));
    const config = loadConfig({ env: { DATABASE_URL: urlFor(WRONG), VINOPS_RAW_DIR: raw, VINOPS_METRICS_ADDR: `127.0.0.1:${metricsPort}`, VINOPS_RESCAN_INTERVAL_MS: '1000' } });
    const { log, lines, text } = capturingLog();
    const stop = new AbortController();
    const daemon = runDaemon(config, log, { signal: stop.signal, reconnect: { refusedBaseMs: 100, refusedMaxMs: 400 } });
    try {
      const retries = (): number[] => lines().filter((l) => typeof l.retry_in_ms === 'number').map((l) => l.retry_in_ms as number);
      await waitFor('six refused attempts', async () => retries().length >= 6, 30_000);

      const ready = await get(`http://127.0.0.1:${metricsPort}/readyz`);
      expect(ready.status).toBe(503);
      const body = JSON.parse(ready.body) as { ready: boolean; database: boolean; error?: string };
      expect(body).toMatchObject({ ready: false, database: false });
      expect(body.error).toContain(`database refused the login for user "${ROLE}"`);
      expect(body.error).toContain('password authentication failed');
      expect(body.error).toContain('(28P01)');
      expect(body.error).toContain('DATABASE_URL');

      // One error line that says it all; the repeats are one warn line each; no stack trace at all.
      const all = lines();
      const errors = all.filter((l) => (l.level as number) >= 50);
      expect(errors).toHaveLength(1);
      expect(errors[0]!.msg).toBe(body.error);
      expect(errors[0]!.sqlstate).toBe('28P01');
      expect(all.filter((l) => l.msg === 'database still refuses; retrying').length).toBeGreaterThanOrEqual(5);
      expect(text().match(/"stack"/g)?.length ?? 0).toBeLessThanOrEqual(1);
      expect(text()).not.toContain(WRONG);
      // Longer and longer, up to the cap.
      expect(retries().slice(0, 5)).toEqual([100, 200, 400, 400, 400]);

      // Fixed on the server side: the daemon gets in by itself, migrates and is ready.
      await admin((c) => c.query(`ALTER ROLE ${ROLE} PASSWORD '${WRONG}'`));
      await waitFor('ready once the password matches', async () => (await get(`http://127.0.0.1:${metricsPort}/readyz`)).status === 200, 45_000);
      expect(lines().some((l) => l.msg === 'database available')).toBe(true);
    } finally {
      stop.abort();
      await daemon;
    }
  });

  it('a one-shot command gets a DatabaseConfigError that says what was refused and what to check', async () => {
    const env = (url: string): ReturnType<typeof loadConfig> => loadConfig({ env: { DATABASE_URL: url } });

    const login = await openDatabase(env(urlFor(WRONG)), silentLog, { migrate: false }).then(() => undefined, (e: unknown) => e);
    expect(login).toBeInstanceOf(DatabaseConfigError);
    expect((login as DatabaseConfigError).message).toBe(
      `database refused the login for user "${ROLE}": password authentication failed for user "${ROLE}" (28P01) — check the user and password in DATABASE_URL`);

    const missing = await openDatabase(env(urlFor(PASSWORD, 'vinops_no_such_db')), silentLog).then(() => undefined, (e: unknown) => e);
    expect(missing).toBeInstanceOf(DatabaseConfigError);
    expect((missing as Error).message).toMatch(/^database "vinops_no_such_db" does not exist \(3D000\) — create the database/);

    // A database the role does not own: migrating needs CREATE on schema public (PostgreSQL 15+ grants it to the owner only).
    const privilege = await openDatabase(env(urlFor(PASSWORD, 'postgres')), silentLog).then(() => undefined, (e: unknown) => e);
    expect(privilege).toBeInstanceOf(DatabaseConfigError);
    expect((privilege as Error).message).toMatch(new RegExp(`^database user "${ROLE}" lacks a privilege: .*permission denied.* \\(42501\\) — `));
  });

  it('`vinops-etl migrate` with a wrong password prints one line and exits 2', async () => {
    const child = spawn(process.execPath, [CLI, 'migrate'], { env: { ...process.env, DATABASE_URL: urlFor(WRONG), VINOPS_LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(out).toBe('');
    expect(err.trimEnd().split('\n')).toHaveLength(1);
    expect(err).toContain(`database refused the login for user "${ROLE}": password authentication failed`);
    expect(err).not.toContain(WRONG);
    expect(code).toBe(2);
  });

  it('a worker whose login is refused waits long between claims, not like an outage', async () => {
    const pool = new pg.Pool({ connectionString: urlFor(WRONG) });
    pool.on('error', () => undefined);
    const { log, lines } = capturingLog();
    const worker = new Worker(pool, log, { id: 1, claimTimeoutMs: 60_000, maxAttempts: 3, retryBaseMs: 1000, retryMaxMs: 1000, maxRecordBytes: 1 << 20 });
    try {
      worker.start();
      const first = await waitFor('the refused claim', async () => lines().find((l) => typeof l.retry_in_ms === 'number'));
      expect(first.retry_in_ms).toBeGreaterThanOrEqual(15_000);
      expect(first.msg).toMatch(/the database refuses/);
    } finally {
      await worker.stop();
      await pool.end();
    }
  });
});
