import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, redactUrl } from '../src/config.js';

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

  it('never prints a password', () => {
    expect(() => loadConfig({ env: { DATABASE_URL: 'mysql://x:secret@h/db' } })).toThrow(/x:\*\*\*@h/);
    expect(redactUrl('postgresql://u:pw@h:5432/db')).toBe('postgresql://u:***@h:5432/db');
  });

  it('refuses unknown keys in the file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vinops-cfg-'));
    const file = join(dir, 'c.json');
    await writeFile(file, JSON.stringify({ workerz: 2 }));
    expect(() => loadConfig({ file, env: {} })).toThrow(/unknown config key\(s\): workerz/);
  });
});
