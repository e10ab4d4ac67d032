import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { pruneDatabase } from '../../src/archive/pruneDatabase.js';
import { loadMigrations } from '../../src/db/migrate.js';
import { catchUpLifecycle } from '../../src/lifecycle/updateLifecycle.js';
import { mkdir } from 'node:fs/promises';
import { ingestFile } from '../../src/ingest/ingestFile.js';
import { generateFeed } from '../../src/sample/feedGenerator.js';
import { createTestDatabase, silentLog, type TestDatabase } from '../helpers/testDatabase.js';

let dir: string;
beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'vinops-dbret-')); });
afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

async function fresh(): Promise<TestDatabase> {
  const db = await createTestDatabase();
  onTestFinished(() => db.drop());
  return db;
}

let n = 0;
async function ingest(db: TestDatabase, bytes: Buffer | string): Promise<string> {
  const path = join(dir, `2025/10/17/${String(n++).padStart(4, '0')}.csv`.replaceAll('/', '-'));
  await writeFile(path, bytes);
  const r = await ingestFile({ pool: db.pool, log: silentLog, maxRecordBytes: 1 << 20 }, path);
  expect(r.outcome).toBe('ingested');
  return r.fileId!;
}

const feed = (generation: number, rows = 1500): Buffer => Buffer.concat([...generateFeed({ rows, seed: 95, generation })]);
/** A file's lines without data row 6 (line 0 is the header). */
const without6 = (l: string[]): string[] => [...l.slice(0, 6), ...l.slice(7)];
/** A file's lines with data row `row`'s values changed (a new payload for it). */
const changed = (l: string[], row: number): string[] => l.map((x, i) => (i === row ? x.replace('","', '","X') : x));

/** References to payloads (or typed rows) that are not there: must always be 0. */
async function dangling(db: TestDatabase): Promise<{ payloads: number; typed: number }> {
  const { rows: [r] } = await db.pool.query(`SELECT
      (SELECT count(*) FROM raw.file_contents c, unnest(c.payload_hashes) h WHERE h IS NOT NULL AND NOT EXISTS (SELECT 1 FROM raw.payloads p WHERE p.hash = h))::int AS payloads,
      (SELECT count(*) FROM raw.file_contents c, unnest(c.payload_hashes) h WHERE h IS NOT NULL AND NOT EXISTS (SELECT 1 FROM staging.copart_typed t WHERE t.payload_hash = h))::int AS typed`);
  return r;
}

/** A digest of each file's raw.rows, in row order. */
async function rowDigests(db: TestDatabase, fileIds: readonly string[]): Promise<Record<string, string>> {
  const { rows } = await db.pool.query(`SELECT file_id, md5(string_agg(row_no || ':' || payload_jsonb::text, E'\\n' ORDER BY row_no)) AS d
    FROM raw.rows WHERE file_id = ANY($1::uuid[]) GROUP BY file_id`, [fileIds]);
  return Object.fromEntries(rows.map((r) => [r.file_id, r.d]));
}

async function ingestedAt(db: TestDatabase, fileId: string): Promise<Date> {
  return (await db.pool.query('SELECT ingested_at FROM raw.csv_files WHERE file_id = $1', [fileId])).rows[0].ingested_at;
}

describe('database retention', () => {
  it('removes old files and exactly the payloads no remaining file refers to; the remaining files\' rows and the business history are unchanged', async () => {
    const db = await fresh();
    const ids: string[] = [];
    for (let g = 0; g < 6; g++) ids.push(await ingest(db, feed(g)));
    const [old, kept] = [ids.slice(0, 3), ids.slice(3)];
    const before = await ingestedAt(db, ids[3]!);
    const expected = (await db.pool.query(`SELECT count(*)::int AS n FROM (
        SELECT DISTINCT h FROM raw.file_contents c, unnest(c.payload_hashes) h WHERE c.file_id = ANY($1::uuid[])
        EXCEPT SELECT DISTINCT h FROM raw.file_contents c, unnest(c.payload_hashes) h WHERE c.file_id = ANY($2::uuid[])) x`, [old, kept])).rows[0].n;
    expect(expected).toBeGreaterThan(0);
    const digests = await rowDigests(db, kept);
    const history = (await db.pool.query(`SELECT (SELECT count(*) FROM public.lots)::int AS lots, (SELECT count(*) FROM public.lot_events)::int AS events,
      (SELECT count(*) FROM public.vehicles)::int AS vehicles, (SELECT md5(string_agg(lot_external_id || coalesce(outcome, ''), ',' ORDER BY lot_external_id)) FROM public.lots) AS lots_digest`)).rows[0];
    const payloadsBefore = (await db.pool.query('SELECT count(*)::int AS n FROM raw.payloads')).rows[0].n;

    const dry = await pruneDatabase(db.pool, silentLog, { before, target: undefined, dryRun: true });
    expect(dry).toMatchObject({ files: 3, payloads: 0 });
    expect((await db.pool.query('SELECT count(*)::int AS n FROM raw.csv_files')).rows[0].n).toBe(6);

    // Small batches of both kinds: the due retirements of one batch of files take several transactions.
    const r = await pruneDatabase(db.pool, silentLog, { before, target: undefined, dryRun: false, batchFiles: 2, batchRetirements: 7 });
    expect(r).toMatchObject({ files: 3, payloads: expected, errors: 0 });
    expect((await db.pool.query('SELECT file_id FROM raw.csv_files ORDER BY ingested_at')).rows.map((x) => x.file_id)).toEqual(kept);
    expect((await db.pool.query('SELECT count(*)::int AS n FROM raw.payloads')).rows[0].n).toBe(payloadsBefore - expected);
    expect(await dangling(db)).toEqual({ payloads: 0, typed: 0 });
    expect(await rowDigests(db, kept)).toEqual(digests);
    expect((await db.pool.query(`SELECT (SELECT count(*) FROM public.lots)::int AS lots, (SELECT count(*) FROM public.lot_events)::int AS events,
      (SELECT count(*) FROM public.vehicles)::int AS vehicles, (SELECT md5(string_agg(lot_external_id || coalesce(outcome, ''), ',' ORDER BY lot_external_id)) FROM public.lots) AS lots_digest`)).rows[0]).toEqual(history);
    const { rows: [a] } = await db.pool.query(`SELECT (SELECT count(*) FROM audit.etl_runs WHERE file_id IS NULL AND outcome = 'ingested')::int AS orphan_runs,
      (SELECT count(*) FROM staging.copart_typed t WHERE NOT EXISTS (SELECT 1 FROM raw.payloads p WHERE p.hash = t.payload_hash))::int AS orphan_typed`);
    expect(a).toEqual({ orphan_runs: 0, orphan_typed: 0 });

    // The newest file is never removed, whatever the cutoff.
    const all = await pruneDatabase(db.pool, silentLog, { before: new Date(Date.now() + 86_400_000), target: undefined, dryRun: false });
    expect(all.files).toBe(2);
    expect((await db.pool.query('SELECT file_id FROM raw.csv_files')).rows.map((x) => x.file_id)).toEqual([ids[5]]);
    expect(await dangling(db)).toEqual({ payloads: 0, typed: 0 });
    expect(await rowDigests(db, [ids[5]!])).toEqual({ [ids[5]!]: digests[ids[5]!] });
  });

  it('a row that leaves the feed and comes back keeps its payload while a file has it', async () => {
    const db = await fresh();
    const lines = feed(0, 400).toString('utf8').split('\n');
    const a = lines.join('\n');
    const b = [...lines.slice(0, 6), ...lines.slice(7)].join('\n');   // row 6 leaves
    const cLines = [...lines];
    cLines[9] = cLines[9]!.replace('","', '","X'); // another row changes, row 6 is back
    const ids = [await ingest(db, a), await ingest(db, b), await ingest(db, cLines.join('\n'))];
    const { rows: [six] } = await db.pool.query(`SELECT payload_hashes[6] AS h FROM raw.file_contents WHERE file_id = $1`, [ids[0]]);
    const digests = await rowDigests(db, [ids[2]!]);
    const r = await pruneDatabase(db.pool, silentLog, { before: await ingestedAt(db, ids[2]!), target: undefined, dryRun: false });
    expect(r.files).toBe(2);
    expect((await db.pool.query('SELECT count(*)::int AS n FROM raw.payloads WHERE hash = $1', [six.h])).rows[0].n).toBe(1);
    expect(await dangling(db)).toEqual({ payloads: 0, typed: 0 });
    expect(await rowDigests(db, [ids[2]!])).toEqual(digests);
  });

  it('a row that comes back and leaves again: its payload stays while a file has it and goes once none does', async () => {
    const db = await fresh();
    const lines = feed(0, 400).toString('utf8').split('\n');
    // a: row 6 in; b: out; c: back; d: out again (another row changes each time, so no file repeats another).
    const files = [lines, without6(changed(lines, 9)), changed(lines, 10), without6(changed(lines, 11)), changed(changed(lines, 12), 6)];
    const ids: string[] = [];
    for (const f of files) ids.push(await ingest(db, f.join('\n')));
    const { rows: [six] } = await db.pool.query(`SELECT payload_hashes[6] AS h FROM raw.file_contents WHERE file_id = $1`, [ids[0]]);
    const stored = async (): Promise<number> => (await db.pool.query('SELECT count(*)::int AS n FROM raw.payloads WHERE hash = $1', [six.h])).rows[0].n;
    const present = async (): Promise<boolean> => (await db.pool.query(`SELECT EXISTS (SELECT 1 FROM raw.file_contents c WHERE $1::uuid = ANY (c.payload_hashes)) AS x`, [six.h])).rows[0].x;

    // Up to c kept: c has it (its first retirement, at a, is undone by its return in c).
    await pruneDatabase(db.pool, silentLog, { before: await ingestedAt(db, ids[2]!), target: undefined, dryRun: false });
    expect([await present(), await stored()]).toEqual([true, 1]);
    // Up to d kept: d lacks it again and no other remaining file has it (e's row 6 differs): it goes.
    await pruneDatabase(db.pool, silentLog, { before: await ingestedAt(db, ids[3]!), target: undefined, dryRun: false });
    expect([await present(), await stored()]).toEqual([false, 0]);
    expect(await dangling(db)).toEqual({ payloads: 0, typed: 0 });
    expect((await db.pool.query('SELECT count(*)::int AS n FROM raw.payload_returns WHERE returned_at < (SELECT min(ingested_at) FROM raw.csv_files)')).rows[0].n).toBe(0);
  });

  it('payloads stored before the bookkeeping began are retired by migration 0019 and then removed like any other', async () => {
    const db = await fresh();
    const ids: string[] = [];
    for (let g = 0; g < 4; g++) ids.push(await ingest(db, feed(g)));
    const hashesOf = async (fileIds: readonly string[]): Promise<Set<string>> => new Set((await db.pool.query(
      'SELECT DISTINCT h::text FROM raw.file_contents c, unnest(c.payload_hashes) h WHERE c.file_id = ANY($1::uuid[]) AND h IS NOT NULL', [fileIds])).rows.map((r) => r.h));
    const old = await hashesOf(ids);
    const payloadsBefore = (await db.pool.query('SELECT count(*)::int AS n FROM raw.payloads')).rows[0].n;
    // As a database from before migration 0016 is: nothing logged. Its old files leave, their payloads stay.
    await db.pool.query(`BEGIN; SET LOCAL vinops.retirement_log = 'on'; DELETE FROM raw.payload_retirements; DELETE FROM raw.payload_returns; DELETE FROM raw.payload_head; COMMIT`);
    expect((await pruneDatabase(db.pool, silentLog, { before: await ingestedAt(db, ids[3]!), target: undefined, dryRun: false })).payloads).toBe(0);

    const sql = (await loadMigrations()).find((m) => m.name.startsWith('0019_'))!.sql;
    await db.pool.query(`BEGIN; ${sql}; COMMIT`);
    ids.push(await ingest(db, feed(4)));
    const live = await hashesOf([ids[4]!]);
    const expected = [...old].filter((h) => !live.has(h)).length;
    expect(expected).toBeGreaterThan(0);
    // Once the newest file at the migration has left too, so have the payloads no remaining file has.
    const r = await pruneDatabase(db.pool, silentLog, { before: await ingestedAt(db, ids[4]!), target: undefined, dryRun: false });
    expect(r.payloads).toBe(expected);
    const added = (await db.pool.query('SELECT count(*)::int AS n FROM staging.copart_typed WHERE first_file_id = $1', [ids[4]])).rows[0].n;
    expect((await db.pool.query('SELECT count(*)::int AS n FROM raw.payloads')).rows[0].n).toBe(payloadsBefore + added - expected);
    expect(await dangling(db)).toEqual({ payloads: 0, typed: 0 });
  });

  it('after the newest file was deleted by hand the bookkeeping recounts, and retention still never leaves a reference dangling', async () => {
    const db = await fresh();
    const ids = [await ingest(db, feed(0)), await ingest(db, feed(1)), await ingest(db, feed(2))];
    await db.pool.query('DELETE FROM raw.csv_files WHERE file_id = $1', [ids[2]]);
    ids.push(await ingest(db, feed(3)));
    await pruneDatabase(db.pool, silentLog, { before: await ingestedAt(db, ids[3]!), target: undefined, dryRun: false });
    expect((await db.pool.query('SELECT file_id FROM raw.csv_files')).rows.map((x) => x.file_id)).toEqual([ids[3]]);
    expect(await dangling(db)).toEqual({ payloads: 0, typed: 0 });
  });

  it('a file whose recorded predecessor was removed keeps its lot events (a late file, ingested after it, is older in the feed)', async () => {
    const db = await fresh();
    const root = join(dir, 'late');
    const at = async (hhmm: string, generation: number): Promise<string> => {
      const path = join(root, '2025/10/17', `${hhmm}.csv`);
      await mkdir(join(root, '2025/10/17'), { recursive: true });
      await writeFile(path, feed(generation, 600));
      const r = await ingestFile({ pool: db.pool, log: silentLog, maxRecordBytes: 1 << 20 }, path);
      expect(r.outcome).toBe('ingested');
      return r.fileId!;
    };
    const b = await at('1215', 1);
    const c = await at('1230', 2);
    await at('1200', 0); // late: first in the feed, newest by ingestion
    const events = async (): Promise<unknown[]> => (await db.pool.query(
      `SELECT kind, count(*)::int AS n FROM public.lot_events WHERE file_id = $1 GROUP BY kind ORDER BY kind`, [c])).rows;
    const before = await events();
    const r = await pruneDatabase(db.pool, silentLog, { before: await ingestedAt(db, c), target: undefined, dryRun: false });
    expect(r.files).toBe(1); // b
    expect((await db.pool.query('SELECT count(*)::int AS n FROM raw.csv_files WHERE file_id = $1', [b])).rows[0].n).toBe(0);
    const client = await db.pool.connect();
    try {
      await catchUpLifecycle(client);
    } finally {
      client.release();
    }
    expect(await events()).toEqual(before);
  });

  it('runs while a load runs: both succeed, nothing is lost', async () => {
    const db = await fresh();
    const ids: string[] = [];
    for (let g = 0; g < 4; g++) ids.push(await ingest(db, feed(g, 4000)));
    const before = await ingestedAt(db, ids[3]!);
    const digests = await rowDigests(db, [ids[3]!]);
    const [pruned, loaded] = await Promise.all([
      pruneDatabase(db.pool, silentLog, { before, target: undefined, dryRun: false, batchFiles: 1 }),
      ingest(db, feed(4, 4000)),
    ]);
    expect(pruned.errors).toBe(0);
    expect(pruned.files).toBe(3);
    expect(await dangling(db)).toEqual({ payloads: 0, typed: 0 });
    expect((await rowDigests(db, [ids[3]!]))[ids[3]!]).toBe(digests[ids[3]!]);
    expect((await db.pool.query('SELECT row_count FROM raw.csv_files WHERE file_id = $1', [loaded])).rows[0].row_count).toBe(4000);
  });

  it('a prune stopped between its payload batches (daemon stop, or a crash after the files went): the next run removes the payloads they freed, with no file left to remove', async () => {
    const db = await fresh();
    const ids: string[] = [];
    for (let g = 0; g < 4; g++) ids.push(await ingest(db, feed(g, 400)));
    const before = await ingestedAt(db, ids[2]!);
    const expected = (await db.pool.query(`SELECT count(*)::int AS n FROM (
        SELECT DISTINCT h FROM raw.file_contents c, unnest(c.payload_hashes) h WHERE c.file_id = ANY($1::uuid[])
        EXCEPT SELECT DISTINCT h FROM raw.file_contents c, unnest(c.payload_hashes) h WHERE c.file_id = ANY($2::uuid[])) x`, [ids.slice(0, 2), ids.slice(2)])).rows[0].n;
    expect(expected).toBeGreaterThan(2);
    const payloadsBefore = (await db.pool.query('SELECT count(*)::int AS n FROM raw.payloads')).rows[0].n;
    // Stopped as Pruner.stop() does, once the files are gone and one batch of due retirements is done:
    // the signal is checked at the top of the file loop (1), then before each payload batch (2, 3).
    const stop = new AbortController();
    let checks = 0;
    stop.signal.throwIfAborted = () => { if (++checks === 3) throw new Error('stopped'); };
    await expect(pruneDatabase(db.pool, silentLog, { before, target: undefined, dryRun: false, batchFiles: 8, batchRetirements: 1, signal: stop.signal }))
      .rejects.toThrow('stopped');
    expect((await db.pool.query('SELECT count(*)::int AS n FROM raw.csv_files')).rows[0].n).toBe(2);
    // The next pass (same cutoff: nothing older left to remove) finishes what the stopped one freed.
    await pruneDatabase(db.pool, silentLog, { before, target: undefined, dryRun: false });
    expect(await dangling(db)).toEqual({ payloads: 0, typed: 0 });
    expect((await db.pool.query('SELECT count(*)::int AS n FROM raw.payloads')).rows[0].n).toBe(payloadsBefore - expected);
  });
});

describe('database retention: the log of migration 0018', () => {
  const repeated = (l: string[], row: number, times: number): string[] => [...l.slice(0, row + 1), ...Array<string>(times).fill(l[row]!), ...l.slice(row + 1)];

  it('a row that comes back repeated in the file (one hash in several rows) is one return, and the load succeeds', async () => {
    const db = await fresh();
    const lines = feed(0, 200).toString('utf8').split('\n');
    const ids = [await ingest(db, lines.join('\n')), await ingest(db, without6(lines).join('\n'))];
    // Row 6 is back, 300 times: not in the previous file, so it carries its values; stored, so a return.
    ids.push(await ingest(db, repeated(lines, 6, 300).join('\n')));
    const { rows: [six] } = await db.pool.query(`SELECT payload_hashes[6] AS h FROM raw.file_contents WHERE file_id = $1`, [ids[0]]);
    expect((await db.pool.query('SELECT count(*)::int AS n FROM raw.payload_returns WHERE hash = $1', [six.h])).rows[0].n).toBe(1);
    await pruneDatabase(db.pool, silentLog, { before: await ingestedAt(db, ids[2]!), target: undefined, dryRun: false });
    expect((await db.pool.query('SELECT count(*)::int AS n FROM raw.payloads WHERE hash = $1', [six.h])).rows[0].n).toBe(1);
    expect(await dangling(db)).toEqual({ payloads: 0, typed: 0 });
  });

  it('after the newest file was deleted by hand, a file that repeats a stored row loads (every stored row is a return there)', async () => {
    const db = await fresh();
    const lines = feed(0, 200).toString('utf8').split('\n');
    const ids = [await ingest(db, lines.join('\n')), await ingest(db, changed(lines, 9).join('\n'))];
    await db.pool.query('DELETE FROM raw.csv_files WHERE file_id = $1', [ids[1]]);
    ids.push(await ingest(db, repeated(changed(lines, 10), 6, 300).join('\n')));
    await pruneDatabase(db.pool, silentLog, { before: await ingestedAt(db, ids[2]!), target: undefined, dryRun: false });
    expect(await dangling(db)).toEqual({ payloads: 0, typed: 0 });
  });
});

describe('database retention: random sequences of files', () => {
  /** A small deterministic PRNG (mulberry32). */
  const prng = (seed: number): (() => number) => () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };

  async function load(db: TestDatabase, bytes: string): Promise<{ outcome: string; fileId: string | null }> {
    const path = join(dir, `rnd-${String(n++).padStart(5, '0')}.csv`);
    await writeFile(path, bytes);
    const r = await ingestFile({ pool: db.pool, log: silentLog, maxRecordBytes: 1 << 20 }, path);
    expect(['ingested', 'duplicate']).toContain(r.outcome);
    return r;
  }

  async function newestAt(db: TestDatabase): Promise<string[]> {
    return (await db.pool.query(`SELECT ingested_at::text AS t FROM raw.csv_files ORDER BY ingested_at`)).rows.map((r) => r.t);
  }

  async function run(seed: number, o: { handDeletes: boolean }): Promise<void> {
    const db = await fresh();
    const rnd = prng(seed);
    const lines = feed(0, 40).toString('utf8').split('\n').filter((l) => l !== '');
    const [header, ...rows] = lines;
    const variant = (i: number, v: number): string => (v === 0 ? rows[i]! : rows[i]!.replace('","', `","${'X'.repeat(v)}`));
    // Each row: in the feed or not, and which of three versions of its values.
    const state = rows.map(() => ({ in: rnd() < 0.8, v: 0 }));
    const history: string[] = [];
    const nextFile = (): string => {
      for (const s of state) {
        if (rnd() < 0.15) s.in = !s.in;
        if (rnd() < 0.1) s.v = Math.floor(rnd() * 3);
      }
      const out = [header!];
      state.forEach((s, i) => {
        if (!s.in) return;
        out.push(variant(i, s.v));
        if (rnd() < 0.05) out.push(variant(i, s.v)); // the same row twice
      });
      if (out.length === 1) out.push(variant(0, 0));
      return `${out.join('\n')}\n`;
    };
    const check = async (what: string): Promise<void> => {
      expect(await dangling(db), `${what} (seed ${seed})`).toEqual({ payloads: 0, typed: 0 });
    };
    const prune = async (): Promise<void> => {
      const ts = await newestAt(db);
      if (ts.length < 2) return;
      const before = new Date(Date.parse(ts[Math.floor(rnd() * (ts.length - 1)) + 1]!));
      await pruneDatabase(db.pool, silentLog, { before, target: undefined, dryRun: false, batchFiles: 1 + Math.floor(rnd() * 3), batchRetirements: 1 + Math.floor(rnd() * 20) });
    };

    for (let step = 0; step < 45; step++) {
      const x = rnd();
      if (x < 0.55) {
        const f = nextFile();
        history.push(f);
        await load(db, f);
      } else if (x < 0.65) {
        // Two loads at once: the second one's predecessor is not its encoder's.
        const [f, g] = [nextFile(), nextFile()];
        history.push(f, g);
        await Promise.all([load(db, f), load(db, g)]);
      } else if (x < 0.75) {
        // A load while a prune runs.
        const f = nextFile();
        history.push(f);
        await Promise.all([load(db, f), prune()]);
      } else if (x < 0.82 && history.length > 0) {
        // An earlier file again (restored from the archive once pruned; a duplicate while stored).
        await load(db, history[Math.floor(rnd() * history.length)]!);
      } else if (x < 0.87 && o.handDeletes) {
        await db.pool.query('DELETE FROM raw.csv_files WHERE file_id = (SELECT file_id FROM raw.csv_files ORDER BY ingested_at DESC LIMIT 1)');
      } else {
        await prune();
      }
      await check(`after step ${step}`);
    }
    // Everything but the newest file goes: every payload no file has goes with it.
    await pruneDatabase(db.pool, silentLog, { before: new Date(Date.now() + 86_400_000), target: undefined, dryRun: false });
    await check('after the last prune');
    if (!o.handDeletes) {
      const { rows: [left] } = await db.pool.query(`SELECT
          (SELECT count(*) FROM raw.payloads)::int AS payloads,
          (SELECT count(DISTINCT h) FROM raw.file_contents c, unnest(c.payload_hashes) h WHERE h IS NOT NULL)::int AS referenced`);
      expect(left.payloads, `payloads left that no file refers to (seed ${seed})`).toBe(left.referenced);
    }
  }

  for (const seed of [1, 2, 3, 4]) {
    it(`seed ${seed}: never a dangling reference, and nothing left over once only the newest file remains`, async () => {
      await run(seed, { handDeletes: false });
    });
    it(`seed ${seed}, newest files deleted by hand too: never a dangling reference`, async () => {
      await run(seed + 100, { handDeletes: true });
    });
  }
});

describe('database retention: a host of the previous version during an upgrade', () => {
  it('a load by a version that keeps no payload bookkeeping is refused (migration 0021): it cannot store a file retention does not know of', async () => {
    const db = await fresh();
    const id = await ingest(db, feed(0, 50));
    const client = await db.pool.connect();
    try {
      // What such a version's promote writes, under the payload lock but without the setting: refused
      // before any row (with the setting, the same statement gets as far as the duplicate key).
      const copy = 'INSERT INTO raw.file_contents (file_id, payload_hashes) SELECT file_id, payload_hashes FROM raw.file_contents WHERE file_id = $1';
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock($1, $2)', [0x76696e6f, 2]);
      await expect(client.query(copy, [id])).rejects.toMatchObject({ code: '55000', message: expect.stringContaining('cannot store files') });
      await client.query('ROLLBACK');
      await client.query('BEGIN');
      await client.query(`SET LOCAL vinops.retirement_log = 'on'`);
      await expect(client.query(copy, [id])).rejects.toMatchObject({ code: '23505' });
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
    // This version's loads set it with the lock.
    await ingest(db, feed(1, 50));
  });


  it('a prune by the version before 0018 (its statements, as a host not yet upgraded runs them) is refused, and leaves no reference dangling', async () => {
    const db = await fresh();
    const lines = feed(0, 200).toString('utf8').split('\n');
    // Loaded by an upgraded host: row 6 leaves (a retirement) and comes back (a return, its retirement stays).
    const ids = [await ingest(db, lines.join('\n')), await ingest(db, changed(without6(lines), 9).join('\n')), await ingest(db, changed(lines, 10).join('\n'))];
    await ingest(db, changed(lines, 11).join('\n'));
    // docs/operations.md, Upgrade: several hosts on one database are upgraded one after the other; the
    // one not restarted yet ignores migrations it does not know and runs its hourly retention pass.
    const client = await db.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock($1, $2)', [0x76696e6f, 2]);
      await client.query('DELETE FROM raw.csv_files WHERE file_id = ANY($1::uuid[])', [ids.slice(0, 2)]);
      const { rows: [oldest] } = await client.query('SELECT min(ingested_at)::text AS t FROM raw.csv_files');
      await expect(client.query(
        `WITH r AS (DELETE FROM raw.payload_retirements WHERE last_seen_at < $1::timestamptz RETURNING hash),
              p AS (DELETE FROM raw.payloads WHERE hash = ANY (ARRAY(SELECT hash FROM r)) RETURNING hash),
              s AS (DELETE FROM staging.copart_typed WHERE payload_hash = ANY (ARRAY(SELECT hash FROM p)))
         SELECT count(*)::int AS n FROM p`, [oldest.t])).rejects.toMatchObject({ code: '55000', message: expect.stringContaining('since migration 0018') });
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
    // The current pass, on the same files, keeps what the remaining files have.
    await pruneDatabase(db.pool, silentLog, { before: await ingestedAt(db, ids[2]!), target: undefined, dryRun: false });
    expect((await db.pool.query('SELECT count(*)::int AS n FROM raw.csv_files')).rows[0].n).toBe(2);
    expect(await dangling(db)).toEqual({ payloads: 0, typed: 0 });
  });
});
