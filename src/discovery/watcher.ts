import { watch, type FSWatcher } from 'chokidar';
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import type pg from 'pg';
import type { Logger } from 'pino';
import { isFeedPath, listFeedPaths, statSettled, type FoundFile } from './rawTree.js';
import { enqueueFile, listQueuedVersions } from '../queue/fileQueue.js';

export interface DiscoveryOptions {
  readonly rawDir: string;
  readonly settleMs: number;
  readonly rescanIntervalMs: number;
}

/**
 * Finds complete feed files and records them in the queue, the database being the checkpoint.
 * Three sources, one rule:
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
  /** Why the root cannot be read (missing, not a directory, no permission); undefined while it can. */
  private rootProblem: string | undefined;
  /** When the missing root was last logged (the error is repeated every ROOT_REMINDER_MS while it lasts). */
  private rootLoggedAt = 0;
  private readonly options: DiscoveryOptions;
  /** Called after a new version was queued (wakes idle workers). */
  onQueued: () => void = () => {};

  constructor(private readonly pool: pg.Pool, private readonly log: Logger, options: DiscoveryOptions) {
    // The queue stores paths as found under the root: absolute whatever the working directory.
    this.options = { ...options, rawDir: resolve(options.rawDir) };
  }

  /** True while the tree is watched and its root can be read (readiness). */
  get watching(): boolean {
    return this.running && this.watcher !== undefined && this.rootProblem === undefined;
  }

  /** Why the raw directory cannot be watched, in words (readiness, status page); undefined while it can. */
  get problem(): string | undefined {
    return this.rootProblem === undefined ? undefined : describeRootProblem(this.options.rawDir, this.rootProblem);
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    this.watchTree();
    await this.rescanNow();
    this.rescanTimer = setInterval(() => { void this.rescanNow(); }, this.options.rescanIntervalMs);
    this.rescanTimer.unref();
  }

  private watchTree(): void {
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
      if (!(await this.rootReadable())) return;
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

  /**
   * Whether the root can be listed. A root that is missing (deleted, a mount not there) or unreadable
   * is logged once and makes the daemon not ready; when it is back, it is watched anew (a watcher on
   * a vanished directory may never see its successor) and this scan goes on.
   */
  private async rootReadable(): Promise<boolean> {
    const { rawDir } = this.options;
    let problem: string | undefined;
    try {
      if (!(await stat(rawDir)).isDirectory()) problem = 'not a directory';
      else await access(rawDir, constants.R_OK | constants.X_OK);
    } catch (err) {
      problem = (err as NodeJS.ErrnoException).code ?? String(err);
    }
    if (problem !== undefined) {
      // A typo in rawDir looks exactly like this: repeated while it lasts, so it is not missed in the log.
      if (this.rootProblem === undefined || Date.now() - this.rootLoggedAt >= ROOT_REMINDER_MS) {
        this.log.error({ raw_dir: rawDir, problem, reason: describeRootProblem(rawDir, problem) },
          'raw directory cannot be read: no file is found until it is back (looked at again at every re-scan; check rawDir / VINOPS_RAW_DIR)');
        this.rootLoggedAt = Date.now();
      }
      this.rootProblem = problem;
      return false;
    }
    if (this.rootProblem !== undefined) {
      this.rootProblem = undefined;
      this.log.info({ raw_dir: rawDir }, 'raw directory back: watching it again');
      const old = this.watcher;
      if (this.running) this.watchTree();
      await old?.close();
    }
    return true;
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

/** While the raw directory cannot be read, its error is logged again this often. */
const ROOT_REMINDER_MS = 5 * 60_000;

function describeRootProblem(rawDir: string, problem: string): string {
  const what = ({
    ENOENT: 'does not exist', EACCES: 'cannot be read (permission denied)', EPERM: 'cannot be read (operation not permitted)',
    ENOTDIR: 'does not exist (a part of its path is a file)', 'not a directory': 'is not a directory',
  } as Record<string, string>)[problem] ?? `cannot be read (${problem})`;
  return `raw directory ${rawDir} ${what}`;
}
