import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat, unlink } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import type { Logger } from 'pino';
import { listFeedPaths } from '../discovery/rawTree.js';
import { windowFromPath } from '../feed/paths.js';
import { archiveFile, findArchive } from './archiveFile.js';
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
      const { rows: [f] } = await pool.query<{ file_id: string; export_exact: boolean | null }>(
        'SELECT file_id, export_exact FROM raw.csv_files WHERE sha256 = $1', [sha256]);
      if (f === undefined) {
        // Removed from the database by its own retention, but archived and verified: the archive holds it.
        if (o.target !== undefined && (await findArchive(pool, o.target.url, sha256)) !== undefined) {
          if (!o.dryRun) {
            await unlink(path);
            log.info({ path }, 'raw file deleted (archived; no longer in the database)');
          }
          report.deletedFiles++;
          report.deletedBytes += s.size;
        } else {
          keep('not stored in the database');
        }
        continue;
      }
      // Files stored before migration 0014 (NULL) may not come back exactly either: only a checked export
      // (the archive's) vouches for them.
      if (f.export_exact === false || (f.export_exact === null && o.target === undefined)) {
        keep(f.export_exact === false ? 'the database cannot give its bytes back exactly (export_note)'
          : 'stored before byte-exact export (migration 0014) and no archive set: kept');
        continue;
      }
      if (o.target !== undefined && (await findArchive(pool, o.target.url, sha256)) === undefined) {
        if (o.dryRun) {
          report.archivedFiles++;
          report.archivedBytes += s.size;
        } else {
          const a = await archiveFile(pool, o.target, f.file_id, o.signal);
          report.archivedFiles++;
          report.archivedBytes += a.storedBytes;
          log.info({ path, file_id: f.file_id, key: a.key, bytes: a.bytes, stored_bytes: a.storedBytes }, 'file archived and verified');
        }
      }
      if (!o.dryRun) {
        await unlink(path);
        log.info({ path, file_id: f.file_id }, 'raw file deleted (stored, archived where configured)');
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

async function hashFile(path: string, signal?: AbortSignal): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path, { highWaterMark: 1 << 20 }), async function* (source: AsyncIterable<Buffer>) {
    for await (const chunk of source) hash.update(chunk);
    yield* [];
  }, signal ? { signal } : {});
  return hash.digest('hex');
}
