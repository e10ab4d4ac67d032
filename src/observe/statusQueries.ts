import type pg from 'pg';
import { loadMigrations } from '../db/migrate.js';

/** One line of `vinops-etl status` and of the status page's recent files (keys as `status --json` prints them). */
export interface RecentFile {
  /** The registered file: this one, or for a duplicate the earlier one with the same bytes (what `replay --file` takes). */
  readonly file_id: string | null;
  /** The daemon's queue entry; null for a file ingested outside the queue (`vinops-etl ingest`). */
  readonly queue_id: string | null;
  readonly path: string;
  /** The queue entry's state, or the run's outcome outside the queue. */
  readonly state: string;
  readonly attempts: number;
  readonly rows: number | null;
  readonly parse_errors: number | null;
  readonly vin_unknown_pct: number | null;
  readonly lot_unknown_pct: number | null;
  readonly seconds: number | null;
  readonly rows_per_second: number | null;
  readonly started_at: Date | null;
  readonly finished_at: Date | null;
  /** Why it failed or was rejected, or which file it duplicates. */
  readonly reason: string | null;
  /** Who ran the last attempt (host:pid:worker, host:pid for `vinops-etl ingest`). */
  readonly worker: string | null;
}

/**
 * The most recent files, newest activity first: every queue entry of the daemon, and every run
 * outside the queue (`vinops-etl ingest FILE`), each with what its last run recorded. A queue
 * entry's earlier attempts are its own runs (etl_runs.queue_id) and are not listed again.
 */
export async function listRecentFiles(db: pg.Pool | pg.ClientBase, limit: number): Promise<RecentFile[]> {
  const { rows } = await db.query<RecentFile>(
    `WITH entries AS (
       SELECT q.queue_id, q.path, q.state, q.attempts, q.file_id, q.run_id, q.last_error AS error, q.started_at, q.finished_at,
              coalesce(q.finished_at, q.started_at, q.discovered_at) AS at
         FROM raw.file_queue q
       UNION ALL
       SELECT NULL, r.path, r.outcome, 1, r.file_id, r.run_id, NULL, r.started_at, r.finished_at, r.finished_at
         FROM audit.etl_runs r
        WHERE r.queue_id IS NULL),
     recent AS (SELECT * FROM entries ORDER BY at DESC, queue_id DESC NULLS LAST LIMIT $1)
     SELECT e.file_id, e.queue_id::text AS queue_id, e.path, e.state, e.attempts,
            CASE WHEN e.state = 'ingested' THEN coalesce(f.row_count, r.data_rows) ELSE r.data_rows END AS rows,
            CASE WHEN e.state = 'ingested' THEN coalesce(f.parse_error_count, r.parse_errors) ELSE r.parse_errors END AS parse_errors,
            CASE WHEN e.state = 'ingested' THEN round(100.0 * f.vin_empty_rows / nullif(f.row_count, 0), 2)::float8 END AS vin_unknown_pct,
            CASE WHEN e.state = 'ingested' THEN round(100.0 * f.lot_empty_rows / nullif(f.row_count, 0), 2)::float8 END AS lot_unknown_pct,
            round(r.duration_ms / 1000.0, 2)::float8 AS seconds,
            CASE WHEN e.state = 'ingested' THEN round(1000.0 * coalesce(f.row_count, r.data_rows) / nullif(r.duration_ms, 0))::float8 END AS rows_per_second,
            e.started_at, e.finished_at, coalesce(e.error, r.reason) AS reason, r.worker
       FROM recent e
       LEFT JOIN raw.csv_files f ON f.file_id = e.file_id
       LEFT JOIN audit.etl_runs r ON r.run_id = e.run_id
      ORDER BY e.at DESC, e.queue_id DESC NULLS LAST`, [limit]);
  return rows;
}

/** A queue entry being ingested, with the progress its worker last stored. */
export interface RunningFile {
  readonly queue_id: string;
  readonly path: string;
  /** The file's size (bytes). */
  readonly bytes: number;
  readonly attempts: number;
  /** The claim: host:pid:worker. */
  readonly worker: string | null;
  readonly started_at: Date | null;
  readonly heartbeat_at: Date | null;
  /** null until the first progress report (a few seconds into the load). */
  readonly phase: string | null;
  readonly rows: number | null;
  readonly bytes_read: number | null;
  readonly progress_at: Date | null;
}

/** Every running queue entry, oldest first (all daemons on this database). */
export async function listRunningFiles(db: pg.Pool | pg.ClientBase): Promise<RunningFile[]> {
  const { rows } = await db.query<RunningFile>(
    `SELECT queue_id::text AS queue_id, path, size::float8 AS bytes, attempts, locked_by AS worker, started_at, heartbeat_at,
            progress_phase AS phase, progress_rows::float8 AS rows, progress_bytes::float8 AS bytes_read, progress_at
       FROM raw.file_queue WHERE state = 'running' ORDER BY started_at, queue_id`);
  return rows;
}

/** The most recent error still standing on a queue entry (failed, rejected, or pending a retry). */
export interface QueueError {
  readonly path: string;
  readonly state: string;
  readonly attempts: number;
  readonly last_error: string;
  readonly at: Date;
}

export async function lastQueueError(db: pg.Pool | pg.ClientBase): Promise<QueueError | null> {
  const { rows } = await db.query<QueueError>(
    `SELECT path, state, attempts, last_error, coalesce(finished_at, started_at, discovered_at) AS at
       FROM raw.file_queue
      WHERE last_error IS NOT NULL
      ORDER BY coalesce(finished_at, started_at, discovered_at) DESC, queue_id DESC
      LIMIT 1`);
  return rows[0] ?? null;
}

/** Quality figures of the files stored in the last 24 hours. */
export interface DaySummary {
  readonly files: number;
  readonly rows: number;
  readonly parse_errors: number;
  readonly vin_unknown_pct: number | null;
  readonly lot_unknown_pct: number | null;
}

export async function summarizeLastDay(db: pg.Pool | pg.ClientBase): Promise<DaySummary> {
  const { rows } = await db.query<DaySummary>(
    `SELECT count(*)::int AS files, coalesce(sum(row_count), 0)::float8 AS rows,
            coalesce(sum(parse_error_count), 0)::int AS parse_errors,
            round(100.0 * sum(vin_empty_rows) / nullif(sum(row_count), 0), 2)::float8 AS vin_unknown_pct,
            round(100.0 * sum(lot_empty_rows) / nullif(sum(row_count), 0), 2)::float8 AS lot_unknown_pct
       FROM raw.csv_files
      WHERE ingested_at > now() - interval '24 hours'`);
  return rows[0]!;
}

/** The lifecycle as of the last file ingested: its events by kind, the lots listed, partial files. */
export interface LifecycleSummary {
  readonly file_id: string | null;
  readonly path: string | null;
  readonly snapshot_at: Date | null;
  readonly partial: boolean;
  readonly partial_reason: string | null;
  /** Events recorded at that file, by kind. */
  readonly events: Record<string, number>;
  readonly lots_listed: number;
  /** Files flagged partial among those stored in the last 24 hours. */
  readonly partial_last_day: number;
}

export async function summarizeLifecycle(db: pg.Pool | pg.ClientBase): Promise<LifecycleSummary> {
  const { rows } = await db.query<LifecycleSummary>(
    `SELECT f.file_id, f.path, f.snapshot_at, coalesce(f.partial, false) AS partial, f.partial_reason,
            coalesce((SELECT jsonb_object_agg(k.kind, k.n) FROM (SELECT e.kind, count(*)::int AS n FROM public.lot_events e
                        WHERE e.file_id = f.file_id GROUP BY e.kind) k), '{}'::jsonb) AS events,
            (SELECT count(*)::int FROM public.lots WHERE listed) AS lots_listed,
            (SELECT count(*)::int FROM raw.csv_files WHERE partial AND ingested_at > now() - interval '24 hours') AS partial_last_day
       FROM (SELECT 1) one
       LEFT JOIN LATERAL (SELECT * FROM raw.csv_files ORDER BY ingested_at DESC LIMIT 1) f ON true`);
  return rows[0]!;
}

/** One attempt of the fetcher (raw.fetches), newest first. */
export interface FetchSummary {
  readonly window_start: Date;
  readonly source: string;
  readonly outcome: string | null;
  readonly http_status: number | null;
  readonly bytes: number | null;
  readonly path: string | null;
  readonly error: string | null;
  readonly started_at: Date;
  readonly finished_at: Date | null;
}

/** When a fetch last downloaded the feed or found it unchanged, by any daemon; null when never. */
export async function lastFetchSuccessAt(db: pg.Pool | pg.ClientBase): Promise<Date | null> {
  const { rows } = await db.query<{ at: Date | null }>(
    `SELECT max(finished_at) AS at FROM raw.fetches WHERE outcome IN ('downloaded', 'unchanged', 'not_modified')`);
  return rows[0]?.at ?? null;
}

export async function listRecentFetches(db: pg.Pool | pg.ClientBase, limit: number): Promise<FetchSummary[]> {
  const { rows } = await db.query<FetchSummary>(
    `SELECT window_start, source, outcome, http_status, bytes::float8 AS bytes, path, error, started_at, finished_at
       FROM raw.fetches ORDER BY fetch_id DESC LIMIT $1`, [limit]);
  return rows;
}

/** What raw.archives holds per target: files archived and verified, their sizes, the last one. */
export interface ArchiveSummary {
  readonly target: string;
  readonly files: number;
  readonly bytes: number;
  readonly stored_bytes: number;
  readonly last_at: Date;
}

export async function summarizeArchives(db: pg.Pool | pg.ClientBase): Promise<ArchiveSummary[]> {
  const { rows } = await db.query<ArchiveSummary>(
    `SELECT target, count(*)::int AS files, sum(bytes)::float8 AS bytes, sum(stored_bytes)::float8 AS stored_bytes, max(verified_at) AS last_at
       FROM raw.archives GROUP BY target ORDER BY max(verified_at) DESC`);
  return rows;
}

/** One hour of the status page's chart. */
export interface HourFigures {
  /** Start of the hour. */
  readonly hour: Date;
  readonly files: number;
  readonly rows: number;
  /** null for an hour without a file. */
  readonly seconds_per_file: number | null;
  readonly vin_unknown_pct: number | null;
}

/** The files stored in each of the last 24 hours (the current one last), empty hours included. */
export async function listLastDayByHour(db: pg.Pool | pg.ClientBase): Promise<HourFigures[]> {
  const { rows } = await db.query<HourFigures>(
    `SELECT h.hour, count(f.file_id)::int AS files, coalesce(sum(f.row_count), 0)::float8 AS rows,
            round(avg(f.duration_ms) / 1000.0, 2)::float8 AS seconds_per_file,
            round(100.0 * sum(f.vin_empty_rows) / nullif(sum(f.row_count), 0), 2)::float8 AS vin_unknown_pct
       FROM generate_series(date_trunc('hour', now()) - interval '23 hours', date_trunc('hour', now()), interval '1 hour') AS h(hour)
       LEFT JOIN raw.csv_files f ON f.ingested_at >= h.hour AND f.ingested_at < h.hour + interval '1 hour'
      GROUP BY h.hour
      ORDER BY h.hour`);
  return rows;
}

/**
 * When a file was last stored, by any daemon or `vinops-etl ingest` on this database. A duplicate
 * stores nothing and does not count: a feed that only repeats itself has not succeeded.
 */
export async function lastSuccessAt(db: pg.Pool | pg.ClientBase): Promise<Date | null> {
  const { rows } = await db.query<{ at: Date | null }>(
    `SELECT max(finished_at) AS at FROM audit.etl_runs WHERE outcome = 'ingested'`);
  return rows[0]?.at ?? null;
}

/** The database's schema against this version's migrations. */
export interface SchemaState {
  /** Every migration of this version is applied with its content. */
  readonly current: boolean;
  /** No migration was ever applied (public.vinops_migrations does not exist). */
  readonly missing: boolean;
  /** Migrations of this version not applied yet. */
  readonly pending: readonly string[];
  /** Applied with other content than this version's file. */
  readonly changed: readonly string[];
  /** Applied, but unknown to this version (a newer one migrated the database). */
  readonly unknown: readonly string[];
}

/** Reads the applied migrations without changing anything (`vinops-etl status` must not migrate); throws what the database says (e.g. permission denied). */
export async function readSchemaState(db: pg.Pool | pg.ClientBase): Promise<SchemaState> {
  const migrations = await loadMigrations();
  const exists = await db.query<{ t: string | null }>(`SELECT to_regclass('public.vinops_migrations')::text AS t`);
  if (exists.rows[0]?.t == null) {
    return { current: false, missing: true, pending: migrations.map((m) => m.name), changed: [], unknown: [] };
  }
  const { rows } = await db.query<{ name: string; checksum: string }>('SELECT name, checksum FROM public.vinops_migrations');
  const done = new Map(rows.map((r) => [r.name, r.checksum]));
  const known = new Set(migrations.map((m) => m.name));
  const pending = migrations.filter((m) => !done.has(m.name)).map((m) => m.name);
  const changed = migrations.filter((m) => done.has(m.name) && done.get(m.name) !== m.checksum).map((m) => m.name);
  const unknown = rows.map((r) => r.name).filter((n) => !known.has(n)).sort();
  return { current: pending.length === 0 && changed.length === 0, missing: false, pending, changed, unknown };
}
