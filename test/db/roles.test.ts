import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { runDaemon } from '../../src/daemon.js';
import { migrate, MIGRATIONS_DIR, PendingMigrationsError } from '../../src/db/migrate.js';
import { openDatabase, warnIfPrivileged } from '../../src/db/open.js';
import { READER_ROLE, setUpRoles, WRITER_ROLE } from '../../src/db/roles.js';
import { replayFiles } from '../../src/core/replay.js';
import { ingestFile } from '../../src/ingest/ingestFile.js';
import { writeFeedFile } from '../../src/sample/feedGenerator.js';
import { createTestDatabase, databaseUrl, silentLog, type TestDatabase } from '../helpers/testDatabase.js';
import { get } from '../helpers/scrape.js';
import { freePort, waitFor } from '../helpers/wait.js';

// Login roles of this run, one in each group (the group roles are the product's, shared by the cluster).
const WRITER = `vinops_writer_${process.pid}`;
const READER = `vinops_reader_${process.pid}`;
const PASSWORD = 'roles-test-password';
const BEHIND_DB = `vinops_roles_behind_${process.pid}`;
const OWNER = `vinops_owner_${process.pid}`;

let db: TestDatabase;
let dir: string;

function as(user: string, url = db.url): string {
  const u = new URL(url);
  u.username = user;
  u.password = PASSWORD;
  return u.toString();
}

async function connect<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** The SQLSTATE a statement fails with, or 'ok'. */
async function outcome(c: pg.ClientBase, sql: string): Promise<string> {
  return c.query(sql).then(() => 'ok', (err: { code?: string }) => err.code ?? 'error');
}

/** The migrations directory with extra files added (a later release's migrations). */
async function migrationsWith(extra: Record<string, string>, without: readonly string[] = []): Promise<string> {
  const target = await mkdtemp(join(dir, 'migrations-'));
  for (const name of await readdir(MIGRATIONS_DIR)) if (name.endsWith('.sql') && !without.includes(name)) await copyFile(join(MIGRATIONS_DIR, name), join(target, name));
  for (const [name, sql] of Object.entries(extra)) await writeFile(join(target, name), sql);
  return target;
}

beforeAll(async () => {
  db = await createTestDatabase();
  dir = await mkdtemp(join(tmpdir(), 'vinops-roles-'));
  await connect(inject('adminUrl'), async (c) => {
    for (const role of [WRITER, READER, OWNER]) await c.query(`DROP ROLE IF EXISTS ${role}`);
    await c.query(`CREATE ROLE ${OWNER} LOGIN PASSWORD '${PASSWORD}'`);
  });
  // The schema's owner (here the test server's admin, who ran the migrations) sets up the groups.
  await connect(db.url, async (c) => {
    const first = await setUpRoles(c);
    expect(first.schemaMigrated).toBe(true);
    expect([...first.created, ...first.existing].sort()).toEqual([READER_ROLE, WRITER_ROLE]);
    const again = await setUpRoles(c);
    expect(again.created).toEqual([]);
    expect(again.grants).toBe(0); // only what is missing is granted
    await c.query(`CREATE ROLE ${WRITER} LOGIN PASSWORD '${PASSWORD}' IN ROLE ${WRITER_ROLE}`);
    await c.query(`CREATE ROLE ${READER} LOGIN PASSWORD '${PASSWORD}' IN ROLE ${READER_ROLE}`);
  });
});
afterAll(async () => {
  await db.drop();
  await connect(inject('adminUrl'), async (c) => {
    await c.query(`DROP DATABASE IF EXISTS ${BEHIND_DB} WITH (FORCE)`);
    for (const role of [WRITER, READER, OWNER]) await c.query(`DROP ROLE IF EXISTS ${role}`);
  });
  await rm(dir, { recursive: true, force: true });
});

describe('vinops-etl roles: a writer that owns nothing, a reader of the core tables', () => {
  it('the writer ingests a first file (its statistics refreshed), a successor, and replays them, without owning anything or running DDL', async () => {
    const pool = new pg.Pool({ connectionString: as(WRITER), max: 3 });
    try {
      // 12,000 new payloads: more than the loads' ANALYZE threshold, so its owner-run refresh is exercised.
      const first = join(dir, 'first.csv');
      const next = join(dir, 'next.csv');
      await writeFeedFile(first, { rows: 12_000, seed: 71 });
      await writeFeedFile(next, { rows: 12_000, seed: 71, generation: 1 });
      for (const path of [first, next]) {
        const r = await ingestFile({ pool, log: silentLog, maxRecordBytes: 1 << 20 }, path);
        expect(r.outcome).toBe('ingested');
      }
      const client = await pool.connect();
      try {
        // The first file's load refreshed the statistics it outgrew (autovacuum is not that quick).
        const { rows: [stats] } = await client.query(`SELECT reltuples::int AS n FROM pg_class WHERE oid = 'raw.payloads'::regclass`);
        expect(stats.n).toBeGreaterThanOrEqual(12_000);
        const replayed = await replayFiles(client, 'all', {});
        expect(replayed.failed).toBe(0);
        expect((await client.query('SELECT count(*)::int AS n FROM audit.replays')).rows[0].n).toBe(2);
        expect((await client.query('SELECT count(*)::int AS n FROM public.lots')).rows[0].n).toBe(12_001);
        expect((await client.query('SELECT count(*)::int AS n FROM public.lot_events')).rows[0].n).toBeGreaterThan(12_000);
        // Statistics as the owner, through the functions only the writer may call.
        expect(await outcome(client, 'SELECT raw.analyze_payload_store()')).toBe('ok');
        expect(await outcome(client, 'SELECT public.analyze_lot_events()')).toBe('ok');
        // No DDL, nothing owned.
        expect(await outcome(client, 'DROP TABLE raw.payloads')).toBe('42501');
        expect(await outcome(client, 'CREATE TABLE raw.mine (x int)')).toBe('42501');
        expect(await outcome(client, 'TRUNCATE public.lots')).toBe('42501');
        expect(await outcome(client, 'INSERT INTO public.vinops_migrations (name, checksum) VALUES (\'x\', \'y\')')).toBe('42501');
        const { rows: owned } = await client.query(`SELECT relname FROM pg_class WHERE relowner = (SELECT oid FROM pg_roles WHERE rolname = current_user) AND relpersistence <> 't'`);
        expect(owned).toEqual([]);
      } finally {
        client.release();
      }
    } finally {
      await pool.end();
    }
    // Neither a superuser nor the owner: no warning at start.
    const lines: string[] = [];
    const log = pino({ level: 'warn' }, new Writable({ write(chunk, _e, done) { lines.push(String(chunk)); done(); } }));
    const opened = await openDatabase(loadConfig({ env: { DATABASE_URL: as(WRITER) } }), log);
    try {
      await warnIfPrivileged(opened, log);
    } finally {
      await opened.close();
    }
    expect(lines).toEqual([]);
  });

  it('the reader reads public.lots, public.lot_events, public.vin_history and the audit views, and is refused writes, raw and staging', async () => {
    await connect(as(READER), async (c) => {
      for (const sql of ['SELECT * FROM public.lots LIMIT 1', 'SELECT * FROM public.vehicles LIMIT 1', 'SELECT * FROM public.lot_events LIMIT 1',
        'SELECT * FROM public.vin_history LIMIT 1', 'SELECT * FROM audit.v_ingest_count', 'SELECT * FROM audit.v_parse_errors LIMIT 1']) {
        expect([sql, await outcome(c, sql)]).toEqual([sql, 'ok']);
      }
      for (const sql of ["INSERT INTO public.lots (lot_external_id) VALUES ('1')", 'DELETE FROM public.lot_events', 'SELECT * FROM raw.payloads LIMIT 1',
        'SELECT * FROM raw.csv_files LIMIT 1', 'SELECT * FROM staging.copart_typed LIMIT 1', 'SELECT * FROM audit.etl_runs LIMIT 1',
        'SELECT public.analyze_lot_events()', 'CREATE TABLE public.mine (x int)']) {
        expect([sql, await outcome(c, sql)]).toEqual([sql, '42501']);
      }
    });
  });

  it('a later migration\'s objects reach the right role; a writer with migrations pending is told which, and changes nothing', async () => {
    const later = await migrationsWith({
      '9001_later_release.sql': `CREATE TABLE raw.later_rows (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v text);
        CREATE TABLE public.later_core (id int);
        CREATE VIEW audit.v_later AS SELECT count(*) AS n FROM raw.later_rows;`,
    });
    const refused = await connect(as(WRITER), (c) => migrate(c, silentLog, later).then(() => undefined, (err: unknown) => err));
    expect(refused).toBeInstanceOf(PendingMigrationsError);
    expect((refused as PendingMigrationsError).pending).toEqual(['9001_later_release.sql']);
    expect((refused as Error).message).toContain(`database user "${WRITER}" may not apply them`);
    expect((refused as Error).message).toContain('vinops-etl migrate');
    await connect(db.url, async (c) => {
      expect((await c.query(`SELECT to_regclass('raw.later_rows') AS t`)).rows[0].t).toBeNull();
      expect((await migrate(c, silentLog, later)).applied).toEqual(['9001_later_release.sql']);
    });
    await connect(as(WRITER), async (c) => {
      expect(await outcome(c, "INSERT INTO raw.later_rows (v) VALUES ('a')")).toBe('ok');
      expect(await outcome(c, "INSERT INTO public.later_core VALUES (1)")).toBe('ok');
      // Nothing pending for it any more: migrate passes without DDL.
      expect((await migrate(c, silentLog, later)).applied).toEqual([]);
    });
    // A grant lost (a failed run, a person's REVOKE) is given again by the next migrate, pending or not.
    await connect(db.url, async (c) => {
      await c.query(`REVOKE INSERT ON raw.later_rows FROM ${WRITER_ROLE}`);
      expect((await migrate(c, silentLog, later)).applied).toEqual([]);
    });
    await connect(as(WRITER), async (c) => { expect(await outcome(c, "INSERT INTO raw.later_rows (v) VALUES ('b')")).toBe('ok'); });
    await connect(as(READER), async (c) => {
      expect(await outcome(c, 'SELECT * FROM public.later_core')).toBe('ok');
      expect(await outcome(c, 'SELECT * FROM audit.v_later')).toBe('ok');
      expect(await outcome(c, 'SELECT * FROM raw.later_rows')).toBe('42501');
    });
  });

  it('the command: as the owner a report (idempotent), as another role exit 2 with the fix', async () => {
    const cli = new URL('../../dist/cli/main.js', import.meta.url).pathname;
    const run = (url: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> => new Promise((resolve) => {
      execFile(process.execPath, [cli, 'roles', ...args], { env: { PATH: process.env.PATH, DATABASE_URL: url, VINOPS_LOG_LEVEL: 'warn' } },
        (err, stdout, stderr) => resolve({ code: err === null ? 0 : Number((err as { code?: number }).code), stdout, stderr }));
    });
    const owner = await run(db.url, '--json');
    expect(owner.code).toBe(0);
    expect(JSON.parse(owner.stdout)).toMatchObject({ created: [], existing: [READER_ROLE, WRITER_ROLE], schema_migrated: true });
    expect((await run(db.url)).stdout).toContain(`IN ROLE ${WRITER_ROLE}`);
    const other = await run(as(READER));
    expect(other.code).toBe(2);
    expect(other.stderr).toContain(`the database user "${READER}" does not own the vinops-etl schema`);
  });

  it('the daemon as the writer, on a schema one migration behind, stays not ready naming it, then ingests once the owner migrated', async () => {
    const all = (await readdir(MIGRATIONS_DIR)).filter((n) => n.endsWith('.sql')).sort();
    const last = all.at(-1)!;
    // The schema is owned by a role of its own, which migrated it up to the last release but one.
    await connect(inject('adminUrl'), (c) => c.query(`CREATE DATABASE ${BEHIND_DB} OWNER ${OWNER}`));
    const behindUrl = databaseUrl(BEHIND_DB);
    await connect(as(OWNER, behindUrl), async (c) => {
      await migrate(c, silentLog, await migrationsWith({}, [last])); // grants the groups what exists
    });
    const raw = await mkdtemp(join(dir, 'raw-'));
    const port = await freePort();
    const lines: Record<string, unknown>[] = [];
    const log = pino({ level: 'info' }, new Writable({ write(chunk, _e, done) { lines.push(JSON.parse(String(chunk)) as Record<string, unknown>); done(); } }));
    const config = loadConfig({ env: { DATABASE_URL: as(WRITER, behindUrl), VINOPS_RAW_DIR: raw, VINOPS_METRICS_ADDR: `127.0.0.1:${port}`, VINOPS_RESCAN_INTERVAL_MS: '1000' } });
    const stop = new AbortController();
    const daemon = runDaemon(config, log, { signal: stop.signal, reconnect: { refusedBaseMs: 200, refusedMaxMs: 400 } });
    try {
      const notReady = await waitFor('not ready, naming the migration', async () => {
        const r = await get(`http://127.0.0.1:${port}/readyz`).catch(() => undefined);
        return r !== undefined && r.status === 503 && r.body.includes(last) ? r : undefined;
      }, 30_000);
      expect(JSON.parse(notReady.body).error).toContain('run `vinops-etl migrate` as the role that owns the schema');
      await new Promise((r) => setTimeout(r, 1000));
      const errors = lines.filter((l) => (l.level as number) >= 50);
      expect(errors).toHaveLength(1); // one error line, the repeats are warnings
      expect(errors[0]!.pending).toEqual([last]);

      // A superuser (the test server's admin) applies the last one: as the owner, so one role owns everything.
      await connect(behindUrl, async (c) => {
        await migrate(c, silentLog);
        const { rows } = await c.query(`SELECT c.oid::regclass::text AS rel FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname IN ('raw', 'staging', 'audit') AND pg_get_userbyid(c.relowner) <> $1`, [OWNER]);
        expect(rows).toEqual([]);
      });
      await waitFor('ready once migrated', async () => (await get(`http://127.0.0.1:${port}/readyz`)).status === 200, 30_000);
      await mkdir(join(raw, '2025', '10', '17'), { recursive: true });
      await writeFeedFile(join(raw, '2025', '10', '17', '1200.csv'), { rows: 50, seed: 72 });
      await waitFor('the file ingested by the writer', async () =>
        connect(behindUrl, async (c) => (await c.query(`SELECT count(*)::int AS n FROM raw.csv_files`)).rows[0].n === 1), 30_000);
      expect(lines.some((l) => String(l.msg).includes('owns the vinops-etl schema'))).toBe(false);
    } finally {
      stop.abort();
      await daemon;
    }
  });
});
