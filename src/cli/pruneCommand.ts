import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { retentionOf, runRetention } from '../archive/pruner.js';
import type { PruneReport } from '../archive/prune.js';
import { openDatabase } from '../db/open.js';
import { jsonLine } from './jsonOutput.js';
import { UsageError } from './usageError.js';

/** `vinops-etl prune [--dry-run] [--json]`: one retention run now, as the daemon's schedule runs it. */
export async function pruneCommand(config: Config, log: Logger, options: { dryRun: boolean; json: boolean; signal?: AbortSignal }): Promise<number> {
  const retention = retentionOf(config);
  if (retention === undefined) throw new UsageError('retention is off: set rawRetentionDays / dbRetentionDays in the config file or VINOPS_RAW_RETENTION_DAYS / VINOPS_DB_RETENTION_DAYS');
  const db = await openDatabase(config, log, { migrate: false, poolSize: 3 });
  try {
    const r = await runRetention(db.pool, log, retention, { dryRun: options.dryRun, ...(options.signal ? { signal: options.signal } : {}) });
    if (r === undefined) {
      process.stderr.write('vinops-etl prune: another process is pruning this database now; nothing done\n');
      return 4;
    }
    process.stdout.write(options.json ? jsonLine(r) : formatPrune(r));
    return r.errors > 0 ? 1 : 0;
  } finally {
    await db.close();
  }
}

export function formatPrune(r: PruneReport): string {
  const would = r.dryRun ? 'would be ' : '';
  const lines = [
    `${r.dryRun ? 'dry run: ' : ''}${r.archivedFiles} file(s) ${would}archived${r.dryRun ? '' : ` (${r.archivedBytes} bytes compressed, verified)`}`,
    `${r.deletedFiles} file(s) ${would}deleted from the raw tree (${r.deletedBytes} bytes)`,
    ...r.kept.map((k) => `kept ${k.path}: ${k.reason}`),
    ...(r.database === undefined ? [] : [`${r.database.files} file(s) ${would}removed from the database (${r.database.bytes} bytes of files` +
      `${r.dryRun ? '' : `, ${r.database.payloads} payloads no remaining file uses, ${r.database.archivedFiles} archived first`})`]),
  ];
  return `${lines.join('\n')}\n`;
}
