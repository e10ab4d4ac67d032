import type pg from 'pg';
import type { Logger } from 'pino';
import { lockPayloadStore } from '../db/locks.js';
import { withClient } from '../db/pool.js';
import { withTransaction } from '../db/transaction.js';
import { archiveFile } from './archiveFile.js';
import type { ArchiveTarget } from './archiveTarget.js';

export interface DatabasePruneOptions {
  /** Files ingested before this leave raw, staging and audit. */
  readonly before: Date;
  readonly target: ArchiveTarget | undefined;
  readonly dryRun: boolean;
  /** Files per transaction: each holds the payload lock, so a load waits for one batch at most. */
  readonly batchFiles?: number;
  /** Due retirements per transaction, likewise (a file's worth is ~1,500; migration 0019's come at once). */
  readonly batchRetirements?: number;
  readonly signal?: AbortSignal;
}

export interface DatabasePruneReport {
  files: number;
  /** Bytes of the original files removed. */
  bytes: number;
  payloads: number;
  archivedFiles: number;
  archivedBytes: number;
  errors: number;
}

const BATCH_FILES = 8;
const BATCH_RETIREMENTS = 20_000;

/**
 * Database retention (docs/retention.md): the files ingested before `before` leave raw, staging and
 * audit — their rows, residuals, parse errors, conflicts, runs and replays, and the payloads (with
 * their typed rows) that no remaining file refers to, found through raw.payload_retirements and
 * raw.payload_returns instead of scanning every file's array. The business history stays:
 * public.lots, public.vehicles, public.lot_events. The newest file is never removed (the bookkeeping
 * compares with it), nor a file not archived yet when an archive is set: archived first (outside the
 * lock), then removed in batches of short transactions under the payload lock, the payloads they
 * free after each batch in batches of their own.
 */
export async function pruneDatabase(pool: pg.Pool, log: Logger, o: DatabasePruneOptions): Promise<DatabasePruneReport> {
  const report: DatabasePruneReport = { files: 0, bytes: 0, payloads: 0, archivedFiles: 0, archivedBytes: 0, errors: 0 };
  const batch = o.batchFiles ?? BATCH_FILES;
  // Files up to this ingested_at were handled (or kept) in this run: as text, since a JavaScript Date
  // drops the microseconds and would hand the last file back again.
  let after: string | null = null;
  while (true) {
    o.signal?.throwIfAborted();
    const { rows: files }: { rows: { file_id: string; sha256: string; bytes: string; ingested_at: string; export_exact: boolean | null }[] } = await pool.query(
      `SELECT file_id, sha256, bytes, ingested_at::text AS ingested_at, export_exact FROM raw.csv_files
        WHERE ingested_at < $1 AND ($2::timestamptz IS NULL OR ingested_at > $2)
          AND file_id <> (SELECT file_id FROM raw.csv_files ORDER BY ingested_at DESC LIMIT 1)
        ORDER BY ingested_at LIMIT $3`, [o.before, after, batch]);
    if (files.length === 0) {
      // Payloads freed by a pass stopped between its batches (a stop, a crash) go now, files or not.
      if (!o.dryRun) report.payloads += await withClient(pool, log, (client) => removeAllDuePayloads(client, o));
      return report;
    }
    after = files.at(-1)!.ingested_at;
    if (o.dryRun) {
      report.files += files.length;
      report.bytes += files.reduce((n, f) => n + Number(f.bytes), 0);
      continue;
    }
    const ready: string[] = [];
    for (const f of files) {
      // With an archive set a file leaves only archived; one the database cannot give back exactly cannot be.
      if (o.target !== undefined && f.export_exact === false) continue;
      if (o.target !== undefined) {
        try {
          // A no-op (written false) when the ledger has it already.
          const a = await archiveFile(pool, o.target, f.file_id, o.signal);
          if (a.written) {
            report.archivedFiles++;
            report.archivedBytes += a.storedBytes;
          }
        } catch (err) {
          if (o.signal?.aborted) throw err;
          report.errors++;
          log.warn({ err, file_id: f.file_id }, 'retention: file kept in the database (archiving it failed; tried again at the next run)');
          continue;
        }
      }
      ready.push(f.file_id);
    }
    if (ready.length === 0) continue;
    const removed = await withClient(pool, log, async (client) => {
      const gone = await withTransaction(client, () => removeFiles(client, ready));
      return { ...gone, payloads: await removeAllDuePayloads(client, o) };
    });
    report.files += removed.files;
    report.bytes += removed.bytes;
    report.payloads += removed.payloads;
    log.info({ files: removed.files, payloads: removed.payloads }, 'retention: files removed from the database');
  }
}

/** The payloads the files removed so far free, in transactions of batchRetirements due retirements. */
async function removeAllDuePayloads(client: pg.ClientBase, o: DatabasePruneOptions): Promise<number> {
  const limit = Math.max(1, o.batchRetirements ?? BATCH_RETIREMENTS);
  let payloads = 0;
  for (let more = true; more;) {
    o.signal?.throwIfAborted();
    const r = await withTransaction(client, () => removeDuePayloads(client, limit));
    payloads += r.payloads;
    more = r.more;
  }
  return payloads;
}

/** One batch, in the caller's transaction. */
async function removeFiles(client: pg.ClientBase, fileIds: readonly string[]): Promise<{ files: number; bytes: number }> {
  // Loads take this lock from promote to commit: none reads these files' payloads meanwhile, and one
  // that meant to send rows by address against a file removed here finds it gone and loads in full.
  await lockPayloadStore(client);
  await client.query('DELETE FROM audit.etl_runs WHERE file_id = ANY($1::uuid[])', [fileIds]);
  const { rows: [gone] } = await client.query<{ files: number; bytes: string }>(
    `WITH d AS (DELETE FROM raw.csv_files WHERE file_id = ANY($1::uuid[]) RETURNING bytes)
     SELECT count(*)::int AS files, coalesce(sum(bytes), 0)::text AS bytes FROM d`, [fileIds]);
  return { files: gone!.files, bytes: Number(gone!.bytes) };
}

/**
 * Up to `limit` due retirements and the payloads they free, in the caller's transaction; `more` when
 * the limit was reached. A payload retired at T and not back since is in no file ingested after T:
 * once every file up to T is gone, none has it (migrations/0016, 0018). The oldest time is a
 * parameter (as text: microseconds) so the planner sees how few retirements are due, and the payloads
 * go by key (= ANY): a guess of millions hash-joined all of raw.payloads and staging.copart_typed, 32 s
 * a batch in EXPLAIN at a year's scale (migrations/0017).
 */
async function removeDuePayloads(client: pg.ClientBase, limit: number): Promise<{ payloads: number; more: boolean }> {
  await lockPayloadStore(client);
  const { rows: [oldest] } = await client.query<{ t: string | null }>('SELECT min(ingested_at)::text AS t FROM raw.csv_files');
  const { rows: [p] } = await client.query<{ due: number; n: number }>(
    `WITH r AS (DELETE FROM raw.payload_retirements
                 WHERE ctid = ANY (ARRAY(SELECT ctid FROM raw.payload_retirements WHERE last_seen_at < $1::timestamptz ORDER BY last_seen_at LIMIT $2))
                RETURNING hash, last_seen_at),
          d AS (SELECT DISTINCT r.hash FROM r
                 WHERE NOT EXISTS (SELECT 1 FROM raw.payload_returns b WHERE b.hash = r.hash AND b.returned_at > r.last_seen_at)),
          p AS (DELETE FROM raw.payloads WHERE hash = ANY (ARRAY(SELECT hash FROM d)) RETURNING hash),
          s AS (DELETE FROM staging.copart_typed WHERE payload_hash = ANY (ARRAY(SELECT hash FROM p)))
     SELECT (SELECT count(*) FROM r)::int AS due, (SELECT count(*) FROM p)::int AS n`, [oldest!.t, limit]);
  // A return undoes only retirements before it: once none is left before it, it can go.
  await client.query(`DELETE FROM raw.payload_returns
    WHERE returned_at < coalesce((SELECT min(last_seen_at) FROM raw.payload_retirements), 'infinity')`);
  return { payloads: p!.n, more: p!.due >= limit };
}
