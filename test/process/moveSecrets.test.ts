import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';

// install.sh moves secrets from an older /etc/vinops-etl/env into the unit's credential files.
const SCRIPT = new URL('../../systemd/move-secrets.sh', import.meta.url).pathname;

let dir: string | undefined;
afterEach(async () => { if (dir) await rm(dir, { recursive: true, force: true }); });

function run(confDir: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('bash', [SCRIPT, confDir], (err, stdout, stderr) => resolve({ code: err === null ? 0 : Number((err as { code?: number }).code), stdout, stderr }));
  });
}

const mode = async (path: string): Promise<string> => ((await stat(path)).mode & 0o777).toString(8);

it('moves DATABASE_URL and the fetch secrets out of env into 600 files the daemon reads as credentials; a second run changes nothing', async () => {
  dir = await mkdtemp(join(tmpdir(), 'vinops-move-secrets-'));
  const url = 'postgresql://vinops_etl:p%40ss w0rd$!@db.example.internal:5432/vinops?sslmode=verify-full';
  const env = [
    '# overrides',
    `DATABASE_URL='${url}'`,
    'VINOPS_WORKERS=2',
    'VINOPS_FETCH_URL="https://feed.example.invalid/cgi-bin/salesdata.cgi?authKey=SENTINEL-KEY-123&x=\\"q\\""',
    'VINOPS_FETCH_COOKIE=incap_ses_1=SENTINEL-COOKIE',
    '',
  ].join('\n');
  await writeFile(join(dir, 'env'), env, { mode: 0o600 });

  const first = await run(dir);
  expect(first.code).toBe(0);
  expect(first.stderr).toBe('');
  const creds = join(dir, 'credentials');
  expect(await mode(creds)).toBe('700');
  expect(await readFile(join(creds, 'database-url'), 'utf8')).toBe(url);
  expect(await readFile(join(creds, 'fetch-url'), 'utf8')).toBe('https://feed.example.invalid/cgi-bin/salesdata.cgi?authKey=SENTINEL-KEY-123&x="q"');
  expect(await readFile(join(creds, 'fetch-cookie'), 'utf8')).toBe('incap_ses_1=SENTINEL-COOKIE');
  for (const f of ['database-url', 'fetch-url', 'fetch-cookie']) expect(await mode(join(creds, f))).toBe('600');

  const after = await readFile(join(dir, 'env'), 'utf8');
  expect(after).not.toMatch(/p%40ss|SENTINEL/);
  expect(after).toContain('VINOPS_WORKERS=2');
  expect(after).toContain(`# DATABASE_URL: moved to ${join(creds, 'database-url')} by install.sh`);
  expect(await mode(join(dir, 'env'))).toBe('600');

  // What the daemon then reads, as the unit hands it over ($CREDENTIALS_DIRECTORY).
  const config = loadConfig({ env: { CREDENTIALS_DIRECTORY: creds, VINOPS_WORKERS: '2' } });
  expect(config.databaseUrl).toBe(url);
  expect(config.fetchCookie).toBe('incap_ses_1=SENTINEL-COOKIE');

  const second = await run(dir);
  expect(second.code).toBe(0);
  expect(second.stdout).toBe('');
  expect(await readFile(join(dir, 'env'), 'utf8')).toBe(after);
});

it('reads values as systemd does: white space around the key and the value, escapes inside double quotes; leaves what it would read differently', async () => {
  dir = await mkdtemp(join(tmpdir(), 'vinops-move-secrets-'));
  await writeFile(join(dir, 'env'), [
    'DATABASE_URL =  "postgresql://u:p\\$x\\`y\\\\z@h/db"  ',
    "VINOPS_FETCH_URL= 'https://feed.example.invalid/x?authKey=K' trailing",
    '',
  ].join('\n'), { mode: 0o600 });
  const r = await run(dir);
  expect(r.code).toBe(0);
  expect(await readFile(join(dir, 'credentials', 'database-url'), 'utf8')).toBe('postgresql://u:p$x`y\\z@h/db');
  expect(r.stderr).toContain('VINOPS_FETCH_URL has a backslash, a quote or text after its closing quote');
  const env = await readFile(join(dir, 'env'), 'utf8');
  expect(env).not.toContain('postgresql://');
  expect(env).toContain("VINOPS_FETCH_URL= 'https://feed.example.invalid/x?authKey=K' trailing");
});

it('a fresh install gets a placeholder; a value differing from its credential file stays and is warned about; a backslash outside quotes is left for a person', async () => {
  dir = await mkdtemp(join(tmpdir(), 'vinops-move-secrets-'));
  await writeFile(join(dir, 'env'), 'VINOPS_WORKERS=1\n', { mode: 0o600 });
  expect((await run(dir)).code).toBe(0);
  expect(await readFile(join(dir, 'credentials', 'database-url'), 'utf8')).toContain('CHANGE_ME');

  await writeFile(join(dir, 'env'), 'DATABASE_URL=postgresql://other@h/db\nVINOPS_FETCH_COOKIE=a\\b\n', { mode: 0o600 });
  const r = await run(dir);
  expect(r.code).toBe(0);
  expect(r.stderr).toContain('DATABASE_URL is set in');
  expect(r.stderr).toContain('differs from');
  expect(r.stderr).toContain('VINOPS_FETCH_COOKIE has a backslash, a quote or text after its closing quote');
  expect(await readFile(join(dir, 'env'), 'utf8')).toBe('DATABASE_URL=postgresql://other@h/db\nVINOPS_FETCH_COOKIE=a\\b\n');
  expect(await readFile(join(dir, 'credentials', 'database-url'), 'utf8')).toContain('CHANGE_ME');
});
