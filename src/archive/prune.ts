import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat, unlink } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import type { Logger } from 'pino';
import { listFeedPaths } from '../discovery/rawTree.js';
import { windowFromPath } from '../feed/paths.js';
import { archiveFile } from './archiveFile.js';
import type { ArchiveTarget } from './archiveTarget.js';
import type { DatabasePruneReport } from './pruneDatabase.js';

export interface PruneOptions {
  readonly rawDir: string;
  /** Files of the raw tree older than this (by window, else mtime) are deleted once stored (and archived). */
  readonly rawRetentionDays: number | undefined;
  readonly target: ArchiveTarget | undefined;
  readonly dryRun: boolean;
  readonly now?: Date;
  readonly signal?: AbortSignal;
}

/** What one run did (or, with dryRun, would do). */
export interface PruneReport {
  /** Stored files written to the archive (and verified). */
  archivedFiles: number;
  archivedBytes: number;
  /** Files deleted from the raw tree. */
  deletedFiles: number;
  deletedBytes: number;
  /** Old files kept, with why (not stored, not exportable exactly, archive failed). */
  kept: { path: string; reason: string }[];
  errors: number;
  dryRun: boolean;
  /** Database retention's part (dbRetentionDays), when on. */
  database?: DatabasePruneReport;
}

/**
 * The raw tree's retention (docs/retention.md): each file older than rawRetentionDays whose bytes the
 * database holds (by sha256, and exportable exactly) is archived first when a target is set, read
 * back and verified, and only then deleted. A file the database does not hold is never deleted; a
 * failure keeps the file and is counted, and the run goes on with the next one.
 */
export async function pruneRawTree(pool: pg.Pool, log: Logger, o: PruneOptions): Promise<PruneReport> {
  const report: PruneReport = { archivedFiles: 0, archivedBytes: 0, deletedFiles: 0, deletedBytes: 0, kept: [], errors: 0, dryRun: o.dryRun };
  if (o.rawRetentionDays === undefined) return report;
  const cutoff = (o.now ?? new Date()).getTime() - o.rawRetentionDays * 86_400_000;
  for (const path of await listFeedPaths(o.rawDir)) {
    o.signal?.throwIfAborted();
    const s = await stat(path).catch(() => undefined);
    if (s === undefined || !s.isFile()) continue;
    const age = windowFromPath(path)?.getTime() ?? s.mtimeMs;
    if (age >= cutoff) continue;
    const keep = (reason: string): void => { report.kept.push({ path, reason }); };
    try {
      const sha256 = await hashFile(path, o.signal);
      const { rows: [r] } = await pool.query<{ file_id: string | null; export_exact: boolean | null; archived: boolean }>(
        `SELECT f.file_id, f.export_exact, EXISTS (SELECT 1 FROM raw.archives a WHERE a.target = $2 AND a.sha256 = $1) AS archived
           FROM (SELECT $1::text AS sha256) x LEFT JOIN raw.csv_files f USING (sha256)`, [sha256, o.target?.url ?? null]);
      const reason = keepReason(r!, o.target !== undefined);
      if (reason !== undefined) { keep(reason); continue; }
      if (o.target !== undefined && !r!.archived) {
        // Stored (keepReason saw to it), not archived yet: archived and verified before the delete.
        const a = o.dryRun ? undefined : await archiveFile(pool, o.target, r!.file_id!, o.signal);
        if (a !== undefined) log.info({ path, file_id: r!.file_id, key: a.key, bytes: a.bytes, stored_bytes: a.storedBytes }, 'file archived and verified');
        report.archivedFiles++;
        report.archivedBytes += a?.storedBytes ?? s.size;
      }
      if (!o.dryRun) {
        await unlink(path);
        log.info({ path, file_id: r!.file_id }, 'raw file deleted (stored or archived)');
      }
      report.deletedFiles++;
      report.deletedBytes += s.size;
    } catch (err) {
      if (o.signal?.aborted) throw err;
      report.errors++;
      keep(`failed: ${err instanceof Error ? err.message : String(err)}`);
      log.warn({ err, path }, 'retention: file kept (archiving or deleting it failed; tried again at the next run)');
    }
  }
  return report;
}

/**
 * Why an old raw file must stay, or undefined when it may go: what the database holds of it (by
 * sha256), whether it can give it back exactly, and whether the archive has it already. A file
 * removed from the database by its own retention may go when archived and verified; files stored
 * before migration 0014 (export_exact NULL) only with an archive, whose checked export vouches for them.
 */
function keepReason(r: { file_id: string | null; export_exact: boolean | null; archived: boolean }, hasTarget: boolean): string | undefined {
  if (r.file_id === null) return r.archived ? undefined : 'not stored in the database';
  if (r.export_exact === false) return 'the database cannot give its bytes back exactly (export_note)';
  if (r.export_exact === null && !hasTarget) return 'stored before byte-exact export (migration 0014) and no archive set: kept';
  return undefined;
}

async function hashFile(path: string, signal?: AbortSignal): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path, { highWaterMark: 1 << 20 }), async function* (source: AsyncIterable<Buffer>) {
    for await (const chunk of source) hash.update(chunk);
    yield* [];
  }, signal ? { signal } : {});
  return hash.digest('hex');
}
