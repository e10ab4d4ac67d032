import { hostname } from 'node:os';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { buildLayout, payloadPosition, type FileLayout } from '../feed/layout.js';
import { copyTextField } from '../db/copyText.js';
import { typeRecord } from '../feed/typing.js';
import { lockPayloadStore } from '../db/locks.js';
import { withTransaction } from '../db/transaction.js';
import { TYPED_COLUMNS, TYPED_NAMES } from '../feed/columns.js';
import { upsertCore, type UpsertCounts } from './upsert.js';
import { TOUCHED_LOTS } from './upsertStatements.js';
import { catchUpLifecycle, markPairsStale, updateLifecycle, type LifecycleCounts } from '../lifecycle/updateLifecycle.js';

/**
 * Replay of one stored file from raw alone (the CSV may be gone): its payloads are typed again into
 * staging.copart_typed with the current typing rules (src/feed/typing.ts, the same code the live
 * path runs), then the core upsert runs over every lot of the file, in one transaction. Replaying a
 * file twice changes nothing the second time; replaying every file in ingestion order gives the
 * public.lots / public.vehicles the live path gave (test/db/replay.test.ts).
 */

export interface ReplayResult {
  readonly fileId: string;
  readonly path: string;
  readonly dataRows: number;
  /** Distinct payloads typed again (payloads met earlier in the same run are skipped). */
  readonly payloads: number;
  /** staging.copart_typed rows that were missing / whose typing changed. */
  readonly typedInserted: number;
  readonly typedUpdated: number;
  readonly upserts: UpsertCounts;
  /** The lifecycle of the file's pairs, computed again (`--file`; `--all` computes every pair after its files). */
  readonly lifecycle?: LifecycleCounts;
  readonly seconds: number;
}

export class ReplayError extends Error {
  override name = 'ReplayError';
}

/** The file's own pair and its successor's, and what a pending backlog adds. */
const REPLAY_MAX_PAIRS = 24;
/** Payloads fetched and typed per round trip: bounded memory whatever the file size. */
const BATCH = 2000;
/** Session table of the payloads a run has typed already (`replay --all`). */
export const REPLAYED_TABLE = 'vinops_replayed';

/** Creates the session table that lets a run skip payloads it typed in an earlier file. */
export async function createReplayedSet(client: pg.ClientBase): Promise<void> {
  await client.query(`CREATE TEMP TABLE IF NOT EXISTS ${REPLAYED_TABLE} (hash uuid PRIMARY KEY)`);
}

/** Stored files in the order they were ingested (the order `replay --all` applies them in). */
export async function listStoredFiles(client: pg.ClientBase): Promise<string[]> {
  const { rows } = await client.query<{ file_id: string }>('SELECT file_id FROM raw.csv_files ORDER BY ingested_at, file_id');
  return rows.map((r) => r.file_id);
}

/** What replayFiles did: the files that failed, and with 'all' the lifecycle computed again. */
export interface ReplayRun {
  readonly failed: number;
  /** Files not begun because the signal came. */
  readonly notBegun: number;
  readonly lifecycle: { readonly pairs: number; readonly seconds: number } | undefined;
}

/**
 * `replay --file …` (each file with its own pairs) or `replay --all`: every stored file in ingestion
 * order, each payload typed once, then every lifecycle pair again in feed order, one transaction
 * each. A failed file is reported to onFile and the others go on; `signal` stops between files.
 */
export async function replayFiles(client: pg.ClientBase, target: readonly string[] | 'all',
  options: { signal?: AbortSignal; onFile?: (fileId: string, outcome: ReplayResult | Error) => void } = {}): Promise<ReplayRun> {
  const all = target === 'all';
  await createReplayedSet(client);
  const files = all ? await listStoredFiles(client) : target;
  let failed = 0;
  for (const [i, fileId] of files.entries()) {
    if (options.signal?.aborted) return { failed, notBegun: files.length - i, lifecycle: undefined };
    try {
      const r = await replayFile(client, fileId, { skipReplayed: all, lifecycle: !all });
      options.onFile?.(fileId, r);
    } catch (err) {
      failed++;
      options.onFile?.(fileId, err instanceof Error ? err : new Error(String(err)));
    }
  }
  if (!all || options.signal?.aborted) return { failed, notBegun: 0, lifecycle: undefined };
  // The lifecycle in feed order, every pair again, once the files' rows are all typed and applied.
  await markPairsStale(client, null);
  const t0 = performance.now();
  const pairs = await catchUpLifecycle(client, options.signal ? { signal: options.signal } : {});
  return { failed, notBegun: 0, lifecycle: { pairs, seconds: Math.round(performance.now() - t0) / 1000 } };
}

/**
 * Replays one file in its own transaction. With `skipReplayed`, payloads listed in the session's
 * REPLAYED_TABLE are not typed again, and this file's are added to it.
 */
export async function replayFile(client: pg.ClientBase, fileId: string,
  options: { skipReplayed?: boolean; worker?: string; lifecycle?: boolean } = {}): Promise<ReplayResult> {
  const t0 = performance.now();
  const started = new Date();
  return withTransaction(client, async () => {
    // The payload lock first, as retention takes it before deleting files: the other order deadlocks.
    await lockPayloadStore(client);
    const { rows: [file] } = await client.query<{ path: string; headers: string[]; payload_keys: string[]; row_count: number }>(
      `SELECT path, headers_jsonb AS headers, payload_keys, row_count FROM raw.csv_files WHERE file_id = $1 FOR SHARE`, [fileId]);
    if (file === undefined) throw new ReplayError(`no stored file with file_id ${fileId}`);
    const layout = buildLayout(file.headers, { hasBom: false, eol: 'LF', dataOffset: 0 });
    if (JSON.stringify(layout.payloadKeys) !== JSON.stringify(file.payload_keys)) {
      throw new ReplayError(`file ${fileId}: its header no longer gives the payload keys it was stored with`);
    }

    const typed = await retypePayloads(client, fileId, layout, options.skipReplayed === true);

    await client.query(`CREATE TEMP TABLE vinops_replay_rows ON COMMIT DROP AS
      SELECT r.row_no, r.payload_hash AS hash, t.lot_external_id AS lot
        FROM raw.file_rows r JOIN staging.copart_typed t ON t.payload_hash = r.payload_hash
       WHERE r.file_id = $1`, [fileId]);
    const { rows: [n] } = await client.query<{ rows: number }>('SELECT count(*)::int AS rows FROM vinops_replay_rows');
    if (n!.rows !== file.row_count) {
      throw new ReplayError(`file ${fileId}: ${n!.rows} rows have a payload and a typed row, the registry declares ${file.row_count}`);
    }
    await client.query('ANALYZE vinops_replay_rows');
    const upserts = await upsertCore(client, fileId, layout, { rows: 'vinops_replay_rows' }, { replay: true });
    let lifecycle: LifecycleCounts | undefined;
    if (options.lifecycle !== false) {
      await markPairsStale(client, [fileId]);
      lifecycle = await updateLifecycle(client, fileId, { maxPairs: REPLAY_MAX_PAIRS, touched: TOUCHED_LOTS });
    }
    const seconds = (performance.now() - t0) / 1000;
    await client.query(
      `INSERT INTO audit.replays (file_id, data_rows, payloads, typed_inserted, typed_updated, lots, vehicles, vin_conflicts,
         started_at, duration_ms, worker) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
      [fileId, file.row_count, typed.payloads, typed.inserted, typed.updated, JSON.stringify(upserts.lots),
        JSON.stringify(upserts.vehicles), upserts.vinConflicts, started, Math.round(seconds * 1000),
        options.worker ?? `${hostname()}:${process.pid}`]);
    return {
      fileId, path: file.path, dataRows: file.row_count, payloads: typed.payloads, typedInserted: typed.inserted,
      typedUpdated: typed.updated, upserts, ...(lifecycle ? { lifecycle } : {}), seconds: Math.round(seconds * 1000) / 1000,
    };
  });
}

/**
 * Types the file's payloads again from raw.payloads: a cursor feeds BATCH payloads at a time to the
 * encoder, whose typed rows go by COPY into a temp table shaped like staging.copart_typed, then into
 * staging (missing rows added, changed ones rewritten, equal ones left alone).
 */
async function retypePayloads(client: pg.ClientBase, fileId: string, layout: FileLayout, skipReplayed: boolean): Promise<{ payloads: number; inserted: number; updated: number }> {
  const listed = await client.query(`CREATE TEMP TABLE vinops_replay_hashes ON COMMIT DROP AS
    SELECT DISTINCT r.payload_hash AS hash FROM raw.file_rows r WHERE r.file_id = $1
    ${skipReplayed ? `EXCEPT SELECT hash FROM ${REPLAYED_TABLE}` : ''}`, [fileId]);
  const payloads = listed.rowCount ?? 0;
  await client.query('CREATE TEMP TABLE vinops_retyped (LIKE staging.copart_typed) ON COMMIT DROP');
  await client.query(`DECLARE vinops_replay_payloads NO SCROLL CURSOR FOR
    SELECT p.hash, p.vals_text, p.vals FROM vinops_replay_hashes h JOIN raw.payloads p USING (hash)`);
  let fetched = 0;
  while (true) {
    const { rows } = await client.query<{ hash: string; vals_text: string | null; vals: string[] | null }>(
      `FETCH ${BATCH} FROM vinops_replay_payloads`);
    if (rows.length === 0) break;
    fetched += rows.length;
    const lines = rows.map((r) => typedLine(layout, r.vals ?? r.vals_text!.split('\x1f'), r.hash));
    await pipeline(Readable.from([Buffer.from(lines.join(''))]), client.query(copyFrom(`COPY vinops_retyped (payload_hash, ${TYPED_NAMES.join(', ')}) FROM STDIN WITH (FORMAT text)`)));
  }
  await client.query('CLOSE vinops_replay_payloads');
  if (fetched !== payloads) throw new ReplayError(`file ${fileId}: ${payloads - fetched} of its payloads are missing from raw.payloads`);

  const cols = TYPED_NAMES;
  const { rows: [counts] } = await client.query<{ inserted: number; updated: number }>(`WITH up AS (
      INSERT INTO staging.copart_typed AS s (payload_hash, first_file_id, ${cols.join(', ')})
      SELECT payload_hash, $1, ${cols.join(', ')} FROM vinops_retyped
      ON CONFLICT (payload_hash) DO UPDATE SET ${cols.map((c) => `${c} = EXCLUDED.${c}`).join(', ')}
       WHERE (${cols.map((c) => `s.${c}`).join(', ')}) IS DISTINCT FROM (${cols.map((c) => `EXCLUDED.${c}`).join(', ')})
      RETURNING (xmax = 0) AS inserted)
    SELECT count(*) FILTER (WHERE inserted)::int AS inserted, count(*) FILTER (WHERE NOT inserted)::int AS updated FROM up`, [fileId]);
  if (skipReplayed) await client.query(`INSERT INTO ${REPLAYED_TABLE} SELECT hash FROM vinops_replay_hashes`);
  return { payloads, inserted: counts!.inserted, updated: counts!.updated };
}

/**
 * One COPY line of a staging.copart_typed row (payload_hash, then the typed columns) for a stored
 * payload: its values in payload order (header without Id), as raw.payloads holds them.
 */
function typedLine(layout: FileLayout, values: readonly string[], hash: string): string {
  if (values.length !== layout.payloadKeys.length) {
    throw new ReplayError(`payload ${hash} has ${values.length} values, its file's header ${layout.payloadKeys.length} columns`);
  }
  const typed = typeRecord((role) => {
    const f = layout.roleIndex[role];
    return f === undefined ? null : values[payloadPosition(layout, f) - 1]!;
  });
  return `${hash}\t${TYPED_COLUMNS.map(([name]) => copyTextField(typed[name] ?? null)).join('\t')}\n`;
}
