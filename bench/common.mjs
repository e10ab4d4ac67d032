/**
 * What the benchmarks share: `vinops-etl` in a child process (timed, its peak RSS), database URLs,
 * a free port for an embedded cluster.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import pg from 'pg';

const root = new URL('..', import.meta.url).pathname;

/** `vinops-etl <args>` against dbUrl, synchronously (set-up steps). */
export function runCli(args, dbUrl) {
  const r = spawnSync(process.execPath, ['dist/cli/main.js', ...args], { cwd: root, env: { ...process.env, DATABASE_URL: dbUrl, VINOPS_LOG_LEVEL: 'warn' }, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`vinops-etl ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

/** `vinops-etl <args>` in a child process, timed start to exit, its peak RSS (VmHWM) sampled from /proc; the last JSON line it prints. */
export async function timedCli(args, dbUrl) {
  const t = performance.now();
  const child = spawn(process.execPath, ['--max-semi-space-size=4', 'dist/cli/main.js', ...args], {
    cwd: root, env: { ...process.env, DATABASE_URL: dbUrl, VINOPS_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  let peakRssKb = 0;
  const sample = setInterval(async () => {
    const status = await readFile(`/proc/${child.pid}/status`, 'utf8').catch(() => '');
    const m = /VmHWM:\s+(\d+) kB/.exec(status);
    if (m) peakRssKb = Math.max(peakRssKb, Number(m[1]));
  }, 25);
  const code = await new Promise((resolve) => child.on('exit', resolve));
  clearInterval(sample);
  const seconds = (performance.now() - t) / 1000;
  if (code !== 0) throw new Error(`vinops-etl ${args.join(' ')} exited ${code}: ${out}`);
  return { seconds, peakRssKb, result: JSON.parse(out.trim().split('\n').pop()) };
}

/** `vinops-etl ingest --json`, timed, with its peak RSS. */
export async function ingest(path, dbUrl) {
  const { seconds, peakRssKb, result } = await timedCli(['ingest', '--json', path], dbUrl);
  if (result.outcome !== 'ingested') throw new Error(`ingest of ${path}: ${result.outcome} ${result.reason}`);
  // --json is snake_case; the benches keep their own camelCase names.
  const p = result.phases;
  return { seconds, rows: result.data_rows, newPayloads: result.new_payloads, peakRssKb, lots: result.upserts?.lots, fileId: result.file_id,
    phases: p && { readMs: p.read_ms, promoteMs: p.promote_ms, upsertMs: p.upsert_ms, lifecycleMs: p.lifecycle_ms }, events: result.lifecycle?.events };
}

/** fn with a client of its own on dbUrl, closed after. */
export async function withClient(dbUrl, fn) {
  const c = new pg.Client({ connectionString: dbUrl });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/**
 * A freshly initialised cluster has one WAL segment and creates (zero-fills) every further one the
 * first time it needs it, a cost a server in service does not pay (it recycles its segments):
 * ~1 GB written and dropped first, so what follows is measured as on a server in service.
 */
export async function warmWal(client) {
  await client.query(`CREATE TABLE bench_warm AS SELECT g, repeat('x', 500) AS t FROM generate_series(1, 2000000) g`);
  await client.query('DROP TABLE bench_warm');
  await client.query('CHECKPOINT');
}

export function formatEvents(e) {
  return e ? Object.entries(e).filter(([, n]) => n > 0).map(([k, n]) => `${n} ${k}`).join(', ') : '–';
}

export function withDatabase(u, name) {
  const x = new URL(u);
  x.pathname = `/${name}`;
  return x.toString();
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => { const { port } = srv.address(); srv.close(() => resolve(port)); });
  });
}
