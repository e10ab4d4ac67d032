import { createHash } from 'node:crypto';
import { PassThrough, pipeline as pipe, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import type pg from 'pg';
import type { ArchiveTarget } from './archiveTarget.js';
import { exportFile } from './exportFile.js';

export interface Archived {
  readonly sha256: string;
  readonly key: string;
  readonly bytes: number;
  readonly storedBytes: number;
  /** false: the ledger already had it, nothing was written. */
  readonly written: boolean;
}

/** The object key of a file: its window's `YYYY/MM/DD/HHmm.csv.gz`, or `unplaced/<sha256>.csv.gz` without one. */
export function archiveKey(windowStart: Date | null, sha256: string): string {
  if (windowStart === null) return `unplaced/${sha256}.csv.gz`;
  const iso = windowStart.toISOString(); // YYYY-MM-DDTHH:mm
  return `${iso.slice(0, 4)}/${iso.slice(5, 7)}/${iso.slice(8, 10)}/${iso.slice(11, 13)}${iso.slice(14, 16)}.csv.gz`;
}

/** The verified archive of a stored file on this target, if the ledger has one. */
export async function findArchive(db: pg.Pool | pg.ClientBase, target: string, sha256: string): Promise<{ key: string } | undefined> {
  const { rows } = await db.query<{ object_key: string }>('SELECT object_key FROM raw.archives WHERE target = $1 AND sha256 = $2', [target, sha256]);
  return rows[0] === undefined ? undefined : { key: rows[0].object_key };
}

/**
 * Writes a stored file to the target as gzip, exported from the database (so the object is the
 * original's bytes, sha256-checked as they are written), reads it back, decompresses and hashes it,
 * and only then records it in raw.archives. Anything failing on the way leaves no ledger row, so
 * nothing local is deleted on its account.
 */
export async function archiveFile(pool: pg.Pool, target: ArchiveTarget, fileId: string, signal?: AbortSignal): Promise<Archived> {
  const { rows: [f] } = await pool.query<{ sha256: string; bytes: string; window_start: Date | null; export_exact: boolean | null }>(
    'SELECT sha256, bytes, window_start, export_exact FROM raw.csv_files WHERE file_id = $1', [fileId]);
  if (f === undefined) throw new Error(`no stored file ${fileId}`);
  if (f.export_exact === false) throw new Error(`file ${fileId} cannot be archived: the database cannot give its bytes back exactly (export_note)`);
  const done = await findArchive(pool, target.url, f.sha256);
  if (done !== undefined) return { sha256: f.sha256, key: done.key, bytes: Number(f.bytes), storedBytes: 0, written: false };
  // Two stored files of one window (a rewritten download) must not share an object: the later gets
  // its sha256 in the name rather than overwriting the other's only copy.
  let key = archiveKey(f.window_start, f.sha256);
  const { rowCount: taken } = await pool.query('SELECT 1 FROM raw.archives WHERE target = $1 AND object_key = $2 AND sha256 <> $3', [target.url, key, f.sha256]);
  if (taken) key = key.replace(/\.csv\.gz$/, `.${f.sha256.slice(0, 16)}.csv.gz`);
  const bytes = Number(f.bytes);

  const raw = new PassThrough({ highWaterMark: 1 << 20 });
  let storedBytes = 0;
  const counter = new Transform({ transform(chunk: Buffer, _e, cb: TransformCallback) { storedBytes += chunk.length; cb(null, chunk); } });
  // pipeline, not pipe(): an export failure (raw destroyed with its error) reaches the upload's body
  // as an error, instead of an uncaught one on raw and a gzip stream that never ends.
  const compressed = pipe(raw, createGzip({ level: 6 }), counter, () => undefined);
  // Either side failing stops the other: a failed upload aborts the export (which would otherwise wait
  // for a drain that never comes), a failed export ends the upload with an error (no object is completed).
  const stop = new AbortController();
  const both = signal ? AbortSignal.any([signal, stop.signal]) : stop.signal;
  const client = await pool.connect();
  try {
    // The first failure is the one to report: the other side's is only the abort it caused.
    let first: unknown;
    const fail = (err: unknown): never => {
      if (!stop.signal.aborted) { first = err; stop.abort(err); }
      throw err;
    };
    const exporting = exportFile(client, fileId, raw, { signal: both }).then(() => { raw.end(); }, (err: unknown) => {
      raw.destroy(err as Error);
      return fail(err);
    });
    const uploading = target.put(key, compressed, { sha256: f.sha256, bytes }, both).catch(fail);
    const results = await Promise.allSettled([exporting, uploading]);
    const failed = results.find((r) => r.status === 'rejected');
    if (failed !== undefined) throw first ?? (failed as PromiseRejectedResult).reason;
  } finally {
    client.release();
  }
  await verifyArchive(target, key, f.sha256, bytes, signal);
  await pool.query(`INSERT INTO raw.archives (sha256, file_id, target, object_key, bytes, stored_bytes, verified_at)
    VALUES ($1, $2, $3, $4, $5, $6, now()) ON CONFLICT (target, sha256) DO NOTHING`, [f.sha256, fileId, target.url, key, bytes, storedBytes]);
  return { sha256: f.sha256, key, bytes, storedBytes, written: true };
}

/** Reads the object back: its metadata and its decompressed bytes must be the original's. */
export async function verifyArchive(target: ArchiveTarget, key: string, sha256: string, bytes: number, signal?: AbortSignal): Promise<void> {
  const { body, metadata } = await target.get(key, signal);
  if (metadata.sha256 !== undefined && metadata.sha256 !== sha256) {
    body.destroy();
    throw new Error(`archive ${target.url} ${key}: its metadata says sha256 ${metadata.sha256}, the file is ${sha256}`);
  }
  const hash = createHash('sha256');
  let n = 0;
  await pipeline(body, createGunzip(), async function* (source: AsyncIterable<Buffer>) {
    for await (const chunk of source) { hash.update(chunk); n += chunk.length; }
    yield* [];
  }, signal ? { signal } : {});
  const got = hash.digest('hex');
  if (got !== sha256 || n !== bytes) throw new Error(`archive ${target.url} ${key}: read back ${n} bytes with sha256 ${got}, expected ${bytes} bytes with ${sha256}`);
}
