import type { LifecycleCounts } from '../lifecycle/updateLifecycle.js';
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { openDatabase } from '../db/open.js';
import { ingestFile, type IngestResult } from '../ingest/ingestFile.js';
import { isArchivedObject, restoreToTemp } from '../archive/restore.js';
import { jsonLine } from './jsonOutput.js';
import { UsageError } from './usageError.js';

/**
 * `vinops-etl ingest <file>...`: ingests the files in order, one summary per file on stdout. Exit
 * status 0 when every file was ingested or already was (same bytes); 1 when any was rejected or
 * failed. `signal` stops it: the file in flight is rolled back, the files after it are not started.
 */
export async function ingestCommand(config: Config, log: Logger, files: readonly string[], options: { json: boolean; signal?: AbortSignal }): Promise<number> {
  if (files.length === 0) throw new UsageError('expected at least one file: vinops-etl ingest [--json] <file>...');
  const { signal } = options;
  // A file that is not there is said so in words, and before the database starts (seconds, embedded).
  const problems = new Map<string, string>();
  for (const file of files) {
    const problem = file.startsWith('s3://') ? undefined : await fileProblem(file);
    if (problem !== undefined) problems.set(file, problem);
  }
  let status = 0;
  const fail = (file: string, reason: string): void => {
    status = 1;
    const path = resolve(file);
    process.stdout.write(options.json ? jsonLine({ outcome: 'failed', path, reason }) : `${path}: FAILED: ${reason}\n`);
  };
  if (problems.size === files.length) {
    for (const file of files) fail(file, problems.get(file)!);
    return status;
  }
  const db = await openDatabase(config, log, { poolSize: 2 });
  // An archived object (….csv.gz, s3://…) is decompressed to a temporary file and recorded under its own name.
  const ingestArchived = async (spec: string): Promise<IngestResult> => {
    const copy = await restoreToTemp(spec, { endpoint: config.archiveEndpoint, region: config.archiveRegion }, signal);
    try {
      return await ingestFile({ pool: db.pool, log, maxRecordBytes: config.maxRecordBytes }, copy.path, { ...(signal ? { signal } : {}), recordAs: copy.recordAs });
    } finally {
      await copy.remove();
    }
  };
  let done = 0;
  try {
    for (const file of files) {
      if (signal?.aborted) break;
      done++;
      const problem = problems.get(file);
      if (problem !== undefined) {
        fail(file, problem);
        continue;
      }
      try {
        const r = isArchivedObject(file) ? await ingestArchived(file) : await ingestFile({ pool: db.pool, log, maxRecordBytes: config.maxRecordBytes }, file, signal ? { signal } : {});
        process.stdout.write(options.json ? jsonLine(r) : formatSummary(r));
        if (r.outcome === 'rejected') status = 1;
      } catch (err) {
        fail(file, signal?.aborted ? `${(signal.reason as Error).message}: rolled back, nothing stored` : describeFileError(err, file));
      }
    }
  } finally {
    await db.close();
  }
  if (done < files.length) {
    process.stderr.write(`vinops-etl ingest: stopped: ${files.length - done} file(s) not started: ${files.slice(done).map((f) => resolve(f)).join(', ')}\n`);
  }
  return status;
}

/** Why the file cannot be ingested at all, in words; undefined when it can be opened. */
async function fileProblem(file: string): Promise<string | undefined> {
  try {
    const s = await stat(file);
    return s.isFile() ? undefined : `not a regular file: ${resolve(file)}`;
  } catch (err) {
    return describeFileError(err, file);
  }
}

/** A file system error as a sentence that names the file; anything else as its message. */
function describeFileError(err: unknown, file: string): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const path = resolve(file);
  switch (code) {
    case 'ENOENT': return `no such file: ${path}`;
    case 'EACCES': case 'EPERM': return `permission denied: ${path}`;
    case 'ENOTDIR': return `no such file (a part of the path is not a directory): ${path}`;
    case 'EISDIR': return `not a regular file: ${path}`;
    default: return err instanceof Error ? err.message : String(err);
  }
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
    ...(r.lifecycle ? formatLifecycle(r.lifecycle) : []),
  ];
  return `${lines.join('\n')}\n`;
}

/** The lifecycle's lines of a summary: events by kind, outcomes taken, lots listed. */
export function formatLifecycle(l: LifecycleCounts): string[] {
  const list = (o: Record<string, number>): string => Object.entries(o).map(([k, n]) => `${n} ${k.replace('_', ' ')}`).join(', ');
  return [
    ...(l.partial ? ['  snapshot      PARTIAL: not a full snapshot, its absences are not taken as disappearances'] : []),
    `  lot events    ${list(l.events)}`,
    `  outcomes      ${list(l.outcomes)}`,
    `  lots listed   ${l.listed}`,
    ...(l.pendingPairs > 0 ? [`  lifecycle     ${l.pendingPairs} file pairs still to compute (the next files catch up)`] : []),
  ];
}

/** What the core upsert did to one table, as `ingest` and `replay` print it. */
export function formatActions(a: Record<string, number>): string {
  return `${a.inserted} inserted, ${a.updated} updated, ${a.unchanged} unchanged, ${a.stale} stale`;
}
