import { DESCRIPTIVE_COLUMNS, LOT_TEXT, LOT_TYPED, VEHICLE_TEXT, VEHICLE_TYPED, type ColumnRole } from '../feed/columns.js';
import { payloadPosition, type FileLayout } from '../feed/layout.js';

/**
 * The core upsert's statements, one per step, built once per (header, source, mode) and run in order
 * by upsertCore (src/core/upsert.ts). test/unit/upsertStatements.test.ts snapshots them.
 * `$1` is the file_id in every statement that records or writes a source.
 */

/** The temp tables the upsert creates (ON COMMIT DROP), by step. */
export const UPSERT_TABLES = { candidates: 'vinops_candidates', vehiclesIn: 'vinops_vehicles_in' } as const;

/**
 * Where the file's rows come from: `rows` is a relation of its valid data rows (row_no, hash, lot),
 * `lots` a query of the lot numbers to apply (all of the file's lots when absent), `values` a relation
 * of rows (row_no, carries, and the DESCRIPTIVE_COLUMNS) that has, where `carries`, the descriptive
 * values of the row already cut and trimmed (else they are read from the stored payload).
 */
export interface UpsertSource {
  readonly rows: string;
  readonly lots?: string;
  readonly values?: string;
}

export interface UpsertStatements {
  /** 1. Per lot, its newest row in the file, typed, with its descriptive values. */
  readonly candidates: string;
  readonly analyzeColumns: readonly string[];
  /** 2. Which candidates' lots are stored, and which of those lose to the stored row (last write wins). */
  readonly addFlags: string;
  readonly markStored: string;
  /** Live: the stale rows recorded in audit.upsert_conflicts; replay: only counted. */
  readonly staleStored: string;
  readonly staleInFile: string;
  /** 3. Vehicles: the winning row per valid VIN, then VIN variants, update, insert. */
  readonly vehiclesIn: string;
  readonly markVehiclesStored: string;
  readonly vinVariants: string;
  readonly updateVehicles: string;
  readonly insertVehicles: string;
  /** 4. Lots: VIN changes, update, insert. */
  readonly vinChanges: string;
  readonly updateLots: string;
  readonly insertLots: string;
  /** 5. What the counts need besides the row counts ($1: the known Sale Status values). */
  readonly tally: string;
}

const C = UPSERT_TABLES.candidates;
const V = UPSERT_TABLES.vehiclesIn;

/**
 * After the upsert, the lots its rows may have changed the lifecycle state of (src/lifecycle/): one
 * not listed (its outcome reads the auction time and Sale Status the upsert just wrote), one with
 * several rows in the file or a row that lost (the newest High Bid may be another row's than the
 * applied one). A relation of `lot`.
 */
export const TOUCHED_LOTS = `SELECT c.lot_external_id AS lot FROM ${C} c JOIN public.lots l USING (lot_external_id)
  WHERE c.loses OR c.file_rows > 1 OR NOT l.listed`;

/** The last-write-wins order: (source_updated_at, payload_hash), NULL time oldest. */
const CLOCK = (t: string): string => `(coalesce(${t}.source_updated_at, '-infinity'::timestamptz), ${t}.payload_hash)`;

const cache = new Map<string, UpsertStatements>();

export function upsertStatements(layout: FileLayout, source: UpsertSource, replay: boolean): UpsertStatements {
  const key = JSON.stringify([layout.names, source, replay]);
  let s = cache.get(key);
  if (s === undefined) {
    s = Object.freeze(build(layout, source, replay));
    if (cache.size > 64) cache.clear();
    cache.set(key, s);
  }
  return s;
}

function build(layout: FileLayout, source: UpsertSource, replay: boolean): UpsertStatements {
  // Live, a stored row is replaced by a strictly newer one; in a replay, also by itself (refresh).
  const wins = replay ? '>=' : '>';
  // Replay: a conflict already recorded (same lot or VIN, same pair of values, either way round) is
  // not recorded again; replaying over the live state would otherwise meet the same pairs again.
  const notRecorded = (kind: 'vin_raw_variant' | 'lot_vin_changed', a: string, b: string): string => replay
    ? `AND NOT EXISTS (SELECT 1 FROM audit.vin_conflicts z WHERE z.kind = '${kind}'
         AND ${kind === 'vin_raw_variant' ? 'z.vin_normalized = c.vin_normalized' : 'z.lot_external_id = c.lot_external_id'}
         AND ((z.old_value IS NOT DISTINCT FROM ${a} AND z.new_value IS NOT DISTINCT FROM ${b})
           OR (z.old_value IS NOT DISTINCT FROM ${b} AND z.new_value IS NOT DISTINCT FROM ${a})))` : '';
  /** Replay: only rows whose values change are written (no dead tuples for nothing). */
  const differs = (target: string, cols: readonly string[], set: (col: string) => string): string => replay
    ? `AND (${cols.map((c) => `${target}.${c}`).join(', ')}) IS DISTINCT FROM (${cols.map(set).join(', ')})` : '';
  const text = (role: ColumnRole): string => {
    const i = layout.roleIndex[role];
    if (i === undefined) return 'NULL::text';
    // split_part: one fast scan of the text; a text[] subscript walks the array from its start, per column.
    const k = payloadPosition(layout, i);
    return `nullif(btrim(CASE WHEN p.vals IS NULL THEN split_part(p.vals_text, E'\\x1f', ${k}) ELSE p.vals[${k}] END), '')`;
  };

  // 1. Candidates. The descriptive columns as the encoder sent them, else cut from the payload.
  const newest = `(SELECT DISTINCT ON (t.lot_external_id) l.row_no, count(*) OVER (PARTITION BY t.lot_external_id) AS file_rows, t.*
              FROM ${source.rows} l JOIN staging.copart_typed t ON t.payload_hash = l.hash
             WHERE l.lot IS NOT NULL${source.lots === undefined ? '' : ` AND l.lot IN (${source.lots})`}
             ORDER BY t.lot_external_id, coalesce(t.source_updated_at, '-infinity'::timestamptz) DESC, t.payload_hash DESC, l.row_no DESC) r`;
  const candidates = source.values === undefined
    ? `CREATE TEMP TABLE ${C} ON COMMIT DROP AS
    SELECT r.*, ${DESCRIPTIVE_COLUMNS.map(([col, role]) => `${text(role)} AS ${col}`).join(',\n           ')}
      FROM ${newest} JOIN raw.payloads p ON p.hash = r.payload_hash`
    // The payload is looked up only for a row that does not carry its values (OFFSET 0 keeps the
    // subquery from being flattened into a join, so the condition gates the lookup).
    : `CREATE TEMP TABLE ${C} ON COMMIT DROP AS
    SELECT r.*, ${DESCRIPTIVE_COLUMNS.map(([col, role]) => `CASE WHEN v.carries THEN v.${col} ELSE ${text(role)} END AS ${col}`).join(',\n           ')}
      FROM ${newest} JOIN ${source.values} v ON v.row_no = r.row_no
      LEFT JOIN LATERAL (SELECT q.vals_text, q.vals FROM raw.payloads q WHERE q.hash = r.payload_hash AND NOT v.carries OFFSET 0) p ON true`;

  // 2. Stale rows. `stored` is found in a statement of its own: an INSERT … WHERE NOT EXISTS on the
  //    table it fills is planned for the table's size at its start (docs/performance.md).
  const staleInFileRows = `FROM ${C} c JOIN ${source.rows} l ON l.lot = c.lot_external_id AND l.row_no <> c.row_no AND l.hash <> c.payload_hash
      JOIN staging.copart_typed t ON t.payload_hash = l.hash WHERE c.file_rows > 1`;
  const staleStored = replay
    ? `SELECT count(*)::int AS n FROM ${C} WHERE loses`
    : `INSERT INTO audit.upsert_conflicts
        (table_name, lot_external_id, file_id, row_no, incoming_updated_at, current_updated_at, reason)
      SELECT 'lots', c.lot_external_id, $1::uuid, c.row_no, c.source_updated_at, x.source_updated_at, 'older than the stored lot (last write wins)'
        FROM ${C} c JOIN public.lots x USING (lot_external_id) WHERE c.loses`;
  const staleInFile = replay
    ? `SELECT count(*)::int AS n ${staleInFileRows}`
    : `INSERT INTO audit.upsert_conflicts
        (table_name, lot_external_id, file_id, row_no, incoming_updated_at, current_updated_at, reason)
      SELECT 'lots', c.lot_external_id, $1::uuid, l.row_no, t.source_updated_at, c.source_updated_at, 'a newer row of the same lot in this file'
      ${staleInFileRows}`;

  // 3. Vehicles (lots reference them). Loads hold the payload lock until they commit, so a plain
  //    UPDATE of the stored rows and an INSERT of the others is safe, and cheaper than ON CONFLICT.
  const vehicleKept = [...VEHICLE_TYPED, ...VEHICLE_TEXT.map(([c]) => c)];
  const vehicleFollow = ['vin_raw', 'source_updated_at', 'payload_hash'];
  const vehicleCols = ['vin', ...vehicleFollow, ...vehicleKept];
  const vehiclesIn = `CREATE TEMP TABLE ${V} ON COMMIT DROP AS
    SELECT DISTINCT ON (c.vin_normalized) c.vin_normalized AS vin, ${[...vehicleFollow, ...vehicleKept].map((col) => `c.${col}`).join(', ')},
           false AS stored, false AS stale
      FROM ${C} c WHERE c.vin_valid AND NOT c.loses
     ORDER BY c.vin_normalized, coalesce(c.source_updated_at, '-infinity'::timestamptz) DESC, c.payload_hash DESC`;
  // A raw form other than the one known for the VIN: the stored vehicle's, or for a VIN new here,
  // the form of its newest row in this file.
  const vinVariants = `INSERT INTO audit.vin_conflicts (kind, vin_normalized, old_value, new_value, file_id, row_no)
    SELECT 'vin_raw_variant', c.vin_normalized, coalesce(v.vin_raw, i.vin_raw), c.vin_raw, $1::uuid, c.row_no
      FROM ${C} c JOIN ${V} i ON i.vin = c.vin_normalized
      LEFT JOIN public.vehicles v ON v.vin = c.vin_normalized
     WHERE c.vin_valid AND NOT c.loses AND coalesce(v.vin_raw, i.vin_raw) IS DISTINCT FROM c.vin_raw
       ${notRecorded('vin_raw_variant', 'coalesce(v.vin_raw, i.vin_raw)', 'c.vin_raw')}`;
  const updateVehicles = `UPDATE public.vehicles v SET
      ${vehicleKept.map((col) => `${col} = coalesce(i.${col}, v.${col})`).join(',\n      ')},
      ${vehicleFollow.map((col) => `${col} = i.${col}`).join(', ')}, updated_at = now()
    FROM ${V} i WHERE v.vin = i.vin AND ${CLOCK('i')} ${wins} ${CLOCK('v')}
      ${differs('v', [...vehicleKept, ...vehicleFollow], (col) => vehicleFollow.includes(col) ? `i.${col}` : `coalesce(i.${col}, v.${col})`)}`;
  const insertVehicles = `INSERT INTO public.vehicles (${vehicleCols.join(', ')})
    SELECT ${vehicleCols.map((c) => `i.${c}`).join(', ')} FROM ${V} i WHERE NOT i.stored`;

  // 4. Lots: a lot whose VIN changes between files is recorded.
  const vinChanges = `INSERT INTO audit.vin_conflicts (kind, lot_external_id, vin_normalized, old_value, new_value, file_id, row_no)
    SELECT 'lot_vin_changed', c.lot_external_id, c.vin_normalized, x.vin, CASE WHEN c.vin_valid THEN c.vin_normalized END, $1::uuid, c.row_no
      FROM ${C} c JOIN public.lots x USING (lot_external_id)
     WHERE ${CLOCK('c')} ${wins} ${CLOCK('x')} AND x.vin IS DISTINCT FROM (CASE WHEN c.vin_valid THEN c.vin_normalized END)
       ${notRecorded('lot_vin_changed', 'x.vin', 'CASE WHEN c.vin_valid THEN c.vin_normalized END')}`;
  const lotKept = [...LOT_TYPED, ...LOT_TEXT.map(([c]) => c)];
  const lotFollow = ['vin', 'vin_raw', 'vin_issue', 'source_updated_at', 'source_file_id', 'source_row_no', 'payload_hash'];
  const lotCols = ['lot_external_id', ...lotFollow, ...lotKept];
  const lotsIn = `(SELECT c.lot_external_id, CASE WHEN c.vin_valid THEN c.vin_normalized END AS vin, c.vin_raw,
           CASE WHEN c.vin_normalized IS NULL THEN 'empty' WHEN NOT c.vin_valid THEN 'invalid' END AS vin_issue,
           c.source_updated_at, $1::uuid AS source_file_id, c.row_no AS source_row_no, c.payload_hash,
           ${lotKept.map((col) => `c.${col}`).join(', ')}, c.stored
      FROM ${C} c)`;
  // The source of a lot is the file that first brought its winning row: a replayed later file that
  // repeats the row (same payload) leaves it.
  const follow = (col: string): string => replay && (col === 'source_file_id' || col === 'source_row_no')
    ? `CASE WHEN x.payload_hash = i.payload_hash THEN x.${col} ELSE i.${col} END` : `i.${col}`;
  const updateLots = `UPDATE public.lots x SET
      ${lotKept.map((col) => `${col} = coalesce(i.${col}, x.${col})`).join(',\n      ')},
      ${lotFollow.map((col) => `${col} = ${follow(col)}`).join(', ')}, last_high_bid = coalesce(i.high_bid, x.last_high_bid), updated_at = now()
    FROM ${lotsIn} i WHERE x.lot_external_id = i.lot_external_id AND ${CLOCK('i')} ${wins} ${CLOCK('x')}
      ${differs('x', [...lotKept, ...lotFollow], (col) => lotFollow.includes(col) ? follow(col) : `coalesce(i.${col}, x.${col})`)}`;
  // A new lot's presence as the lifecycle (src/lifecycle/) will find it when its file is the newest
  // full snapshot, the usual case: then the lifecycle has nothing to write for it.
  const insertLots = `INSERT INTO public.lots (${lotCols.join(', ')}, first_seen_at, listed, last_high_bid)
    SELECT ${lotCols.map((c) => `i.${c}`).join(', ')}, CASE WHEN NOT f.partial THEN f.snapshot_at END, NOT f.partial, i.high_bid
      FROM ${lotsIn} i CROSS JOIN (SELECT snapshot_at, partial FROM raw.csv_files WHERE file_id = $1::uuid) f WHERE NOT i.stored`;

  return {
    candidates,
    analyzeColumns: ['lot_external_id', 'vin_normalized', 'row_no', 'file_rows'],
    addFlags: `ALTER TABLE ${C} ADD COLUMN loses boolean NOT NULL DEFAULT false, ADD COLUMN stored boolean NOT NULL DEFAULT false`,
    markStored: `UPDATE ${C} c SET stored = true, loses = coalesce(${CLOCK('c')} < ${CLOCK('x')}, false) FROM public.lots x
     WHERE x.lot_external_id = c.lot_external_id`,
    staleStored,
    staleInFile,
    vehiclesIn,
    markVehiclesStored: `UPDATE ${V} i SET stored = true, stale = ${CLOCK('i')} < ${CLOCK('v')}
    FROM public.vehicles v WHERE v.vin = i.vin`,
    vinVariants,
    updateVehicles,
    insertVehicles,
    vinChanges,
    updateLots,
    insertLots,
    tally: `SELECT
      (SELECT count(*) FROM ${V} WHERE stale)::int AS vehicles_stale,
      (SELECT count(*) FROM ${C} WHERE NOT loses AND sale_status IS NOT NULL AND sale_status <> ALL ($1::text[]))::int AS unknown_status`,
  };
}
