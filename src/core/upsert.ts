import type pg from 'pg';
import { DESCRIPTIVE_COLUMNS, KNOWN_SALE_STATUSES, LOT_TEXT, LOT_TYPED, VEHICLE_TEXT, VEHICLE_TYPED, type ColumnRole } from '../feed/columns.js';
import { payloadPosition, type FileLayout } from '../feed/layout.js';
import { analyzeTempTable } from '../db/tempTables.js';

/**
 * The core upsert: staging -> public.lots / public.vehicles, last write wins by Last Updated Time
 * (source_updated_at), never by arrival order; equal times break on the payload address, so the
 * result does not depend on the order files arrive in. Runs in the ingest transaction, after
 * promoteRows, over the lots whose content is new in this file (a payload seen before was applied,
 * or rejected as stale, when it was first seen). Within the file, a lot's newest row is the one.
 *
 * Per column: a typed or descriptive value that is empty (NULL) in the winning row keeps the value
 * already known (an empty cell does not erase a known value); the clock, the source and the VIN
 * follow the winning row (a lot whose VIN became empty or invalid gets vin NULL and vin_issue).
 *
 * Replay (src/replayFile.ts) runs the same statements over all the lots of a stored file, rebuilt
 * from raw: the row that is stored already (same clock, same payload) is written again where its
 * values differ (a typing fix reaches the core tables); stale rows are counted but not recorded
 * again (audit.upsert_conflicts keeps what the live path saw), and a VIN conflict already recorded
 * (same lot or VIN, same pair of values) is not recorded again.
 * docs/core-tables.md states the rules for operators.
 */

export type UpsertAction = 'inserted' | 'updated' | 'unchanged' | 'stale';
export interface UpsertCounts {
  readonly lots: Record<UpsertAction, number>;
  readonly vehicles: Record<UpsertAction, number>;
  readonly vinConflicts: number;
  /** Lots applied or confirmed (not stale) whose Sale Status is none of KNOWN_SALE_STATUSES (stored as in the file). */
  readonly unknownSaleStatus: number;
}

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

/** The last-write-wins order: (source_updated_at, payload_hash), NULL time oldest. */
const CLOCK = (t: string): string => `(coalesce(${t}.source_updated_at, '-infinity'::timestamptz), ${t}.payload_hash)`;

export async function upsertCore(client: pg.ClientBase, fileId: string, layout: FileLayout,
  source: UpsertSource, options: { replay?: boolean } = {}): Promise<UpsertCounts> {
  const replay = options.replay === true;
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
    // split_part finds the value with one memchr-fast scan of the text; a subscript of the text[]
    // that raw.payload_values builds walks the array from its start, per column.
    const k = payloadPosition(layout, i);
    return `nullif(btrim(CASE WHEN p.vals IS NULL THEN split_part(p.vals_text, E'\\x1f', ${k}) ELSE p.vals[${k}] END), '')`;
  };
  // 1. The candidates: per lot whose content is new in this file, its newest row in the file, typed,
  //    with the descriptive columns as the encoder sent them, or else read from its payload values
  //    (cutting 26 values out of each stored payload costs ~1 s on a first file of 154,000 lots).
  const newest = `(SELECT DISTINCT ON (t.lot_external_id) l.row_no, count(*) OVER (PARTITION BY t.lot_external_id) AS file_rows, t.*
              FROM ${source.rows} l JOIN staging.copart_typed t ON t.payload_hash = l.hash
             WHERE l.lot IS NOT NULL${source.lots === undefined ? '' : ` AND l.lot IN (${source.lots})`}
             ORDER BY t.lot_external_id, coalesce(t.source_updated_at, '-infinity'::timestamptz) DESC, t.payload_hash DESC, l.row_no DESC) r`;
  const created = await client.query(source.values === undefined
    ? `CREATE TEMP TABLE vinops_candidates ON COMMIT DROP AS
    SELECT r.*, ${DESCRIPTIVE_COLUMNS.map(([col, role]) => `${text(role)} AS ${col}`).join(', ')}
      FROM ${newest} JOIN raw.payloads p ON p.hash = r.payload_hash`
    // The payload is looked up only for a row that does not carry its values (OFFSET 0 keeps the
    // subquery from being flattened into a join, so the condition gates the lookup).
    : `CREATE TEMP TABLE vinops_candidates ON COMMIT DROP AS
    SELECT r.*, ${DESCRIPTIVE_COLUMNS.map(([col, role]) => `CASE WHEN v.carries THEN v.${col} ELSE ${text(role)} END AS ${col}`).join(', ')}
      FROM ${newest} JOIN ${source.values} v ON v.row_no = r.row_no
      LEFT JOIN LATERAL (SELECT q.vals_text, q.vals FROM raw.payloads q WHERE q.hash = r.payload_hash AND NOT v.carries OFFSET 0) p ON true`);
  const candidates = created.rowCount ?? 0;
  await analyzeTempTable(client, 'vinops_candidates', ['lot_external_id', 'vin_normalized', 'row_no', 'file_rows']);

  // 2. Candidates older than the stored lot lose (last write wins): they change neither the lot nor
  //    its vehicle. Live, they and the older rows of a lot repeated in this file (other content
  //    than the newest) are recorded; a replay leaves those records as the live path wrote them.
  //    `stored`: the lot exists. Found here, in a statement of its own: an INSERT … WHERE NOT EXISTS
  //    on the table it fills is planned against the table's size at its start, and when that is
  //    empty (vacuumed after a rolled-back load) a nested loop re-reads the growing table per row.
  await client.query(`ALTER TABLE vinops_candidates ADD COLUMN loses boolean NOT NULL DEFAULT false,
    ADD COLUMN stored boolean NOT NULL DEFAULT false`);
  await client.query(`UPDATE vinops_candidates c SET stored = true, loses = coalesce(${CLOCK('c')} < ${CLOCK('x')}, false) FROM public.lots x
     WHERE x.lot_external_id = c.lot_external_id`);
  // The other rows of a candidate's lot in this file (file_rows: how many the lot has).
  const staleInFileRows = `FROM vinops_candidates c JOIN ${source.rows} l ON l.lot = c.lot_external_id AND l.row_no <> c.row_no AND l.hash <> c.payload_hash
      JOIN staging.copart_typed t ON t.payload_hash = l.hash WHERE c.file_rows > 1`;
  let staleStored: number;
  let staleInFile: number;
  if (replay) {
    staleStored = (await client.query<{ n: number }>('SELECT count(*)::int AS n FROM vinops_candidates WHERE loses')).rows[0]!.n;
    staleInFile = (await client.query<{ n: number }>(`SELECT count(*)::int AS n ${staleInFileRows}`)).rows[0]!.n;
  } else {
    staleStored = (await client.query(`INSERT INTO audit.upsert_conflicts
        (table_name, lot_external_id, file_id, row_no, incoming_updated_at, current_updated_at, reason)
      SELECT 'lots', c.lot_external_id, $1::uuid, c.row_no, c.source_updated_at, x.source_updated_at, 'older than the stored lot (last write wins)'
        FROM vinops_candidates c JOIN public.lots x USING (lot_external_id) WHERE c.loses`, [fileId])).rowCount ?? 0;
    staleInFile = (await client.query(`INSERT INTO audit.upsert_conflicts
        (table_name, lot_external_id, file_id, row_no, incoming_updated_at, current_updated_at, reason)
      SELECT 'lots', c.lot_external_id, $1::uuid, l.row_no, t.source_updated_at, c.source_updated_at, 'a newer row of the same lot in this file'
      ${staleInFileRows}`, [fileId])).rowCount ?? 0;
  }

  // 3. Vehicles first (lots reference them): valid VINs, the newest winning row per VIN.
  // Loads hold the payload lock (promoteRows) until they commit, so nothing else writes these tables
  // meanwhile: a plain UPDATE of the known rows and an INSERT of those found not stored, cheaper than
  // ON CONFLICT's speculative insertion per row.
  const vehicleKept = [...VEHICLE_TYPED, ...VEHICLE_TEXT.map(([c]) => c)];
  const vehicleFollow = ['vin_raw', 'source_updated_at', 'payload_hash'];
  const vehicleCols = ['vin', ...vehicleFollow, ...vehicleKept];
  const vehiclesIn = await client.query(`CREATE TEMP TABLE vinops_vehicles_in ON COMMIT DROP AS
    SELECT DISTINCT ON (c.vin_normalized) c.vin_normalized AS vin, ${[...vehicleFollow, ...vehicleKept].map((col) => `c.${col}`).join(', ')},
           false AS stored, false AS stale
      FROM vinops_candidates c WHERE c.vin_valid AND NOT c.loses
     ORDER BY c.vin_normalized, coalesce(c.source_updated_at, '-infinity'::timestamptz) DESC, c.payload_hash DESC`);
  await client.query('ANALYZE vinops_vehicles_in (vin)');
  // One pass over the stored vehicles: which exist (`stored`, see step 2) and which of those are newer.
  await client.query(`UPDATE vinops_vehicles_in i SET stored = true, stale = ${CLOCK('i')} < ${CLOCK('v')}
    FROM public.vehicles v WHERE v.vin = i.vin`);
  // A raw form other than the one known for the VIN: the stored vehicle's, or for a VIN new here,
  // the form of its newest row in this file.
  const vinVariants = await client.query(`INSERT INTO audit.vin_conflicts (kind, vin_normalized, old_value, new_value, file_id, row_no)
    SELECT 'vin_raw_variant', c.vin_normalized, coalesce(v.vin_raw, i.vin_raw), c.vin_raw, $1::uuid, c.row_no
      FROM vinops_candidates c JOIN vinops_vehicles_in i ON i.vin = c.vin_normalized
      LEFT JOIN public.vehicles v ON v.vin = c.vin_normalized
     WHERE c.vin_valid AND NOT c.loses AND coalesce(v.vin_raw, i.vin_raw) IS DISTINCT FROM c.vin_raw
       ${notRecorded('vin_raw_variant', 'coalesce(v.vin_raw, i.vin_raw)', 'c.vin_raw')}`, [fileId]);
  const vehiclesUpdated = await client.query(`UPDATE public.vehicles v SET
      ${vehicleKept.map((col) => `${col} = coalesce(i.${col}, v.${col})`).join(', ')},
      ${vehicleFollow.map((col) => `${col} = i.${col}`).join(', ')}, updated_at = now()
    FROM vinops_vehicles_in i WHERE v.vin = i.vin AND ${CLOCK('i')} ${wins} ${CLOCK('v')}
      ${differs('v', [...vehicleKept, ...vehicleFollow], (col) => vehicleFollow.includes(col) ? `i.${col}` : `coalesce(i.${col}, v.${col})`)}`);
  const vehiclesInserted = await client.query(`INSERT INTO public.vehicles (${vehicleCols.join(', ')})
    SELECT ${vehicleCols.map((c) => `i.${c}`).join(', ')} FROM vinops_vehicles_in i WHERE NOT i.stored`);

  // 4. Lots: a lot whose VIN changes between files is recorded.
  const vinChanges = await client.query(`INSERT INTO audit.vin_conflicts (kind, lot_external_id, vin_normalized, old_value, new_value, file_id, row_no)
    SELECT 'lot_vin_changed', c.lot_external_id, c.vin_normalized, x.vin, CASE WHEN c.vin_valid THEN c.vin_normalized END, $1::uuid, c.row_no
      FROM vinops_candidates c JOIN public.lots x USING (lot_external_id)
     WHERE ${CLOCK('c')} ${wins} ${CLOCK('x')} AND x.vin IS DISTINCT FROM (CASE WHEN c.vin_valid THEN c.vin_normalized END)
       ${notRecorded('lot_vin_changed', 'x.vin', 'CASE WHEN c.vin_valid THEN c.vin_normalized END')}`, [fileId]);
  const lotKept = [...LOT_TYPED, ...LOT_TEXT.map(([c]) => c)];
  const lotFollow = ['vin', 'vin_raw', 'vin_issue', 'source_updated_at', 'source_file_id', 'source_row_no', 'payload_hash'];
  const lotCols = ['lot_external_id', ...lotFollow, ...lotKept];
  // The candidates as lot rows; read by the UPDATE (known lots) and the INSERT (new ones).
  const lotsIn = `(SELECT c.lot_external_id, CASE WHEN c.vin_valid THEN c.vin_normalized END AS vin, c.vin_raw,
           CASE WHEN c.vin_normalized IS NULL THEN 'empty' WHEN NOT c.vin_valid THEN 'invalid' END AS vin_issue,
           c.source_updated_at, $1::uuid AS source_file_id, c.row_no AS source_row_no, c.payload_hash,
           ${lotKept.map((col) => `c.${col}`).join(', ')}, c.stored
      FROM vinops_candidates c)`;
  // The source of a lot is the file that first brought its winning row: a replayed later file that
  // repeats the row (same payload) leaves it.
  const follow = (col: string): string => replay && (col === 'source_file_id' || col === 'source_row_no')
    ? `CASE WHEN x.payload_hash = i.payload_hash THEN x.${col} ELSE i.${col} END` : `i.${col}`;
  const lotsUpdated = await client.query(`UPDATE public.lots x SET
      ${lotKept.map((col) => `${col} = coalesce(i.${col}, x.${col})`).join(', ')},
      ${lotFollow.map((col) => `${col} = ${follow(col)}`).join(', ')}, updated_at = now()
    FROM ${lotsIn} i WHERE x.lot_external_id = i.lot_external_id AND ${CLOCK('i')} ${wins} ${CLOCK('x')}
      ${differs('x', [...lotKept, ...lotFollow], (col) => lotFollow.includes(col) ? follow(col) : `coalesce(i.${col}, x.${col})`)}`, [fileId]);
  const lotsInserted = await client.query(`INSERT INTO public.lots (${lotCols.join(', ')})
    SELECT ${lotCols.map((c) => `i.${c}`).join(', ')} FROM ${lotsIn} i WHERE NOT i.stored`, [fileId]);

  const tally = (ins: { rowCount: number | null }, upd: { rowCount: number | null }, total: number, stale: number): Record<UpsertAction, number> => {
    const inserted = ins.rowCount ?? 0;
    const updated = upd.rowCount ?? 0;
    return { inserted, updated, stale, unchanged: Math.max(0, total - inserted - updated - stale) };
  };
  const { rows: [vc] } = await client.query<{ vehicles_stale: number; unknown_status: number }>(`SELECT
      (SELECT count(*) FROM vinops_vehicles_in WHERE stale)::int AS vehicles_stale,
      (SELECT count(*) FROM vinops_candidates WHERE NOT loses AND sale_status IS NOT NULL AND sale_status <> ALL ($1::text[]))::int AS unknown_status`,
    [KNOWN_SALE_STATUSES]);
  return {
    lots: { ...tally(lotsInserted, lotsUpdated, candidates, staleStored), stale: staleStored + staleInFile },
    vehicles: tally(vehiclesInserted, vehiclesUpdated, vehiclesIn.rowCount ?? 0, vc!.vehicles_stale),
    vinConflicts: (vinVariants.rowCount ?? 0) + (vinChanges.rowCount ?? 0),
    unknownSaleStatus: vc!.unknown_status,
  };
}
