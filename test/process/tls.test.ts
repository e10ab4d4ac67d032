/**
 * TLS to PostgreSQL against a server started with ssl=on and a CA and server certificate made here
 * with openssl: sslmode require, verify-ca and verify-full with libpq's meaning.
 */
import { spawnSync } from 'node:child_process';
import { chownSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedPostgres, type EmbeddedCluster } from '../../src/db/embedded.js';
import { createPool } from '../../src/db/pool.js';
import type { TlsSettings } from '../../src/db/tls.js';
import { freePort } from '../helpers/wait.js';
import { loadConfig } from '../../src/config.js';
import { DatabaseConfigError, openDatabase } from '../../src/db/open.js';

const log = pino({ level: 'silent' });
let dir: string;
let cluster: EmbeddedCluster;

function openssl(...args: string[]): void {
  const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vinops-tls-'));
  spawnSync('chmod', ['0755', dir]);
  // A CA, a server certificate for DNS:localhost signed by it, and a second CA that signed nothing.
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=vinops test CA', '-keyout', 'ca.key', '-out', 'ca.crt');
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=another CA', '-keyout', 'other.key', '-out', 'other.crt');
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-keyout', 'server.key', '-out', 'server.csr');
  spawnSync('sh', ['-c', 'printf "subjectAltName=DNS:localhost\\n" > san.ext'], { cwd: dir });
  openssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-extfile', 'san.ext', '-out', 'server.crt');
  spawnSync('chmod', ['0600', join(dir, 'server.key')]);
  spawnSync('chmod', ['0644', join(dir, 'server.crt'), join(dir, 'ca.crt'), join(dir, 'other.crt')]);
  if (userInfo().uid === 0) {
    // As root the server runs as postgres, which must own its key.
    const id = (f: string): number => Number(spawnSync('id', [f, 'postgres'], { encoding: 'utf8' }).stdout.trim());
    spawnSync('id', ['postgres']).status === 0 || spawnSync('useradd', ['--system', '--user-group', '--no-create-home', '--shell', '/usr/sbin/nologin', 'postgres']);
    chownSync(join(dir, 'server.key'), id('-u'), id('-g'));
  }
  cluster = await startEmbeddedPostgres({
    dir: join(dir, 'pg'), port: await freePort(), log, ephemeral: true, rootFallbackDir: join(dir, 'fallback'),
    postgresFlags: ['-c', 'ssl=on', '-c', `ssl_cert_file=${join(dir, 'server.crt')}`, '-c', `ssl_key_file=${join(dir, 'server.key')}`],
  });
}, 60_000);

afterAll(async () => {
  await cluster?.stop();
  await rm(dir, { recursive: true, force: true });
});

/** Logs in with the given host and TLS settings; the server's view of the connection, or the error. */
async function connect(host: string, tls: TlsSettings, query = ''): Promise<{ ssl: boolean } | Error> {
  const u = new URL(cluster.url);
  u.hostname = host;
  const pool = createPool(`${u.toString()}${query}`, log, 1, tls);
  try {
    const { rows } = await pool.query<{ ssl: boolean }>('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
    return rows[0]!;
  } catch (err) {
    return err as Error;
  } finally {
    await pool.end();
  }
}

describe('TLS to PostgreSQL', () => {
  it('verify-full: the right CA and host name connect, encrypted', async () => {
    expect(await connect('localhost', { sslMode: 'verify-full', sslRootCert: join(dir, 'ca.crt') })).toEqual({ ssl: true });
    // The same from the URL's parameters.
    expect(await connect('localhost', {}, `?sslmode=verify-full&sslrootcert=${encodeURIComponent(join(dir, 'ca.crt'))}`)).toEqual({ ssl: true });
  });

  it('verify-full refuses a wrong CA and a host name the certificate does not name, with the reason', async () => {
    const wrongCa = await connect('localhost', { sslMode: 'verify-full', sslRootCert: join(dir, 'other.crt') });
    expect(wrongCa).toBeInstanceOf(Error);
    expect((wrongCa as Error).message).toMatch(/self[- ]signed|unable to verify|certificate/i);
    const wrongHost = await connect('127.0.0.1', { sslMode: 'verify-full', sslRootCert: join(dir, 'ca.crt') });
    expect(wrongHost).toBeInstanceOf(Error);
    expect((wrongHost as Error).message).toMatch(/altnames|does not match/i);
  });

  it('verify-ca checks the chain, not the name; require encrypts without checking; disable does not encrypt', async () => {
    expect(await connect('127.0.0.1', { sslMode: 'verify-ca', sslRootCert: join(dir, 'ca.crt') })).toEqual({ ssl: true });
    expect(await connect('127.0.0.1', { sslMode: 'verify-ca', sslRootCert: join(dir, 'other.crt') })).toBeInstanceOf(Error);
    expect(await connect('127.0.0.1', { sslMode: 'require' })).toEqual({ ssl: true });
    expect(await connect('127.0.0.1', { sslMode: 'disable' })).toEqual({ ssl: false });
  });

  it('a missing CA file or an unknown sslmode is a configuration error naming it', () => {
    expect(() => createPool(cluster.url, log, 1, { sslMode: 'verify-full', sslRootCert: '/nonexistent/ca.crt' })).toThrow('sslrootcert /nonexistent/ca.crt: cannot read it: ENOENT');
    expect(() => createPool(`${cluster.url}?sslmode=allow-all`, log, 1)).toThrow(/sslmode: expected one of disable, prefer, require, verify-ca, verify-full \(got "allow-all"\)/);
    expect(() => createPool(cluster.url, log, 1, { sslMode: 'verify-ca' })).toThrow(/verify-ca needs sslrootcert/);
  });

  it('the daemon\'s and commands\' connection: config keys (VINOPS_DATABASE_SSL*), and a certificate that does not verify is one clear configuration error', async () => {
    const u = new URL(cluster.url);
    u.hostname = 'localhost';
    const good = loadConfig({ env: { DATABASE_URL: u.toString(), VINOPS_DATABASE_SSLMODE: 'verify-full', VINOPS_DATABASE_SSLROOTCERT: join(dir, 'ca.crt') } });
    const db = await openDatabase(good, log, { migrate: false });
    try {
      expect((await db.pool.query('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()')).rows[0]).toEqual({ ssl: true });
    } finally {
      await db.close();
    }
    const bad = loadConfig({ env: { DATABASE_URL: u.toString(), VINOPS_DATABASE_SSLMODE: 'verify-full', VINOPS_DATABASE_SSLROOTCERT: join(dir, 'other.crt') } });
    const err = await openDatabase(bad, log, { migrate: false }).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(DatabaseConfigError);
    expect((err as Error).message).toMatch(/^TLS to the database failed: .*\((UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN)\) — check sslmode, sslrootcert and the host name/);
    expect((err as Error).message).not.toContain(decodeURIComponent(u.password));
  });
});
