import type pg from 'pg';
import type { Logger } from 'pino';
import { withClient } from '../db/pool.js';
import { isSchemaCurrent } from '../db/migrate.js';
import { countQueue, type QueueState } from '../queue/fileQueue.js';
import {
  lastQueueError, lastSuccessAt, listLastDayByHour, listRecentFetches, listRecentFiles, summarizeArchives, summarizeLastDay, summarizeLifecycle, type DaySummary, type ArchiveSummary, type FetchSummary, type LifecycleSummary, type HourFigures, type QueueError,
  type RecentFile,
} from './statusQueries.js';

/** What one look at the database found. */
export interface DatabaseCheck {
  readonly up: boolean;
  readonly schemaCurrent: boolean;
  /** Queue depth by state; undefined when the database could not be asked. */
  readonly queue: Readonly<Record<QueueState, number>> | undefined;
  /** The last file stored (ingested, not a duplicate) by anyone; undefined when unknown. */
  readonly lastSuccessAt: Date | null | undefined;
  /** Why the database is not up (or not current). */
  readonly error: string | undefined;
}

/** The answer of /readyz. */
export interface Readiness {
  readonly ready: boolean;
  readonly database: boolean;
  readonly schema: boolean;
  readonly watcher: boolean;
  readonly error?: string;
  /** Why the raw directory is not watched (missing, unreadable); absent while starting or stopping. */
  readonly watcher_error?: string;
}

/** A file being ingested right now by a worker of this process. */
export interface InFlightFile {
  /** For a person: "worker 1 on host/pid". */
  readonly worker: string;
  readonly path: string;
  readonly since: Date;
  /** The file's size. */
  readonly bytes: number | undefined;
  /** undefined until the load's first progress report (a few seconds in). */
  readonly progress: ProgressView | undefined;
}

/** What the status page shows from the database. */
export interface RecentActivity {
  readonly files: readonly RecentFile[];
  readonly lastError: QueueError | null;
  readonly lastDay: DaySummary;
  readonly lifecycle: LifecycleSummary;
  /** The fetcher's last attempts (none when fetching is off). */
  readonly fetches: readonly FetchSummary[];
  readonly archives: readonly ArchiveSummary[];
  /** The last 24 hours by hour, for the chart. */
  readonly hours: readonly HourFigures[];
}

/** The parts of a worker and of discovery that the status reads (structural, to keep this module small). */
export interface WorkerView {
  readonly name: string;
  readonly current: { readonly path: string; readonly size?: number } | undefined;
  readonly currentSince: number | undefined;
  readonly progress?: ProgressView | undefined;
}
export interface ProgressView {
  readonly phase: string;
  readonly rows: number;
  readonly bytesRead: number;
}
export interface DiscoveryView {
  readonly watching: boolean;
  readonly problem?: string | undefined;
}

/**
 * A worker's name (`host:pid:N`, `host:pid` for `vinops-etl ingest`, as audit.etl_runs.worker and
 * the queue's claim store it) as a person reads it: "worker 1 on host/pid".
 */
export function workerLabel(name: string | null | undefined): string {
  if (name === null || name === undefined) return '';
  const daemon = /^(.+):(\d+):(\d+)$/.exec(name);
  if (daemon !== null) return `worker ${daemon[3]} on ${daemon[1]}/${daemon[2]}`;
  const command = /^(.+):(\d+)$/.exec(name);
  if (command !== null) return `vinops-etl ingest on ${command[1]}/${command[2]}`;
  return name;
}

/** A database look is given up after this long: a scrape or a probe must answer while the database hangs. */
export const DATABASE_CHECK_TIMEOUT_MS = 2000;

/**
 * What the running daemon can say about itself, for /metrics, /readyz and the status page. The
 * daemon attaches the pool, workers and discovery as they come up and detaches them on the way down;
 * until then everything reads as not ready. Database looks are bounded by a timeout, and concurrent
 * callers share one look in flight, so a hanging database costs at most one connection.
 */
export class DaemonStatus {
  private pool: pg.Pool | undefined;
  private workers: readonly WorkerView[] = [];
  private discovery: DiscoveryView | undefined;
  private checking: Promise<DatabaseCheck> | undefined;
  private reading: Promise<RecentActivity | undefined> | undefined;
  /** Why the daemon could not open the database yet (set by its retry loop), for /readyz until the pool is attached. */
  private openError: string | undefined;

  constructor(private readonly log: Logger, private readonly timeoutMs = DATABASE_CHECK_TIMEOUT_MS) {}

  attach(parts: { pool?: pg.Pool; workers?: readonly WorkerView[]; discovery?: DiscoveryView }): void {
    if (parts.pool !== undefined) this.pool = parts.pool;
    if (parts.workers !== undefined) this.workers = parts.workers;
    if (parts.discovery !== undefined) this.discovery = parts.discovery;
  }

  /** The daemon's last failure to open the database (undefined once it opened): readiness says it instead of "not connected yet". */
  noteDatabaseError(message: string | undefined): void {
    this.openError = message;
  }

  /** Before the pool is closed: from now on the database reads as down. Idempotent. */
  detach(): void {
    this.pool = undefined;
    this.discovery = undefined;
    this.workers = [];
  }

  /** Queue depth, schema and last success in one bounded look; never throws. */
  checkDatabase(): Promise<DatabaseCheck> {
    const pool = this.pool;
    if (pool === undefined) return Promise.resolve(down(this.openError ?? 'not connected yet'));
    this.checking ??= this.look(pool).finally(() => { this.checking = undefined; });
    return bounded(this.checking, this.timeoutMs, () => down(`no answer within ${this.timeoutMs} ms`));
  }

  async readiness(): Promise<Readiness> {
    const db = await this.checkDatabase();
    const watcher = this.discovery?.watching ?? false;
    const problem = watcher ? undefined : this.discovery?.problem;
    const ready = db.up && db.schemaCurrent && watcher;
    return { ready, database: db.up, schema: db.schemaCurrent, watcher, ...(db.error !== undefined ? { error: db.error } : {}),
      ...(problem !== undefined ? { watcher_error: problem } : {}) };
  }

  /** The files in flight in this process, oldest first. */
  inFlight(): InFlightFile[] {
    return this.workers
      .filter((w) => w.current !== undefined && w.currentSince !== undefined)
      .map((w) => ({ worker: workerLabel(w.name), path: w.current!.path, since: new Date(w.currentSince!), bytes: w.current!.size, progress: w.progress }))
      .sort((a, b) => a.since.getTime() - b.since.getTime());
  }

  /** Seconds the oldest attempt in flight has been running; 0 when idle. */
  longestRunningSeconds(now = Date.now()): number {
    const oldest = this.inFlight()[0];
    return oldest === undefined ? 0 : Math.max(0, (now - oldest.since.getTime()) / 1000);
  }

  /** Recent files, the last standing error and the day's quality figures; undefined when the database does not answer. */
  recentActivity(limit: number): Promise<RecentActivity | undefined> {
    const pool = this.pool;
    if (pool === undefined) return Promise.resolve(undefined);
    this.reading ??= withClient(pool, this.log, async (client) => ({
      files: await listRecentFiles(client, limit),
      lastError: await lastQueueError(client),
      lastDay: await summarizeLastDay(client),
      lifecycle: await summarizeLifecycle(client),
      fetches: await listRecentFetches(client, 5),
      archives: await summarizeArchives(client),
      hours: await listLastDayByHour(client),
    })).catch((err: unknown) => {
      this.log.debug({ err }, 'status page: database query failed');
      return undefined;
    }).finally(() => { this.reading = undefined; });
    return bounded(this.reading, this.timeoutMs, () => undefined);
  }

  private async look(pool: pg.Pool): Promise<DatabaseCheck> {
    try {
      return await withClient(pool, this.log, async (client) => {
        const schemaCurrent = await isSchemaCurrent(client);
        if (!schemaCurrent) {
          return { up: true, schemaCurrent, queue: undefined, lastSuccessAt: undefined, error: 'schema is not current: migrations pending' };
        }
        return { up: true, schemaCurrent, queue: await countQueue(client), lastSuccessAt: await lastSuccessAt(client), error: undefined };
      });
    } catch (err) {
      return down(err instanceof Error ? err.message : String(err));
    }
  }
}

function down(error: string): DatabaseCheck {
  return { up: false, schemaCurrent: false, queue: undefined, lastSuccessAt: undefined, error };
}

/** `p` (which must not reject), or `fallback()` once `ms` have passed. */
function bounded<T>(p: Promise<T>, ms: number, fallback: () => T): Promise<T> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(fallback()), ms);
    timer.unref();
    void p.then((v) => {
      clearTimeout(timer);
      resolve(v);
    });
  });
}
