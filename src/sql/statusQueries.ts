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
