import { createHash, randomUUID, type Hash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import type { Logger } from 'pino';
import { CsvRecordReader } from './read/csvRecordReader.js';
import { DigestSet } from './encode/digestSet.js';
import { withClient } from '../db/pool.js';
import { withTransaction } from '../db/transaction.js';
import { RejectedFileError, type FileLayout } from '../feed/layout.js';
import { parseHeader, sniffNonCsv } from './read/head.js';
import { RowEncoder } from './encode/rowEncoder.js';
import { recordPayloadUse } from './promote/payloadUse.js';
import { COPY_LOAD_SQL, createLoadTable } from './copy/loadTable.js';
import {
  KnownPayloadMissingError, NO_RECENT_PAYLOADS, completeFileRecord, findFileBySha256, insertParseErrors, listRecentPayloads, LIVE_PAIR, LIVE_SOURCE, promoteRows,
  recordRun, registerFile, type RecentPayloads, type RunRecord,
} from './promote/promoteFile.js';
import { upsertCore, type UpsertCounts } from '../core/upsert.js';
import { TOUCHED_LOTS } from '../core/upsertStatements.js';
import { placeFile, updateLifecycle, type LifecycleCounts } from '../lifecycle/updateLifecycle.js';
import { windowFromPath } from '../feed/paths.js';

/** What the ingest of one file needs. */
export interface IngestContext {
  readonly pool: pg.Pool;
  readonly log: Logger;
  /** Largest record the tolerant parser accepts. */
  readonly maxRecordBytes: number;
  /** Who ran it, for audit.etl_runs.worker. Default host:pid. */
  readonly worker?: string;
  /** The daemon's queue entry being worked on, for audit.etl_runs.queue_id; absent outside the queue. */
  readonly queueId?: string;
}

export interface IngestOptions {
  /** Aborts the load; the transaction rolls back and nothing is written. */
  readonly signal?: AbortSignal;
  /** Called with the progress every progressIntervalMs while the file is in flight (the worker stores it); must not throw. */
  readonly onProgress?: (p: IngestProgress) => void;
  /** How often progress is logged and reported. Default 5000 ms. */
  readonly progressIntervalMs?: number;
  /**
   * The name recorded for the file, when the bytes are read from elsewhere: a file restored from the
   * archive is read from a temporary copy and recorded under its archive URL (its window from that).
   */
  readonly recordAs?: string;
}

/** Where a load is: streaming the file into the load table, promoting it into raw / staging / audit, the core upsert, the commit. */
export type IngestPhase = 'reading' | 'promoting' | 'upserting' | 'lifecycle' | 'committing';

/** A load in flight, as logged every few seconds. */
export interface IngestProgress {
  readonly phase: IngestPhase;
  /** Data rows read so far (parse errors not counted). */
  readonly rows: number;
  readonly parseErrors: number;
  readonly bytesRead: number;
  /** The file's size. */
  readonly bytes: number;
  /** Since the file was opened. */
  readonly seconds: number;
  /** MB (10^6 bytes) per second read, over the reading phase so far. */
  readonly mbPerSecond: number;
}

/** Default of IngestOptions.progressIntervalMs. */
export const PROGRESS_INTERVAL_MS = 5000;

export type IngestOutcome = 'ingested' | 'duplicate' | 'rejected';

/** The summary of one file, as `vinops-etl ingest` prints it. */
export interface IngestResult {
  readonly outcome: IngestOutcome;
  readonly runId: string;
  readonly path: string;
  /** The registered file: new, or the earlier one with the same bytes (duplicate). */
  readonly fileId: string | null;
  readonly sha256: string | null;
  readonly bytes: number;
  readonly dataRows: number;
  readonly parseErrors: number;
  readonly records: number;
  readonly newPayloads: number;
  readonly vinUnknownPct: number | null;
  readonly lotUnknownPct: number | null;
  readonly seconds: number;
  readonly rowsPerSecond: number;
  /** Why it was rejected, or which file it duplicates. */
  readonly reason: string | null;
  /** What the core upsert did (ingested files only). */
  readonly upserts?: UpsertCounts;
  /** What the lifecycle found (ingested files only). */
  readonly lifecycle?: LifecycleCounts;
  /**
   * Where the time went (ingested files only): reading the file into the temp table, the promote
   * into raw / staging / audit, the core upsert, the lifecycle; all inside the one transaction.
   */
  readonly phases?: { readonly readMs: number; readonly promoteMs: number; readonly upsertMs: number; readonly lifecycleMs: number };
}

/** The file changed (size, mtime, ctime or inode) while it was read: nothing was stored; try again later. */
export class FileChangedError extends Error {
  override name = 'FileChangedError';
}

const CHUNK = 1 << 20;
/** Largest previous file whose payload addresses are held in memory for the next load (~24 B each). */
const KNOWN_PAYLOADS_MAX = 1_000_000;
const HEAD_STEP = 64 * 1024;

/**
 * Pairs of files a live load brings up to date at most: a late file and its successor, the files
 * whose partial flag it changes; a backlog (after the lifecycle's migration) catches up over the next files.
 */
const LIVE_MAX_PAIRS = 24;

/** The file's bytes are stored already (raw.csv_files.sha256 is unique): the load rolls back. */
class DuplicateContentError extends Error {
  override name = 'DuplicateContentError';
  constructor(readonly sha256: string, readonly rows: number, readonly records: number) {
    super(`duplicate content ${sha256}`);
  }
}

function lineEnding(reader: CsvRecordReader, layout: FileLayout): 'LF' | 'CRLF' | 'none' | 'mixed' {
  return reader.lfRecords > 0 && reader.crlfRecords > 0 ? 'mixed'
    : reader.crlfRecords > 0 ? 'CRLF' : reader.lfRecords > 0 ? 'LF' : layout.eol;
}

/** What streaming the file into the load table found. */
interface Loaded {
  readonly sha256: string;
  readonly bytesRead: number;
  readonly reader: CsvRecordReader;
  readonly encoder: RowEncoder;
  readonly copiedRows: number;
}

/**
 * Ingests one file: reads it once, the record reader and RowEncoder turning each record into a
 * typed, content-addressed load line (or a parse error) that streams into a temp table with COPY,
 * then promotes it in the same transaction. Either everything of the file commits, or nothing but an
 * audit record does. Throws on failures worth retrying (database, I/O, FileChangedError); returns
 * rejected files.
 */
export async function ingestFile(ctx: IngestContext, givenPath: string, options: IngestOptions = {}): Promise<IngestResult> {
  const started = new Date();
  const t0 = performance.now();
  const runId = randomUUID();
  const worker = ctx.worker ?? `${hostname()}:${process.pid}`;
  const queueId = ctx.queueId ?? null;
  // Stored absolute: `var/raw/…` or `../bad/x.csv` as typed means nothing to a later reader of the registry.
  const readPath = resolve(givenPath);
  const path = options.recordAs ?? readPath;
  const log = ctx.log.child({ path, run_id: runId });
  let handle: FileHandle;
  try {
    handle = await open(readPath, 'r');
  } catch (err) {
    // Gone or unreadable between discovery and ingest: recorded like any other failed attempt.
    await recordFailure(ctx, { runId, path, bytes: null, startedAt: started, worker, queueId }, err, t0);
    throw err;
  }
  const tracker: Tracker = { phase: 'reading', bytesRead: 0, reader: undefined, readMs: undefined };
  let progressTimer: NodeJS.Timeout | undefined;
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw new RejectedFileError('not a regular file');
    progressTimer = setInterval(() => reportProgress(log, tracker, stat.size, t0, options.onProgress), options.progressIntervalMs ?? PROGRESS_INTERVAL_MS);
    progressTimer.unref();
    const headRead = await readHead(handle, stat.size);
    const base = { runId, path, bytes: stat.size, startedAt: started, worker, queueId };
    if (headRead.layout === undefined) {
      return await reject(ctx, base, headRead.rejection ?? 'unreadable header', t0, null);
    }
    const { head, layout } = { head: headRead.head, layout: headRead.layout };

    return await withClient(ctx.pool, log, async (client) => {
      const recent = await listRecentPayloads(client, KNOWN_PAYLOADS_MAX);
      try {
        try {
          return await withTransaction(client, () => loadFile(client, recent));
        } catch (err) {
          if (!(err instanceof KnownPayloadMissingError)) throw err;
          log.warn({ err }, 'payloads of the previous file vanished: loading again without that shortcut');
          return await withTransaction(client, () => loadFile(client, NO_RECENT_PAYLOADS));
        }
      } catch (err) {
        if (!(err instanceof DuplicateContentError)) throw err;
        return await recordDuplicate(client, err);
      }
    });

    /** The steps of one file, inside its transaction: load, check, register, promote, upsert, record. */
    async function loadFile(client: pg.PoolClient, recent: RecentPayloads): Promise<IngestResult> {
      const tRead = performance.now();
      tracker.phase = 'reading';
      tracker.readMs = undefined;
      const known = new DigestSet(recent.hashes);
      const loaded = await load(client, handle, head, layout, ctx.maxRecordBytes, known, tracker, options.signal);
      const readMs = Math.round(performance.now() - tRead);
      tracker.readMs = performance.now() - tRead;
      tracker.phase = 'promoting';
      await assertUnchanged(handle, stat, loaded.bytesRead);
      const { reader, encoder } = loaded;
      if (loaded.copiedRows !== reader.records) {
        throw new Error(`internal check failed: COPY stored ${loaded.copiedRows} records, the reader counted ${reader.records}`);
      }
      const summary = { sha256: loaded.sha256, records: reader.records };
      if (reader.rows === 0) return rejectEmpty(client, loaded);

      const fileId = await registerFile(client, {
        path, sha256: loaded.sha256, bytes: stat.size, rowCount: reader.rows, recordCount: reader.records,
        parseErrorCount: reader.errors, layout, lineEnding: lineEnding(reader, layout), blankLines: reader.blankLines,
        vinEmptyRows: encoder.counts.vinEmptyRows, lotEmptyRows: encoder.counts.lotEmptyRows,
        firstIrregularity: reader.nonStrict ? `line ${reader.nonStrict.lineNo}: ${reader.nonStrict.reason}` : null,
        windowStart: windowFromPath(path), fileMtime: stat.mtime, startedAt: started, readMs,
        headerBytes: head.subarray(0, layout.dataOffset), trailerBytes: reader.trailer(), exportLost: reader.lost ?? null,
      });
      if (fileId === null) throw new DuplicateContentError(loaded.sha256, reader.rows, reader.records);

      const tPromote = performance.now();
      const counts = await promoteRows(client, fileId, layout.idIndex !== -1, encoder.counts.knownRows > 0 ? recent.fileId : null, reader.residuals);
      if (counts.rows !== reader.rows) {
        throw new Error(`internal check failed: ${counts.rows} rows promoted, ${reader.rows} data rows read`);
      }
      await recordPayloadUse(client, fileId, encoder.counts.knownRows > 0 ? recent.fileId : null, () => known.unseen());
      await placeFile(client, fileId);
      const tUpsert = performance.now();
      tracker.phase = 'upserting';
      const upserts = await upsertCore(client, fileId, layout, LIVE_SOURCE);
      const upsertMs = Math.round(performance.now() - tUpsert);
      tracker.phase = 'lifecycle';
      const live = recent.fileId === null || encoder.counts.knownRows === 0 ? undefined : { prevFileId: recent.fileId, removed: known.unseen(), ...LIVE_PAIR };
      const lifecycle = await updateLifecycle(client, fileId, { maxPairs: LIVE_MAX_PAIRS, touched: TOUCHED_LOTS, ...(live ? { live } : {}) });
      tracker.phase = 'committing';
      await recordRun(client, runRecord(base, { outcome: 'ingested', reason: null, fileId, sha256: loaded.sha256, dataRows: counts.rows, parseErrors: reader.errors }, t0));
      // The reader counted them: a file without any does not scan the load table for none.
      const parseErrors = reader.errors === 0 ? 0 : await insertParseErrors(client, runId, fileId, path);
      const promoteMs = Math.round(performance.now() - tPromote);
      const durationMs = Math.round(performance.now() - t0);
      await completeFileRecord(client, fileId, runId, promoteMs, durationMs, new Date(started.getTime() + durationMs));
      const vin = pct(encoder.counts.vinEmptyRows, counts.rows);
      const lot = pct(encoder.counts.lotEmptyRows, counts.rows);
      const out = { ...result(base, 'ingested', { ...summary, fileId, dataRows: counts.rows, parseErrors, newPayloads: counts.newPayloads, vin, lot, reason: null }, t0), upserts,
        lifecycle, phases: { readMs, promoteMs: promoteMs - upsertMs - lifecycle.ms, upsertMs, lifecycleMs: lifecycle.ms } };
      log.info({ file_id: fileId, sha256: loaded.sha256, rows: counts.rows, parse_errors: parseErrors, new_payloads: counts.newPayloads,
        lots: upserts.lots, vehicles: upserts.vehicles, vin_conflicts: upserts.vinConflicts, unknown_sale_status: upserts.unknownSaleStatus,
        partial: lifecycle.partial, lot_events: lifecycle.events, outcomes: lifecycle.outcomes, lots_listed: lifecycle.listed,
        read_ms: readMs, promote_ms: promoteMs, upsert_ms: upsertMs, lifecycle_ms: lifecycle.ms, seconds: out.seconds }, 'file ingested');
      if (lifecycle.partial) log.warn({ file_id: fileId, rows: counts.rows }, 'file is not a full snapshot: its absences are not taken as disappearances (docs/lifecycle.md)');
      return out;
    }

    /** Nothing valid to register: the audit trail of why (with any parse errors) commits, nothing else. */
    async function rejectEmpty(client: pg.PoolClient, loaded: Loaded): Promise<IngestResult> {
      const { reader } = loaded;
      const reason = reader.records === 0 ? 'header only: no data rows' : `no valid data rows (${reader.errors} parse errors)`;
      await recordRun(client, runRecord(base, { outcome: 'rejected', reason, fileId: null, sha256: loaded.sha256, dataRows: 0, parseErrors: reader.errors }, t0));
      await insertParseErrors(client, runId, null, path);
      log.warn({ reason }, 'file rejected');
      return result(base, 'rejected', { sha256: loaded.sha256, records: reader.records, fileId: null, dataRows: 0, parseErrors: reader.errors, newPayloads: 0, vin: null, lot: null, reason }, t0);
    }

    /** The same bytes are stored already: the load rolled back; its run is recorded outside it. */
    async function recordDuplicate(client: pg.PoolClient, dup: DuplicateContentError): Promise<IngestResult> {
      const earlier = await findFileBySha256(client, dup.sha256);
      const reason = `same bytes as file ${earlier?.fileId ?? '?'} (${earlier?.path ?? '?'})`;
      await recordRun(client, runRecord(base, { outcome: 'duplicate', reason, fileId: earlier?.fileId ?? null, sha256: dup.sha256, dataRows: 0, parseErrors: 0 }, t0));
      log.info({ duplicate_of: earlier?.fileId, sha256: dup.sha256, rows: dup.rows, seconds: (performance.now() - t0) / 1000 }, 'duplicate content: skipped');
      return result(base, 'duplicate', { sha256: dup.sha256, records: dup.records, fileId: earlier?.fileId ?? null, dataRows: 0, parseErrors: 0, newPayloads: 0, vin: null, lot: null, reason }, t0);
    }
  } catch (err) {
    if (err instanceof RejectedFileError) {
      return reject(ctx, { runId, path, bytes: null, startedAt: started, worker, queueId }, err.message, t0, null);
    }
    await recordFailure(ctx, { runId, path, bytes: null, startedAt: started, worker, queueId }, err, t0);
    throw err;
  } finally {
    clearInterval(progressTimer);
    await handle.close().catch(() => undefined);
  }
}

/** What the progress timer reads; the load updates it per 1 MiB chunk and at each phase, never per row. */
interface Tracker {
  phase: IngestPhase;
  bytesRead: number;
  reader: CsvRecordReader | undefined;
  /** How long the reading phase took, once it is over. */
  readMs: number | undefined;
}

function reportProgress(log: Logger, t: Tracker, bytes: number, t0: number, onProgress: ((p: IngestProgress) => void) | undefined): void {
  const seconds = (performance.now() - t0) / 1000;
  const readSeconds = t.readMs !== undefined ? t.readMs / 1000 : seconds;
  const p: IngestProgress = {
    phase: t.phase, rows: t.reader?.rows ?? 0, parseErrors: t.reader?.errors ?? 0, bytesRead: t.bytesRead, bytes,
    seconds: Math.round(seconds * 10) / 10, mbPerSecond: readSeconds > 0 ? Math.round(t.bytesRead / 1e4 / readSeconds) / 100 : 0,
  };
  log.info({ phase: p.phase, rows: p.rows, parse_errors: p.parseErrors, bytes_read: p.bytesRead, bytes: p.bytes,
    read_pct: bytes > 0 ? Math.round((1000 * p.bytesRead) / bytes) / 10 : 100, mb_per_s: p.mbPerSecond, seconds: p.seconds }, 'ingest progress');
  try {
    onProgress?.(p);
  } catch {
    // Progress is for people watching; it never fails a load.
  }
}

/** Reads the first bytes until the header line is complete; refuses what is not a feed CSV. */
async function readHead(handle: FileHandle, size: number): Promise<{ head: Buffer; layout?: FileLayout; rejection?: string }> {
  let head = Buffer.alloc(0);
  while (true) {
    const want = Math.min(HEAD_STEP, size - head.length);
    if (want > 0) {
      const chunk = Buffer.allocUnsafe(want);
      const { bytesRead } = await handle.read(chunk, 0, want, head.length);
      head = Buffer.concat([head, chunk.subarray(0, bytesRead)]);
    }
    const final = head.length >= size;
    const sniffed = head.length > 0 || final ? sniffNonCsv(head, size) : undefined;
    if (sniffed !== undefined) return { head, rejection: sniffed };
    try {
      const layout = parseHeader(head, final);
      if (layout !== undefined) return { head, layout };
    } catch (err) {
      if (err instanceof RejectedFileError) return { head, rejection: err.message };
      throw err;
    }
    if (final) return { head, rejection: 'no header line' };
  }
}

/**
 * Streams the file (from its first byte: the hash covers all of it) through the record reader and
 * the encoder into COPY. `head` holds the bytes already read for the header.
 */
async function load(client: pg.ClientBase, handle: FileHandle, head: Buffer, layout: FileLayout, maxRecordBytes: number,
  known: DigestSet, tracker: Tracker, signal?: AbortSignal): Promise<Loaded> {
  const hash = createHash('sha256').update(head);
  const reader = new CsvRecordReader({ columns: layout.columns, firstLineNo: 2, eol: layout.eol, maxRecordBytes, checkEncoding: true });
  let bytesRead = head.length;
  tracker.reader = reader;
  tracker.bytesRead = bytesRead;
  const encode = new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      reader.push(chunk, encoder);
      cb();
    },
    flush(cb: TransformCallback) {
      reader.end(encoder);
      encoder.flush();
      cb();
    },
  });
  const encoder = new RowEncoder(layout, (out) => encode.push(out), known);
  async function* source(): AsyncGenerator<Buffer> {
    const data = head.subarray(layout.dataOffset);
    if (data.length > 0) yield data;
    for await (const chunk of handle.createReadStream({ start: head.length, highWaterMark: CHUNK, autoClose: false })) {
      hash.update(chunk as Buffer);
      bytesRead += (chunk as Buffer).length;
      tracker.bytesRead = bytesRead;
      yield chunk as Buffer;
    }
  }
  await createLoadTable(client);
  const copy = client.query(copyFrom(COPY_LOAD_SQL));
  await pipeline(source, encode, copy, signal ? { signal } : {});
  return { sha256: hash.digest('hex'), bytesRead, reader, encoder, copiedRows: copy.rowCount };
}

/**
 * The bytes read must be the file as it was when opened: same size, mtime and inode, and the same
 * ctime unless a link to it came or went. ctime catches a rewrite in place that kept the size and
 * put the old mtime back (`cp -p`, `touch -r`, rsync --inplace): only the kernel sets it. A file
 * deleted or renamed over while read also moves its ctime, but then its link count changes and the
 * open handle still reads the bytes it opened, whole.
 */
async function assertUnchanged(handle: FileHandle, before: { size: number; mtimeMs: number; ctimeMs: number; ino: number; nlink: number },
  bytesRead: number): Promise<void> {
  const after = await handle.stat();
  const rewritten = after.ctimeMs !== before.ctimeMs && after.nlink === before.nlink;
  if (after.size !== before.size || after.mtimeMs !== before.mtimeMs || after.ino !== before.ino || bytesRead !== before.size || rewritten) {
    throw new FileChangedError(`file changed while being read (size ${before.size} -> ${after.size}, read ${bytesRead} bytes`
      + `${after.mtimeMs !== before.mtimeMs ? ', mtime changed' : ''}${rewritten ? ', ctime changed' : ''}): nothing stored, will retry`);
  }
}

interface RunBase {
  readonly runId: string;
  readonly path: string;
  readonly bytes: number | null;
  readonly startedAt: Date;
  readonly worker: string;
  readonly queueId: string | null;
}

function runRecord(base: RunBase, r: Pick<RunRecord, 'outcome' | 'reason' | 'fileId' | 'sha256' | 'dataRows' | 'parseErrors'>, t0: number): RunRecord {
  const durationMs = Math.round(performance.now() - t0);
  // started_at is this process's clock; the finish is taken from the same one, so the two differ by the duration.
  return { ...base, ...r, durationMs, finishedAt: new Date(base.startedAt.getTime() + durationMs) };
}

async function reject(ctx: IngestContext, base: RunBase, reason: string, t0: number, sha256: string | null): Promise<IngestResult> {
  await withClient(ctx.pool, ctx.log, (client) =>
    recordRun(client, runRecord(base, { outcome: 'rejected', reason, fileId: null, sha256, dataRows: 0, parseErrors: 0 }, t0)));
  ctx.log.warn({ path: base.path, run_id: base.runId, reason }, 'file rejected');
  return result(base, 'rejected', { sha256, records: 0, fileId: null, dataRows: 0, parseErrors: 0, newPayloads: 0, vin: null, lot: null, reason }, t0);
}

/** Best effort: a failed attempt is visible in audit.etl_runs when the database is reachable. */
async function recordFailure(ctx: IngestContext, base: RunBase, err: unknown, t0: number): Promise<void> {
  const reason = err instanceof Error ? err.message : String(err);
  await withClient(ctx.pool, ctx.log, (client) =>
    recordRun(client, runRecord(base, { outcome: 'failed', reason, fileId: null, sha256: null, dataRows: null, parseErrors: null }, t0)),
  ).catch(() => undefined);
}

function result(base: RunBase, outcome: IngestOutcome,
  r: { sha256: string | null; records: number; fileId: string | null; dataRows: number; parseErrors: number; newPayloads: number; vin: number | null; lot: number | null; reason: string | null },
  t0: number): IngestResult {
  const seconds = (performance.now() - t0) / 1000;
  return {
    outcome, runId: base.runId, path: base.path, fileId: r.fileId, sha256: r.sha256, bytes: base.bytes ?? 0,
    dataRows: r.dataRows, parseErrors: r.parseErrors, records: r.records, newPayloads: r.newPayloads,
    vinUnknownPct: r.vin, lotUnknownPct: r.lot,
    seconds: Math.round(seconds * 1000) / 1000,
    rowsPerSecond: seconds > 0 ? Math.round(r.dataRows / seconds) : 0,
    reason: r.reason,
  };
}

function pct(n: number, total: number): number {
  return total === 0 ? 0 : Math.round((10000 * n) / total) / 100;
}
