#!/usr/bin/env node
/**
 * `npm run bench`: the ingest benchmark of issue #3, in one run on one database.
 *
 * Generates a realistic 154,000-row, 59-column feed file (src/sample/feedGenerator.ts), its successor 15
 * minutes later (first lot gone so every Id shifts, ~1 % of lots updated) and a later one carrying
 * the feed's bare quotes, then reports for each:
 *   - the floor: PostgreSQL's own `\copy` of the file into a plain 59-text-column table (psql when it
 *     is installed, else the same COPY FROM STDIN through pg-copy-streams);
 *   - `vinops-etl ingest` (a child process, as operators run it): seconds, rows/s, MB/s, peak RSS,
 *     the ratio to the floor, and the database growth.
 * BENCH_DATABASE_URL points it at a server; default: a throwaway embedded PostgreSQL (durable
 * settings), whose WAL is warmed first (warmWal). BENCH_ROWS changes the row count.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import pino from 'pino';
import { writeFeedFile } from '../dist/sample/feedGenerator.js';
import { startEmbeddedPostgres } from '../dist/db/embedded.js';
import { formatEvents, freePort, ingest as ingestAt, runCli, timedCli as timedCliAt, warmWal as writeWal, withDatabase } from './common.mjs';

const ROWS = Number(process.env.BENCH_ROWS ?? 154_000);
const work = await mkdtemp(join(tmpdir(), 'vinops-bench-'));
const log = pino({ level: 'warn' });
// The shared helpers (common.mjs), against this run's database unless told otherwise.
const run = (args, dbUrl = url) => runCli(args, dbUrl);
const ingest = (path, dbUrl = url) => ingestAt(path, dbUrl);
const timedCli = (args, dbUrl = url) => timedCliAt(args, dbUrl);


let cluster;
let adminUrl = process.env.BENCH_DATABASE_URL;
if (!adminUrl) {
  cluster = await startEmbeddedPostgres({ dir: join(tmpdir(), `vinops-bench-pg-${process.pid}`), port: await freePort(), log, ephemeral: true });
  adminUrl = cluster.url;
}
const dbName = `vinops_bench_${process.pid}`;
const admin = new pg.Client({ connectionString: adminUrl });
await admin.connect();
await admin.query(`CREATE DATABASE ${dbName}`);
const url = withDatabase(adminUrl, dbName);
const db = new pg.Client({ connectionString: url });
await db.connect();
const version = (await db.query('SHOW server_version')).rows[0].server_version;

try {
  console.log(`vinops-etl benchmark: ${ROWS} rows, PostgreSQL ${version}${cluster ? ' (embedded)' : ''}, node ${process.version}`);
  const files = [
    { label: 'first file (empty database)', path: join(work, '2025/10/17/1200.csv'), options: { rows: ROWS, generation: 0 } },
    { label: 'successor, 15 min later', path: join(work, '2025/10/17/1215.csv'), options: { rows: ROWS, generation: 1 } },
    { label: 'later file with bare quotes', path: join(work, '2025/10/17/1230.csv'), options: { rows: ROWS, generation: 2, bareQuotes: true } },
  ];
  for (const f of files) {
    const t = performance.now();
    const { bytes } = await writeFeedFile(f.path, f.options);
    f.bytes = bytes;
    console.log(`generated ${f.path} (${(bytes / 1e6).toFixed(1)} MB) in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  }
  // Schema first, so the first measured ingest does not include migrations.
  run(['migrate']);
  if (cluster) await warmWal();
  const results = [];
  for (const f of files) {
    const floor = await copyFloor(f.path);
    const before = await dbSize();
    const r = await ingest(f.path);
    const growth = (await dbSize()) - before;
    results.push({ ...f, floor, ...r, growth });
  }
  const first = results[0];
  console.log('');
  console.log('| file | \\copy floor s | ingest s | rows/s | MB/s | × floor | peak RSS MB | new payloads | lots inserted/updated/stale | DB growth MB | growth vs first |');
  console.log('|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of results) {
    const floor = r.floor.seconds === null ? 'COPY refuses it' : r.floor.seconds.toFixed(2);
    const ratio = r.floor.seconds === null ? '–' : (r.seconds / r.floor.seconds).toFixed(2);
    console.log(`| ${r.label} | ${floor} | ${r.seconds.toFixed(2)} | ${Math.round(r.rows / r.seconds)} | ${(r.bytes / 1e6 / r.seconds).toFixed(1)} | ${ratio} | ${(r.peakRssKb / 1024).toFixed(0)} | ${r.newPayloads} | ${r.lots ? `${r.lots.inserted}/${r.lots.updated}/${r.lots.stale}` : '–'} | ${(r.growth / 1048576).toFixed(1)} | ${(100 * r.growth / first.growth).toFixed(1)} % |`);
  }
  console.log('');
  console.log('ingest s: wall time of `vinops-etl ingest` in a child process, start to exit (includes the process start and the');
  console.log('core upsert into public.lots / public.vehicles, which runs in the same transaction);');
  console.log('\\copy floor: the same file into a plain 59-text-column table; DB growth: pg_database_size after - before.');
  console.log('');
  console.log('| file | read + COPY s | promote to raw, staging, audit s | core upsert s | lifecycle (events, lot states) s | process start, connect, commit s | rows/s without the core upsert | lot events |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const r of results) {
    const { readMs, promoteMs, upsertMs, lifecycleMs } = r.phases;
    const rest = r.seconds - (readMs + promoteMs + upsertMs + lifecycleMs) / 1000;
    console.log(`| ${r.label} | ${(readMs / 1000).toFixed(2)} | ${(promoteMs / 1000).toFixed(2)} | ${(upsertMs / 1000).toFixed(2)} | ${(lifecycleMs / 1000).toFixed(2)} | ${rest.toFixed(2)} | ${Math.round(r.rows / (r.seconds - upsertMs / 1000))} | ${formatEvents(r.events)} |`);
  }
  for (const r of results) if (r.floor.error) console.log(`\\copy of "${r.label}": ${r.floor.error}`);

  // Replay from raw (issue 7): the successor rebuilt over tables that already hold it.
  const replay = await timedCli(['replay', '--json', '--file', results[1].fileId]);
  const rp = replay.result;
  if (rp.outcome !== 'replayed') throw new Error(`replay: ${rp.reason}`);
  console.log('');
  console.log(`replay --file of the successor from raw: ${replay.seconds.toFixed(2)} s (${Math.round(rp.data_rows / replay.seconds)} rows/s), ` +
    `${rp.payloads} payloads typed again (${rp.typed_updated} changed), lots ${rp.upserts.lots.updated} updated / ` +
    `${rp.upserts.lots.unchanged} unchanged / ${rp.upserts.lots.stale} stale, peak RSS ${(replay.peakRssKb / 1024).toFixed(0)} MB`);

  // Byte-exact export (docs/storage.md): the successor's bytes from the database alone, sha256-checked.
  const exportedPath = join(work, 'exported.csv');
  const ex = await timedCli(['export', results[1].fileId, '--out', exportedPath, '--json']);
  const { rows: [kept] } = await db.query(`SELECT count(*)::int AS n, coalesce(sum(octet_length(bytes)), 0)::int AS b FROM raw.file_residuals WHERE file_id = $1`, [results[1].fileId]);
  console.log(`export of the successor: ${ex.seconds.toFixed(2)} s, ${(ex.result.bytes / 1e6 / ex.seconds).toFixed(1)} MB/s, sha256 equal to the original's, ` +
    `${kept.n} records kept verbatim (${kept.b} bytes), peak RSS ${(ex.peakRssKb / 1024).toFixed(0)} MB`);
  await rm(exportedPath);

  // A lot's rows across every file (docs/lifecycle.md): the index lookup of staging.lot_rows.
  const { rows: [probe] } = await db.query(`SELECT lot_external_id FROM public.lots ORDER BY lot_id DESC LIMIT 1`);
  const tLot = performance.now();
  const { rowCount: versions } = await db.query('SELECT * FROM staging.lot_rows($1)', [probe.lot_external_id]);
  console.log(`staging.lot_rows of one lot: ${(performance.now() - tLot).toFixed(1)} ms (${versions} distinct rows)`);

  await sequence();
} finally {
  await db.end();
  await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`).catch(() => undefined);
  await admin.end();
  await cluster?.stop();
  await rm(work, { recursive: true, force: true });
}

/** Unwarmed, the first file paid ~1.2 s more for its ~330 MB of WAL and the floor 0.2 s (common.mjs, warmWal). */
async function warmWal() {
  const t = performance.now();
  await writeWal(db);
  console.log(`warmed the new cluster's WAL (~1 GB written and dropped) in ${((performance.now() - t) / 1000).toFixed(1)} s`);
}

/**
 * A day's worth of files at a smaller size (BENCH_SEQUENCE_FILES × BENCH_SEQUENCE_ROWS, 15 minutes
 * apart, 1 % of the lots leaving and as many arriving per file) in a database of its own: whether the
 * ingest and the lifecycle step stay flat as events and lots accumulate.
 */
async function sequence() {
  const files = Number(process.env.BENCH_SEQUENCE_FILES ?? 30);
  const rows = Number(process.env.BENCH_SEQUENCE_ROWS ?? 20_000);
  if (files <= 0) return;
  const name = `${dbName}_seq`;
  await admin.query(`CREATE DATABASE ${name}`);
  const seqUrl = withDatabase(adminUrl, name);
  try {
    run(['migrate'], seqUrl);
    const out = [];
    for (let g = 0; g < files; g++) {
      const t0 = Date.UTC(2025, 9, 17, 12, 0) + g * 15 * 60_000;
      const d = new Date(t0);
      const path = join(work, 'seq', `${d.getUTCFullYear()}/${String(d.getUTCMonth() + 1).padStart(2, '0')}/${String(d.getUTCDate()).padStart(2, '0')}/${String(d.getUTCHours()).padStart(2, '0')}${String(d.getUTCMinutes()).padStart(2, '0')}.csv`);
      await writeFeedFile(path, { rows, generation: g, turnover: Math.round(rows / 100) });
      out.push(await ingest(path, seqUrl));
      await rm(path);
    }
    const avg = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const steady = out.slice(1);
    const lc = steady.map((r) => r.phases.lifecycleMs / 1000);
    const { rows: [size] } = await admin.query('SELECT pg_database_size($1) AS s', [name]);
    console.log('');
    console.log(`${files}-file sequence, ${rows} rows each (1 % turnover): first file ${out[0].seconds.toFixed(2)} s; then ingest ` +
      `mean ${avg(steady.map((r) => r.seconds)).toFixed(2)} s, first five ${avg(steady.slice(0, 5).map((r) => r.seconds)).toFixed(2)} s, last five ` +
      `${avg(steady.slice(-5).map((r) => r.seconds)).toFixed(2)} s; lifecycle step mean ${avg(lc).toFixed(3)} s, max ${Math.max(...lc).toFixed(3)} s; ` +
      `events per file ${formatEvents(steady.at(-1).events)}; peak RSS ${(Math.max(...out.map((r) => r.peakRssKb)) / 1024).toFixed(0)} MB; database ${(Number(size.s) / 1048576).toFixed(0)} MB`);
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => undefined);
  }
}

/** PostgreSQL's own \copy of the file into a plain table of 59 text columns: the floor. */
async function copyFloor(path) {
  const cols = Array.from({ length: 59 }, (_, i) => `c${i + 1} text`).join(', ');
  await db.query(`DROP TABLE IF EXISTS bench_floor; CREATE TABLE bench_floor (${cols})`);
  const t = performance.now();
  const psql = spawnSync('psql', ['--version']).status === 0;
  if (psql) {
    const r = spawnSync('psql', [url, '-v', 'ON_ERROR_STOP=1', '-qc', `\\copy bench_floor from '${path}' with (format csv, header true)`], { encoding: 'utf8' });
    if (r.status !== 0) return { seconds: null, error: r.stderr.split('\n')[0] };
  } else {
    try {
      await pipeline(createReadStream(path), db.query(copyFrom('COPY bench_floor FROM STDIN WITH (FORMAT csv, HEADER true)')));
    } catch (err) {
      return { seconds: null, error: err.message };
    }
  }
  const seconds = (performance.now() - t) / 1000;
  await db.query('DROP TABLE bench_floor');
  return { seconds };
}

async function dbSize() {
  await db.query('CHECKPOINT').catch(() => undefined);
  return Number((await db.query('SELECT pg_database_size(current_database()) AS s')).rows[0].s);
}
