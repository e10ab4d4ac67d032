import type pg from 'pg';

/** One claimed queue row. */
export interface QueuedFile {
  readonly queueId: string;
  readonly path: string;
  readonly size: number;
  readonly mtime: Date;
  readonly attempts: number;
}

export type QueueState = 'pending' | 'running' | 'ingested' | 'duplicate' | 'rejected' | 'failed';

/** Records a settled file version; a version already known is left as it is. Returns true when new. */
export async function enqueueFile(db: pg.Pool | pg.ClientBase, file: { path: string; size: number; mtime: Date }): Promise<boolean> {
  const { rowCount } = await db.query(
    `INSERT INTO raw.file_queue (path, size, mtime) VALUES ($1, $2, $3) ON CONFLICT (path, size, mtime) DO NOTHING`,
    [file.path, file.size, file.mtime],
  );
  return (rowCount ?? 0) > 0;
}

/**
 * Claims the oldest file due, or a running one whose heartbeat is older than `claimTimeoutMs` (its
 * worker died). SKIP LOCKED lets concurrent workers pass each other without waiting.
 */
export async function claimNextFile(db: pg.Pool | pg.ClientBase, worker: string, claimTimeoutMs: number): Promise<QueuedFile | undefined> {
  const { rows } = await db.query<{ queue_id: string; path: string; size: string; mtime: Date; attempts: number }>(
    `UPDATE raw.file_queue q
        SET state = 'running', attempts = q.attempts + 1, locked_by = $1, heartbeat_at = now(), started_at = now(),
            progress_phase = NULL, progress_rows = NULL, progress_bytes = NULL, progress_at = NULL
      WHERE q.queue_id = (
        SELECT queue_id FROM raw.file_queue
         WHERE (state = 'pending' AND next_attempt_at <= now())
            OR (state = 'running' AND heartbeat_at < now() - make_interval(secs => $2::float8 / 1000))
         ORDER BY mtime, queue_id
         LIMIT 1
         FOR UPDATE SKIP LOCKED)
      RETURNING q.queue_id, q.path, q.size, q.mtime, q.attempts`,
    [worker, claimTimeoutMs],
  );
  const r = rows[0];
  return r === undefined ? undefined : { queueId: r.queue_id, path: r.path, size: Number(r.size), mtime: r.mtime, attempts: r.attempts };
}

/** Renews a claim; false when the claim was lost (taken over after a timeout). */
export async function renewClaim(db: pg.Pool | pg.ClientBase, queueId: string, worker: string): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE raw.file_queue SET heartbeat_at = now() WHERE queue_id = $1 AND state = 'running' AND locked_by = $2`, [queueId, worker]);
  return (rowCount ?? 0) > 0;
}

/**
 * Stores the progress of the attempt in flight, for `vinops-etl status` in another process; false
 * when the claim is no longer this worker's.
 */
export async function saveProgress(db: pg.Pool | pg.ClientBase, queueId: string, worker: string,
  p: { phase: string; rows: number; bytesRead: number }): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE raw.file_queue SET progress_phase = $3, progress_rows = $4, progress_bytes = $5, progress_at = now()
      WHERE queue_id = $1 AND state = 'running' AND locked_by = $2`, [queueId, worker, p.phase, p.rows, p.bytesRead]);
  return (rowCount ?? 0) > 0;
}

/** A final outcome of an attempt: ingested, duplicate or rejected. */
export async function completeFile(db: pg.Pool | pg.ClientBase, queueId: string, worker: string,
  outcome: { state: 'ingested' | 'duplicate' | 'rejected'; fileId: string | null; runId: string; error: string | null }): Promise<void> {
  await db.query(
    `UPDATE raw.file_queue SET state = $3, file_id = $4, run_id = $5, last_error = $6, finished_at = now(), locked_by = NULL, heartbeat_at = NULL
      WHERE queue_id = $1 AND locked_by = $2`,
    [queueId, worker, outcome.state, outcome.fileId, outcome.runId, outcome.error],
  );
}

/**
 * A failed attempt: back to pending after a capped exponential backoff, or `failed` for good once
 * `maxAttempts` is reached. Returns the new state.
 */
export async function markFileFailed(db: pg.Pool | pg.ClientBase, queueId: string, worker: string, error: string,
  retry: { maxAttempts: number; baseMs: number; maxMs: number }): Promise<QueueState | undefined> {
  const { rows } = await db.query<{ state: QueueState }>(
    `UPDATE raw.file_queue
        SET state = CASE WHEN attempts >= $4 THEN 'failed' ELSE 'pending' END,
            next_attempt_at = now() + make_interval(secs => least($6::float8, $5::float8 * 2 ^ greatest(attempts - 1, 0)) / 1000),
            last_error = $3, locked_by = NULL, heartbeat_at = NULL,
            finished_at = CASE WHEN attempts >= $4 THEN now() END
      WHERE queue_id = $1 AND locked_by = $2
      RETURNING state`,
    [queueId, worker, error, retry.maxAttempts, retry.baseMs, retry.maxMs],
  );
  return rows[0]?.state;
}

/** Gives a claim back untouched (shutdown before the file was started); the attempt is not counted. */
export async function releaseClaim(db: pg.Pool | pg.ClientBase, queueId: string, worker: string): Promise<void> {
  await db.query(
    `UPDATE raw.file_queue SET state = 'pending', attempts = greatest(attempts - 1, 0), locked_by = NULL, heartbeat_at = NULL
      WHERE queue_id = $1 AND locked_by = $2 AND state = 'running'`, [queueId, worker]);
}

/** Queue depth by state (status command, metrics). */
export async function countQueue(db: pg.Pool | pg.ClientBase): Promise<Record<QueueState, number>> {
  const { rows } = await db.query<{ state: QueueState; n: number }>('SELECT state, count(*)::int AS n FROM raw.file_queue GROUP BY state');
  const counts: Record<QueueState, number> = { pending: 0, running: 0, ingested: 0, duplicate: 0, rejected: 0, failed: 0 };
  for (const r of rows) counts[r.state] = r.n;
  return counts;
}

/** Paths already known to the queue at their current version (re-scan skips them cheaply). */
export async function listQueuedVersions(db: pg.Pool | pg.ClientBase, since: Date): Promise<Set<string>> {
  const { rows } = await db.query<{ k: string }>(
    `SELECT path || '|' || size || '|' || (extract(epoch FROM mtime) * 1000)::bigint AS k FROM raw.file_queue WHERE mtime >= $1`, [since]);
  return new Set(rows.map((r) => r.k));
}
