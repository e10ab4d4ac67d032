import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { workerLabel } from '../observe/health.js';
import { openDatabase } from '../db/open.js';
import { sqlState } from '../db/errors.js';
import { countQueue } from '../queue/fileQueue.js';
import { listRecentFetches, listRecentFiles, summarizeArchives, type ArchiveSummary, listRunningFiles, readSchemaState, summarizeLifecycle, type FetchSummary, type LifecycleSummary, type RecentFile, type RunningFile, type SchemaState } from '../observe/statusQueries.js';
import { duration, formatBytes, formatNumber, plural } from '../observe/statusPage.js';

/**
 * `vinops-etl status`: queue depth, the files in flight (with the progress their workers store) and
 * the recent files, every one of them (queued by the daemon or ingested with `vinops-etl ingest`),
 * with its file_id. Read-only: it never migrates, and says so when the schema is missing or behind
 * (exit 1) instead of failing on a missing table or a read-only role's permissions.
 */
export async function statusCommand(config: Config, log: Logger, options: { json: boolean; limit: number }): Promise<number> {
  const db = await openDatabase(config, log, { migrate: false, poolSize: 1 });
  try {
    const schema = await readSchemaState(db.pool).catch((err: unknown) => {
      throw new Error(`cannot read the schema version (public.vinops_migrations): ${(err as Error).message}` +
        (sqlState(err) === '42501' ? ' (status needs read access to the vinops-etl tables: see docs/operations.md)' : ''), { cause: err });
    });
    const problem = schemaProblem(schema);
    if (problem !== undefined) {
      process.stderr.write(`vinops-etl status: ${problem}\n`);
      return 1;
    }
    if (schema.unknown.length > 0) {
      process.stderr.write(`vinops-etl status: warning: the database has migrations this version does not know (${schema.unknown.join(', ')}): a newer vinops-etl migrated it\n`);
    }
    const queue = await countQueue(db.pool);
    const running = await listRunningFiles(db.pool);
    const files = await listRecentFiles(db.pool, options.limit);
    const lifecycle = await summarizeLifecycle(db.pool);
    const fetches = await listRecentFetches(db.pool, 5);
    const archives = await summarizeArchives(db.pool);
    if (options.json) {
      process.stdout.write(`${JSON.stringify({ queue, in_flight: running.map(inFlightJson), files: files.map(fileJson), lifecycle, fetches, archives })}\n`);
      return 0;
    }
    process.stdout.write(formatStatus(queue, running, files, new Date()) + formatLifecycleStatus(lifecycle) + formatFetchStatus(fetches) + formatArchiveStatus(archives));
    return 0;
  } catch (err) {
    if (sqlState(err) === '42501') throw new Error(`${(err as Error).message} (status needs read access to the vinops-etl tables: see docs/operations.md)`, { cause: err });
    throw err;
  } finally {
    await db.close();
  }
}

/** The lifecycle lines of `status`: lots listed and the last file's events by kind. */
export function formatLifecycleStatus(l: LifecycleSummary): string {
  if (l.file_id === null) return '';
  const events = Object.entries(l.events).sort(([a], [b]) => a.localeCompare(b)).map(([k, n]) => `${formatNumber(n)} ${k}`).join(', ');
  return ['', `lots: ${formatNumber(l.lots_listed)} listed · last file's events: ${events === '' ? 'none' : events}`,
    ...(l.partial ? [`  the last file is not a full snapshot: ${l.partial_reason}`] : []),
    ...(l.partial_last_day > 0 ? [`  ${plural(l.partial_last_day, 'partial file')} in the last 24 hours`] : []), ''].join('\n');
}

/** The fetcher's line of `status`: its last attempt, and the last success when that one was not. */
export function formatFetchStatus(fetches: readonly FetchSummary[]): string {
  const last = fetches[0];
  if (last === undefined) return '';
  const what = (f: FetchSummary): string => `${f.outcome ?? 'in flight'} for ${f.window_start.toISOString().slice(0, 16).replace('T', ' ')}` +
    (f.path ? ` (${f.path})` : f.error ? ` (${f.error})` : '');
  const ok = fetches.find((f) => f.outcome === 'downloaded' || f.outcome === 'unchanged' || f.outcome === 'not_modified');
  return [`fetch from ${last.source}: ${what(last)}`, ...(ok !== undefined && ok !== last ? [`  last success: ${what(ok)}`] : []), ''].join('\n');
}

/** One line per archive target: files archived and verified, their sizes, the last one. */
export function formatArchiveStatus(archives: readonly ArchiveSummary[]): string {
  return archives.map((a) => `archive ${a.target}: ${plural(a.files, 'file')} (${formatBytes(a.bytes)}, stored ${formatBytes(a.stored_bytes)}), ` +
    `last verified ${a.last_at.toISOString().slice(0, 16).replace('T', ' ')}\n`).join('');
}

/** What stops `status` from reading the tables, in words; undefined when it can. */
export function schemaProblem(s: SchemaState): string | undefined {
  const todo = 'the daemon (`vinops-etl run`, `npm start`) applies migrations when it starts, or run `vinops-etl migrate` as a role allowed to change the schema; status only reads';
  if (s.missing) return `the database has no vinops-etl schema yet (no migration applied): ${todo}`;
  if (s.changed.length > 0) return `migration(s) ${s.changed.join(', ')} were applied with other content than this version's files: this vinops-etl does not match the database`;
  if (s.pending.length > 0) return `the database schema is behind this version: ${plural(s.pending.length, 'migration')} pending (${s.pending.join(', ')}): ${todo}`;
  return undefined;
}

/** The share of the file read, in percent; undefined before the first progress report. */
function readPct(f: RunningFile): number | undefined {
  if (f.bytes_read === null) return undefined;
  return f.bytes > 0 ? Math.min(100, Math.round((1000 * f.bytes_read) / f.bytes) / 10) : 100;
}

function inFlightJson(f: RunningFile): Record<string, unknown> {
  return {
    queue_id: f.queue_id, path: f.path, bytes: f.bytes, attempts: f.attempts, worker: f.worker, worker_name: workerLabel(f.worker),
    started_at: f.started_at, heartbeat_at: f.heartbeat_at, phase: f.phase, rows: f.rows, bytes_read: f.bytes_read, read_pct: readPct(f) ?? null,
    progress_at: f.progress_at,
  };
}

function fileJson(f: RecentFile): Record<string, unknown> {
  return { ...f, worker_name: f.worker === null ? null : workerLabel(f.worker) };
}

export function formatStatus(q: Record<string, number>, running: readonly RunningFile[], files: readonly RecentFile[], now: Date): string {
  const out: string[] = [];
  out.push(`queue: ${formatNumber(q.pending!)} pending, ${formatNumber(q.running!)} running, ${formatNumber(q.failed!)} failed` +
    ` (${formatNumber(q.ingested!)} ingested, ${formatNumber(q.duplicate!)} duplicate, ${formatNumber(q.rejected!)} rejected)`, '');
  if (running.length > 0) {
    out.push('in flight:');
    for (const f of running) {
      const since = f.started_at === null ? '' : `, for ${duration(now.getTime() - f.started_at.getTime())}`;
      const pct = readPct(f);
      const progress = f.phase === null ? 'starting'
        : `${f.phase}: ${plural(f.rows ?? 0, 'row')} read, ${pct === undefined ? '?' : formatNumber(pct, 1)} % of ${formatBytes(f.bytes)}` +
          (f.progress_at === null ? '' : ` (${duration(now.getTime() - f.progress_at.getTime())} ago)`);
      out.push(`  ${f.path}`, `    ${workerLabel(f.worker)}${since} · ${progress}`);
    }
    out.push('');
  }
  const header = ['state', 'file_id', 'rows', 'rows/s', 'errors', 'VIN ?%', 'lot ?%', 'sec', 'finished (UTC)', 'path'];
  const right = new Set([2, 3, 4, 5, 6, 7]);
  const n = (v: number | null): string => (v === null ? '' : formatNumber(v));
  const lines = files.map((f) => [
    f.state + (f.attempts > 1 ? ` (${f.attempts})` : ''), f.file_id ?? '',
    n(f.rows), n(f.rows_per_second), n(f.parse_errors), n(f.vin_unknown_pct), n(f.lot_unknown_pct), n(f.seconds),
    f.finished_at ? f.finished_at.toISOString().slice(0, 19).replace('T', ' ') : '',
    f.path + (f.reason ? `\n      ${f.reason}` : ''),
  ]);
  const last = header.length - 1;
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (i < last ? l[i]!.length : 0))));
  const fmt = (cells: string[]): string => cells.map((c, i) => (i === last ? c : right.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ');
  out.push(fmt(header), ...lines.map(fmt));
  if (files.length === 0) out.push('(no files yet: none queued by the daemon or ingested with `vinops-etl ingest`)');
  return `${out.join('\n')}\n`;
}
