import type pg from 'pg';
import type { Logger } from 'pino';
import { fetchWindow, type FetchResult, type FetchSource } from './fetchWindow.js';
import { sleep } from '../abortable.js';

export interface FetcherOptions {
  readonly rawDir: string;
  readonly source: FetchSource;
  /** Fetch every this many ms, aligned to multiples of it (the quarter hours for 15 minutes). */
  readonly intervalMs: number;
  /** Plus a random delay up to this, so that daemons and the feed's own clock spread out. */
  readonly delayMaxMs: number;
  readonly now?: () => Date;
}

/**
 * The daemon's fetch schedule: one fetchWindow now, then one per interval. A window another daemon
 * holds is skipped by the ledger. start() and stop() are idempotent; stop() aborts a download in
 * flight (it leaves no file behind) and waits for it.
 */
export class Fetcher {
  onResult: (r: FetchResult) => void = () => undefined;
  onError: (err: unknown) => void = () => undefined;
  private readonly stopping = new AbortController();
  private loop: Promise<void> | undefined;

  constructor(private readonly pool: pg.Pool, private readonly log: Logger, private readonly options: FetcherOptions) {}

  start(): void {
    this.loop ??= this.run();
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    await this.loop;
  }

  private async run(): Promise<void> {
    const now = this.options.now ?? (() => new Date());
    const signal = this.stopping.signal;
    while (!signal.aborted) {
      try {
        const r = await fetchWindow({ pool: this.pool, log: this.log, rawDir: this.options.rawDir, source: this.options.source, signal, now });
        if (r.outcome !== 'skipped') this.onResult(r);
      } catch (err) {
        // The ledger could not be read or written (database down): the next window tries again.
        this.log.error({ err }, 'fetch could not run');
        this.onError(err);
      }
      await sleep(untilNext(now().getTime(), this.options.intervalMs) + Math.random() * this.options.delayMaxMs, signal);
    }
  }
}

/** ms from `t` to the next multiple of `interval` since the epoch. */
export function untilNext(t: number, interval: number): number {
  return interval - (t % interval);
}
