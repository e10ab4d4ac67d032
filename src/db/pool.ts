import pg from 'pg';
import type { Logger } from 'pino';
import { sqlState } from './errors.js';
import { tlsOptions, type TlsSettings } from './tls.js';

/**
 * How often the server checks, during a long statement, that this process is still connected
 * (PostgreSQL 14+). A daemon killed in the middle of a promote would otherwise leave its backend
 * running the statement to the end, holding the file's locks, while the retry waits on them.
 */
const CLIENT_CHECK_MS = 5000;

/**
 * A pool whose idle clients cannot crash the process: a connection dropped by the server while idle
 * emits 'error' on the pool, which is logged and otherwise ignored (node-postgres docs).
 */
export function createPool(connectionString: string, log: Logger, max = 4, tls: TlsSettings = {}): pg.Pool {
  const { connectionString: plain, ssl } = tlsOptions(connectionString, tls);
  const pool = new pg.Pool({
    connectionString: plain,
    ...(ssl === undefined ? {} : { ssl }),
    max,
    application_name: 'vinops-etl',
    options: `-c client_connection_check_interval=${CLIENT_CHECK_MS}`,
    connectionTimeoutMillis: 10_000,
    idleTimeoutMillis: 30_000,
    keepAlive: true,
  });
  // The logger's err serializer keeps only the error's own facts (pg-pool puts the client, with its
  // cancel secretKey, on err.client). While the pool is closing, a lost connection is expected.
  pool.on('error', (err) => (pool.ending ? log.debug : log.warn).call(log, { err }, 'idle PostgreSQL connection lost'));
  return pool;
}

/**
 * Checks out a client for the duration of fn, with an 'error' listener, and always releases it. A
 * client that failed with anything but a server-reported SQL error (connection loss, an aborted COPY
 * stream) is destroyed instead of going back into the pool.
 */
export async function withClient<T>(pool: pg.Pool, log: Logger, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  const onError = (err: Error): void => log.warn({ err }, 'PostgreSQL connection error on a checked-out client');
  client.on('error', onError);
  let discard: Error | undefined;
  try {
    return await fn(client);
  } catch (err) {
    const code = sqlState(err);
    if (code === undefined || !/^[0-9A-Z]{5}$/.test(code)) discard = err instanceof Error ? err : new Error(String(err));
    throw err;
  } finally {
    client.off('error', onError);
    client.release(discard);
  }
}
