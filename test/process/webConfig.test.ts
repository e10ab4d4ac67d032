/**
 * The HTTP endpoint with a web configuration file (the exporter convention): TLS and basic auth on
 * every path but /healthz, checked by hand and by a real Prometheus (Debian's prometheus) scraping it.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config.js';
import { HttpServer } from '../../src/observe/httpServer.js';
import { loadWebConfig } from '../../src/observe/webConfig.js';
import { freePort } from '../helpers/wait.js';

const log = pino({ level: 'silent' });
const PASSWORD = 'scrape-pw-1234';
let dir: string;
let server: HttpServer;
let port: number;
let ca: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vinops-web-'));
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', 'web.key', '-out', 'web.crt'], { cwd: dir, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  ca = readFileSync(join(dir, 'web.crt'), 'utf8');
  // $2y$, as htpasswd -B and the exporter toolkit's docs write it.
  const hash = bcrypt.hashSync(PASSWORD, 10).replace(/^\$2[ab]\$/, '$2y$');
  await writeFile(join(dir, 'web.yml'), `tls_server_config:\n  cert_file: web.crt\n  key_file: web.key\nbasic_auth_users:\n  prometheus: ${hash}\n`);
  port = await freePort();
  server = new HttpServer(`127.0.0.1:${port}`, log, {
    metrics: async () => ({ contentType: 'text/plain; version=0.0.4; charset=utf-8', body: '# TYPE vinops_etl_test gauge\nvinops_etl_test 1\n' }),
    readiness: async () => ({ ready: true, database: true, schema: true, watcher: true }),
    statusPage: async () => '<html>status</html>',
  }, loadWebConfig(join(dir, 'web.yml')));
  await server.start();
});

afterAll(async () => {
  await server?.stop();
  await rm(dir, { recursive: true, force: true });
});

function get(path: string, auth?: string): Promise<{ status: number; body: string; challenge: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, ca, servername: 'localhost', headers: auth === undefined ? {} : { authorization: `Basic ${Buffer.from(auth).toString('base64')}` } }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode!, body, challenge: res.headers['www-authenticate'] }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('the HTTP endpoint with webConfigFile', () => {
  it('speaks TLS; every path but /healthz asks for basic auth', async () => {
    expect((await get('/healthz')).status).toBe(200);
    for (const path of ['/metrics', '/readyz', '/']) {
      const r = await get(path);
      expect(r.status, path).toBe(401);
      expect(r.challenge).toBe('Basic realm="vinops-etl", charset="UTF-8"');
      expect((await get(path, 'prometheus:wrong')).status).toBe(401);
      expect((await get(path, `nobody:${PASSWORD}`)).status).toBe(401);
      expect((await get(path, `prometheus:${PASSWORD}`)).status).toBe(200);
    }
    // Plain HTTP to the TLS port is not served.
    const plain = await fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.status, () => 'refused');
    expect(plain).not.toBe(200);
  });

  it('refuses a web configuration it cannot honour, naming the key', async () => {
    await writeFile(join(dir, 'bad.yml'), 'tls_server_config:\n  cert_file: web.crt\n  key_file: web.key\n  client_ca_file: ca.crt\n');
    expect(() => loadWebConfig(join(dir, 'bad.yml'))).toThrow(ConfigError);
    expect(() => loadWebConfig(join(dir, 'bad.yml'))).toThrow(/tls_server_config\.client_ca_file is not supported/);
    await writeFile(join(dir, 'bad2.yml'), 'basic_auth_users:\n  prometheus: plaintext\n');
    expect(() => loadWebConfig(join(dir, 'bad2.yml'))).toThrow(/basic_auth_users\.prometheus: expected a bcrypt hash/);
  });

  const promtool = spawnSync('sh', ['-c', 'command -v prometheus'], { encoding: 'utf8' }).stdout.trim();
  it.skipIf(promtool === '' && !process.env.CI)('a real Prometheus scrapes it over TLS with basic auth, and is refused without', async () => {
    if (promtool === '') throw new Error('prometheus is not installed (apt-get install prometheus)');
    const promPort = await freePort();
    await writeFile(join(dir, 'prometheus.yml'), `global:\n  scrape_interval: 1s\nscrape_configs:
  - job_name: good
    scheme: https
    tls_config: { ca_file: ${join(dir, 'web.crt')}, server_name: localhost }
    basic_auth: { username: prometheus, password: ${PASSWORD} }
    static_configs: [{ targets: ['127.0.0.1:${port}'] }]
  - job_name: nopassword
    scheme: https
    tls_config: { ca_file: ${join(dir, 'web.crt')}, server_name: localhost }
    static_configs: [{ targets: ['127.0.0.1:${port}'] }]
`);
    const prom: ChildProcess = spawn(promtool, [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'tsdb')}`,
      `--web.listen-address=127.0.0.1:${promPort}`], { stdio: 'ignore' });
    try {
      let up: Record<string, string> = {};
      for (let i = 0; i < 100 && Object.keys(up).length < 2; i++) {
        await new Promise((r) => setTimeout(r, 200));
        const res = await fetch(`http://127.0.0.1:${promPort}/api/v1/query?query=up`).then((r) => r.json(), () => undefined) as
          { data?: { result: { metric: { job: string }; value: [number, string] }[] } } | undefined;
        up = Object.fromEntries((res?.data?.result ?? []).map((x) => [x.metric.job, x.value[1]]));
      }
      expect(up).toEqual({ good: '1', nopassword: '0' });
      const sample = await fetch(`http://127.0.0.1:${promPort}/api/v1/query?query=vinops_etl_test`).then((r) => r.json()) as { data: { result: unknown[] } };
      expect(sample.data.result).toHaveLength(1);
    } finally {
      prom.kill('SIGTERM');
      await new Promise((r) => prom.on('exit', r));
    }
  }, 60_000);
});
