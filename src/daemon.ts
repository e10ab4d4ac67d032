import { mkdir } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import { openDatabase, type Database } from './database.js';
import { Discovery } from './discovery.js';
import { MigrationChecksumError } from './migrate.js';
import { handleSignals } from './signals.js';
import { Worker } from './worker.js';

/**
 * `vinops-etl run`: the composition root. Wires config -> database (embedded or DATABASE_URL,
 * migrated) -> workers -> discovery -> signals, and releases them in reverse order. No business
 * logic here.
 */
export async function runDaemon(config: Config, log: Logger, options: { signal?: AbortSignal } = {}): Promise<void> {
  const stopRequested = new AbortController();
  const removeSignals = handleSignals(log, { stop: () => stopRequested.abort(), rescan: () => { void discovery?.rescanNow(); } });
  options.signal?.addEventListener('abort', () => stopRequested.abort(), { once: true });
  let discovery: Discovery | undefined;
  let db: Database | undefined;
  try {
    db = await openWithRetry(config, log, stopRequested.signal);
    if (db === undefined) return; // stopped before the database came up
    await mkdir(config.rawDir, { recursive: true }).catch((err: unknown) => log.warn({ err, raw_dir: config.rawDir }, 'raw directory cannot be created'));

    const workers = Array.from({ length: config.workers }, (_, i) => new Worker(db!.pool, log.child({ component: 'worker', worker: i + 1 }), {
      id: i + 1, claimTimeoutMs: config.claimTimeoutMs, maxAttempts: config.maxAttempts, retryBaseMs: config.retryBaseMs,
      retryMaxMs: config.retryMaxMs, maxRecordBytes: config.maxRecordBytes,
    }));
    discovery = new Discovery(db.pool, log.child({ component: 'discovery' }), config);
    discovery.onQueued = () => workers.forEach((w) => w.wake());
    workers.forEach((w) => w.start());
    await discovery.start();
    log.info({ raw_dir: config.rawDir, workers: config.workers }, 'vinops-etl running');

    await new Promise<void>((resolve) => stopRequested.signal.addEventListener('abort', () => resolve(), { once: true }));

    // Drain: stop discovering and claiming; the file in flight gets drainTimeoutMs, then is rolled back.
    await discovery.stop();
    const deadline = AbortSignal.timeout(config.drainTimeoutMs);
    await Promise.all(workers.map((w) => w.stop(deadline)));
    log.info('stopped cleanly');
  } finally {
    await discovery?.stop();
    await db?.close();
    removeSignals();
  }
}

/** The database, retried with capped backoff while it is unreachable; undefined when stopped first. */
async function openWithRetry(config: Config, log: Logger, stop: AbortSignal): Promise<Database | undefined> {
  let delay = 1000;
  while (!stop.aborted) {
    try {
      return await openDatabase(config, log);
    } catch (err) {
      if (err instanceof MigrationChecksumError) throw err; // a changed migration file needs a person
      log.error({ err, retry_in_ms: delay }, 'database not available; retrying');
      await new Promise((resolve) => {
        const t = setTimeout(resolve, delay);
        stop.addEventListener('abort', () => { clearTimeout(t); resolve(undefined); }, { once: true });
      });
      delay = Math.min(delay * 2, 30_000);
    }
  }
  return undefined;
}
