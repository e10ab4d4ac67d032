import { join } from 'node:path';
import type pg from 'pg';
import type { Logger } from 'pino';
import { ConfigError, type Config } from '../config.js';
import { createPool } from './pool.js';
import { ensureDatabase, startEmbeddedPostgres, type EmbeddedCluster } from './embedded.js';
import { migrate, PendingMigrationsError } from './migrate.js';
import { findRefusal, type RefusalKind } from './errors.js';

/**
 * The server refused the login (wrong password, unknown role, pg_hba.conf), a privilege or the
 * database itself: nothing changes until a person fixes DATABASE_URL or the server. A ConfigError,
 * so commands print its message as one line and exit as for any configuration error; the daemon
 * retries it slowly.
 */
export class DatabaseConfigError extends ConfigError {
  override name = 'DatabaseConfigError';
  constructor(message: string, readonly kind: RefusalKind, readonly sqlState: string | undefined, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/**
 * err as a DatabaseConfigError with a message that says what was refused and what to check, or err
 * itself when it is not a refusal. The URL gives the user name; its password is never shown.
 */
export function explainDatabaseError(err: unknown, url: string): unknown {
  if (err instanceof DatabaseConfigError || err instanceof PendingMigrationsError) return err;
  const refusal = findRefusal(err);
  if (refusal === undefined) return err;
  const { user, database } = urlParts(url);
  const code = refusal.code === undefined ? '' : ` (${refusal.code})`;
  const who = user === undefined ? '' : ` for user "${user}"`;
  const message = refusal.kind === 'tls'
    ? `TLS to the database failed: ${refusal.message}${code} — check sslmode, sslrootcert and the host name in DATABASE_URL (or databaseSsl* in the config; docs/security.md)`
    : refusal.kind === 'login'
    ? `database refused the login${who}: ${refusal.message}${code} — check the user and password in DATABASE_URL` +
      (refusal.code === '28000' ? ' and the server\'s pg_hba.conf' : '')
    : refusal.kind === 'database'
      ? `${refusal.message}${code} — create the database (docs/operations.md, Installation) or fix its name in DATABASE_URL` +
        (database === undefined ? '' : ` (now "${database}")`)
      : `database user${user === undefined ? '' : ` "${user}"`} lacks a privilege: ${refusal.message}${code} — ` +
        'the daemon and `migrate` need a role that owns the database (docs/operations.md, Installation)';
  return new DatabaseConfigError(message, refusal.kind, refusal.code, { cause: err });
}

function urlParts(url: string): { user: string | undefined; database: string | undefined } {
  try {
    const u = new URL(url);
    const name = decodeURIComponent(u.pathname.replace(/^\//, ''));
    return { user: u.username === '' ? undefined : decodeURIComponent(u.username), database: name === '' ? undefined : name };
  } catch {
    return { user: undefined, database: undefined };
  }
}

/**
 * Whether the daemon's login has more power than it needs: a superuser, or the owner of the schema
 * (it could drop the tables). Logged as a warning at start (docs/security.md); the embedded server's
 * superuser is the zero-setup default and is not warned about.
 */
export async function warnIfPrivileged(db: Database, log: Logger): Promise<void> {
  if (db.embedded !== undefined) return;
  const { rows: [r] } = await db.pool.query<{ user: string; superuser: boolean; owner: boolean }>(
    `SELECT current_user AS user, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS superuser,
            coalesce((SELECT pg_has_role(current_user, nspowner, 'USAGE') FROM pg_namespace WHERE nspname = 'raw'), false) AS owner`);
  if (r!.superuser) log.warn({ user: r!.user }, `connected as the superuser "${r!.user}": give the daemon a role of its own without superuser (docs/security.md)`);
  else if (r!.owner) log.warn({ user: r!.user }, `connected as "${r!.user}", which owns the vinops-etl schema: the daemon could drop its tables; run it as a role that does not own them (docs/security.md)`);
}

/** A pool on the configured database, plus the embedded cluster behind it when there is one. */
export interface Database {
  readonly pool: pg.Pool;
  readonly url: string;
  readonly embedded: EmbeddedCluster | undefined;
  close(): Promise<void>;
}

/**
 * Connects to DATABASE_URL, or starts the embedded PostgreSQL under `<dataDir>/pg` when none is
 * configured, and optionally migrates. close() releases in reverse order. Without migrating it still
 * logs in once, so a refused login is a DatabaseConfigError here and not a puzzling first query.
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
  const pool = createPool(url, log, options.poolSize ?? config.workers + 3, embedded === undefined ? {
    sslMode: config.databaseSslMode, sslRootCert: config.databaseSslRootCert, sslCert: config.databaseSslCert, sslKey: config.databaseSslKey } : {});
  try {
    const client = await pool.connect();
    try {
      if (options.migrate !== false) await migrate(client, log);
    } finally {
      client.release();
    }
  } catch (err) {
    await pool.end().catch(() => undefined);
    await embedded?.stop().catch(() => undefined);
    throw explainDatabaseError(err, url);
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
