import pg from 'pg';
import pino from 'pino';
import { inject } from 'vitest';

export interface TestDatabase {
  readonly url: string;
  readonly name: string;
  readonly pool: pg.Pool;
  drop(): Promise<void>;
}

let counter = 0;

/** A fresh database cloned from the migrated template; drop() removes it. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const adminUrl = inject('adminUrl');
  const templateDb = inject('templateDb');
  const ppid = templateDb.replace('vinops_tpl_', '');
  const name = `vinops_t_${ppid}_${process.pid}_${++counter}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    // Two test files cloning at the same instant can see each other on the template (55006): retry.
    for (let attempt = 1; ; attempt++) {
      try {
        await admin.query(`CREATE DATABASE ${name} TEMPLATE ${templateDb}`);
        break;
      } catch (err) {
        if ((err as { code?: string }).code !== '55006' || attempt >= 20) throw err;
        await new Promise((r) => setTimeout(r, 100 * attempt));
      }
    }
  } finally {
    await admin.end();
  }
  const url = databaseUrl(name);
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  pool.on('error', () => undefined);
  return {
    url,
    name,
    pool,
    async drop() {
      await pool.end();
      const a = new pg.Client({ connectionString: adminUrl });
      await a.connect();
      try {
        await a.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await a.end();
      }
    },
  };
}

/** The URL of another database on the test server (e.g. an empty one for migration tests). */
export function databaseUrl(name: string): string {
  const u = new URL(inject('adminUrl'));
  u.pathname = `/${name}`;
  return u.toString();
}

/** A silent logger for code under test. */
export const silentLog = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
