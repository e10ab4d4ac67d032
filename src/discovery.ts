import { watch, type FSWatcher } from 'chokidar';
import type pg from 'pg';
import type { Logger } from 'pino';
import { isFeedPath, listFeedPaths, statSettled, type FoundFile } from './rawTree.js';
import { enqueueFile, listQueuedVersions } from './sql/fileQueue.js';

export interface DiscoveryOptions {
  readonly rawDir: string;
  readonly settleMs: number;
  readonly rescanIntervalMs: number;
}

/**
 * Finds complete feed files and records them in the queue (Vector's paths provider and
 * fingerprinter, with the database as the checkpoint). Three sources, one rule:
 *   - chokidar events (add/change), each checked once the file has been quiet for settleMs;
 *   - a full scan at start and every rescanIntervalMs (files added while the daemon was down, events
 *     the watcher missed, e.g. in a brand-new day folder);
 *   - rescanNow() (SIGHUP).
 * A file is taken when its mtime is at least settleMs old: a renamed-into-place file is taken at
 * once, a file still being written is not. A version already queued is not queued again.
 */
export class Discovery {
  private watcher: FSWatcher | undefined;
  private rescanTimer: NodeJS.Timeout | undefined;
  private readonly pending = new Map<string, NodeJS.Timeout>();
  private scanning: Promise<void> | undefined;
  private running = false;
  /** Called after a new version was queued (wakes idle workers). */
  onQueued: () => void = () => {};

  constructor(private readonly pool: pg.Pool, private readonly log: Logger, private readonly options: DiscoveryOptions) {}

  get watching(): boolean {
    return this.running && this.watcher !== undefined;
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    const { rawDir } = this.options;
    this.watcher = watch(rawDir, {
      ignoreInitial: true, // the start scan covers what is already there
      persistent: true,
      depth: 4,
      ignored: (path: string, stats?: { isFile(): boolean }) => Boolean(stats?.isFile()) && !isFeedPath(rawDir, path),
    });
    this.watcher.on('add', (path) => this.schedule(path));
    this.watcher.on('change', (path) => this.schedule(path));
    this.watcher.on('error', (err) => this.log.warn({ err }, 'file watcher error (the periodic re-scan still finds files)'));
    await this.rescanNow();
    this.rescanTimer = setInterval(() => { void this.rescanNow(); }, this.options.rescanIntervalMs);
    this.rescanTimer.unref();
  }

  /** Idempotent. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    clearInterval(this.rescanTimer);
    for (const t of this.pending.values()) clearTimeout(t);
    this.pending.clear();
    await this.watcher?.close();
    this.watcher = undefined;
    await this.scanning;
  }

  /** A full pass over the tree; concurrent calls share one pass. Errors are logged, never thrown. */
  rescanNow(): Promise<void> {
    this.scanning ??= this.scan().finally(() => { this.scanning = undefined; });
    return this.scanning;
  }

  private async scan(): Promise<void> {
    try {
      const paths = await listFeedPaths(this.options.rawDir);
      const known = await listQueuedVersions(this.pool, new Date(0));
      let queued = 0;
      for (const path of paths) {
        if (!this.running) return;
        const found = await statSettled(this.options.rawDir, path, this.options.settleMs);
        if (found === undefined) {
          this.schedule(path); // not settled yet (or gone): look again once it has been quiet
          continue;
        }
        if (known.has(`${found.path}|${found.size}|${found.mtimeMs}`)) continue;
        if (await this.enqueue(found)) queued++;
      }
      this.log.debug({ files: paths.length, queued }, 'raw tree scanned');
    } catch (err) {
      this.log.warn({ err }, 'raw tree scan failed; retrying at the next interval');
    }
  }

  /** Checks a path once it has been quiet for settleMs (re-armed by every new event). */
  private schedule(path: string, delay = this.options.settleMs): void {
    if (!this.running || !isFeedPath(this.options.rawDir, path)) return;
    clearTimeout(this.pending.get(path));
    const timer = setTimeout(() => { void this.check(path); }, delay + 50);
    timer.unref();
    this.pending.set(path, timer);
  }

  private async check(path: string): Promise<void> {
    this.pending.delete(path);
    if (!this.running) return;
    try {
      const found = await statSettled(this.options.rawDir, path, this.options.settleMs);
      if (found !== undefined) await this.enqueue(found);
      else this.recheckIfUnsettled(path);
    } catch (err) {
      this.log.warn({ err, path }, 'could not queue a file; the re-scan will try again');
    }
  }

  private recheckIfUnsettled(path: string): void {
    void statSettled(this.options.rawDir, path, 0).then((f) => {
      if (f !== undefined) this.schedule(path, Math.max(0, this.options.settleMs - (Date.now() - f.mtimeMs)));
    });
  }

  private async enqueue(found: FoundFile): Promise<boolean> {
    const isNew = await enqueueFile(this.pool, { path: found.path, size: found.size, mtime: new Date(found.mtimeMs) });
    if (isNew) {
      this.log.info({ path: found.path, bytes: found.size }, 'file queued');
      this.onQueued();
    }
    return isNew;
  }
}
