import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { openDatabase } from '../db/open.js';
import { fetchWindow, type FetchResult } from '../fetch/fetchWindow.js';
import { fetchSourceOf } from '../fetch/fetchSource.js';
import { jsonLine } from './jsonOutput.js';
import { UsageError } from './usageError.js';

/** Exit status by outcome: 0 a file written or none needed, 1 failed, 3 blocked, 4 the window taken by another fetch. */
export const FETCH_EXIT: Readonly<Record<FetchResult['outcome'], number>> = {
  downloaded: 0, unchanged: 0, not_modified: 0, failed: 1, blocked: 3, skipped: 4,
};

/**
 * `vinops-etl fetch --once`: one download for the current window, as the daemon's fetcher does it
 * (the same ledger, so it never fetches a window the daemon has). The file is then ingested by the
 * daemon, or by `vinops-etl ingest PATH`.
 */
export async function fetchCommand(config: Config, log: Logger, options: { once: boolean; json: boolean; signal?: AbortSignal }): Promise<number> {
  if (!options.once) throw new UsageError('expected --once (the daemon fetches on its schedule)');
  const source = fetchSourceOf(config);
  if (source === undefined) throw new UsageError('fetching is off: set fetchUrl in the config file or VINOPS_FETCH_URL');
  const db = await openDatabase(config, log, { poolSize: 2 });
  try {
    const r = await fetchWindow({ pool: db.pool, log, rawDir: config.rawDir, source, ...(options.signal ? { signal: options.signal } : {}) });
    process.stdout.write(options.json ? jsonLine(r) : formatFetch(r));
    return FETCH_EXIT[r.outcome];
  } finally {
    await db.close();
  }
}

export function formatFetch(r: FetchResult): string {
  const head = `${r.windowStart.toISOString()}: ${r.outcome.replace('_', ' ')}`;
  const lines = [
    r.path ? `${head}: ${r.path}` : head,
    ...(r.httpStatus === null ? [] : [`  HTTP status   ${r.httpStatus}`]),
    `  requests      ${r.requests}`,
    ...(r.bytes === null ? [] : [`  bytes         ${r.bytes}`]),
    ...(r.sha256 === null ? [] : [`  sha256        ${r.sha256}`]),
    ...(r.error === null ? [] : [`  error         ${r.error}`]),
    `  seconds       ${r.seconds}`,
  ];
  return `${lines.join('\n')}\n`;
}
