/**
 * A secret never reaches what the process shows: its logs, its child processes' environment (the
 * embedded PostgreSQL), /metrics or the status page. Sentinel values, grepped for everywhere.
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { freePort } from '../helpers/wait.js';

const CLI = new URL('../../dist/cli/main.js', import.meta.url).pathname;
const KEY = 'kEy-SeNtInEl-5521';
const COOKIE = 'cOoKiE-SeNtInEl-7730';
const dirs: string[] = [];
// As root the embedded cluster lives outside the data directory (pg.location says where): removed too,
// or every run as root leaves one behind under /var/lib/vinops-etl.
afterAll(async () => {
  for (const d of dirs) {
    const location = join(d, 'var', 'pg.location');
    if (existsSync(location)) await rm(readFileSync(location, 'utf8').trim(), { recursive: true, force: true });
    await rm(d, { recursive: true, force: true });
  }
});

/** The environment of every process whose command line mentions `mark`, as text. */
function environsOf(mark: string): string[] {
  const out: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (cmd.includes(mark)) out.push(readFileSync(`/proc/${pid}/environ`, 'utf8'));
    } catch { /* gone, or not ours to read */ }
  }
  return out;
}

it('the daemon with the fetch key from a credential file and the cookie in its environment: neither in its output, /metrics, the status page or the embedded server\'s environment', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'vinops-secrets-'));
  dirs.push(dir);
  const raw = join(dir, 'raw');
  const { mkdir } = await import('node:fs/promises');
  await mkdir(raw);
  // A feed that refuses (403): the fetch is logged at once, as blocked.
  const feed = createServer((_req, res) => { res.writeHead(403); res.end('Forbidden'); });
  await new Promise<void>((r) => feed.listen(0, '127.0.0.1', () => r()));
  const feedPort = (feed.address() as { port: number }).port;
  await writeFile(join(dir, 'fetch-url'), `http://127.0.0.1:${feedPort}/cgi-bin/salesdata.cgi?authKey=${KEY}\n`);
  const port = await freePort();
  const child = spawn(process.execPath, [CLI, 'run'], {
    env: { ...process.env, DATABASE_URL: '', VINOPS_DATA_DIR: join(dir, 'var'), VINOPS_EMBEDDED_PORT: String(await freePort()), VINOPS_RAW_DIR: raw,
      VINOPS_METRICS_ADDR: `127.0.0.1:${port}`, CREDENTIALS_DIRECTORY: dir, VINOPS_LOG_LEVEL: 'debug',
      // The cookie in the environment: the embedded server, a child, must not inherit it.
      VINOPS_FETCH_COOKIE: COOKIE },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d) => { output += d; });
  child.stderr.on('data', (d) => { output += d; });
  try {
    let ready = false;
    for (let i = 0; i < 300 && !ready; i++) {
      await new Promise((r) => setTimeout(r, 100));
      ready = output.includes('"vinops-etl running"') && output.includes('feed download');
    }
    expect(ready, output.slice(-2000)).toBe(true);
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const page = await (await fetch(`http://127.0.0.1:${port}/`)).text();
    expect(metrics).toContain('vinops_etl_fetch_enabled 1');
    const servers = environsOf(join(dir, 'var')).concat(environsOf('postgres'));
    expect(servers.length).toBeGreaterThan(0);
    for (const text of [output, metrics, page, ...servers]) {
      expect(text).not.toContain(KEY);
      expect(text).not.toContain(COOKIE);
    }
    expect(output).toContain(`127.0.0.1:${feedPort}/cgi-bin/salesdata.cgi`);
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.on('exit', r));
    await new Promise((r) => feed.close(r));
  }
});
