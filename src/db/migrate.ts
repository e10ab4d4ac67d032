import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import type { Logger } from 'pino';
import { withTransaction } from './transaction.js';

/** Where the numbered SQL files live: `migrations/` at the package root (from src/ and dist/ alike). */
export const MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations/', import.meta.url));

/** Session advisory lock held while migrating, so a second migrator waits instead of failing. */
const MIGRATION_LOCK: readonly [number, number] = [0x76696e6f, 1]; // 'vino', 1

export interface Migration {
  readonly name: string;
  readonly sql: string;
  readonly checksum: string;
}

export interface MigrateResult {
  readonly applied: readonly string[];
  readonly alreadyApplied: number;
}

/** Reads `NNNN_name.sql` files in order. */
export async function loadMigrations(dir: string = MIGRATIONS_DIR): Promise<Migration[]> {
  const names = (await readdir(dir)).filter((n) => /^\d{4}_[a-z0-9_]+\.sql$/.test(n)).sort();
  return Promise.all(
    names.map(async (name) => {
      const sql = await readFile(`${dir}/${name}`, 'utf8');
      return { name, sql, checksum: createHash('sha256').update(sql).digest('hex') };
    }),
  );
}

export class MigrationChecksumError extends Error {
  constructor(readonly migration: string) {
    super(`migration ${migration} was already applied with different content; migrations are append-only: add a new file instead`);
    this.name = 'MigrationChecksumError';
  }
}

/**
 * Applies pending migrations, each file in its own transaction, recorded with its checksum in
 * public.vinops_migrations. Refuses to run when an applied file's content changed.
 */
export async function migrate(client: pg.ClientBase, log: Logger, dir: string = MIGRATIONS_DIR): Promise<MigrateResult> {
  const migrations = await loadMigrations(dir);
  await client.query('SELECT pg_advisory_lock($1, $2)', [...MIGRATION_LOCK]);
  try {
    await client.query(`CREATE TABLE IF NOT EXISTS public.vinops_migrations (
      name text PRIMARY KEY,
      checksum text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now())`);
    const { rows } = await client.query<{ name: string; checksum: string }>('SELECT name, checksum FROM public.vinops_migrations');
    const done = new Map(rows.map((r) => [r.name, r.checksum]));
    for (const m of migrations) {
      const checksum = done.get(m.name);
      if (checksum !== undefined && checksum !== m.checksum) throw new MigrationChecksumError(m.name);
    }
    const applied: string[] = [];
    for (const m of migrations) {
      if (done.has(m.name)) continue;
      try {
        await withTransaction(client, async () => {
          await client.query(m.sql);
          await client.query('INSERT INTO public.vinops_migrations (name, checksum) VALUES ($1, $2)', [m.name, m.checksum]);
        });
      } catch (err) {
        throw new Error(`migration ${m.name} failed: ${(err as Error).message}`, { cause: err });
      }
      log.info({ migration: m.name }, 'migration applied');
      applied.push(m.name);
    }
    return { applied, alreadyApplied: migrations.length - applied.length };
  } finally {
    await client.query('SELECT pg_advisory_unlock($1, $2)', [...MIGRATION_LOCK]).catch(() => undefined);
  }
}

/** True when every migration file is applied with its current content (readiness). */
export async function isSchemaCurrent(client: pg.ClientBase, dir: string = MIGRATIONS_DIR): Promise<boolean> {
  const migrations = await loadMigrations(dir);
  const { rows } = await client.query<{ name: string; checksum: string }>(
    `SELECT name, checksum FROM public.vinops_migrations WHERE to_regclass('public.vinops_migrations') IS NOT NULL`,
  ).catch(() => ({ rows: [] as { name: string; checksum: string }[] }));
  const done = new Map(rows.map((r) => [r.name, r.checksum]));
  return migrations.every((m) => done.get(m.name) === m.checksum);
}
