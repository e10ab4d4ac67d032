import type pg from 'pg';
import { analyzeTempTable } from '../db/tempTables.js';
import { lockPayloadStore } from '../db/locks.js';
import { withTransaction } from '../db/transaction.js';
import { buildLayout, payloadPosition } from '../feed/layout.js';
import {
  AUCTION_GRACE, COLLECT_LOTS, COUNT_LISTED, COUNT_FILE_EVENTS, COUNT_PENDING, CREATE_AFFECTED, DELETE_FILE_EVENTS, DELETE_RELISTS, DROP_PAIR_TABLES,
  FIX_PRESENCE_KINDS, FORGET_FILE_PAIR, INSERT_PAIR_EVENTS, INSERT_RELISTS, IS_ONLY_FILE, ONLY_FILE_EVENTS, LIFECYCLE_TABLES, LIST_PENDING, LIST_WITHDRAWN,
  MARK_PARTIAL, PAIR_LOTS, PAIR_ROWS, PAIR_ROWS_FIRST, RECORD_FILE_PAIR, RECORD_LOT_COUNT, pairRowsLive, REFRESH_LOTS, SNAPSHOT_FROM_ROWS, TRACKED_FIELDS,
} from './lifecycleStatements.js';

/**
 * The lot lifecycle (docs/lifecycle.md): once a file's rows are stored, its place in feed order, the
 * events of every pair of consecutive full snapshots that this changed, and the state and outcome of
 * the lots those events concern. Set-based, in the caller's transaction (which holds the payload lock).
 */

export const EVENT_KINDS = ['appeared', 'disappeared', 'reappeared', 'relisted', 'changed'] as const;
export type EventKind = (typeof EVENT_KINDS)[number];
export const OUTCOMES = ['sold', 'not_sold', 'on_approval', 'withdrawn'] as const;
export type Outcome = (typeof OUTCOMES)[number];

export interface LifecycleCounts {
  /** Whether the file is flagged as not a full snapshot. */
  readonly partial: boolean;
  /** Pairs whose events were (re)computed; 1 for a file that arrives in order. */
  readonly pairs: number;
  /** Pairs still to compute (more than maxPairs were pending). */
  readonly pendingPairs: number;
  /** Events now recorded at the files whose pairs this run computed, by kind. */
  readonly events: Record<EventKind, number>;
  /** Lots that took each outcome in this run. */
  readonly outcomes: Record<Outcome, number>;
  /** Lots present in the newest full snapshot. */
  readonly listed: number;
  readonly ms: number;
}

/** Places a new file in feed order: its snapshot time when its path gave none, and the partial flags around it. */
export async function placeFile(client: pg.ClientBase, fileId: string): Promise<void> {
  await client.query(SNAPSHOT_FROM_ROWS, [fileId]);
  await client.query(MARK_PARTIAL, [fileId]);
}

/**
 * What a live load knows of its pair with the file whose addresses its encoder held (`prevFileId`):
 * which of that file's addresses it did not repeat, and (SQL relations of `h`) its rows that carry
 * values, i.e. are not in that file, and all its rows.
 */
export interface LivePair {
  readonly prevFileId: string;
  readonly removed: readonly string[];
  readonly added: string;
  readonly current: string;
}

/** Marks the pairs of the given files (and of the files after them) to be computed again; all when null. */
export async function markPairsStale(client: pg.ClientBase, fileIds: readonly string[] | null): Promise<void> {
  if (fileIds === null) await client.query('UPDATE raw.csv_files SET lifecycle_at = NULL WHERE lifecycle_at IS NOT NULL');
  else await client.query('UPDATE raw.csv_files SET lifecycle_at = NULL WHERE file_id = ANY ($1::uuid[]) OR lifecycle_prev_file_id = ANY ($1::uuid[])', [fileIds]);
}

/**
 * Brings the events and lot states up to date with the files stored: computes the pairs that are
 * missing or whose earlier file changed (a late file lands between two stored ones; a file's
 * partial flag changed), then evaluates the lots they concern. In order, the one new pair.
 */
export async function updateLifecycle(client: pg.ClientBase, fileId: string | null,
  options: { maxPairs?: number; live?: LivePair; touched?: string } = {}): Promise<LifecycleCounts> {
  const t0 = performance.now();
  await client.query(CREATE_AFFECTED);
  // Lots whose rows the core upsert just applied in a way their state depends on (a relation of `lot`).
  if (options.touched !== undefined) await client.query(`INSERT INTO ${LIFECYCLE_TABLES.affected} (lot) SELECT lot FROM (${options.touched}) t`);
  for (const { file_id } of (await client.query<{ file_id: string }>(LIST_WITHDRAWN)).rows) {
    await client.query(DELETE_FILE_EVENTS, [file_id]);
    await client.query(FORGET_FILE_PAIR, [file_id]);
  }
  const pending = await client.query<{ file_id: string; snapshot_at: Date; headers: string[]; prev_id: string | null;
    prev_snapshot_at: Date | null; prev_headers: string[] | null }>(LIST_PENDING, [options.maxPairs ?? null]);
  for (const p of pending.rows) {
    await client.query(DELETE_FILE_EVENTS, [p.file_id]);
    const live = options.live !== undefined && p.file_id === fileId && p.prev_id === options.live.prevFileId ? options.live : undefined;
    await computePair(client, p, live);
  }
  const outcomes = Object.fromEntries(OUTCOMES.map((o) => [o, 0])) as Record<Outcome, number>;
  if ((await client.query(`SELECT 1 FROM ${LIFECYCLE_TABLES.affected} LIMIT 1`)).rowCount! > 0) {
    await client.query(FIX_PRESENCE_KINDS);
    const collected = await client.query(COLLECT_LOTS);
    await analyzeIfLarge(client, LIFECYCLE_TABLES.lots, collected.rowCount ?? 0, ['lot', 'vin']);
    await client.query(DELETE_RELISTS);
    await client.query(INSERT_RELISTS);
    const changed = await client.query<{ was: Outcome | null; outcome: Outcome | null }>(REFRESH_LOTS, [AUCTION_GRACE]);
    for (const r of changed.rows) if (r.outcome !== null && r.outcome !== r.was) outcomes[r.outcome]++;
    await client.query(`DROP TABLE ${LIFECYCLE_TABLES.lots}`);
  }
  await client.query(`DROP TABLE ${LIFECYCLE_TABLES.affected}`);
  const events = Object.fromEntries(EVENT_KINDS.map((k) => [k, 0])) as Record<EventKind, number>;
  const computed = pending.rows.map((p) => p.file_id);
  if (computed.length > 0) {
    const { rows } = await client.query<{ kind: EventKind; n: number }>(COUNT_FILE_EVENTS, [computed]);
    for (const r of rows) events[r.kind] = r.n;
  }
  const partial = fileId === null ? false
    : (await client.query<{ partial: boolean }>('SELECT partial FROM raw.csv_files WHERE file_id = $1', [fileId])).rows[0]?.partial ?? false;
  const listed = (await client.query<{ n: number }>(COUNT_LISTED)).rows[0]!.n;
  // Only a run cut short by maxPairs can leave pairs behind.
  const left = options.maxPairs !== undefined && pending.rows.length >= options.maxPairs
    ? (await client.query<{ n: number }>(COUNT_PENDING)).rows[0]!.n : 0;
  return { partial, pairs: pending.rows.length, pendingPairs: left, events, outcomes, listed, ms: Math.round(performance.now() - t0) };
}

async function computePair(client: pg.ClientBase, p: { file_id: string; snapshot_at: Date; headers: string[]; prev_id: string | null;
  prev_snapshot_at: Date | null; prev_headers: string[] | null }, live: LivePair | undefined): Promise<void> {
  if (p.prev_id === null && (await client.query<{ only: boolean }>(IS_ONLY_FILE, [p.file_id])).rows[0]!.only) {
    const { rows: [ins] } = await client.query<{ n: number }>(ONLY_FILE_EVENTS, [p.file_id, p.snapshot_at]);
    await analyzeIfOutgrown(client, ins!.n);
    await client.query(RECORD_FILE_PAIR, [p.file_id, p.prev_id]);
    await client.query(RECORD_LOT_COUNT, [p.file_id, null, ins!.n, 0]);
    return;
  }
  const rows = live !== undefined ? await client.query(pairRowsLive(live.added, live.current), [live.removed])
    : await client.query(p.prev_id === null ? PAIR_ROWS_FIRST : PAIR_ROWS, [p.prev_id, p.file_id]);
  await analyzeIfLarge(client, LIFECYCLE_TABLES.rows, rows.rowCount ?? 0, ['lot_external_id', 'payload_hash']);
  await client.query(PAIR_LOTS, [damagePosition(p.prev_headers), damagePosition(p.headers)]);
  const { rows: [ins] } = await client.query<{ n: number; starts: number; gone: number }>(INSERT_PAIR_EVENTS,
    [p.file_id, p.snapshot_at, p.prev_snapshot_at, TRACKED_FIELDS.map(([f]) => f)]);
  await analyzeIfOutgrown(client, ins!.n);
  await client.query(RECORD_FILE_PAIR, [p.file_id, p.prev_id]);
  await client.query(RECORD_LOT_COUNT, [p.file_id, p.prev_id, ins!.starts, ins!.gone]);
  await client.query(DROP_PAIR_TABLES);
}

/**
 * The statements after a big insert (a first file: 154,000 events) are planned on the table's
 * statistics: when it grew by more than a tenth, they are refreshed (ANALYZE counts this
 * transaction's own rows).
 */
async function analyzeIfOutgrown(client: pg.ClientBase, inserted: number): Promise<void> {
  if (inserted < 10_000) return;
  const { rows: [t] } = await client.query<{ tuples: number }>(`SELECT greatest(reltuples, 0)::float8 AS tuples FROM pg_class WHERE oid = 'public.lot_events'::regclass`);
  if (inserted > 0.1 * t!.tuples) await client.query('SELECT public.analyze_lot_events()'); // as the schema owner (migrations/0013)
}

/**
 * Statistics for a temp table that may be large (a first file, a catch-up): without them its joins
 * plan as nested loops. A steady-state pair's few thousand rows plan well without.
 */
async function analyzeIfLarge(client: pg.ClientBase, table: string, rows: number, columns: readonly string[]): Promise<void> {
  if (rows >= 10_000) await analyzeTempTable(client, table, columns);
}

/** Position of Damage Description among a stored file's payload values (1-based), null when it has none. */
function damagePosition(headers: string[] | null): number | null {
  if (headers === null) return null;
  const layout = buildLayout(headers, { hasBom: false, eol: 'LF', dataOffset: 0 });
  const i = layout.roleIndex.damageDescription;
  return i === undefined ? null : payloadPosition(layout, i);
}

/**
 * Computes every pending pair, one transaction per pair (each takes the payload lock, so the daemon
 * can load meanwhile): `replay --all` after its files, or a backlog. Returns the pairs computed.
 */
export async function catchUpLifecycle(client: pg.ClientBase, options: { signal?: AbortSignal; onPair?: (c: LifecycleCounts) => void } = {}): Promise<number> {
  let pairs = 0;
  while (options.signal?.aborted !== true) {
    const counts = await withTransaction(client, async () => {
      await lockPayloadStore(client);
      return updateLifecycle(client, null, { maxPairs: 1 });
    });
    pairs += counts.pairs;
    options.onPair?.(counts);
    if (counts.pendingPairs === 0 || counts.pairs === 0) break;
  }
  return pairs;
}
