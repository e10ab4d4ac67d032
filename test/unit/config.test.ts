import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, redactUrl } from '../../src/config.js';

describe('loadConfig', () => {
  it('fills every default and freezes the result', () => {
    const c = loadConfig({ env: {} });
    expect(c).toMatchObject({ rawDir: '/var/data/vinops/raw/copart', metricsAddr: '127.0.0.1:9464', workers: 1, settleMs: 3000, logLevel: 'info' });
    expect(c.databaseUrl).toBeUndefined();
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('lets the environment override the file, and resolves file paths against the file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vinops-cfg-'));
    const file = join(dir, 'c.json');
    await writeFile(file, JSON.stringify({ rawDir: 'raw', workers: 2, logLevel: 'debug', '//': 'comment' }));
    const c = loadConfig({ file, env: { VINOPS_WORKERS: '3', DATABASE_URL: 'postgresql://u:p@h/db' } });
    expect(c.rawDir).toBe(join(dir, 'raw'));
    expect(c.workers).toBe(3);
    expect(c.logLevel).toBe('debug');
    expect(c.databaseUrl).toBe('postgresql://u:p@h/db');
  });

  it.each([
    [{ VINOPS_WORKERS: 'many' }, /VINOPS_WORKERS: .*"many"/],
    [{ VINOPS_METRICS_ADDR: '9464' }, /VINOPS_METRICS_ADDR: expected host:port/],
    [{ VINOPS_LOG_LEVEL: 'loud' }, /VINOPS_LOG_LEVEL/],
    [{ DATABASE_URL: 'mysql://x:secret@h/db' }, /DATABASE_URL: expected a postgres/],
  ])('names the key and the bad value: %j', (env, message) => {
    expect(() => loadConfig({ env })).toThrow(ConfigError);
    expect(() => loadConfig({ env })).toThrow(message);
  });

  it.each([
    ['VINOPS_LOG_PRETTY', 'maybe', /VINOPS_LOG_PRETTY: expected true or false .*\(got "maybe"\)/],
    ['VINOPS_WORKERS', '', undefined], // empty: ignored, the default
    ['VINOPS_WORKERS', '0x2', /VINOPS_WORKERS: expected a whole number \(got "0x2"\)/],
    ['VINOPS_WORKERS', '2.5', /VINOPS_WORKERS: expected a whole number \(got "2.5"\)/],
    ['VINOPS_WORKERS', '0', /VINOPS_WORKERS: expected a whole number from 1 to 16 \(got "0"\)/],
    ['VINOPS_SETTLE_MS', '1e3', /VINOPS_SETTLE_MS: expected a whole number \(got "1e3"\)/],
    ['VINOPS_METRICS_ADDR', '127.0.0.1:99999', /VINOPS_METRICS_ADDR: expected host:port with a port from 0 to 65535/],
    ['DATABASE_URL', 'postgresql://u:p#ss@db.example:5432/vinops', /DATABASE_URL: not a valid URL \(percent-encode reserved .*\(got "postgresql:\/\/u:\*\*\*@db\.example:5432\/vinops"\)/],
    ['DATABASE_URL', 'postgresql://u:p@h:99999/vinops', /DATABASE_URL: not a valid URL/],
  ])('refuses %s=%j with one line naming the variable and the value', (name, value, message) => {
    if (message === undefined) {
      expect(loadConfig({ env: { [name]: value } }).workers).toBe(1);
      return;
    }
    expect(() => loadConfig({ env: { [name]: value } })).toThrow(message);
  });

  it('reads the words of a boolean in the environment and the file, and refuses any other value in the file too', async () => {
    for (const [v, want] of [['1', true], ['yes', true], ['ON', true], ['true', true], ['0', false], ['no', false], ['off', false], ['FALSE', false]] as const) {
      expect(loadConfig({ env: { VINOPS_LOG_PRETTY: v } }).logPretty).toBe(want);
    }
    const dir = await mkdtemp(join(tmpdir(), 'vinops-cfg-'));
    const file = join(dir, 'c.json');
    await writeFile(file, JSON.stringify({ logPretty: 'false', workers: '2' }));
    expect(loadConfig({ file, env: {} })).toMatchObject({ logPretty: false, workers: 2 });
    for (const [key, value, message] of [
      ['logPretty', 'maybe', /c\.json: logPretty: expected true or false .*\(got "maybe"\)/],
      ['logPretty', 1, /logPretty: expected true or false/],
      ['workers', true, /c\.json: workers: expected a whole number \(got true\)/],
      ['workers', null, /workers: expected a whole number \(got null\)/],
      ['workers', '', /workers: expected a whole number \(got ""\)/],
      ['workers', [2], /workers: expected a whole number \(got \[2\]\)/],
      ['embeddedPort', 70000, /embeddedPort: expected a whole number from 1024 to 65535 \(got 70000\)/],
    ] as const) {
      await writeFile(file, JSON.stringify({ [key]: value }));
      expect(() => loadConfig({ file, env: {} }), `${key}: ${JSON.stringify(value)}`).toThrow(message);
    }
  });

  it('never prints a password', () => {
    expect(() => loadConfig({ env: { DATABASE_URL: 'mysql://x:secret@h/db' } })).toThrow(/x:\*\*\*@h/);
    expect(redactUrl('postgresql://u:pw@h:5432/db')).toBe('postgresql://u:***@h:5432/db');
    expect(redactUrl('postgresql://u:p@ss#1@h:5432/db')).toBe('postgresql://u:***@h:5432/db'); // an unencoded @ in the password
  });

  it('refuses unknown keys in the file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vinops-cfg-'));
    const file = join(dir, 'c.json');
    await writeFile(file, JSON.stringify({ workerz: 2 }));
    expect(() => loadConfig({ file, env: {} })).toThrow(/unknown config key\(s\): workerz/);
  });
});

describe('secrets from files (VINOPS_*_FILE, systemd credentials)', () => {
  const SENTINEL = 'pw-sEnTiNeL-9371';
  const url = `postgres://etl:${SENTINEL}@db.example:5432/vinops`;

  it('reads DATABASE_URL, the fetch URL and the cookie from the files their _FILE variables name (one trailing newline dropped)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vinops-secrets-'));
    await writeFile(join(dir, 'db'), `${url}\n`);
    await writeFile(join(dir, 'fetch'), `https://feed.example/salesdata.cgi?authKey=${SENTINEL}\n`);
    await writeFile(join(dir, 'cookie'), `incap=${SENTINEL}`);
    const c = loadConfig({ env: { VINOPS_DATABASE_URL_FILE: join(dir, 'db'), VINOPS_FETCH_URL_FILE: join(dir, 'fetch'), VINOPS_FETCH_COOKIE_FILE: join(dir, 'cookie') } });
    expect(c.databaseUrl).toBe(url);
    expect(c.fetchUrl).toBe(`https://feed.example/salesdata.cgi?authKey=${SENTINEL}`);
    expect(c.fetchCookie).toBe(`incap=${SENTINEL}`);
  });

  it('reads systemd credentials from $CREDENTIALS_DIRECTORY; a variable wins over them, its _FILE too', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vinops-creds-'));
    await writeFile(join(dir, 'database-url'), url);
    await writeFile(join(dir, 'fetch-cookie'), 'from-credential');
    expect(loadConfig({ env: { CREDENTIALS_DIRECTORY: dir } })).toMatchObject({ databaseUrl: url, fetchCookie: 'from-credential' });
    expect(loadConfig({ env: { CREDENTIALS_DIRECTORY: dir, VINOPS_FETCH_COOKIE: 'from-env' } }).fetchCookie).toBe('from-env');
    await writeFile(join(dir, 'other'), 'from-file');
    expect(loadConfig({ env: { CREDENTIALS_DIRECTORY: dir, VINOPS_FETCH_COOKIE_FILE: join(dir, 'other') } }).fetchCookie).toBe('from-file');
    // No credential file, no value: fetching stays off.
    expect(loadConfig({ env: { CREDENTIALS_DIRECTORY: dir } }).fetchUrl).toBeUndefined();
  });

  it('says which file is unreadable, empty or both set, and never what a secret file holds', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vinops-secrets-bad-'));
    await writeFile(join(dir, 'empty'), '\n');
    await writeFile(join(dir, 'bad-url'), `not a url ${SENTINEL}`);
    const err = (env: NodeJS.ProcessEnv): string => { try { loadConfig({ env }); return 'no error'; } catch (e) { expect(e).toBeInstanceOf(ConfigError); return (e as Error).message; } };
    expect(err({ VINOPS_DATABASE_URL_FILE: join(dir, 'missing') })).toBe(`VINOPS_DATABASE_URL_FILE (${join(dir, 'missing')}): cannot read it: ENOENT`);
    expect(err({ VINOPS_FETCH_COOKIE_FILE: join(dir, 'empty') })).toBe(`VINOPS_FETCH_COOKIE_FILE (${join(dir, 'empty')}): the file is empty`);
    expect(err({ DATABASE_URL: url, VINOPS_DATABASE_URL_FILE: join(dir, 'empty') })).toBe('DATABASE_URL and VINOPS_DATABASE_URL_FILE are both set: set one');
    const bad = err({ VINOPS_FETCH_URL_FILE: join(dir, 'bad-url') });
    expect(bad).toContain(`VINOPS_FETCH_URL_FILE (${join(dir, 'bad-url')})`);
    expect(bad).not.toContain(SENTINEL);
    const badDb = err({ VINOPS_DATABASE_URL_FILE: join(dir, 'bad-url') });
    expect(badDb).toContain('VINOPS_DATABASE_URL_FILE');
    expect(badDb).not.toContain(SENTINEL);
  });
});
