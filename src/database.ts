import { join } from 'node:path';
import type pg from 'pg';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import { createPool } from './db.js';
import { ensureDatabase, startEmbeddedPostgres, type EmbeddedCluster } from './embeddedPostgres.js';
import { migrate } from './migrate.js';

/** A pool on the configured database, plus the embedded cluster behind it when there is one. */
export interface Database {
  readonly pool: pg.Pool;
  readonly url: string;
  readonly embedded: EmbeddedCluster | undefined;
  close(): Promise<void>;
}

/**
 * Connects to DATABASE_URL, or starts the embedded PostgreSQL under `<dataDir>/pg` when none is
 * configured, and optionally migrates. close() releases in reverse order.
 */
export async function openDatabase(config: Config, log: Logger, options: { migrate?: boolean; poolSize?: number } = {}): Promise<Database> {
  let embedded: EmbeddedCluster | undefined;
  let url = config.databaseUrl;
  if (url === undefined) {
    embedded = await startEmbeddedPostgres({ dir: join(config.dataDir, 'pg'), port: config.embeddedPort, log });
    url = await ensureDatabase(embedded, 'vinops').catch(async (err: unknown) => {
      await embedded?.stop().catch(() => undefined);
      throw err;
    });
    log.info({ port: embedded.port, dir: embedded.dir }, 'using the embedded PostgreSQL');
  }
  const pool = createPool(url, log, options.poolSize ?? config.workers + 3);
  try {
    if (options.migrate !== false) {
      const client = await pool.connect();
      try {
        await migrate(client, log);
      } finally {
        client.release();
      }
    }
  } catch (err) {
    await pool.end().catch(() => undefined);
    await embedded?.stop().catch(() => undefined);
    throw err;
  }
  let closed = false;
  return {
    pool,
    url,
    embedded,
    async close() {
      if (closed) return;
      closed = true;
      // pool.end() resolves once it has asked its clients to close, not once their connections are
      // gone ('remove' says that). Stopping the embedded server in between terminates a backend that
      // has not yet read the goodbye, which the pool then reports as a lost connection.
      const gone = allRemoved(pool, CLOSE_WAIT_MS);
      await pool.end().catch((err: unknown) => log.warn({ err }, 'closing the pool failed'));
      await gone;
      await embedded?.stop();
    },
  };
}

/** How long close() waits for the pool's connections to close before it goes on regardless. */
const CLOSE_WAIT_MS = 5000;

/** Resolves when every client the pool holds now has been removed (its connection closed), or after waitMs. */
function allRemoved(pool: pg.Pool, waitMs: number): Promise<void> {
  let left = pool.totalCount;
  if (left === 0) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, waitMs);
    function done(): void {
      clearTimeout(timer);
      pool.off('remove', onRemove);
      resolve();
    }
    function onRemove(): void {
      if (--left <= 0) done();
    }
    pool.on('remove', onRemove);
  });
}
