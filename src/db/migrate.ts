import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import type { Logger } from 'pino';
import { ConfigError } from '../config.js';
import { grantGroupRoles } from './roles.js';
import { withTransaction } from './transaction.js';

const { escapeIdentifier } = pg;

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
 * Migrations are pending and the connected role may not apply them (it does not own the schema: the
 * daemon's least-privilege login). Nothing changes until the owner runs `vinops-etl migrate`, so the
 * daemon treats it like a refused login: not ready, this one message, asked again now and then.
 */
export class PendingMigrationsError extends ConfigError {
  override name = 'PendingMigrationsError';
  constructor(readonly pending: readonly string[], readonly user: string, options?: { cause?: unknown }) {
    super(`the database schema is behind: ${pending.length} migration(s) pending (${pending.join(', ')}) and the database user "${user}" ` +
      'may not apply them — run `vinops-etl migrate` as the role that owns the schema (docs/security.md)', options);
  }
}

/**
 * Applies pending migrations, each file in its own transaction, recorded with its checksum in
 * public.vinops_migrations, then grants the group roles (db/roles.ts) what they lack, so new objects
 * are reachable; a grant that failed once is given at the next run. Refuses to run when an applied
 * file's content changed. With nothing pending it runs no DDL, so a role that owns nothing (the
 * daemon's) passes; with migrations pending such a role gets a PendingMigrationsError naming them.
 * A member of the owner (a superuser, an administrator) migrates as the owner (SET ROLE), so every
 * object keeps one owner.
 */
export async function migrate(client: pg.ClientBase, log: Logger, dir: string = MIGRATIONS_DIR): Promise<MigrateResult> {
  const migrations = await loadMigrations(dir);
  const before = await readLedger(client);
  checkChecksums(migrations, before.applied);
  const pending = migrations.filter((m) => !before.applied.has(m.name));
  if (pending.length > 0 && !before.mayMigrate) throw new PendingMigrationsError(pending.map((m) => m.name), before.user);
  if (pending.length === 0 && !before.mayMigrate) return { applied: [], alreadyApplied: migrations.length };

  await client.query('SELECT pg_advisory_lock($1, $2)', [...MIGRATION_LOCK]);
  const asOwner = before.owner !== undefined && before.owner !== before.user;
  try {
    if (asOwner) await client.query(`SET ROLE ${escapeIdentifier(before.owner!)}`);
    await client.query(`CREATE TABLE IF NOT EXISTS public.vinops_migrations (
      name text PRIMARY KEY,
      checksum text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now())`);
    // Read again under the lock: another migrator may have applied some meanwhile.
    const { applied: done } = await readLedger(client);
    checkChecksums(migrations, done);
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
    const granted = await grantGroupRoles(client, log);
    if (granted > 0) log.info({ grants: granted }, 'group roles granted what they lacked');
    return { applied, alreadyApplied: migrations.length - applied.length };
  } finally {
    if (asOwner) await client.query('RESET ROLE').catch(() => undefined);
    await client.query('SELECT pg_advisory_unlock($1, $2)', [...MIGRATION_LOCK]).catch(() => undefined);
  }
}

function checkChecksums(migrations: readonly Migration[], applied: ReadonlyMap<string, string>): void {
  for (const m of migrations) {
    const checksum = applied.get(m.name);
    if (checksum !== undefined && checksum !== m.checksum) throw new MigrationChecksumError(m.name);
  }
}

/**
 * The applied migrations (none before the first migrate), who is connected, and whether that role may
 * migrate: a member of the ledger's owner, or anyone on a database that has no ledger yet (a role
 * that may not create it there gets the server's refusal, explained by db/open.ts).
 */
async function readLedger(client: pg.ClientBase): Promise<{ applied: Map<string, string>; user: string; mayMigrate: boolean; owner?: string }> {
  const { rows: [state] } = await client.query<{ user: string; exists: boolean; may: boolean; owner: string | null }>(
    `SELECT current_user AS user, to_regclass('public.vinops_migrations') IS NOT NULL AS exists,
            coalesce((SELECT pg_has_role(current_user, relowner, 'USAGE') FROM pg_class WHERE oid = to_regclass('public.vinops_migrations')), true) AS may,
            (SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = to_regclass('public.vinops_migrations')) AS owner`);
  if (!state!.exists) return { applied: new Map(), user: state!.user, mayMigrate: true };
  const { rows } = await client.query<{ name: string; checksum: string }>('SELECT name, checksum FROM public.vinops_migrations');
  return { applied: new Map(rows.map((r) => [r.name, r.checksum])), user: state!.user, mayMigrate: state!.may, ...(state!.owner === null ? {} : { owner: state!.owner }) };
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
