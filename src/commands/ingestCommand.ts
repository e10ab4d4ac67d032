import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { openDatabase } from '../database.js';
import { ingestFile, type IngestResult } from '../ingestFile.js';

/**
 * `vinops-etl ingest <file>...`: ingests the files in order, one summary per file. Exit status 0 when
 * every file was ingested or already was (same bytes); 1 when any was rejected or failed.
 */
export async function ingestCommand(config: Config, log: Logger, files: readonly string[], options: { json: boolean }): Promise<number> {
  if (files.length === 0) {
    process.stderr.write('usage: vinops-etl ingest [--json] <file>...\n');
    return 2;
  }
  const db = await openDatabase(config, log, { poolSize: 2 });
  let status = 0;
  try {
    for (const file of files) {
      try {
        const r = await ingestFile({ pool: db.pool, log, maxRecordBytes: config.maxRecordBytes }, file);
        process.stdout.write(options.json ? `${JSON.stringify(r)}\n` : formatSummary(r));
        if (r.outcome === 'rejected') status = 1;
      } catch (err) {
        status = 1;
        const reason = err instanceof Error ? err.message : String(err);
        process.stdout.write(options.json ? `${JSON.stringify({ outcome: 'failed', path: file, reason })}\n` : `${file}: FAILED: ${reason}\n`);
      }
    }
  } finally {
    await db.close();
  }
  return status;
}

export function formatSummary(r: IngestResult): string {
  if (r.outcome === 'rejected') return `${r.path}: REJECTED: ${r.reason}\n`;
  if (r.outcome === 'duplicate') return `${r.path}: already ingested (${r.reason})\n`;
  const lines = [
    `${r.path}: ingested`,
    `  file_id       ${r.fileId}`,
    `  sha256        ${r.sha256}`,
    `  bytes         ${r.bytes}`,
    `  data rows     ${r.dataRows}`,
    `  parse errors  ${r.parseErrors}`,
    `  VIN unknown   ${r.vinUnknownPct}%`,
    `  Lot unknown   ${r.lotUnknownPct}%`,
    `  seconds       ${r.seconds}`,
    `  rows/s        ${r.rowsPerSecond}`,
    ...(r.upserts ? [`  lots          ${formatActions(r.upserts.lots)}`, `  vehicles      ${formatActions(r.upserts.vehicles)}`,
      `  VIN conflicts ${r.upserts.vinConflicts}`, `  unknown Sale Status ${r.upserts.unknownSaleStatus}`] : []),
  ];
  return `${lines.join('\n')}\n`;
}

function formatActions(a: Record<string, number>): string {
  return `${a.inserted} inserted, ${a.updated} updated, ${a.unchanged} unchanged, ${a.stale} stale`;
}
