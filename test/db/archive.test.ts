import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openArchiveTarget } from '../../src/archive/archiveTarget.js';
import { archiveFile, verifyArchive } from '../../src/archive/archiveFile.js';
import { Pruner, runRetention } from '../../src/archive/pruner.js';
import { ingestFile } from '../../src/ingest/ingestFile.js';
import { Metrics } from '../../src/observe/metrics.js';
import { DaemonStatus } from '../../src/observe/health.js';
import { generateFeed } from '../../src/sample/feedGenerator.js';
import { createTestDatabase, silentLog, type TestDatabase } from '../helpers/testDatabase.js';
import { startCuttingProxy, startS3 } from '../helpers/s3.js';
import { waitFor } from '../helpers/wait.js';

const CLI = new URL('../../dist/cli/main.js', import.meta.url).pathname;
const BUCKET = 'vinops-archive';

let dir: string;
let s3: Awaited<ReturnType<typeof startS3>>;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vinops-archive-'));
  s3 = await startS3(BUCKET);
});
afterAll(async () => {
  await s3.close();
  await rm(dir, { recursive: true, force: true });
});

/** A raw tree with two old windows (ingested), an old file the database does not hold, and a recent one (ingested). */
async function rawTree(db: TestDatabase, name: string, rows = 500): Promise<{ root: string; files: Record<string, Buffer> }> {
  const root = join(dir, name);
  const recent = new Date(Date.now() - 3_600_000);
  const p = (d: Date): string => `${d.toISOString().slice(0, 10).replaceAll('-', '/')}/${d.toISOString().slice(11, 13)}${d.toISOString().slice(14, 16)}.csv`;
  const recentPath = p(new Date(Math.floor(recent.getTime() / 900_000) * 900_000));
  const files: Record<string, Buffer> = {
    '2025/10/17/1200.csv': Buffer.concat([...generateFeed({ rows, seed: 91 })]),
    '2025/10/17/1215.csv': Buffer.concat([...generateFeed({ rows, seed: 91, generation: 1 })]),
    '2025/10/17/1230.csv': Buffer.concat([...generateFeed({ rows, seed: 91, generation: 2 })]), // never ingested
    [recentPath]: Buffer.concat([...generateFeed({ rows, seed: 91, generation: 3 })]),
  };
  for (const [rel, bytes] of Object.entries(files)) {
    await mkdir(dirname(join(root, rel)), { recursive: true });
    await writeFile(join(root, rel), bytes);
    if (rel === '2025/10/17/1230.csv') continue;
    const r = await ingestFile({ pool: db.pool, log: silentLog, maxRecordBytes: 1 << 20 }, join(root, rel));
    expect(r.outcome).toBe('ingested');
  }
  return { root, files };
}

async function cli(db: TestDatabase, args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH, DATABASE_URL: db.url, VINOPS_LOG_LEVEL: 'warn', ...env } },
      (err, stdout, stderr) => resolve({ code: err === null ? 0 : Number((err as { code?: number }).code), stdout, stderr }));
  });
}

describe('archive and raw-tree retention', () => {
  it('to a directory: a dry run changes nothing; then old stored files are archived, verified and deleted, the rest kept; a second run does nothing', async () => {
    const db = await createTestDatabase();
    try {
      const { root, files } = await rawTree(db, 'tree-dir');
      const archive = join(dir, 'archive-dir');
      const env = { VINOPS_RAW_DIR: root, VINOPS_RAW_RETENTION_DAYS: '1', VINOPS_ARCHIVE_URL: `file://${archive}` };

      const dry = await cli(db, ['prune', '--dry-run', '--json'], env);
      expect(dry.code).toBe(0);
      expect(JSON.parse(dry.stdout)).toMatchObject({ dry_run: true, archived_files: 2, deleted_files: 2, errors: 0 });
      for (const rel of Object.keys(files)) expect(existsSync(join(root, rel))).toBe(true);
      expect(existsSync(archive)).toBe(false);

      const real = await cli(db, ['prune', '--json'], env);
      expect(real.code).toBe(0);
      const report = JSON.parse(real.stdout);
      expect(report).toMatchObject({ dry_run: false, archived_files: 2, deleted_files: 2, errors: 0 });
      expect(report.kept).toEqual([{ path: join(root, '2025/10/17/1230.csv'), reason: 'not stored in the database' }]);
      for (const [rel, bytes] of Object.entries(files)) {
        const old = rel.startsWith('2025/10/17/12') && rel !== '2025/10/17/1230.csv';
        expect([rel, existsSync(join(root, rel))]).toEqual([rel, !old]);
        if (!old) continue;
        const object = await readFile(join(archive, `${rel}.gz`));
        expect(gunzipSync(object).equals(bytes)).toBe(true);
        expect(JSON.parse(await readFile(join(archive, `${rel}.gz.json`), 'utf8'))).toMatchObject({ bytes: bytes.length });
      }
      const { rows } = await db.pool.query(`SELECT object_key, bytes::int, verified_at IS NOT NULL AS verified FROM raw.archives ORDER BY object_key`);
      expect(rows).toEqual([
        { object_key: '2025/10/17/1200.csv.gz', bytes: files['2025/10/17/1200.csv']!.length, verified: true },
        { object_key: '2025/10/17/1215.csv.gz', bytes: files['2025/10/17/1215.csv']!.length, verified: true },
      ]);
      const status = JSON.parse((await cli(db, ['status', '--json'], env)).stdout);
      expect(status.archives).toMatchObject([{ target: `file://${archive}`, files: 2 }]);
      expect((await cli(db, ['status'], env)).stdout).toMatch(new RegExp(`^archive file://${archive}: 2 files \\(.*\\), last verified \\d{4}-`, 'm'));
      const again = await cli(db, ['prune', '--json'], env);
      expect(JSON.parse(again.stdout)).toMatchObject({ archived_files: 0, deleted_files: 0, errors: 0 });

      // A local archived object comes back by ingest: the same bytes, already stored.
      const back = await cli(db, ['ingest', '--json', join(archive, '2025/10/17/1200.csv.gz')], env);
      expect(JSON.parse(back.stdout)).toMatchObject({ outcome: 'duplicate' });

      // A file gone from the database (its own retention) but archived: the archive vouches, it goes.
      await writeFile(join(root, '2025/10/17/1200.csv'), files['2025/10/17/1200.csv']!);
      await db.pool.query(`DELETE FROM raw.csv_files WHERE path LIKE '%/2025/10/17/1200.csv'`);
      expect(JSON.parse((await cli(db, ['prune', '--json'], env)).stdout)).toMatchObject({ deleted_files: 1, errors: 0 });
      expect(existsSync(join(root, '2025/10/17/1200.csv'))).toBe(false);
    } finally {
      await db.drop();
    }
  });

  it('to S3 (a real S3-compatible server): objects with the sha256 as metadata; restored by ingest s3://… into another database, the same rows', async () => {
    const db = await createTestDatabase();
    const other = await createTestDatabase();
    try {
      const { root, files } = await rawTree(db, 'tree-s3');
      const env = { VINOPS_RAW_DIR: root, VINOPS_RAW_RETENTION_DAYS: '1', VINOPS_ARCHIVE_URL: `s3://${BUCKET}/copart`, VINOPS_ARCHIVE_ENDPOINT: s3.endpoint,
        AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' };
      const r = await cli(db, ['prune', '--json'], env);
      expect(r.stderr).toBe('');
      expect(JSON.parse(r.stdout)).toMatchObject({ archived_files: 2, deleted_files: 2, errors: 0 });
      const client = new S3Client({ endpoint: s3.endpoint, forcePathStyle: true, region: 'auto' });
      const listed = await client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'copart/' }));
      expect((listed.Contents ?? []).map((o) => o.Key).sort()).toEqual(['copart/2025/10/17/1200.csv.gz', 'copart/2025/10/17/1215.csv.gz']);
      const target = openArchiveTarget(`s3://${BUCKET}/copart`, { endpoint: s3.endpoint });
      const { metadata } = await target.get('2025/10/17/1215.csv.gz');
      const { rows: [f] } = await db.pool.query(`SELECT sha256 FROM raw.csv_files WHERE path LIKE '%/1215.csv'`);
      expect(metadata).toEqual({ sha256: f.sha256, bytes: files['2025/10/17/1215.csv']!.length });

      const restored = await cli(other, ['ingest', '--json', `s3://${BUCKET}/copart/2025/10/17/1200.csv.gz`], env);
      expect(restored.stderr).toBe('');
      const out = JSON.parse(restored.stdout);
      expect(out).toMatchObject({ outcome: 'ingested', path: `s3://${BUCKET}/copart/2025/10/17/1200.csv.gz` });
      const rowsOf = async (d: TestDatabase, like: string): Promise<unknown[]> =>
        (await d.pool.query(`SELECT r.row_no, r.payload_jsonb FROM raw.rows r JOIN raw.csv_files f USING (file_id) WHERE f.path LIKE $1 ORDER BY r.row_no`, [like])).rows;
      expect(await rowsOf(other, '%/1200.csv.gz')).toEqual(await rowsOf(db, '%/1200.csv'));
      const { rows: [w] } = await other.pool.query(`SELECT window_start FROM raw.csv_files`);
      expect(w.window_start.toISOString()).toBe('2025-10-17T12:00:00.000Z');
    } finally {
      await db.drop();
      await other.drop();
    }
  });

  it('an upload cut half-way: nothing deleted, no ledger row; the next run (with the server reachable) archives it', async () => {
    const db = await createTestDatabase();
    const proxy = await startCuttingProxy(s3.port, 256 * 1024);
    try {
      const { root } = await rawTree(db, 'tree-cut', 8000); // ~5 MB per file, ~600 KB gzip
      const settings = (endpoint: string) => ({ rawDir: root, rawRetentionDays: 1, target: openArchiveTarget(`s3://${BUCKET}/cut`, { endpoint }) });
      const cut = await runRetention(db.pool, silentLog, settings(proxy.endpoint), { dryRun: false });
      expect(cut).toMatchObject({ archivedFiles: 0, deletedFiles: 0, errors: 2 });
      expect(cut!.kept.filter((k) => k.reason.startsWith('failed: ')).length).toBe(2);
      expect(existsSync(join(root, '2025/10/17/1200.csv'))).toBe(true);
      expect(existsSync(join(root, '2025/10/17/1215.csv'))).toBe(true);
      expect((await db.pool.query('SELECT count(*)::int AS n FROM raw.archives')).rows[0].n).toBe(0);
      // s3rver keeps what a cut single-part upload sent (S3 itself would refuse the short body): such an
      // object is in no ledger row, so nothing counts it as archived, and the next run overwrites it.

      const ok = await runRetention(db.pool, silentLog, settings(s3.endpoint), { dryRun: false });
      expect(ok).toMatchObject({ archivedFiles: 2, deletedFiles: 2, errors: 0 });
      const { rows } = await db.pool.query('SELECT object_key, bytes, stored_bytes FROM raw.archives ORDER BY 1');
      expect(rows.map((r) => r.object_key)).toEqual(['2025/10/17/1200.csv.gz', '2025/10/17/1215.csv.gz']);
    } finally {
      await proxy.close();
      await db.drop();
    }
  });

  it('an export failing half-way is an error of that file, not of the process, on either target; a file flagged not exportable is not archived', async () => {
    const db = await createTestDatabase();
    try {
      const { root } = await rawTree(db, 'tree-fail', 3000);
      const { rows: [f] } = await db.pool.query(`SELECT file_id FROM raw.csv_files WHERE path LIKE '%/1200.csv'`);
      // The database no longer gives the bytes back (a stored header changed): export fails at its end.
      await db.pool.query(`UPDATE raw.csv_files SET header_bytes = header_bytes || '\\x20'::bytea WHERE file_id = $1`, [f.file_id]);
      for (const target of [openArchiveTarget(`file://${join(dir, 'archive-fail')}`), openArchiveTarget(`s3://${BUCKET}/fail`, { endpoint: s3.endpoint })]) {
        await expect(archiveFile(db.pool, target, f.file_id)).rejects.toThrow(/not the original's/);
      }
      expect((await db.pool.query('SELECT count(*)::int AS n FROM raw.archives')).rows[0].n).toBe(0);
      await db.pool.query(`UPDATE raw.csv_files SET export_exact = false, export_note = 'test' WHERE file_id = $1`, [f.file_id]);
      await expect(archiveFile(db.pool, openArchiveTarget(`file://${join(dir, 'archive-fail')}`), f.file_id)).rejects.toThrow(/cannot be archived/);
      void root;
    } finally {
      await db.drop();
    }
  });

  it('two stored files of one window get two objects: neither overwrites the other', async () => {
    const db = await createTestDatabase();
    try {
      const ids: string[] = [];
      for (const [i, seed] of [[0, 96], [1, 97]] as const) {
        const path = join(dir, `window-${i}`, '2025/10/17/1200.csv');
        await mkdir(dirname(path), { recursive: true });
        await writeFile(path, Buffer.concat([...generateFeed({ rows: 300, seed })]));
        ids.push((await ingestFile({ pool: db.pool, log: silentLog, maxRecordBytes: 1 << 20 }, path)).fileId!);
      }
      const target = openArchiveTarget(`file://${join(dir, 'archive-window')}`);
      const keys = [];
      for (const id of ids) keys.push((await archiveFile(db.pool, target, id)).key);
      expect(keys[0]).toBe('2025/10/17/1200.csv.gz');
      expect(keys[1]).toMatch(/^2025\/10\/17\/1200\.[0-9a-f]{16}\.csv\.gz$/);
      const { rows } = await db.pool.query('SELECT object_key, sha256, bytes::int FROM raw.archives ORDER BY archived_at');
      for (const r of rows) await verifyArchive(target, r.object_key, r.sha256, r.bytes);
    } finally {
      await db.drop();
    }
  });

  it('the daemon\'s schedule reports each run to the metrics', async () => {
    const db = await createTestDatabase();
    try {
      const { root } = await rawTree(db, 'tree-metrics');
      const metrics = new Metrics(new DaemonStatus(silentLog), { defaultMetrics: false });
      const pruner = new Pruner(db.pool, silentLog, { rawDir: root, rawRetentionDays: 1, target: undefined }, 3_600_000, 10);
      let runs = 0;
      pruner.onReport = (r) => { runs++; metrics.recordPrune(r); };
      pruner.start();
      await waitFor('a retention run', async () => runs > 0, 30_000);
      await pruner.stop();
      const text = (await metrics.scrape()).body;
      expect(text).toMatch(/^vinops_etl_pruned_files_total\{where="raw_tree"\} 2$/m);
      expect(text).toMatch(/^vinops_etl_prune_errors_total 0$/m);
      expect(text).toMatch(/^vinops_etl_last_prune_success_timestamp_seconds [1-9]/m);
    } finally {
      await db.drop();
    }
  });
});
