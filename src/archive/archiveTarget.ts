import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import type { S3Client } from '@aws-sdk/client-s3';
import { fsyncPath } from '../fsync.js';

/** What an archived object says of the file inside it. */
export interface ArchiveMetadata {
  /** sha256 of the original (uncompressed) file, as raw.csv_files has it. */
  readonly sha256: string;
  readonly bytes: number;
}

/**
 * Where archived files go (docs/retention.md): a local directory or an S3-compatible bucket. put()
 * stores an object whole or not at all (a local file is renamed into place; S3 completes a multipart
 * upload only at the end); get() reads it back for the verification before anything is deleted.
 */
export interface ArchiveTarget {
  /** The target as configured, for the ledger and the logs (no credentials: they come from the AWS chain). */
  readonly url: string;
  put(key: string, body: Readable, metadata: ArchiveMetadata, signal?: AbortSignal): Promise<void>;
  get(key: string, signal?: AbortSignal): Promise<{ body: Readable; metadata: Partial<ArchiveMetadata> }>;
}

export function openArchiveTarget(url: string, s3: { endpoint?: string | undefined; region?: string | undefined } = {}): ArchiveTarget {
  if (url.startsWith('file://')) return new DirectoryTarget(url);
  if (url.startsWith('s3://')) return new S3Target(url, s3);
  throw new Error(`archiveUrl: expected file:///path or s3://bucket/prefix, got ${JSON.stringify(url)}`);
}

/** A directory: `<key>` and its metadata beside it in `<key>.json`. */
class DirectoryTarget implements ArchiveTarget {
  private readonly root: string;
  constructor(readonly url: string) {
    this.root = fileURLToPath(url);
  }

  async put(key: string, body: Readable, metadata: ArchiveMetadata, signal?: AbortSignal): Promise<void> {
    const path = join(this.root, key);
    await mkdir(dirname(path), { recursive: true });
    const part = `${path}.part-${randomBytes(4).toString('hex')}`;
    try {
      await pipeline(body, createWriteStream(part, { mode: 0o640 }), signal ? { signal } : {});
      await writeFile(`${path}.json`, `${JSON.stringify(metadata)}\n`, { mode: 0o640 });
      // On disk before the ledger says archived (and the local copy may go): the data, then the names.
      await fsyncPath(part);
      await fsyncPath(`${path}.json`);
      await rename(part, path);
      await fsyncPath(dirname(path));
    } catch (err) {
      await rm(part, { force: true });
      throw err;
    }
  }

  async get(key: string): Promise<{ body: Readable; metadata: Partial<ArchiveMetadata> }> {
    const path = join(this.root, key);
    const metadata = JSON.parse(await readFile(`${path}.json`, 'utf8').catch(() => '{}')) as Partial<ArchiveMetadata>;
    return { body: createReadStream(path), metadata };
  }
}

/** An S3 bucket (or R2, MinIO, … with an endpoint), the key under the URL's prefix; the sha256 as object metadata. */
class S3Target implements ArchiveTarget {
  private readonly bucket: string;
  private readonly prefix: string;
  private client: Promise<S3Client> | undefined;
  constructor(readonly url: string, private readonly s3: { endpoint?: string | undefined; region?: string | undefined }) {
    const u = new URL(url);
    this.bucket = u.hostname;
    this.prefix = u.pathname.replace(/^\/+/, '').replace(/\/*$/, '');
  }

  /** The SDK is loaded on first use: a daemon that archives nowhere never pays for it. */
  private connect(): Promise<S3Client> {
    // The SDK warns on stderr, outside the JSON log, that its releases after January 2027 need Node
    // 22; the lockfile pins one that runs on 20 (docs/retention.md).
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    this.client ??= import('@aws-sdk/client-s3').then(({ S3Client }) => new S3Client({
      // A stalled connection fails the file (kept, tried at the next pass) instead of hanging the pass.
      requestHandler: { connectionTimeout: 10_000, requestTimeout: 300_000 },
      ...(this.s3.endpoint ? { endpoint: this.s3.endpoint, forcePathStyle: true } : {}),
      ...(this.s3.region ? { region: this.s3.region } : this.s3.endpoint ? { region: 'auto' } : {}),
    }));
    return this.client;
  }

  private keyOf(key: string): string {
    return this.prefix === '' ? key : `${this.prefix}/${key}`;
  }

  async put(key: string, body: Readable, metadata: ArchiveMetadata, signal?: AbortSignal): Promise<void> {
    const { Upload } = await import('@aws-sdk/lib-storage');
    const upload = new Upload({
      client: await this.connect(),
      params: { Bucket: this.bucket, Key: this.keyOf(key), Body: body, ContentType: 'application/gzip',
        Metadata: { sha256: metadata.sha256, bytes: String(metadata.bytes) } },
      // A failed part aborts the multipart upload: no half object is left to be mistaken for one.
      leavePartsOnError: false,
    });
    const abort = (): void => { void upload.abort(); };
    signal?.addEventListener('abort', abort, { once: true });
    if (signal?.aborted) abort(); // aborted while the SDK was loading: the listener came too late
    try {
      await upload.done();
    } finally {
      signal?.removeEventListener('abort', abort);
    }
  }

  async get(key: string, signal?: AbortSignal): Promise<{ body: Readable; metadata: Partial<ArchiveMetadata> }> {
    const { GetObjectCommand } = await import('@aws-sdk/client-s3');
    const r = await (await this.connect()).send(new GetObjectCommand({ Bucket: this.bucket, Key: this.keyOf(key) }), signal ? { abortSignal: signal } : {});
    const m = r.Metadata ?? {};
    return {
      body: r.Body instanceof Readable ? r.Body : Readable.fromWeb(r.Body!.transformToWebStream() as never),
      metadata: { ...(m.sha256 ? { sha256: m.sha256 } : {}), ...(m.bytes ? { bytes: Number(m.bytes) } : {}) },
    };
  }
}
