import type { Logger } from 'pino';
import type { Config } from './config.js';
import { DaemonStatus } from './observe/health.js';
import { DatabaseConfigError, openDatabase, warnIfPrivileged, type Database } from './db/open.js';
import { Discovery } from './discovery/watcher.js';
import { HttpServer } from './observe/httpServer.js';
import { loadWebConfig } from './observe/webConfig.js';
import { Metrics } from './observe/metrics.js';
import { MigrationChecksumError, PendingMigrationsError } from './db/migrate.js';
import { REFUSED_RETRY_MS } from './db/errors.js';
import { handleSignals } from './signals.js';
import { sleep, untilAborted } from './abortable.js';
import { loadStatusPage, renderStatusPage } from './observe/statusPage.js';
import { Worker } from './queue/worker.js';
import { Fetcher } from './fetch/fetcher.js';
import { fetchSourceOf } from './fetch/fetchSource.js';
import { lastFetchSuccessAt } from './observe/statusQueries.js';
import { Pruner, retentionOf } from './archive/pruner.js';

/**
 * `vinops-etl run`: the composition root. Wires config -> metrics and HTTP server (up first, so
 * /healthz answers and /readyz says 503 while the database is not there) -> database (embedded or
 * DATABASE_URL, migrated) -> workers -> discovery -> signals, and releases them in reverse order,
 * the HTTP server last. No business logic here.
 */
export async function runDaemon(config: Config, log: Logger, options: { signal?: AbortSignal; reconnect?: Partial<ReconnectDelays> } = {}): Promise<void> {
  // Read first: a bad web configuration stops the start before anything is set up.
  const web = config.webConfigFile === undefined ? undefined : loadWebConfig(config.webConfigFile);
  const stopRequested = new AbortController();
  const removeSignals = handleSignals(log, { stop: () => stopRequested.abort(), rescan: () => { void discovery?.rescanNow(); } });
  // 'abort' fires once, when it happens: a listener added later never hears it (see untilAborted).
  if (options.signal?.aborted === true) stopRequested.abort();
  else options.signal?.addEventListener('abort', () => stopRequested.abort(), { once: true });
  const status = new DaemonStatus(log.child({ component: 'status' }));
  const metrics = new Metrics(status);
  const http = new HttpServer(config.metricsAddr, log.child({ component: 'http' }), {
    metrics: () => metrics.scrape(),
    readiness: () => status.readiness(),
    statusPage: async () => renderStatusPage(await loadStatusPage(status)),
  }, web);
  let discovery: Discovery | undefined;
  let fetcher: Fetcher | undefined;
  let pruner: Pruner | undefined;
  let db: Database | undefined;
  try {
    await http.start();
    db = await openWithRetry(config, log, stopRequested.signal, status, { ...RECONNECT_DELAYS, ...options.reconnect });
    if (db === undefined) return; // stopped before the database came up
    await warnIfPrivileged(db, log).catch((err: unknown) => log.debug({ err }, 'could not read the role\'s privileges'));
    // The raw directory is not created here: a typo in rawDir would be created and watched, silently.
    // Discovery reports a missing one (readiness, log, status page); `npm start` creates its own.

    const workers = Array.from({ length: config.workers }, (_, i) => new Worker(db!.pool, log.child({ component: 'worker', worker: i + 1 }), {
      id: i + 1, claimTimeoutMs: config.claimTimeoutMs, maxAttempts: config.maxAttempts, retryBaseMs: config.retryBaseMs,
      retryMaxMs: config.retryMaxMs, maxRecordBytes: config.maxRecordBytes,
    }));
    workers.forEach((w) => { w.onOutcome = (o) => metrics.recordOutcome(o); });
    discovery = new Discovery(db.pool, log.child({ component: 'discovery' }), config);
    discovery.onQueued = () => workers.forEach((w) => w.wake());
    status.attach({ pool: db.pool, workers, discovery });
    workers.forEach((w) => w.start());
    await discovery.start();
    const source = fetchSourceOf(config);
    metrics.setFetchEnabled(source !== undefined, source === undefined ? null : await lastFetchSuccessAt(db.pool));
    if (source !== undefined) {
      fetcher = new Fetcher(db.pool, log.child({ component: 'fetch' }), { rawDir: config.rawDir, source, intervalMs: config.fetchIntervalMs, delayMaxMs: config.fetchDelayMaxMs });
      fetcher.onResult = (r) => metrics.recordFetch(r);
      fetcher.onError = () => metrics.recordFetchError();
      fetcher.start();
    }
    const retention = retentionOf(config);
    metrics.setRetentionEnabled(retention !== undefined);
    if (retention !== undefined) {
      pruner = new Pruner(db.pool, log.child({ component: 'retention' }), retention, config.pruneIntervalMs);
      pruner.onReport = (r) => metrics.recordPrune(r);
      pruner.start();
    }
    log.info({ raw_dir: config.rawDir, workers: config.workers, fetching: source !== undefined, retention: retention !== undefined }, 'vinops-etl running');

    await untilAborted(stopRequested.signal);

    // Drain: stop fetching (a download in flight leaves nothing), discovering and claiming; the file in
    // flight gets drainTimeoutMs, then is rolled back.
    await fetcher?.stop();
    await pruner?.stop();
    await discovery.stop();
    const deadline = AbortSignal.timeout(config.drainTimeoutMs);
    await Promise.all(workers.map((w) => w.stop(deadline)));
    log.info('stopped cleanly');
  } finally {
    await fetcher?.stop();
    await pruner?.stop();
    await discovery?.stop();
    status.detach();
    await db?.close();
    await http.stop();
    removeSignals();
  }
}

/** Delays between attempts to open the database at start, in ms, doubled per attempt up to the cap. */
export interface ReconnectDelays {
  /** The server is not there (down, restarting, unreachable): it usually comes back by itself. */
  readonly outageBaseMs: number;
  readonly outageMaxMs: number;
  /** The server refused the login, a privilege or the database: only a person fixes that, so ask rarely. */
  readonly refusedBaseMs: number;
  readonly refusedMaxMs: number;
}
export const RECONNECT_DELAYS: ReconnectDelays = { outageBaseMs: 1000, outageMaxMs: 30_000, refusedBaseMs: REFUSED_RETRY_MS.base, refusedMaxMs: REFUSED_RETRY_MS.max };

/**
 * The database, retried with capped backoff while it is unreachable or refuses; undefined when stopped
 * first. An error is logged whole (with its stack) the first time, each repeat as one warn line, so a
 * wrong password does not fill the journal; a refusal is logged as its own sentence, without a stack.
 */
async function openWithRetry(config: Config, log: Logger, stop: AbortSignal, status: DaemonStatus, delays: ReconnectDelays): Promise<Database | undefined> {
  let delay = 0;
  let lastKind: 'outage' | 'refused' | undefined;
  let lastMessage: string | undefined;
  for (let attempt = 1; !stop.aborted; attempt++) {
    try {
      const db = await openDatabase(config, log);
      status.noteDatabaseError(undefined);
      if (attempt > 1) log.info({ attempts: attempt }, 'database available');
      return db;
    } catch (err) {
      if (err instanceof MigrationChecksumError) throw err; // a changed migration file needs a person
      // Refused: a login, privilege or migration only a person can fix (asked again rarely).
      const refused = err instanceof DatabaseConfigError || err instanceof PendingMigrationsError;
      const kind = refused ? 'refused' : 'outage';
      delay = kind !== lastKind ? (refused ? delays.refusedBaseMs : delays.outageBaseMs)
        : Math.min(delay * 2, refused ? delays.refusedMaxMs : delays.outageMaxMs);
      const message = err instanceof Error ? err.message : String(err);
      status.noteDatabaseError(message);
      if (message !== lastMessage) {
        if (err instanceof DatabaseConfigError) log.error({ sqlstate: err.sqlState, retry_in_ms: delay }, message);
        else if (err instanceof PendingMigrationsError) log.error({ pending: err.pending, retry_in_ms: delay }, message);
        else log.error({ err, retry_in_ms: delay }, 'database not available; retrying');
      } else {
        log.warn({ error: message, attempt, retry_in_ms: delay }, refused ? 'database still refuses; retrying' : 'database still not available; retrying');
      }
      lastKind = kind;
      lastMessage = message;
      await sleep(delay, stop);
    }
  }
  return undefined;
}
