import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { openArchiveTarget } from './archiveTarget.js';

/** An archived object (`….csv.gz`, a local path or `s3://bucket/key`) rather than a CSV. */
export function isArchivedObject(spec: string): boolean {
  return spec.startsWith('s3://') || /\.csv\.gz$/i.test(spec);
}

/**
 * Decompresses an archived object into a private temporary file for `ingest` (which reads a file
 * twice: the header, then the whole). `recordAs` is the name the file is registered under (the
 * object's path or URL, from which its window follows); remove() deletes the copy.
 */
export async function restoreToTemp(spec: string, s3: { endpoint?: string | undefined; region?: string | undefined }, signal?: AbortSignal): Promise<{ path: string; recordAs: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'vinops-restore-'));
  const path = join(dir, 'restored.csv');
  try {
    let body;
    if (spec.startsWith('s3://')) {
      const u = new URL(spec);
      body = (await openArchiveTarget(`s3://${u.hostname}`, s3).get(u.pathname.replace(/^\/+/, ''), signal)).body;
    } else {
      body = createReadStream(spec);
    }
    await pipeline(body, createGunzip(), createWriteStream(path, { mode: 0o600 }), signal ? { signal } : {});
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return { path, recordAs: spec.startsWith('s3://') ? spec : resolve(spec), remove: () => rm(dir, { recursive: true, force: true }) };
}
