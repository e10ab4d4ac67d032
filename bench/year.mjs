#!/usr/bin/env node
/**
 * `npm run bench:year`: the steady state and database retention at the scale of a year's history
 * (issue 18), without waiting a year. docs/performance.md, *A year of history*, has the figures.
 *
 * Both databases live in one cluster with shared_buffers a quarter of the memory (BENCH_YEAR_SHARED_BUFFERS).
 * Each gets three loads, then the indexes of the tables loads write are read into memory (pg_prewarm),
 * as a server in service has its working set cached; then five measured loads each, taking turns, each
 * after a CHECKPOINT (files come 15 minutes apart, more than checkpoint_timeout). Medians are compared.
 * 1. Small database: the bench's files (src/sample/feedGenerator.ts, 154,000 rows, 15 minutes apart):
 *    generations 0 … 3 loaded (VACUUM after 0), 4 … 8 measured. Its successor (1) gives the rates the
 *    history is made at: new payloads per file and changed fields per new payload.
 * 2. Year database: generation 0 loaded (the template: a real ingested file's arrays, payloads,
 *    typed rows, lots and vehicles), then, in SQL, BENCH_YEAR_DAYS (90) × 96 files before it in feed
 *    order, with their lifecycle recorded as computed (so no load computes it again):
 *    - raw.csv_files, raw.file_contents (the template's two arrays, 154,000 elements each, per file),
 *      raw.file_residuals and audit.etl_runs like the template's;
 *    - payloads at the measured rate P a file (each a copy of a template payload's values under a
 *      hash of its own), their typed rows, and their raw.payload_retirements: payload j arrives in
 *      file j/P - L + 2 and is last seen in file j/P + 1 (L = rows/P files of life), so the first
 *      file holds a file's worth and a day's prune retires a day's payloads, as in service;
 *    - BENCH_YEAR_LOTS (3,600,000) lots in all: the template's listed ones plus the rest as lots that
 *      left (outcomes sold / not sold / on approval / withdrawn, one in ten a relist of the one before,
 *      sharing its VIN), their vehicles, and their events (appeared, relisted, changed fields at the
 *      measured rate, disappeared);
 *    then VACUUM ANALYZE, as autovacuum would have by then (the small database gets one too).
 *    Simplifications, none on the loads' or the prune's path: the history's payloads are in no file's
 *    array (those are the template's; only export and replay read old arrays) and keep the template's
 *    values; a lot's payloads are consecutive, so history lots live ~L files (~1 day) rather than
 *    days; the history has no parse errors or conflicts (the template has none). Its lot numbers
 *    (10000000 + n) are below the generator's, as the feed's numbers grow over time; its VINs are
 *    spread over the index like real ones.
 * 3. On the year database: generations 1 … 3 loaded, 4 … 8 measured (taking turns with the small
 *    one's); then one day's files (the oldest 96) pruned by runRetention, what `vinops-etl prune` and
 *    the daemon run (no archive target), with its clock set so that exactly that day is due, while
 *    generations 9, 10 and 11 are loaded one after another as long as it runs; the database size per
 *    table.
 *
 * BENCH_YEAR_PREWARM=0 measures with only what the warm-up loads cached. BENCH_DATABASE_URL: a server to use; default an embedded PostgreSQL in BENCH_YEAR_PGDIR (default
 * $TMPDIR/vinops-bench-year-pg). BENCH_YEAR_KEEP=1 keeps the filled database; a later run on it skips
 * the fill and goes on with the next generations (the year database is a steady state: one more day
 * of files is as good as the first). BENCH_YEAR_DAYS, BENCH_YEAR_LOTS, BENCH_ROWS scale it.
 */
import { mkdtemp, rm, statfs } from 'node:fs/promises';
import { tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import pg from 'pg';
import pino from 'pino';
import { writeFeedFile } from '../dist/sample/feedGenerator.js';
import { startEmbeddedPostgres } from '../dist/db/embedded.js';
import { runRetention } from '../dist/archive/pruner.js';
import { TRACKED_FIELDS } from '../dist/lifecycle/lifecycleStatements.js';
import { formatEvents, freePort, ingest, runCli, warmWal, withClient, withDatabase } from './common.mjs';

const DAYS = Number(process.env.BENCH_YEAR_DAYS ?? 90);
const FILES = DAYS * 96;
const ROWS = Number(process.env.BENCH_ROWS ?? 154_000);
const LOTS = Number(process.env.BENCH_YEAR_LOTS ?? 3_600_000);
const KEEP = process.env.BENCH_YEAR_KEEP === '1';
// PostgreSQL's own advice, a quarter of the memory: the default 128 MB holds a small database's
// working set, not a year's (docs/performance.md, *A year of history*). Both databases get it.
const SHARED_BUFFERS = process.env.BENCH_YEAR_SHARED_BUFFERS ?? `${Math.max(1, Math.floor(totalmem() / 4 / 2 ** 30))}GB`;
// Loads before the measured ones, in both databases, then the measured ones, taking turns.
const WARM_LOADS = 3;
const MEASURED = 5;
const PGDIR = process.env.BENCH_YEAR_PGDIR ?? join(tmpdir(), 'vinops-bench-year-pg');
const BIG = 'vinops_bench_year';
const SMALL = 'vinops_bench_year_small';
const log = pino({ level: 'warn' });
const work = await mkdtemp(join(tmpdir(), 'vinops-bench-year-'));
const secs = (t) => (performance.now() - t) / 1000;
const say = (s) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${s}`);

let cluster;
let adminUrl = process.env.BENCH_DATABASE_URL;
if (!adminUrl) {
  cluster = await startEmbeddedPostgres({ dir: PGDIR, port: await freePort(), log, ephemeral: !KEEP, postgresFlags: ['-c', `shared_buffers=${SHARED_BUFFERS}`] });
  adminUrl = cluster.url;
  // An interrupted run (it takes ~40 minutes) stops its cluster instead of leaving it running.
  for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => { cluster.stop().finally(() => process.exit(130)); });
}
const admin = new pg.Client({ connectionString: adminUrl });
await admin.connect();
const bigUrl = withDatabase(adminUrl, BIG);
const smallUrl = withDatabase(adminUrl, SMALL);

try {
  const version = (await admin.query('SHOW server_version')).rows[0].server_version;
  const sb = (await admin.query('SHOW shared_buffers')).rows[0].shared_buffers;
  console.log(`vinops-etl year-scale benchmark: ${DAYS} days (${FILES} files) of ${ROWS} rows, ${LOTS} lots, PostgreSQL ${version}${cluster ? ' (embedded)' : ''}, ` +
    `shared_buffers ${sb}, node ${process.version}`);
  const meta = await readMeta();
  const g0 = meta?.next_generation ?? 1;

  // 1. The small database.
  await admin.query(`DROP DATABASE IF EXISTS ${SMALL} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${SMALL}`);
  runCli(['migrate'], smallUrl);
  await withClient(smallUrl, warmWal);
  await ingest(await feedFile(0), smallUrl);
  await vacuum(smallUrl); // as the year database after its fill: VACUUM, the warm-up loads, then the measured ones
  const successor = await ingest(await feedFile(1), smallUrl);
  for (let g = 2; g <= WARM_LOADS; g++) await ingest(await feedFile(g), smallUrl);

  // 2. The year database.
  const perFile = Math.max(1, successor.newPayloads);
  const changedPer = Math.max(1, Math.round((successor.events?.changed ?? perFile) / perFile));
  if (meta === undefined) {
    await admin.query(`DROP DATABASE IF EXISTS ${BIG} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${BIG}`);
    runCli(['migrate'], bigUrl);
    const template = await ingest(await feedFile(0), bigUrl);
    await checkDisk(perFile);
    await fillHistory(template.fileId, perFile, changedPer);
  } else {
    say(`reusing the filled database (${meta.days} days, filled ${meta.filled_at.toISOString()}), generations from ${g0}`);
    // Migrations added since it was filled, as an operator's upgrade runs them.
    const t = performance.now();
    runCli(['migrate'], bigUrl);
    say(`migrate: ${secs(t).toFixed(1)} s`);
  }

  // 3. Measured on it.
  const db = new pg.Pool({ connectionString: bigUrl, max: 3 });
  db.on('error', () => undefined); // an idle client the final DROP DATABASE … (FORCE) ends
  try {
    for (let g = g0; g < g0 + WARM_LOADS; g++) await ingest(await feedFile(g), bigUrl);
    await prewarm(smallUrl);
    await prewarm(bigUrl);
    // Taking turns, so that both see the same machine (other load, the OS writing back the fill), each
    // after a checkpoint: in service files come 15 minutes apart, more than checkpoint_timeout (5), so
    // every load writes a full-page image of each page it is the first to change.
    const small = [];
    const big = [];
    for (let k = 0; k < MEASURED; k++) {
      small.push(await checkpointed(smallUrl, await feedFile(WARM_LOADS + 1 + k)));
      big.push(await checkpointed(bigUrl, await feedFile(g0 + WARM_LOADS + k)));
    }
    const smallCounts = await countsOf(smallUrl);
    await admin.query(`DROP DATABASE ${SMALL} WITH (FORCE)`);
    const during = [];
    for (let g = g0 + WARM_LOADS + MEASURED; g < g0 + WARM_LOADS + MEASURED + 3; g++) during.push(await feedFile(g));
    const bigCounts = await countsOf(bigUrl);
    // The history is consistent with the lifecycle: the warm-up load paired the template with the last
    // history file and found nothing to redo, so every listed lot still knows when it was first seen.
    const { rows: [state] } = await db.query(`SELECT count(*) FILTER (WHERE listed)::int AS listed,
        count(*) FILTER (WHERE listed AND first_seen_at IS NULL)::int AS unknown FROM public.lots`);
    if (state.unknown > 0 || state.listed < ROWS * 0.9) throw new Error(`the year database's lifecycle is off: ${state.listed} lots listed, ${state.unknown} of them never seen`);
    const { rows: [oldest] } = await db.query(`SELECT min(ingested_at) AS t, count(*)::int AS files FROM raw.csv_files`);
    const due = await db.query(`SELECT count(*)::int AS n FROM raw.csv_files WHERE ingested_at < $1::timestamptz + interval '1 day'`, [oldest.t]);
    const prune = { t: performance.now() };
    const pruning = runRetention(db, log, { rawDir: work, rawRetentionDays: undefined, dbRetentionDays: 1, target: undefined },
      { dryRun: false, now: new Date(oldest.t.getTime() + 2 * 86_400_000) })
      .then((r) => { prune.seconds = secs(prune.t); return r; });
    const loads = [];
    for (const path of during) {
      if (prune.seconds !== undefined) break;
      loads.push(await ingest(path, bigUrl));
    }
    const pruned = await pruning;
    if (pruned === undefined) throw new Error('another process holds the prune lock');
    await setMeta(db, { next_generation: g0 + WARM_LOADS + MEASURED + loads.length });

    const avg = (xs) => xs.reduce((a, b) => a + b.seconds, 0) / xs.length;
    const median = (xs) => { const v = xs.map((r) => r.seconds).sort((a, b) => a - b); return v[v.length >> 1]; };
    console.log('');
    console.log('| database | files | lots | steady-state ingest s | rows/s | core upsert s | lifecycle s | peak RSS MB |');
    console.log('|---|---|---|---|---|---|---|---|');
    const line = (label, files, lots, rs) => console.log(`| ${label} | ${files} | ${lots} | ${rs.map((r) => r.seconds.toFixed(2)).join(', ')} | ` +
      `${Math.round(ROWS / avg(rs))} | ${rs.map((r) => (r.phases.upsertMs / 1000).toFixed(2)).join(', ')} | ${rs.map((r) => (r.phases.lifecycleMs / 1000).toFixed(2)).join(', ')} | ` +
      `${(Math.max(...rs.map((r) => r.peakRssKb)) / 1024).toFixed(0)} |`);
    line('small', smallCounts.files, smallCounts.lots, small);
    line(`a year's scale (${DAYS} days)`, bigCounts.files, bigCounts.lots, big);
    console.log('');
    console.log(`steady state at a year's scale: ${(median(big) / median(small)).toFixed(2)} × the small database's, medians of ${MEASURED} (target ≤ 1.25); ` +
      `means ${(avg(big) / avg(small)).toFixed(2)} ×`);
    console.log(`pruning one day (${pruned.database.files} of the ${due.rows[0].n} files due, ${pruned.database.payloads} payloads): ${prune.seconds.toFixed(1)} s ` +
      `(target ≤ 60 s), errors ${pruned.errors}; loads meanwhile: ${loads.map((r) => `${r.seconds.toFixed(2)} s (${formatEvents(r.events)})`).join(', ') || 'none (the prune was done first)'}`);
    await sizes(db);
  } finally {
    await db.end();
  }
} finally {
  if (!KEEP) await admin.query(`DROP DATABASE IF EXISTS ${BIG} WITH (FORCE)`).catch(() => undefined);
  await admin.query(`DROP DATABASE IF EXISTS ${SMALL} WITH (FORCE)`).catch(() => undefined);
  await admin.end();
  await cluster?.stop();
  await rm(work, { recursive: true, force: true });
}

/** The feed file of a generation (written once per run), at its window's path. */
async function feedFile(generation) {
  const d = new Date(Date.UTC(2025, 9, 17, 12, 0) + generation * 15 * 60_000);
  const p2 = (n) => String(n).padStart(2, '0');
  const path = join(work, 'raw', `${d.getUTCFullYear()}/${p2(d.getUTCMonth() + 1)}/${p2(d.getUTCDate())}/${p2(d.getUTCHours())}${p2(d.getUTCMinutes())}.csv`);
  feedFile.written ??= new Set();
  if (!feedFile.written.has(path)) {
    await writeFeedFile(path, { rows: ROWS, generation });
    feedFile.written.add(path);
  }
  return path;
}

/**
 * A server in service has in memory what its loads probe by key: every 15 minutes a load touches
 * ~1,500 random leaves of each content-addressed index, all of them within a day. Warm-up loads touch
 * a few percent, so the indexes of the tables loads write are read into shared_buffers (pg_prewarm),
 * in both databases; their heaps are not (a load reads the current lots' pages, which the warm-up
 * loads have read). docs/performance.md has what a cold cache costs.
 */
async function prewarm(url) {
  if (process.env.BENCH_YEAR_PREWARM === '0') return;
  await withClient(url, async (c) => {
    try {
      await c.query('CREATE EXTENSION IF NOT EXISTS pg_prewarm');
    } catch (err) {
      say(`pg_prewarm not available (${err.message}): measuring with what the warm-up loads cached`);
      return;
    }
    const { rows: [r] } = await c.query(`SELECT sum(pg_prewarm(i.indexrelid))::bigint AS blocks FROM pg_index i
      WHERE i.indrelid IN ('raw.payloads'::regclass, 'staging.copart_typed'::regclass, 'raw.payload_retirements'::regclass,
        'public.lots'::regclass, 'public.vehicles'::regclass, 'public.lot_events'::regclass)`);
    say(`prewarm ${url === bigUrl ? 'year' : 'small'} database: ${(Number(r.blocks) * 8192 / 2 ** 30).toFixed(2)} GiB of indexes`);
  });
}

/** A measured load, after a checkpoint (see the loop). */
async function checkpointed(url, path) {
  await withClient(url, (c) => c.query('CHECKPOINT'));
  return ingest(path, url);
}

function vacuum(url) {
  return withClient(url, (c) => c.query('VACUUM (ANALYZE)'));
}

/** Files and lots in a database, as the measured loads found them. */
function countsOf(url) {
  return withClient(url, async (c) =>
    (await c.query(`SELECT (SELECT count(*) FROM raw.csv_files)::int AS files, (SELECT count(*) FROM public.lots)::int AS lots`)).rows[0]);
}

/** The filled year database's bookkeeping, when one of these dimensions exists. */
async function readMeta() {
  const { rowCount } = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [BIG]);
  if (rowCount === 0) return undefined;
  return withClient(bigUrl, async (c) => (await c.query(`SELECT * FROM bench_year.meta WHERE days = $1 AND rows = $2 AND lots = $3 AND filled_at IS NOT NULL`,
    [DAYS, ROWS, LOTS]).catch(() => ({ rows: [] }))).rows[0]);
}

async function setMeta(db, values) {
  const keys = Object.keys(values);
  await db.query(`UPDATE bench_year.meta SET ${keys.map((k, i) => `${k} = $${i + 1}`).join(', ')}`, keys.map((k) => values[k]));
}

/**
 * A year's database is FILES × the template file's arrays, P payloads a file with their typed rows and
 * retirements, and the lots with their vehicles and events, each at the template's bytes per row (its
 * tables after its ingest), plus WAL and room to spare; refuses to start a fill that cannot fit.
 */
async function checkDisk(P) {
  if (cluster === undefined) return;
  const { rows: [t] } = await withClient(bigUrl, (c) => c.query(`SELECT
      pg_total_relation_size('raw.file_contents') AS arrays,
      (pg_total_relation_size('raw.payloads') + pg_total_relation_size('staging.copart_typed'))::float8 / greatest(1, (SELECT count(*) FROM raw.payloads)) AS per_payload,
      (pg_total_relation_size('public.lots') + pg_total_relation_size('public.vehicles') + pg_total_relation_size('public.lot_events'))::float8
        / greatest(1, (SELECT count(*) FROM public.lots)) AS per_lot`));
  // A retirement (uuid, timestamptz, two indexes) is ~100 bytes; a history lot has ~8 events to the template's one.
  const need = FILES * (Number(t.arrays) + P * (Number(t.per_payload) + 100)) + LOTS * Number(t.per_lot) * 3 + 10e9;
  const fs = await statfs(dirname(PGDIR));
  const free = fs.bavail * fs.bsize;
  say(`disk: ${(free / 1e9).toFixed(0)} GB free at ${dirname(PGDIR)}, the fill needs ~${(need / 1e9).toFixed(0)} GB`);
  if (free < need) throw new Error(`not enough disk for ${DAYS} days (BENCH_YEAR_DAYS): ${(free / 1e9).toFixed(1)} GB free, ~${(need / 1e9).toFixed(1)} GB needed`);
}

/**
 * The history before the template file (its file_id), in SQL: see the header. P payloads per file,
 * C changed fields per payload that is not its lot's first.
 */
async function fillHistory(templateId, P, C) {
  const t0 = performance.now();
  await withClient(bigUrl, async (c) => {
    const q = async (label, sql, params = []) => {
      const t = performance.now();
      const r = await c.query(sql, params);
      say(`fill: ${label}${r.rowCount ? ` (${r.rowCount} rows)` : ''} in ${secs(t).toFixed(1)} s`);
      return r;
    };
    const cols = async (table) => (await c.query(`SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped
      AND attidentity = '' AND attgenerated = '' ORDER BY attnum`, [table])).rows.map((r) => r.attname);
    // INSERT INTO table SELECT every column of the template row `a`, some of them replaced.
    const copy = async (table, overrides, from, suffix = '') => {
      const all = await cols(table);
      for (const k of Object.keys(overrides)) if (!all.includes(k)) throw new Error(`${table} has no column ${k}`);
      return `INSERT INTO ${table} (${all.join(', ')}) SELECT ${all.map((k) => overrides[k] ?? `a.${k}`).join(', ')} ${from} ${suffix}`;
    };
    const T = (await c.query('SELECT count(*)::int AS n FROM raw.payloads')).rows[0].n;
    const TL = (await c.query('SELECT count(*)::int AS n FROM public.lots')).rows[0].n;
    const L = Math.max(1, Math.round(ROWS / P)); // files a payload lives
    const H = (FILES + L - 1) * P; // history payloads: P a file, and the first file's content before them
    const HL = LOTS - TL; // lots that left
    if (HL < 1 || H < HL) throw new Error(`BENCH_YEAR_LOTS=${LOTS}: needs more lots than the template's ${TL} and at most one per history payload (${H})`);
    const fields = TRACKED_FIELDS.map(([f]) => f);
    // Payload j: its file of arrival and of last sight, its lot; lot n: its first and last payload.
    const arrives = (j) => `least(greatest(1, ${j} / ${P} + 2 - ${L}), ${FILES})`;
    const lastSeen = (j) => `least(${j} / ${P} + 1, ${FILES})`;
    const lotOf = (j) => `(${j} * ${HL}::bigint / ${H})`;
    const firstOf = (n) => `((${n} * ${H}::bigint + ${HL} - 1) / ${HL})`;
    const lastOf = (n) => `(((${n} + 1) * ${H}::bigint + ${HL} - 1) / ${HL} - 1)`;
    say(`fill: ${FILES} files, ${H} payloads (${P} per file, each live ${L} files), ${HL} lots that left, ${C} changed field(s) per new payload`);

    // The fill writes raw.file_contents and the retirement log as loads keep them (migrations/0021).
    await c.query(`SET vinops.retirement_log = 'on'`);
    await c.query(`CREATE SCHEMA bench_year;
      CREATE TABLE bench_year.meta (days int, rows int, lots int, files int, payloads_per_file int, changed_per_payload int,
        next_generation int, filled_at timestamptz, fill_seconds numeric);
      CREATE FUNCTION bench_year.hash(j bigint) RETURNS uuid LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURN md5('vinops-bench-year:' || j)::uuid;
      CREATE FUNCTION bench_year.lot(n bigint) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURN (10000000 + n)::text;
      CREATE FUNCTION bench_year.vin(n bigint) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE
        RETURN upper(left(md5('vinops-bench-year-vin:' || (n - (n % 10 = 9)::int)), 11) || lpad(to_hex(n - (n % 10 = 9)::int), 6, '0'))`);
    await c.query(`INSERT INTO bench_year.meta (days, rows, lots, files, payloads_per_file, changed_per_payload) VALUES ($1, $2, $3, $4, $5, $6)`, [DAYS, ROWS, LOTS, FILES, P, C]);
    await q('files', `CREATE TABLE bench_year.files AS
      SELECT k, gen_random_uuid() AS file_id, a.ingested_at - (${FILES} - k + 1) * interval '15 minutes' AS ingested_at,
             a.snapshot_at - (${FILES} - k + 1) * interval '15 minutes' AS snapshot_at
        FROM generate_series(1, ${FILES}) k, raw.csv_files a WHERE a.file_id = $1`, [templateId]);
    await c.query('ALTER TABLE bench_year.files ADD PRIMARY KEY (k)');
    await q('raw.csv_files', await copy('raw.csv_files', {
      file_id: 'f.file_id', path: `'/bench/year/' || to_char(f.snapshot_at AT TIME ZONE 'UTC', 'YYYY/MM/DD/HH24MI') || '.csv'`,
      sha256: `encode(sha256(convert_to('vinops-bench-year:' || f.k, 'UTF8')), 'hex')`, window_start: 'f.snapshot_at', snapshot_at: 'f.snapshot_at',
      file_mtime: 'f.snapshot_at', started_at: `f.ingested_at - interval '2 seconds'`, ingested_at: 'f.ingested_at',
      lifecycle_prev_file_id: 'p.file_id', lifecycle_prev_snapshot_at: 'p.snapshot_at', lifecycle_at: 'f.ingested_at',
    }, `FROM bench_year.files f LEFT JOIN bench_year.files p ON p.k = f.k - 1, raw.csv_files a WHERE a.file_id = $1`), [templateId]);
    for (let lo = 1; lo <= FILES; lo += 480) {
      await q(`raw.file_contents, files ${lo}…${Math.min(FILES, lo + 479)}`, `INSERT INTO raw.file_contents (file_id, payload_hashes, id_values)
        SELECT f.file_id, a.payload_hashes, a.id_values FROM bench_year.files f, raw.file_contents a WHERE a.file_id = $1 AND f.k BETWEEN $2 AND $3`, [templateId, lo, lo + 479]);
    }
    // The template follows the last history file in feed order: its events are computed (it is the first file).
    await q('the template after the history', `UPDATE raw.csv_files a SET lifecycle_prev_file_id = f.file_id, lifecycle_prev_snapshot_at = f.snapshot_at
      FROM bench_year.files f WHERE a.file_id = $1 AND f.k = ${FILES}`, [templateId]);
    await q('raw.file_residuals', `INSERT INTO raw.file_residuals (file_id, record_no, bytes) SELECT f.file_id, a.record_no, a.bytes
      FROM bench_year.files f, raw.file_residuals a WHERE a.file_id = $1`, [templateId]);
    await q('audit.etl_runs', await copy('audit.etl_runs', {
      run_id: 'gen_random_uuid()', file_id: 'f.file_id', path: 'x.path', sha256: 'x.sha256', started_at: 'x.started_at', finished_at: 'f.ingested_at',
    }, `FROM bench_year.files f JOIN raw.csv_files x ON x.file_id = f.file_id, audit.etl_runs a WHERE a.file_id = $1 AND a.outcome = 'ingested'`), [templateId]);

    await c.query(`CREATE TABLE bench_year.tpl_payloads AS SELECT (row_number() OVER (ORDER BY hash) - 1)::bigint AS i, vals_text, vals FROM raw.payloads;
      CREATE TABLE bench_year.tpl_typed AS SELECT (row_number() OVER (ORDER BY payload_hash) - 1)::bigint AS i, * FROM staging.copart_typed;
      CREATE TABLE bench_year.tpl_lots AS SELECT (row_number() OVER (ORDER BY lot_id) - 1)::bigint AS i, * FROM public.lots;
      CREATE TABLE bench_year.tpl_vehicles AS SELECT (row_number() OVER (ORDER BY vin) - 1)::bigint AS i, * FROM public.vehicles;
      CREATE INDEX ON bench_year.tpl_payloads (i); CREATE INDEX ON bench_year.tpl_typed (i); CREATE INDEX ON bench_year.tpl_lots (i); CREATE INDEX ON bench_year.tpl_vehicles (i)`);
    const TT = (await c.query('SELECT count(*)::int AS n FROM bench_year.tpl_typed')).rows[0].n;
    const TV = (await c.query('SELECT count(*)::int AS n FROM bench_year.tpl_vehicles')).rows[0].n;
    const CHUNK = 2_000_000;
    for (let lo = 0; lo < H; lo += CHUNK) {
      const hi = Math.min(H, lo + CHUNK) - 1;
      const js = `FROM generate_series(${lo}::bigint, ${hi}) j`;
      await q(`raw.payloads ${lo}…${hi}`, `INSERT INTO raw.payloads (hash, vals_text, vals) SELECT bench_year.hash(j), a.vals_text, a.vals
        ${js} JOIN bench_year.tpl_payloads a ON a.i = j % ${T}`);
      await q(`staging.copart_typed ${lo}…${hi}`, await copy('staging.copart_typed', {
        payload_hash: 'bench_year.hash(j)', lot_external_id: `bench_year.lot(${lotOf('j')})`, vin_raw: `bench_year.vin(${lotOf('j')})`,
        vin_normalized: `bench_year.vin(${lotOf('j')})`, vin_valid: 'true', first_file_id: 'f.file_id',
      }, `${js} JOIN bench_year.tpl_typed a ON a.i = j % ${TT} JOIN bench_year.files f ON f.k = ${arrives('j')}`));
      await q(`raw.payload_retirements ${lo}…${hi}`, `INSERT INTO raw.payload_retirements (hash, last_seen_at)
        SELECT bench_year.hash(j), f.ingested_at ${js} JOIN bench_year.files f ON f.k = ${lastSeen('j')}`);
    }
    for (let lo = 0; lo < HL; lo += CHUNK) {
      const hi = Math.min(HL, lo + CHUNK) - 1;
      // n: the lot; x: its first and last payload; ff, fl: the files it arrived in and was last in; fw: the one that brought its last payload.
      const lots = `FROM generate_series(${lo}::bigint, ${hi}) n CROSS JOIN LATERAL (SELECT ${firstOf('n')} AS j0, ${lastOf('n')} AS j1) x
        JOIN bench_year.files ff ON ff.k = ${arrives('x.j0')} JOIN bench_year.files fw ON fw.k = ${arrives('x.j1')}
        JOIN bench_year.files fl ON fl.k = ${lastSeen('x.j1')}`;
      await q(`public.vehicles ${lo}…${hi}`, await copy('public.vehicles', {
        vin: 'bench_year.vin(n)', vin_raw: 'bench_year.vin(n)', payload_hash: 'bench_year.hash(x.j1)', source_updated_at: 'fl.snapshot_at',
        first_seen_at: 'ff.snapshot_at', updated_at: 'fl.snapshot_at',
      }, `${lots} JOIN bench_year.tpl_vehicles a ON a.i = n % ${TV} WHERE n % 10 <> 9`, 'ON CONFLICT (vin) DO NOTHING'));
      await q(`public.lots ${lo}…${hi}`, await copy('public.lots', {
        lot_external_id: 'bench_year.lot(n)', vin: 'bench_year.vin(n)', vin_raw: 'bench_year.vin(n)', vin_issue: 'NULL',
        source_updated_at: `fw.snapshot_at - interval '1 hour'`, source_file_id: 'fw.file_id', source_row_no: `(n % ${ROWS}) + 1`,
        payload_hash: 'bench_year.hash(x.j1)', sale_date: '(fl.snapshot_at)::date', auction_at: `fl.snapshot_at - interval '2 hours'`,
        first_seen_at: 'ff.snapshot_at', last_seen_at: 'fl.snapshot_at', listed: 'false', last_high_bid: 'coalesce(a.high_bid, 500)',
        outcome: `CASE WHEN n % 10 = 8 THEN 'not_sold' WHEN n % 20 < 2 THEN 'withdrawn' WHEN n % 20 = 2 THEN 'on_approval' ELSE 'sold' END`,
        outcome_method: `CASE WHEN n % 10 = 8 THEN 'relisted' WHEN n % 20 < 2 THEN 'left_before_auction' WHEN n % 20 = 2 THEN 'left_on_approval' ELSE 'left_after_auction' END`,
        outcome_at: 'fl.snapshot_at', previous_lot_external_id: 'CASE WHEN n % 10 = 9 THEN bench_year.lot(n - 1) END',
        relist_count: '(n % 10 = 9)::int', updated_at: 'fl.snapshot_at',
      }, `${lots} JOIN bench_year.tpl_lots a ON a.i = n % ${TL}`));
      await q(`public.lot_events appeared, relisted, disappeared ${lo}…${hi}`, `INSERT INTO public.lot_events
          (lot_external_id, vin, kind, related_lot_external_id, file_id, snapshot_at, previous_snapshot_at)
        SELECT bench_year.lot(n), bench_year.vin(n), e.kind, e.related, e.file_id, e.snapshot_at, CASE WHEN e.k > 1 THEN e.snapshot_at - interval '15 minutes' END
          ${lots} LEFT JOIN bench_year.files fd ON fd.k = fl.k + 1
          CROSS JOIN LATERAL (VALUES ('appeared', NULL, ff.file_id, ff.snapshot_at, ff.k),
                                     ('relisted', CASE WHEN n % 10 = 9 THEN bench_year.lot(n - 1) END, ff.file_id, ff.snapshot_at, ff.k),
                                     ('disappeared', NULL, fd.file_id, fd.snapshot_at, fd.k)) e(kind, related, file_id, snapshot_at, k)
         WHERE e.file_id IS NOT NULL AND (e.kind <> 'relisted' OR e.related IS NOT NULL)`);
    }
    for (let lo = 0; lo < H; lo += CHUNK) {
      const hi = Math.min(H, lo + CHUNK) - 1;
      await q(`public.lot_events changed ${lo}…${hi}`, `INSERT INTO public.lot_events (lot_external_id, vin, kind, field, old_value, new_value, file_id, snapshot_at, previous_snapshot_at)
        SELECT bench_year.lot(${lotOf('j')}), bench_year.vin(${lotOf('j')}), 'changed', ($1::text[])[(j + s) % ${fields.length} + 1], (1000 + j % 977)::text, (1100 + j % 977)::text,
               f.file_id, f.snapshot_at, CASE WHEN f.k > 1 THEN f.snapshot_at - interval '15 minutes' END
          FROM generate_series(${lo}::bigint, ${hi}) j CROSS JOIN generate_series(1, ${C}) s JOIN bench_year.files f ON f.k = ${arrives('j')}
         WHERE j > ${firstOf(lotOf('j'))} AND ${lotOf('j')} < ${HL}`, [fields]);
    }
    await c.query('DROP TABLE bench_year.files, bench_year.tpl_payloads, bench_year.tpl_typed, bench_year.tpl_lots, bench_year.tpl_vehicles');
    await q('VACUUM ANALYZE', 'VACUUM (ANALYZE)');
    await c.query('CHECKPOINT');
    const seconds = secs(t0);
    await c.query('UPDATE bench_year.meta SET filled_at = now(), fill_seconds = $1, next_generation = 1', [seconds.toFixed(0)]);
    say(`fill done in ${(seconds / 60).toFixed(1)} min`);
  });
}

/** The database's size per table (heap with TOAST, indexes), largest first. */
async function sizes(db) {
  await db.query('ANALYZE');
  const { rows } = await db.query(`SELECT n.nspname || '.' || c.relname AS name, greatest(c.reltuples, 0)::bigint AS rows,
      pg_table_size(c.oid) AS heap, pg_indexes_size(c.oid) AS idx, pg_total_relation_size(c.oid) AS total
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind = 'r' AND n.nspname IN ('raw', 'staging', 'audit', 'public') ORDER BY pg_total_relation_size(c.oid) DESC`);
  const { rows: [all] } = await db.query('SELECT pg_database_size(current_database()) AS s');
  const gb = (b) => (Number(b) / 2 ** 30).toFixed(2);
  console.log('');
  console.log(`| table | rows (estimate) | table with TOAST GiB | indexes GiB | total GiB |`);
  console.log('|---|---|---|---|---|');
  for (const r of rows) if (Number(r.total) >= 1 << 20) console.log(`| ${r.name} | ${r.rows} | ${gb(r.heap)} | ${gb(r.idx)} | ${gb(r.total)} |`);
  console.log(`| the database (pg_database_size) | | | | ${gb(all.s)} |`);
}
