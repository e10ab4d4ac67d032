import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { openDatabase } from '../database.js';
import { countQueue } from '../sql/fileQueue.js';
import { listRecentFiles } from '../sql/statusQueries.js';

/** `vinops-etl status`: queue depth and the recent files, from the database. */
export async function statusCommand(config: Config, log: Logger, options: { json: boolean; limit: number }): Promise<number> {
  const db = await openDatabase(config, log, { poolSize: 1 });
  try {
    const [queue, files] = await Promise.all([countQueue(db.pool), listRecentFiles(db.pool, options.limit)]);
    if (options.json) {
      process.stdout.write(`${JSON.stringify({ queue, files })}\n`);
      return 0;
    }
    const q = queue;
    process.stdout.write(`queue: ${q.pending} pending, ${q.running} running, ${q.failed} failed` +
      ` (${q.ingested} ingested, ${q.duplicate} duplicate, ${q.rejected} rejected)\n\n`);
    const header = ['state', 'rows', 'errors', 'VIN ?%', 'lot ?%', 'sec', 'finished (UTC)', 'path'];
    const lines = files.map((f) => [
      f.state + (f.attempts > 1 ? ` (${f.attempts})` : ''),
      f.rows ?? '', f.parse_errors ?? '', f.vin_unknown_pct ?? '', f.lot_unknown_pct ?? '', f.seconds ?? '',
      f.finished_at ? f.finished_at.toISOString().slice(0, 19).replace('T', ' ') : '',
      f.path + (f.last_error ? `\n      ${f.last_error}` : ''),
    ].map(String));
    const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (i < 7 ? l[i]!.length : 0))));
    const fmt = (cells: string[]): string => cells.map((c, i) => (i < 7 ? c.padEnd(widths[i]!) : c)).join('  ');
    process.stdout.write(`${fmt(header)}\n${lines.map(fmt).join('\n')}\n`);
    if (files.length === 0) process.stdout.write('(no files seen yet)\n');
    return 0;
  } finally {
    await db.close();
  }
}
