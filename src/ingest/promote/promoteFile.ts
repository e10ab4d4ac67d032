import type pg from 'pg';
import type { FileLayout } from '../../feed/layout.js';
import { lockPayloadStore } from '../../db/locks.js';
import type { UpsertSource } from '../../core/upsert.js';
import { DESCRIPTIVE_COLUMNS, TYPED_NAMES } from '../../feed/columns.js';
import { LOAD_TABLE, analyzeLoadTable, carriesValues } from '../copy/loadTable.js';

/**
 * The set-based statements that move one loaded file from the temp table into raw, staging and audit.
 * All run inside the caller's transaction, on the client that ran the COPY.
 */

/** What raw.csv_files records about a file. */
export interface FileRecord {
  readonly path: string;
  readonly sha256: string;
  readonly bytes: number;
  readonly rowCount: number;
  readonly recordCount: number;
  readonly parseErrorCount: number;
  readonly layout: FileLayout;
  readonly lineEnding: 'LF' | 'CRLF' | 'mixed' | 'none';
  readonly blankLines: number;
  /** The reader's first departure from strict RFC 4180 (bare quote, empty line, mixed line ends, …). */
  readonly firstIrregularity: string | null;
  readonly vinEmptyRows: number;
  readonly lotEmptyRows: number;
  readonly windowStart: Date | null;
  readonly fileMtime: Date;
  readonly startedAt: Date;
  readonly readMs: number;
  /** What byte-exact export needs besides the records: the bytes before the first record and after the last. */
  readonly headerBytes: Buffer;
  readonly trailerBytes: Buffer;
  /** Why the bytes cannot all be given back, or null when they can. */
  readonly exportLost: string | null;
}

/** Registers the file; returns its file_id, or null when the same bytes are registered already. */
export async function registerFile(client: pg.ClientBase, f: FileRecord): Promise<string | null> {
  const { rows } = await client.query<{ file_id: string }>(
    `INSERT INTO raw.csv_files (path, sha256, bytes, row_count, record_count, parse_error_count, headers_jsonb,
       payload_keys, id_key, header_variant, missing_columns, extra_columns, has_bom, line_ending, blank_lines,
       vin_empty_rows, lot_empty_rows, window_start, file_mtime, started_at, read_ms, first_irregularity, snapshot_at, snapshot_rule,
       header_bytes, trailer_bytes, export_exact, export_note)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22,
       coalesce($18::timestamptz, $19::timestamptz), CASE WHEN $18::timestamptz IS NULL THEN 'file_mtime' ELSE 'window' END,
       $23, $24, $25::text IS NULL, $25)
     ON CONFLICT (sha256) DO NOTHING
     RETURNING file_id`,
    [f.path, f.sha256, f.bytes, f.rowCount, f.recordCount, f.parseErrorCount, JSON.stringify(f.layout.names),
      f.layout.payloadKeys, f.layout.idKey, f.layout.variant, f.layout.missingColumns, f.layout.extraColumns,
      f.layout.hasBom, f.lineEnding, f.blankLines, f.vinEmptyRows, f.lotEmptyRows, f.windowStart, f.fileMtime, f.startedAt, f.readMs, f.firstIrregularity,
      f.headerBytes, f.trailerBytes.length === 0 ? null : f.trailerBytes, f.exportLost],
  );
  return rows[0]?.file_id ?? null;
}

export async function findFileBySha256(client: pg.ClientBase, sha256: string): Promise<{ fileId: string; path: string } | undefined> {
  const { rows } = await client.query<{ file_id: string; path: string }>('SELECT file_id, path FROM raw.csv_files WHERE sha256 = $1', [sha256]);
  return rows[0] === undefined ? undefined : { fileId: rows[0].file_id, path: rows[0].path };
}

/** The loader's list of known payloads was wrong (they were deleted meanwhile): load again without it. */
export class KnownPayloadMissingError extends Error {
  override name = 'KnownPayloadMissingError';
}

/** The payload addresses of one stored file, which the next file mostly repeats. */
export interface RecentPayloads {
  /** The file they belong to; null when there is none (an empty database) or it was too large. */
  readonly fileId: string | null;
  /** Concatenated 16-byte addresses. */
  readonly hashes: Buffer;
}

/** No previous file to send rows against: every row carries its values. */
export const NO_RECENT_PAYLOADS: RecentPayloads = Object.freeze({ fileId: null, hashes: Buffer.alloc(0) });

/**
 * Content addresses of the payloads of the most recently ingested file, 16 bytes each; none when
 * that file has more than `maxRows` rows (memory stays bounded).
 */
export async function listRecentPayloads(client: pg.ClientBase, maxRows: number): Promise<RecentPayloads> {
  const { rows } = await client.query<{ file_id: string; hashes: Buffer | null }>(
    `SELECT f.file_id, (SELECT string_agg(uuid_send(h), ''::bytea) FROM unnest(c.payload_hashes) h WHERE h IS NOT NULL) AS hashes
       FROM raw.csv_files f JOIN raw.file_contents c USING (file_id)
      WHERE f.row_count <= $1 ORDER BY f.ingested_at DESC LIMIT 1`, [maxRows]);
  const r = rows[0];
  return r?.hashes ? { fileId: r.file_id, hashes: r.hashes } : NO_RECENT_PAYLOADS;
}

/** The payloads a load stores first (row_no, hash, lot), one row each: promoteRows makes it (ON COMMIT DROP). */
export const NEW_PAYLOADS = 'vinops_new';

export interface PromoteCounts {
  readonly rows: number;
  readonly newPayloads: number;
}

/**
 * Stores the payloads not seen before (with their typed staging rows), then one raw.file_rows row
 * per data row, all from the load table.
 *
 * Rows the encoder sent by address only (`knownFrom`: the stored file whose payloads it knew) are
 * not probed one by one: payloads are immutable and are never deleted while a stored file refers to
 * them (docs/operations.md, *Retention*), so they are all there exactly when that file still is,
 * which one lookup under the payload lock tells. Only the rows that carry their values (new to the
 * encoder, ~1 % of a steady-state file) are checked against raw.payloads.
 */
export async function promoteRows(client: pg.ClientBase, fileId: string, hasId: boolean,
  knownFrom: string | null, residuals: number): Promise<PromoteCounts> {
  await analyzeLoadTable(client);
  // New payloads are found with an anti-join and inserted plainly (no per-row speculative insertion).
  // Loads running at the same time take turns from here to their commit, so the anti-join of the
  // second one sees what the first one inserted.
  await lockPayloadStore(client);
  if (knownFrom !== null) {
    const { rowCount } = await client.query('SELECT 1 FROM raw.file_contents WHERE file_id = $1', [knownFrom]);
    if (rowCount !== 1) throw new KnownPayloadMissingError(`the previous file ${knownFrom}, whose payloads this load refers to by address, is no longer stored`);
  }
  const fresh = await client.query(`CREATE TEMP TABLE ${NEW_PAYLOADS} ON COMMIT DROP AS
    SELECT DISTINCT ON (l.hash) l.row_no, l.hash, l.lot FROM ${LOAD_TABLE} l
     WHERE l.err IS NULL AND ${carriesValues('l')} AND NOT EXISTS (SELECT 1 FROM raw.payloads p WHERE p.hash = l.hash)
     ORDER BY l.hash`);
  const newPayloads = fresh.rowCount ?? 0;
  if (newPayloads > 0) {
    await client.query(`ANALYZE ${NEW_PAYLOADS}`);
    await client.query(`INSERT INTO raw.payloads (hash, vals_text, vals)
      SELECT l.hash, l.vals_text, l.vals FROM ${NEW_PAYLOADS} n JOIN ${LOAD_TABLE} l USING (row_no)`);
    await client.query(`INSERT INTO staging.copart_typed (payload_hash, first_file_id, ${TYPED_NAMES.join(', ')})
      SELECT l.hash, $1, ${TYPED_NAMES.map((c) => `l.${c}`).join(', ')} FROM ${NEW_PAYLOADS} n JOIN ${LOAD_TABLE} l USING (row_no)`, [fileId]);
    await analyzeIfOutgrown(client, newPayloads);
  }
  const { rows } = await client.query<{ rows: number }>(`WITH ins AS (
      INSERT INTO raw.file_contents (file_id, payload_hashes, id_values)
      SELECT $1, array_agg(CASE WHEN err IS NULL THEN hash END ORDER BY row_no),
             CASE WHEN $2 THEN array_agg(CASE WHEN err IS NULL THEN id_value END ORDER BY row_no) END
        FROM ${LOAD_TABLE}
      RETURNING payload_hashes)
    SELECT (SELECT count(*) FROM unnest(ins.payload_hashes) h WHERE h IS NOT NULL)::int AS rows FROM ins`, [fileId, hasId]);
  // The reader counted them: the feed's usual file has none and does not scan the load table for none.
  if (residuals > 0) {
    await client.query(`INSERT INTO raw.file_residuals (file_id, record_no, bytes)
      SELECT $1, row_no, residual FROM ${LOAD_TABLE} WHERE residual IS NOT NULL`, [fileId]);
  }
  return { rows: rows[0]!.rows, newPayloads };
}

/** Fewer new payloads than this never make the statistics wrong enough to matter. */
const ANALYZE_MIN_NEW = 10_000;

/**
 * The core upsert that follows joins raw.payloads and staging.copart_typed, which this transaction
 * has just grown. The planner sizes a table by its statistics scaled to its current pages, so when
 * those say "empty" (reltuples 0, as autovacuum leaves them after a first load was rolled back) it
 * plans the joins over 154,000 fresh rows as nested loops over sequential scans, which run for
 * hours (seen in the kill -9 soak). When the file added more than a tenth of a table, its
 * statistics are refreshed here; ANALYZE counts the transaction's own new rows. A steady-state file
 * (~1,500 new payloads) never pays for it.
 */
async function analyzeIfOutgrown(client: pg.ClientBase, newPayloads: number): Promise<void> {
  if (newPayloads < ANALYZE_MIN_NEW) return;
  const { rows } = await client.query<{ tuples: number }>(
    `SELECT greatest(reltuples, 0)::float8 AS tuples FROM pg_class WHERE oid = 'raw.payloads'::regclass`);
  if (newPayloads > 0.1 * rows[0]!.tuples) {
    // As the schema owner (migrations/0013): the daemon's own role owns nothing.
    await client.query('SELECT raw.analyze_payload_store()');
  }
}

/**
 * Final figures on the registry row and on the run, known only once the rows are in. ingested_at is
 * read from the clock here, under the payload lock that loads hold until they commit, so ordering
 * files by it is the order their core upserts were applied in (replay --all relies on it); now()
 * would be the transaction's start, before the COPY, which a concurrent smaller file can overtake.
 * The run was recorded before the parse errors that refer to it; its finish is set here, last.
 */
export async function completeFileRecord(client: pg.ClientBase, fileId: string, runId: string, promoteMs: number, durationMs: number,
  finishedAt: Date): Promise<void> {
  await client.query(
    `WITH run AS (UPDATE audit.etl_runs SET duration_ms = $3, finished_at = $5 WHERE run_id = $4)
     UPDATE raw.csv_files SET promote_ms = $2, duration_ms = $3, ingested_at = clock_timestamp() WHERE file_id = $1`,
    [fileId, promoteMs, durationMs, runId, finishedAt],
  );
}

/** One audit.etl_runs row per attempt, whatever its outcome. */
export interface RunRecord {
  readonly runId: string;
  readonly fileId: string | null;
  readonly path: string;
  readonly sha256: string | null;
  readonly bytes: number | null;
  readonly outcome: 'ingested' | 'duplicate' | 'rejected' | 'failed';
  readonly reason: string | null;
  readonly dataRows: number | null;
  readonly parseErrors: number | null;
  readonly startedAt: Date;
  /**
   * Read from the same clock as startedAt. The column's default, now(), is the transaction's start:
   * for an ingested file that is before its COPY, milliseconds after startedAt however long the load.
   */
  readonly finishedAt: Date;
  readonly durationMs: number;
  readonly worker: string;
  /** The daemon's queue entry this attempt works on; null outside the queue (`vinops-etl ingest`). */
  readonly queueId: string | null;
}

export async function recordRun(client: pg.ClientBase, r: RunRecord): Promise<void> {
  await client.query(
    `INSERT INTO audit.etl_runs (run_id, file_id, path, sha256, bytes, outcome, reason, data_rows,
       parse_errors, started_at, finished_at, duration_ms, worker, queue_id)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
    [r.runId, r.fileId, r.path, r.sha256, r.bytes, r.outcome, r.reason, r.dataRows, r.parseErrors,
      r.startedAt, r.finishedAt, r.durationMs, r.worker, r.queueId],
  );
}

/** Moves the tolerant path's error rows from the temp table to audit.parse_errors. */
export async function insertParseErrors(client: pg.ClientBase, runId: string, fileId: string | null, path: string): Promise<number> {
  const { rowCount } = await client.query(
    `INSERT INTO audit.parse_errors (run_id, file_id, path, line_no, record_no, error, raw_text, raw_bytes, raw_length)
     SELECT $1, $2, $3, line_no, row_no, err, raw_text, raw_bytes, raw_length FROM ${LOAD_TABLE} WHERE err IS NOT NULL ORDER BY row_no`,
    [runId, fileId, path],
  );
  return rowCount ?? 0;
}

/**
 * What the core upsert reads in a live ingest: the load table, and the lots with a payload first stored
 * by this file (promoteRows' vinops_new). A row with a new payload carries its descriptive values.
 */
export const LIVE_SOURCE: UpsertSource = {
  rows: `(SELECT row_no, hash, lot FROM ${LOAD_TABLE} WHERE err IS NULL)`,
  lots: `SELECT n.lot FROM ${NEW_PAYLOADS} n WHERE n.lot IS NOT NULL`,
  values: `(SELECT row_no, ${carriesValues('d')} AS carries, ${DESCRIPTIVE_COLUMNS.map(([col]) => `d.${col}`).join(', ')} FROM ${LOAD_TABLE} d)`,
};

/**
 * What the lifecycle reads of a live load to compare it with the file the encoder held the addresses
 * of: the rows that carry values (not in that file) and every row.
 */
export const LIVE_PAIR = {
  added: `SELECT hash AS h FROM ${LOAD_TABLE} WHERE err IS NULL AND ${carriesValues(LOAD_TABLE)}`,
  current: `SELECT hash AS h FROM ${LOAD_TABLE} WHERE err IS NULL`,
} as const;
