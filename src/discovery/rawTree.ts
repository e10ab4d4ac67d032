import { readdir, realpath, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';

/**
 * What the raw tree holds: `<root>/YYYY/MM/DD/<name>.csv`. Partial and hidden names (`*.part`,
 * `*.tmp`, dotfiles) are not files of the feed; a directory named `*.csv` is not a file; a symlink
 * is followed only when it stays inside the root.
 */
const DAY_PATH = /^\d{4}[\\/]\d{2}[\\/]\d{2}[\\/][^\\/]+\.csv$/i;

/** True for a path (relative to the root) the daemon takes. */
export function isFeedPath(root: string, path: string): boolean {
  const rel = relative(root, path);
  if (rel.startsWith('..') || rel === '') return false;
  const name = rel.split(/[\\/]/).pop() ?? '';
  if (name.startsWith('.') || /\.(part|tmp)$/i.test(name)) return false;
  return DAY_PATH.test(rel);
}

/** A file version found in the tree. */
export interface FoundFile {
  readonly path: string;
  readonly size: number;
  /** mtime in whole milliseconds (what the queue stores). */
  readonly mtimeMs: number;
}

/**
 * Stats a candidate: undefined when it is gone, not a regular file, outside the root once links are
 * resolved (the file itself or one of its day folders a link leading elsewhere), or not settled yet
 * (modified less than `settleMs` ago: a writer may still be at it).
 */
export async function statSettled(root: string, path: string, settleMs: number, now = Date.now()): Promise<FoundFile | undefined> {
  try {
    const target = await realpath(path);
    const realRoot = await realpath(root);
    if (!target.startsWith(realRoot.endsWith(sep) ? realRoot : realRoot + sep)) return undefined;
    const s = await stat(path);
    if (!s.isFile()) return undefined;
    const mtimeMs = Math.floor(s.mtimeMs);
    if (now - mtimeMs < settleMs) return undefined;
    return { path, size: s.size, mtimeMs };
  } catch {
    return undefined; // vanished between listing and stat
  }
}

/** Every feed path under root (YYYY/MM/DD folders only), oldest name first. Missing root: none. */
export async function listFeedPaths(root: string): Promise<string[]> {
  const out: string[] = [];
  const level = async (dir: string, depth: number): Promise<void> => {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      const p = join(dir, e.name);
      if (depth < 3) {
        if ((e.isDirectory() || e.isSymbolicLink()) && /^\d+$/.test(e.name)) await level(p, depth + 1);
      } else if (isFeedPath(root, p)) {
        out.push(p);
      }
    }
  };
  await level(root, 0);
  return out;
}
