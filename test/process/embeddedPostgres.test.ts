import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { startEmbeddedPostgres } from '../../src/db/embedded.js';
import { freePort } from '../helpers/wait.js';

const log = pino({ level: 'silent' });
const asRoot = userInfo().uid === 0;

describe.runIf(asRoot)('embedded PostgreSQL as root', () => {
  const cleanup: string[] = [];
  afterAll(async () => {
    for (const p of cleanup) await rm(p, { recursive: true, force: true });
  });

  it('runs a cluster asked for inside a 0700 folder from a place the postgres user can reach, and finds it again', async () => {
    const priv = await mkdtemp(join(tmpdir(), 'vinops-private-')); // 0700, root's: postgres cannot enter
    const fallback = await mkdtemp(join(tmpdir(), 'vinops-fallback-'));
    spawnSync('chmod', ['0755', fallback]);
    cleanup.push(priv, fallback);
    expect((await stat(priv)).mode & 0o777).toBe(0o700);
    const port = await freePort();
    const first = await startEmbeddedPostgres({ dir: join(priv, 'pg'), port, log, rootFallbackDir: fallback });
    try {
      expect(first.dir.startsWith(join(fallback, 'clusters'))).toBe(true);
      expect(readFileSync(join(priv, 'pg.location'), 'utf8').trim()).toBe(first.dir);
      const client = new pg.Client(first.url);
      await client.connect();
      await client.query('CREATE TABLE kept (x int)');
      await client.end();
    } finally {
      await first.stop();
    }
    const again = await startEmbeddedPostgres({ dir: join(priv, 'pg'), port, log, rootFallbackDir: fallback, ephemeral: true });
    try {
      expect(again.dir).toBe(first.dir);
      const client = new pg.Client(again.url);
      await client.connect();
      const { rows } = await client.query(`SELECT to_regclass('kept') IS NOT NULL AS kept`);
      await client.end();
      expect(rows[0].kept).toBe(true);
    } finally {
      await again.stop();
    }
    expect(existsSync(again.dir)).toBe(false);
  });

  it('says in one sentence why a server cannot start, instead of an unhandled event', async () => {
    const port = await freePort();
    const dir = await mkdtemp(join(tmpdir(), 'vinops-badflag-'));
    spawnSync('chmod', ['0755', dir]);
    cleanup.push(dir);
    await expect(startEmbeddedPostgres({ dir: join(dir, 'pg'), port, log, postgresFlags: ['-c', 'no_such_setting=1'], ephemeral: true }))
      .rejects.toThrow(/did not start on port .*no_such_setting/);
  });
});

describe('the embedded cluster\'s password', () => {
  const cleanup: string[] = [];
  afterAll(async () => {
    for (const p of cleanup) await rm(p, { recursive: true, force: true });
  });

  it('is made at initdb, kept in the data directory with mode 0600, and the built-in one of an older cluster is replaced', async () => {
    const base = await mkdtemp(join(tmpdir(), 'vinops-pw-'));
    spawnSync('chmod', ['0755', base]);
    cleanup.push(base);
    const port = await freePort();
    const options = { dir: join(base, 'pg'), port, log, rootFallbackDir: join(base, 'fallback') };
    const login = async (url: string): Promise<boolean> => {
      const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
      c.on('error', () => undefined);
      try { await c.connect(); return true; } catch { return false; } finally { await c.end().catch(() => undefined); }
    };
    const legacy = `postgresql://vinops:vinops@127.0.0.1:${port}/postgres`;

    const first = await startEmbeddedPostgres(options);
    const file = join(first.dir, 'vinops-password');
    try {
      const password = readFileSync(file, 'utf8').trim();
      expect(password).toMatch(/^[\w-]{32}$/);
      expect((await stat(file)).mode & 0o777).toBe(0o600);
      expect(decodeURIComponent(new URL(first.url).password)).toBe(password);
      expect(await login(first.url)).toBe(true);
      expect(await login(legacy)).toBe(false);
      // Make it a cluster of an older version: the built-in password, no file.
      const c = new pg.Client(first.url);
      await c.connect();
      await c.query(`ALTER ROLE vinops PASSWORD 'vinops'`);
      await c.end();
      await rm(file);
    } finally {
      await first.stop();
    }
    const again = await startEmbeddedPostgres({ ...options, ephemeral: true });
    try {
      const fresh = readFileSync(join(again.dir, 'vinops-password'), 'utf8').trim();
      expect(fresh).toMatch(/^[\w-]{32}$/);
      expect(await login(again.url)).toBe(true);
      expect(await login(legacy)).toBe(false);
    } finally {
      await again.stop();
    }
  });
});
