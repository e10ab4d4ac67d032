import type pg from 'pg';

/** One line of `vinops-etl status`. */
export interface RecentFile {
  readonly path: string;
  readonly state: string;
  readonly attempts: number;
  readonly rows: number | null;
  readonly parse_errors: number | null;
  readonly vin_unknown_pct: number | null;
  readonly lot_unknown_pct: number | null;
  readonly seconds: number | null;
  readonly finished_at: Date | null;
  readonly last_error: string | null;
}

/** The most recent queue entries with what their ingest recorded. */
export async function listRecentFiles(db: pg.Pool | pg.ClientBase, limit: number): Promise<RecentFile[]> {
  const { rows } = await db.query<RecentFile>(
    `SELECT q.path, q.state, q.attempts, f.row_count AS rows, f.parse_error_count AS parse_errors,
            round(100.0 * f.vin_empty_rows / nullif(f.row_count, 0), 2)::float8 AS vin_unknown_pct,
            round(100.0 * f.lot_empty_rows / nullif(f.row_count, 0), 2)::float8 AS lot_unknown_pct,
            round(r.duration_ms / 1000.0, 2)::float8 AS seconds, q.finished_at, q.last_error
       FROM raw.file_queue q
       LEFT JOIN raw.csv_files f ON f.file_id = q.file_id
       LEFT JOIN audit.etl_runs r ON r.run_id = q.run_id
      ORDER BY q.discovered_at DESC, q.queue_id DESC
      LIMIT $1`, [limit]);
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

/** When a file was last stored or recognised as a duplicate, by any daemon on this database. */
export async function lastSuccessAt(db: pg.Pool | pg.ClientBase): Promise<Date | null> {
  const { rows } = await db.query<{ at: Date | null }>(
    `SELECT max(finished_at) AS at FROM audit.etl_runs WHERE outcome IN ('ingested', 'duplicate')`);
  return rows[0]?.at ?? null;
}
