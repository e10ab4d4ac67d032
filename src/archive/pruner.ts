import type pg from 'pg';
import type { Logger } from 'pino';
import { sleep } from '../abortable.js';
import { withClient } from '../db/pool.js';
import { openArchiveTarget, type ArchiveTarget } from './archiveTarget.js';
import { pruneRawTree, type PruneReport } from './prune.js';
import { pruneDatabase } from './pruneDatabase.js';

/** Session advisory lock of a retention run: one daemon (or `vinops-etl prune`) at a time per database. */
const PRUNE_LOCK: readonly [number, number] = [0x76696e6f, 3];

export interface RetentionSettings {
  readonly rawDir: string;
  readonly rawRetentionDays: number | undefined;
  readonly dbRetentionDays?: number | undefined;
  readonly target: ArchiveTarget | undefined;
}

/**
 * One retention run under the prune lock; undefined when another process holds it (it is pruning
 * the same database and tree right now).
 */
export async function runRetention(pool: pg.Pool, log: Logger, settings: RetentionSettings, options: { dryRun: boolean; signal?: AbortSignal; now?: Date }): Promise<PruneReport | undefined> {
  return withClient(pool, log, async (lock) => {
    const { rows: [got] } = await lock.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1, $2) AS ok', [...PRUNE_LOCK]);
    if (!got!.ok) return undefined;
    try {
      const report = await pruneRawTree(pool, log, { ...settings, dryRun: options.dryRun, ...(options.signal ? { signal: options.signal } : {}), ...(options.now ? { now: options.now } : {}) });
      if (settings.dbRetentionDays !== undefined) {
        const before = new Date((options.now ?? new Date()).getTime() - settings.dbRetentionDays * 86_400_000);
        report.database = await pruneDatabase(pool, log, { before, target: settings.target, dryRun: options.dryRun, ...(options.signal ? { signal: options.signal } : {}) });
        report.errors += report.database.errors;
      }
      return report;
    } finally {
      await lock.query('SELECT pg_advisory_unlock($1, $2)', [...PRUNE_LOCK]);
    }
  });
}

/** The daemon's retention schedule: a run shortly after start, then every intervalMs. stop() waits for a run in flight to stop. */
export class Pruner {
  onReport: (r: PruneReport | Error) => void = () => undefined;
  private readonly stopping = new AbortController();
  private loop: Promise<void> | undefined;

  constructor(private readonly pool: pg.Pool, private readonly log: Logger, private readonly settings: RetentionSettings,
    private readonly intervalMs: number, private readonly firstDelayMs = 60_000) {}

  start(): void {
    this.loop ??= this.run();
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    await this.loop;
  }

  private async run(): Promise<void> {
    const signal = this.stopping.signal;
    let wait = this.firstDelayMs;
    while (await sleep(wait, signal)) {
      wait = this.intervalMs;
      try {
        const r = await runRetention(this.pool, this.log, this.settings, { dryRun: false, signal });
        if (r === undefined) continue; // another process is at it
        this.onReport(r);
        if (r.archivedFiles + r.deletedFiles + r.errors + (r.database?.files ?? 0) > 0) {
          this.log.info({ archived: r.archivedFiles + (r.database?.archivedFiles ?? 0), deleted: r.deletedFiles, deleted_bytes: r.deletedBytes, kept: r.kept.length,
            db_files: r.database?.files ?? 0, db_payloads: r.database?.payloads ?? 0, errors: r.errors }, 'retention run done');
        }
      } catch (err) {
        if (signal.aborted) return;
        this.log.error({ err }, 'retention run failed; tried again at the next interval');
        this.onReport(err instanceof Error ? err : new Error(String(err)));
      }
    }
  }
}

/** The retention settings of a configuration; undefined when retention is off (neither rawRetentionDays nor dbRetentionDays). */
export function retentionOf(config: { rawDir: string; rawRetentionDays?: number | undefined; dbRetentionDays?: number | undefined; archiveUrl?: string | undefined; archiveEndpoint?: string | undefined; archiveRegion?: string | undefined }): RetentionSettings | undefined {
  if (config.rawRetentionDays === undefined && config.dbRetentionDays === undefined) return undefined;
  return {
    rawDir: config.rawDir,
    rawRetentionDays: config.rawRetentionDays,
    dbRetentionDays: config.dbRetentionDays,
    target: config.archiveUrl === undefined ? undefined : openArchiveTarget(config.archiveUrl, { endpoint: config.archiveEndpoint, region: config.archiveRegion }),
  };
}
