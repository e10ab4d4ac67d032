import type pg from 'pg';
import { DESCRIPTIVE_COLUMNS } from '../descriptiveColumns.js';
import { TYPED_COLUMNS } from '../rowEncoder.js';

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
];

/** The typed column names, in staging.copart_typed's order. */
export const TYPED_NAMES: readonly string[] = TYPED_COLUMNS.map(([name]) => name);

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

/**
 * Statistics sample of a per-file temp table: 300 × this many rows. The plans need row counts, null
 * fractions and whether a key is unique, which 3,000 of 154,000 rows tell as well as the default
 * 30,000 do, at a tenth of the pages read.
 */
const TEMP_STATISTICS_TARGET = 10;

/**
 * Analyzes the given columns of a per-file temp table from a TEMP_STATISTICS_TARGET sample. Temp
 * tables are never auto-analyzed; without statistics their joins plan as nested loops.
 */
export async function analyzeTempTable(client: pg.ClientBase, table: string, columns: readonly string[]): Promise<void> {
  await client.query(`ALTER TABLE ${table} ${columns.map((c) => `ALTER COLUMN ${c} SET STATISTICS ${TEMP_STATISTICS_TARGET}`).join(', ')}`);
  await client.query(`ANALYZE ${table} (${columns.join(', ')})`);
}

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
