import type pg from 'pg';
import { DESCRIPTIVE_COLUMNS, TYPED_COLUMNS } from '../../feed/columns.js';
import { analyzeTempTable } from '../../db/tempTables.js';

/**
 * The per-transaction temporary table the COPY fills, one line per record: parse errors with their
 * columns, data rows with their content address and, unless the payload is known to be stored, its
 * values, typed staging columns and descriptive values (RowEncoder).
 * `row_no` is an identity column, so each record's position in the file is recorded as COPY reads
 * it (row_number() over () would not follow file order); parse errors share the numbering.
 */
export const LOAD_TABLE = 'vinops_load';

const COLUMNS: readonly (readonly [string, string])[] = [
  ['line_no', 'bigint'], ['err', 'text'], ['raw_text', 'text'], ['raw_bytes', 'bytea'], ['raw_length', 'bigint'],
  ['id_value', 'text'], ['hash', 'uuid'], ['lot', 'text'], ['vals_text', 'text'], ['vals', 'text[]'],
  // staging.copart_typed's columns under their own names: NULL on rows sent by address only.
  ...TYPED_COLUMNS,
  // The lot's and vehicle's descriptive values, trimmed (the core upsert's candidates): NULL likewise.
  ...DESCRIPTIVE_COLUMNS.map(([name]) => [name, 'text'] as const),
  // The record's exact bytes when the canonical rendering of its values would not give them back.
  ['residual', 'bytea'],
];

/**
 * Whether a load-table row (alias `l`) carries its values, typed columns and descriptive values, not
 * only its address. Told by vin_valid, which a typed row always has (true or false) and an address-only
 * row never: a one-byte column, so a plan that needs the answer above a join does not carry the
 * payload text up to it.
 */
export const carriesValues = (l: string): string => `(${l}.vin_valid IS NOT NULL)`;

/**
 * The columns analyzeLoadTable samples: those the promote's and upsert's plans join and filter the
 * load table on, and the descriptive values, whose width decides which side of the candidates' join
 * to the load table is hashed (unanalyzed, each counts as 32 bytes, and the wrong side spilled).
 */
const PLANNED_COLUMNS = ['row_no', 'hash', 'lot', 'err', 'vin_valid', ...DESCRIPTIVE_COLUMNS.map(([name]) => name)];

export async function createLoadTable(client: pg.ClientBase): Promise<void> {
  await client.query(`CREATE TEMP TABLE ${LOAD_TABLE} (
    row_no integer GENERATED ALWAYS AS IDENTITY,
    ${COLUMNS.map(([name, type]) => `${name} ${type}`).join(',\n    ')}) ON COMMIT DROP`);
}

/** The load table's statistics, once the COPY has filled it. */
export async function analyzeLoadTable(client: pg.ClientBase): Promise<void> {
  await analyzeTempTable(client, LOAD_TABLE, PLANNED_COLUMNS);
}

/** COPY of RowEncoder's output. */
export const COPY_LOAD_SQL = `COPY ${LOAD_TABLE} (${COLUMNS.map(([name]) => name).join(', ')}) FROM STDIN WITH (FORMAT text, ENCODING 'UTF8')`;
