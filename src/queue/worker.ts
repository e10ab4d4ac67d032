import { hostname } from 'node:os';
import type pg from 'pg';
import type { Logger } from 'pino';
import { ingestFile, type IngestProgress, type IngestResult } from '../ingest/ingestFile.js';
import { isRefusedPgError, isRetryablePgError, REFUSED_RETRY_MS } from '../db/errors.js';
import { claimNextFile, completeFile, markFileFailed, releaseClaim, renewClaim, saveProgress, type QueuedFile } from './fileQueue.js';

export interface WorkerOptions {
  readonly id: number;
  readonly claimTimeoutMs: number;
  readonly maxAttempts: number;
  readonly retryBaseMs: number;
  readonly retryMaxMs: number;
  readonly maxRecordBytes: number;
  /** Idle poll when no wake-up comes (other daemons queue files too). */
  readonly pollMs?: number;
  /** How often the file in flight logs and stores its progress (default: ingestFile's). */
  readonly progressIntervalMs?: number;
}

/** First and longest wait, in ms, between claims while the database is unreachable. */
const OUTAGE_BACKOFF_MS = [500, 30_000] as const;

/** Reported once per finished attempt (metrics, logs). */
export type FileOutcome =
  | { readonly kind: 'done'; readonly file: QueuedFile; readonly result: IngestResult }
  | {
    readonly kind: 'failed'; readonly file: QueuedFile; readonly error: Error;
    /** No attempt left: the file stays `failed`. */
    readonly final: boolean;
    /** Stopped by the drain deadline: rolled back and given back to the queue, the attempt not counted. */
    readonly aborted: boolean;
  };

/**
 * Claims files from the queue one at a time and ingests them: each iteration
 * catches its own errors, records them on the file, and goes on. While a file is in flight its claim
 * is renewed; stop() lets it finish until the signal passed to drain() aborts it (rolled back, retried
 * on the next start).
 */
export class Worker {
  readonly name: string;
  private running = false;
  private loop: Promise<void> | undefined;
  private wakeUp: (() => void) | undefined;
  private readonly abort = new AbortController();
  /** Set while the database cannot be reached; cleared by the next successful claim. */
  dbError: Error | undefined;
  onOutcome: (o: FileOutcome) => void = () => {};
  /** The file in flight, and since when (epoch ms). */
  current: QueuedFile | undefined;
  currentSince: number | undefined;
  /** The last progress of the file in flight (status page); stored on its queue entry too (`vinops-etl status`). */
  progress: IngestProgress | undefined;

  constructor(private readonly pool: pg.Pool, private readonly log: Logger, private readonly options: WorkerOptions) {
    this.name = `${hostname()}:${process.pid}:${options.id}`;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  /** Wakes an idle worker (a file was queued). */
  wake(): void {
    this.wakeUp?.();
  }

  /**
   * Stops claiming; the file in flight may finish until `deadline` aborts it. Idempotent; resolves
   * when the loop has ended.
   */
  async stop(deadline?: AbortSignal): Promise<void> {
    this.running = false;
    this.wake();
    if (deadline) {
      if (deadline.aborted) this.abort.abort();
      else deadline.addEventListener('abort', () => this.abort.abort(), { once: true });
    }
    await this.loop;
  }

  private async run(): Promise<void> {
    let backoff = 0;
    while (this.running) {
      let file: QueuedFile | undefined;
      try {
        file = await claimNextFile(this.pool, this.name, this.options.claimTimeoutMs);
        if (this.dbError) this.log.info('database reachable again');
        this.dbError = undefined;
        backoff = 0;
      } catch (err) {
        // A refused login or privilege (password changed, grant revoked) does not pass by itself like an
        // outage: ask rarely. The error is logged whole once, its repeats as one line.
        const refused = isRefusedPgError(err);
        backoff = refused ? Math.min(Math.max(backoff * 2, REFUSED_RETRY_MS.base), REFUSED_RETRY_MS.max)
          : Math.min(Math.max(backoff * 2, OUTAGE_BACKOFF_MS[0]), OUTAGE_BACKOFF_MS[1]);
        const message = refused ? 'cannot claim a file: the database refuses (check DATABASE_URL and the role\'s privileges)'
          : 'cannot claim a file: database unreachable?';
        if (this.dbError?.message !== (err as Error).message) this.log.warn({ err, retry_in_ms: backoff }, message);
        else this.log.warn({ error: (err as Error).message, retry_in_ms: backoff }, message);
        this.dbError = err as Error;
        await this.idle(backoff);
        continue;
      }
      if (file === undefined) {
        await this.idle(this.options.pollMs ?? 2000);
        continue;
      }
      await this.process(file);
    }
  }

  private async process(file: QueuedFile): Promise<void> {
    // ingestFile adds path and run_id to its own lines; the worker's lines carry the path themselves.
    const ingestLog = this.log.child({ queue_id: file.queueId, attempt: file.attempts });
    const log = ingestLog.child({ path: file.path });
    this.current = file;
    this.currentSince = Date.now();
    const heartbeat = setInterval(() => {
      renewClaim(this.pool, file.queueId, this.name).then(
        (held) => { if (!held) log.warn('claim lost (taken over after a timeout); the content hash keeps the file from being stored twice'); },
        (err: unknown) => log.warn({ err }, 'claim heartbeat failed'),
      );
    }, Math.max(1000, Math.floor(this.options.claimTimeoutMs / 4)));
    heartbeat.unref();
    try {
      // One save at a time, the newest report next: saves on different pool connections could land
      // out of order (an older `reading` after `promoting`), and a stalled database must not pile them up.
      let saving = false;
      let next: IngestProgress | undefined;
      const save = (p: IngestProgress): void => {
        saving = true;
        saveProgress(this.pool, file.queueId, this.name, p).catch((err: unknown) => log.debug({ err }, 'could not store the progress'))
          .finally(() => {
            saving = false;
            const queued = next;
            next = undefined;
            if (queued !== undefined) save(queued);
          });
      };
      const onProgress = (p: IngestProgress): void => {
        this.progress = p;
        if (saving) next = p;
        else save(p);
      };
      const result = await ingestFile({ pool: this.pool, log: ingestLog, maxRecordBytes: this.options.maxRecordBytes, worker: this.name, queueId: file.queueId },
        file.path, { signal: this.abort.signal, onProgress, progressIntervalMs: this.options.progressIntervalMs });
      await completeFile(this.pool, file.queueId, this.name, {
        state: result.outcome, fileId: result.fileId, runId: result.runId, error: result.outcome === 'rejected' ? result.reason : null,
      });
      this.onOutcome({ kind: 'done', file, result });
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      const aborted = this.abort.signal.aborted;
      if (isRetryablePgError(error)) this.dbError = error;
      if (aborted) {
        // Stopped before the file was finished: rolled back; the attempt does not count.
        await releaseClaim(this.pool, file.queueId, this.name).catch((e: unknown) => log.warn({ err: e }, 'could not release the claim; it times out'));
        log.warn('stopped before the file was finished: rolled back, it is taken again on the next start');
        this.onOutcome({ kind: 'failed', file, error, final: false, aborted: true });
        return;
      }
      const state = await markFileFailed(this.pool, file.queueId, this.name, error.message, {
        maxAttempts: this.options.maxAttempts, baseMs: this.options.retryBaseMs, maxMs: this.options.retryMaxMs,
      }).catch((e: unknown) => {
        log.warn({ err: e }, 'could not record the failure; the claim times out and the file is retried');
        return undefined;
      });
      log.error({ err: error, state }, state === 'failed' ? 'file failed for good (attempts exhausted)' : 'file failed; will retry');
      this.onOutcome({ kind: 'failed', file, error, final: state === 'failed', aborted: false });
    } finally {
      clearInterval(heartbeat);
      this.current = undefined;
      this.currentSince = undefined;
      this.progress = undefined;
    }
  }

  private idle(ms: number): Promise<void> {
    if (!this.running) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done(): void {
        clearTimeout(t);
        resolve();
      }
      this.wakeUp = () => { this.wakeUp = undefined; done(); };
    });
  }
}
