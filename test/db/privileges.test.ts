import { Writable } from 'node:stream';
import pg from 'pg';
import pino from 'pino';
import { expect, it, onTestFinished } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { openDatabase, warnIfPrivileged } from '../../src/db/open.js';
import { createTestDatabase } from '../helpers/testDatabase.js';

function capturing(): { log: pino.Logger; warnings: () => string[] } {
  const lines: string[] = [];
  const log = pino({ level: 'warn' }, new Writable({ write(c, _e, done) { lines.push(String(c)); done(); } }));
  return { log, warnings: () => lines.map((l) => (JSON.parse(l) as { msg: string }).msg) };
}

it('warns at start when the daemon\'s login is a superuser or owns the schema, not when it is neither', async () => {
  const db = await createTestDatabase();
  onTestFinished(() => db.drop());
  const run = async (url: string): Promise<string[]> => {
    const { log, warnings } = capturing();
    const opened = await openDatabase(loadConfig({ env: { DATABASE_URL: url } }), log, { migrate: false });
    try {
      await warnIfPrivileged(opened, log);
    } finally {
      await opened.close();
    }
    return warnings();
  };
  const { rows: [me] } = await db.pool.query<{ user: string; superuser: boolean }>('SELECT current_user AS user, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS superuser');
  if (me!.superuser) expect(await run(db.url)).toEqual([`connected as the superuser "${me!.user}": give the daemon a role of its own without superuser (docs/security.md)`]);

  const role = `vinops_priv_${process.pid}`;
  const admin = new pg.Client({ connectionString: db.url });
  await admin.connect();
  try {
    await admin.query(`DROP ROLE IF EXISTS ${role}_owner`);
    await admin.query(`DROP ROLE IF EXISTS ${role}_plain`);
    await admin.query(`CREATE ROLE ${role}_owner LOGIN PASSWORD 'x'`);
    await admin.query(`CREATE ROLE ${role}_plain LOGIN PASSWORD 'x'`);
    await admin.query(`ALTER SCHEMA raw OWNER TO ${role}_owner`);
  } finally {
    await admin.end();
  }
  onTestFinished(async () => {
    const a = new pg.Client({ connectionString: db.url });
    await a.connect();
    await a.query(`ALTER SCHEMA raw OWNER TO CURRENT_USER`);
    await a.query(`DROP ROLE ${role}_plain`);
    await a.query(`DROP ROLE ${role}_owner`);
    await a.end();
  });
  const as = (user: string): string => { const u = new URL(db.url); u.username = user; u.password = 'x'; return u.toString(); };
  expect(await run(as(`${role}_owner`))).toEqual([
    `connected as "${role}_owner", which owns the vinops-etl schema: the daemon could drop its tables; run it as a role that does not own them (docs/security.md)`]);
  expect(await run(as(`${role}_plain`))).toEqual([]);
});
