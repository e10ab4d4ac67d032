import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { openDatabase } from '../database.js';
import { withClient } from '../db.js';
import { createReplayedSet, listStoredFiles, replayFile, type ReplayResult } from '../replayFile.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * `vinops-etl replay --file FILE_ID... | --all`: rebuilds staging and the core tables from raw, one
 * transaction per file, files in ingestion order for --all. One summary per file; exit 1 when any
 * file failed (the others are still replayed; a failed one leaves its previous state).
 */
export async function replayCommand(config: Config, log: Logger, target: { files: readonly string[]; all: boolean }, options: { json: boolean }): Promise<number> {
  if (target.all === (target.files.length > 0)) {
    process.stderr.write('usage: vinops-etl replay [--json] (--file FILE_ID [--file FILE_ID ...] | --all)\n');
    return 2;
  }
  const bad = target.files.find((f) => !UUID.test(f));
  if (bad !== undefined) {
    process.stderr.write(`not a file_id (a uuid, see vinops-etl status): ${JSON.stringify(bad)}\n`);
    return 2;
  }
  const db = await openDatabase(config, log, { poolSize: 1 });
  let status = 0;
  try {
    await withClient(db.pool, log, async (client) => {
      await createReplayedSet(client);
      const files = target.all ? await listStoredFiles(client) : target.files;
      log.info({ files: files.length }, 'replay from raw');
      for (const fileId of files) {
        try {
          const r = await replayFile(client, fileId, { skipReplayed: target.all });
          log.info({ file_id: r.fileId, rows: r.dataRows, payloads: r.payloads, typed_inserted: r.typedInserted,
            typed_updated: r.typedUpdated, lots: r.upserts.lots, vehicles: r.upserts.vehicles, seconds: r.seconds }, 'file replayed');
          process.stdout.write(options.json ? `${JSON.stringify({ outcome: 'replayed', ...r })}\n` : formatReplay(r));
        } catch (err) {
          status = 1;
          const reason = err instanceof Error ? err.message : String(err);
          log.error({ file_id: fileId, err }, 'replay failed');
          process.stdout.write(options.json ? `${JSON.stringify({ outcome: 'failed', fileId, reason })}\n` : `${fileId}: FAILED: ${reason}\n`);
        }
      }
    });
  } finally {
    await db.close();
  }
  return status;
}

export function formatReplay(r: ReplayResult): string {
  const actions = (a: Record<string, number>): string => `${a.inserted} inserted, ${a.updated} updated, ${a.unchanged} unchanged, ${a.stale} stale`;
  return [
    `${r.fileId}: replayed (${r.path})`,
    `  data rows     ${r.dataRows}`,
    `  payloads      ${r.payloads} typed again: ${r.typedInserted} missing in staging, ${r.typedUpdated} changed`,
    `  lots          ${actions(r.upserts.lots)}`,
    `  vehicles      ${actions(r.upserts.vehicles)}`,
    `  VIN conflicts ${r.upserts.vinConflicts}`,
    `  unknown Sale Status ${r.upserts.unknownSaleStatus}`,
    `  seconds       ${r.seconds}`,
  ].join('\n') + '\n';
}
