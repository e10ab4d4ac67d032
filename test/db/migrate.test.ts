import { cp, mkdtemp, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { MIGRATIONS_DIR, MigrationChecksumError, isSchemaCurrent, loadMigrations, migrate } from '../../src/db/migrate.js';
import { databaseUrl, silentLog } from '../helpers/testDatabase.js';

let admin: pg.Client;
let dbName = '';
let counter = 0;
const created: string[] = [];

async function connect(): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: databaseUrl(dbName) });
  await c.connect();
  return c;
}

beforeAll(async () => {
  admin = new pg.Client({ connectionString: inject('adminUrl') });
  await admin.connect();
});

// Each test starts on an empty database of its own (not the migrated template): what it needs, it migrates.
beforeEach(async () => {
  dbName = `vinops_mig_${process.pid}_${++counter}`;
  created.push(dbName);
  await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${dbName}`);
});

afterAll(async () => {
  for (const name of created) await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.end();
});

describe('migrate', () => {
  it('applies every file on an empty database, then a second run changes nothing', async () => {
    const files = await loadMigrations();
    const c = await connect();
    try {
      expect(await isSchemaCurrent(c)).toBe(false);
      const first = await migrate(c, silentLog);
      expect(first.applied).toEqual(files.map((f) => f.name));
      const { rows } = await c.query<{ name: string }>('SELECT name FROM public.vinops_migrations ORDER BY name');
      expect(rows.map((r) => r.name)).toEqual(files.map((f) => f.name));
      const objects = await c.query<{ name: string }>(`
        SELECT n.nspname || '.' || c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname IN ('raw', 'staging', 'audit', 'public') AND c.relkind IN ('r', 'v') ORDER BY 1`);
      expect(objects.rows.map((r) => r.name)).toEqual(expect.arrayContaining([
        'raw.csv_files', 'raw.rows', 'staging.copart_raw', 'audit.etl_runs', 'audit.parse_errors',
        'audit.vin_conflicts', 'audit.upsert_conflicts', 'audit.v_ingest_count', 'audit.v_unknown_rate',
        'audit.v_parse_errors', 'public.vehicles', 'public.lots',
      ]));
      const snapshot = await c.query(`SELECT count(*)::int AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname IN ('raw','staging','audit','public')`);
      const second = await migrate(c, silentLog);
      expect(second.applied).toEqual([]);
      expect(second.alreadyApplied).toBe(files.length);
      const after = await c.query(`SELECT count(*)::int AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname IN ('raw','staging','audit','public')`);
      expect(after.rows[0]).toEqual(snapshot.rows[0]);
      expect(await isSchemaCurrent(c)).toBe(true);
    } finally {
      await c.end();
    }
  });

  it('indexes every reference to the file registry (foreign keys and the lots\' source), so deleting files never scans a table per file', async () => {
    const c = await connect();
    try {
      await migrate(c, silentLog);
      // Foreign keys to raw.csv_files whose column does not lead any index of the referring table.
      const { rows } = await c.query<{ fk: string }>(`
        SELECT con.conrelid::regclass::text || '.' || a.attname AS fk
          FROM pg_constraint con
          JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = con.conkey[1]
         WHERE con.contype = 'f' AND con.confrelid = 'raw.csv_files'::regclass
           AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = con.conrelid AND i.indkey[0] = con.conkey[1])
         ORDER BY 1`);
      expect(rows.map((r) => r.fk)).toEqual([]);
      // public.lots.source_file_id is kept by a trigger, not a foreign key (migration 0008): indexed too (0017).
      const { rows: [lots] } = await c.query<{ indexed: boolean }>(`SELECT EXISTS (SELECT 1 FROM pg_index i
          JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
         WHERE i.indrelid = 'public.lots'::regclass AND a.attname = 'source_file_id') AS indexed`);
      expect(lots!.indexed).toBe(true);
    } finally {
      await c.end();
    }
  });

  it('lets two concurrent migrators through one after the other (advisory lock)', async () => {
    const [a, b] = [await connect(), await connect()];
    try {
      const [ra, rb] = await Promise.all([migrate(a, silentLog), migrate(b, silentLog)]);
      const files = await loadMigrations();
      expect([...ra.applied, ...rb.applied].sort()).toEqual(files.map((f) => f.name));
      expect(Math.min(ra.applied.length, rb.applied.length)).toBe(0);
    } finally {
      await a.end();
      await b.end();
    }
  });

  it('refuses an applied migration whose content changed, naming it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vinops-mig-'));
    await cp(MIGRATIONS_DIR, dir, { recursive: true });
    const target = join(dir, '0001_schemas_and_vin.sql');
    await writeFile(target, `${await readFile(target, 'utf8')}\n-- edited after release\n`);
    const c = await connect();
    try {
      await migrate(c, silentLog);
      await expect(migrate(c, silentLog, dir)).rejects.toThrow(MigrationChecksumError);
      await expect(migrate(c, silentLog, dir)).rejects.toThrow(/0001_schemas_and_vin\.sql/);
    } finally {
      await c.end();
    }
  });

  it('rolls back a failing migration file as a whole', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vinops-mig-'));
    await cp(MIGRATIONS_DIR, dir, { recursive: true });
    await writeFile(join(dir, '9999_broken.sql'), 'CREATE TABLE public.half_done (x int);\nSELECT 1/0;\n');
    const c = await connect();
    try {
      await expect(migrate(c, silentLog, dir)).rejects.toThrow(/9999_broken\.sql/);
      const { rows } = await c.query(`SELECT to_regclass('public.half_done') AS t, (SELECT count(*)::int FROM public.vinops_migrations WHERE name = '9999_broken.sql') AS n`);
      expect(rows[0]).toEqual({ t: null, n: 0 });
    } finally {
      await c.end();
    }
  });
});
