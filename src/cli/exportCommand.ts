import { open, rename, rm } from 'node:fs/promises';
import { finished } from 'node:stream/promises';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { exportFile, type ExportResult } from '../archive/exportFile.js';
import { openDatabase } from '../db/open.js';
import { withClient } from '../db/pool.js';
import { jsonLine } from './jsonOutput.js';
import { UsageError } from './usageError.js';

/**
 * `vinops-etl export FILE_ID [--out PATH]`: the file's original bytes from the database alone. To
 * PATH through PATH.part, renamed only once the sha256 matched (a failed export leaves nothing); to
 * stdout otherwise (then a mismatch is the exit status and the message, the bytes are already out).
 */
export async function exportCommand(config: Config, log: Logger, args: readonly string[], options: { out?: string; json?: boolean; signal?: AbortSignal }): Promise<number> {
  if (args.length !== 1) throw new UsageError('expected one FILE_ID (vinops-etl status lists them)');
  if (options.json && options.out === undefined) throw new UsageError('--json needs --out (without it stdout carries the file)');
  const fileId = args[0]!;
  const db = await openDatabase(config, log, { migrate: false, poolSize: 1 });
  try {
    if (options.out === undefined) {
      const r = await withClient(db.pool, log, (client) => exportFile(client, fileId, process.stdout, options.signal ? { signal: options.signal } : {}));
      log.info(summary(r), 'exported');
      return 0;
    }
    const part = `${options.out}.part`;
    // Opened first, so a bad path is its own clear error; a write error later (ENOSPC) stops the export.
    const handle = await open(part, 'w', 0o640);
    const file = handle.createWriteStream();
    const failed = new AbortController();
    let writeError: Error | undefined;
    file.on('error', (err) => { writeError = err; failed.abort(err); });
    const signal = options.signal ? AbortSignal.any([options.signal, failed.signal]) : failed.signal;
    try {
      const r = await withClient(db.pool, log, (client) => exportFile(client, fileId, file, { signal })).catch((err: unknown) => {
        throw writeError === undefined ? err : new Error(`cannot write ${part}: ${writeError.message}`, { cause: writeError });
      });
      file.end();
      await finished(file);
      await rename(part, options.out);
      process.stdout.write(options.json ? jsonLine({ path: options.out, ...summary(r) })
        : `${options.out}: ${r.bytes} bytes, sha256 ${r.sha256} (the original's), ${r.records} records (${r.residuals} kept verbatim), ` +
          `${(r.bytes / 1e6 / Math.max(r.seconds, 1e-3)).toFixed(1)} MB/s\n`);
      return 0;
    } catch (err) {
      file.destroy();
      await rm(part, { force: true });
      throw err;
    }
  } finally {
    await db.close();
  }
}

function summary(r: ExportResult): Record<string, unknown> {
  return { file_id: r.fileId, bytes: r.bytes, sha256: r.sha256, records: r.records, residuals: r.residuals, seconds: Math.round(r.seconds * 1000) / 1000 };
}
