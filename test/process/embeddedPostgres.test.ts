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
