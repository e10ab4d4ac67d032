import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { openDatabase } from '../db/open.js';
import { withClient } from '../db/pool.js';
import { jsonLine } from './jsonOutput.js';
import { replayFiles, type ReplayResult } from '../core/replay.js';
import { formatActions, formatLifecycle } from './ingestCommand.js';
import { UsageError } from './usageError.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * `vinops-etl replay --file FILE_ID... | --all`: rebuilds staging and the core tables from raw, one
 * transaction per file, files in ingestion order for --all. One summary per file; exit 1 when any
 * file failed (the others are still replayed; a failed one leaves its previous state). `signal`
 * stops it between files (a replay in flight runs to its end, or the forced exit rolls it back).
 */
export async function replayCommand(config: Config, log: Logger, target: { files: readonly string[]; all: boolean },
  options: { json: boolean; signal?: AbortSignal }): Promise<number> {
  if (target.all === (target.files.length > 0)) {
    throw new UsageError(target.all ? '--all and --file exclude each other' : 'expected --file FILE_ID (repeatable) or --all');
  }
  const bad = target.files.find((f) => !UUID.test(f));
  if (bad !== undefined) throw new UsageError(`--file: not a file_id (a uuid, see vinops-etl status), got ${JSON.stringify(bad)}`);
  const db = await openDatabase(config, log, { poolSize: 1 });
  let status = 0;
  try {
    await withClient(db.pool, log, async (client) => {
      log.info({ files: target.all ? 'all' : target.files.length }, 'replay from raw');
      const run = await replayFiles(client, target.all ? 'all' : target.files, {
        ...(options.signal ? { signal: options.signal } : {}),
        onFile(fileId, r) {
          if (r instanceof Error) {
            log.error({ file_id: fileId, err: r }, 'replay failed');
            process.stdout.write(options.json ? jsonLine({ outcome: 'failed', fileId, reason: r.message }) : `${fileId}: FAILED: ${r.message}\n`);
            return;
          }
          log.info({ file_id: r.fileId, rows: r.dataRows, payloads: r.payloads, typed_inserted: r.typedInserted,
            typed_updated: r.typedUpdated, lots: r.upserts.lots, vehicles: r.upserts.vehicles, seconds: r.seconds }, 'file replayed');
          process.stdout.write(options.json ? jsonLine({ outcome: 'replayed', ...r }) : formatReplay(r));
        },
      });
      if (run.failed > 0) status = 1;
      if (run.notBegun > 0) process.stderr.write(`vinops-etl replay: stopped: ${run.notBegun} file(s) not replayed\n`);
      if (run.lifecycle !== undefined) {
        const { pairs, seconds } = run.lifecycle;
        log.info({ pairs, seconds }, 'lifecycle computed again');
        process.stdout.write(options.json ? jsonLine({ outcome: 'lifecycle', pairs, seconds }) : `lifecycle: ${pairs} file pair(s) computed again in ${seconds} s\n`);
      }
    });
  } finally {
    await db.close();
  }
  return status;
}

export function formatReplay(r: ReplayResult): string {
  return [
    `${r.fileId}: replayed (${r.path})`,
    `  data rows     ${r.dataRows}`,
    `  payloads      ${r.payloads} typed again: ${r.typedInserted} missing in staging, ${r.typedUpdated} changed`,
    `  lots          ${formatActions(r.upserts.lots)}`,
    `  vehicles      ${formatActions(r.upserts.vehicles)}`,
    `  VIN conflicts ${r.upserts.vinConflicts}`,
    `  unknown Sale Status ${r.upserts.unknownSaleStatus}`,
    ...(r.lifecycle ? formatLifecycle(r.lifecycle) : []),
    `  seconds       ${r.seconds}`,
  ].join('\n') + '\n';
}
