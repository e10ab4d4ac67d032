import type pg from 'pg';
import { analyzeTempTable } from '../db/tempTables.js';
import { KNOWN_SALE_STATUSES } from '../feed/columns.js';
import type { FileLayout } from '../feed/layout.js';
import { UPSERT_TABLES, upsertStatements, type UpsertSource } from './upsertStatements.js';

export type { UpsertSource } from './upsertStatements.js';

/**
 * The core upsert: staging -> public.lots / public.vehicles in the ingest's transaction, over the lots
 * whose content is new in the file; last write wins by (Last Updated Time, payload address), never by
 * arrival order, and an empty value never erases a known one. Replay (src/core/replay.ts) runs the
 * same steps over every lot of a stored file. The rules for operators: docs/core-tables.md.
 */

export type UpsertAction = 'inserted' | 'updated' | 'unchanged' | 'stale';
export interface UpsertCounts {
  readonly lots: Record<UpsertAction, number>;
  readonly vehicles: Record<UpsertAction, number>;
  readonly vinConflicts: number;
  /** Lots applied or confirmed (not stale) whose Sale Status is none of KNOWN_SALE_STATUSES (stored as in the file). */
  readonly unknownSaleStatus: number;
}

/** Runs the steps of src/core/upsertStatements.ts in the caller's transaction. */
export async function upsertCore(client: pg.ClientBase, fileId: string, layout: FileLayout,
  source: UpsertSource, options: { replay?: boolean } = {}): Promise<UpsertCounts> {
  const replay = options.replay === true;
  const sql = upsertStatements(layout, source, replay);
  const run = async (text: string, params: unknown[] = []): Promise<number> => (await client.query(text, params)).rowCount ?? 0;
  const count = async (text: string): Promise<number> => (await client.query<{ n: number }>(text)).rows[0]!.n;

  // 1. Candidates.
  const candidates = await run(sql.candidates);
  await analyzeTempTable(client, UPSERT_TABLES.candidates, sql.analyzeColumns);
  // 2. Stale rows: recorded live, counted in a replay (audit.upsert_conflicts keeps what the live path saw).
  await run(sql.addFlags);
  await run(sql.markStored);
  const staleStored = replay ? await count(sql.staleStored) : await run(sql.staleStored, [fileId]);
  const staleInFile = replay ? await count(sql.staleInFile) : await run(sql.staleInFile, [fileId]);
  // 3. Vehicles.
  const vehiclesIn = await run(sql.vehiclesIn);
  await client.query(`ANALYZE ${UPSERT_TABLES.vehiclesIn} (vin)`);
  await run(sql.markVehiclesStored);
  const vinVariants = await run(sql.vinVariants, [fileId]);
  const vehiclesUpdated = await run(sql.updateVehicles);
  const vehiclesInserted = await run(sql.insertVehicles);
  // 4. Lots.
  const vinChanges = await run(sql.vinChanges, [fileId]);
  const lotsUpdated = await run(sql.updateLots, [fileId]);
  const lotsInserted = await run(sql.insertLots, [fileId]);
  // 5. Counts.
  const { rows: [vc] } = await client.query<{ vehicles_stale: number; unknown_status: number }>(sql.tally, [KNOWN_SALE_STATUSES]);
  return {
    lots: { ...tally(lotsInserted, lotsUpdated, candidates, staleStored), stale: staleStored + staleInFile },
    vehicles: tally(vehiclesInserted, vehiclesUpdated, vehiclesIn, vc!.vehicles_stale),
    vinConflicts: vinVariants + vinChanges,
    unknownSaleStatus: vc!.unknown_status,
  };
}

function tally(inserted: number, updated: number, total: number, stale: number): Record<UpsertAction, number> {
  return { inserted, updated, stale, unchanged: Math.max(0, total - inserted - updated - stale) };
}
