/**
 * The command line as a user meets it: `node dist/cli/main.js …` in a child process. Argument and
 * configuration errors need no database; two runs on an embedded PostgreSQL of their own check that
 * stdout carries only results and that a closed stdout or a signal stops what the command started.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeFeedFile } from '../../src/sample/feedGenerator.js';
import { freePort } from '../helpers/wait.js';

const CLI = new URL('../../dist/cli/main.js', import.meta.url).pathname;
const FIXTURE = new URL('../fixtures/real-2026-v4.csv', import.meta.url).pathname;
const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** The CLI with no database configured: whatever it says, it must say before it would need one. */
function cli(args: string[], env: Record<string, string> = {}): { code: number | null; stdout: string; stderr: string } {
  const { DATABASE_URL: _d, ...rest } = process.env;
  const r = spawnSync(process.execPath, [CLI, ...args], {
    env: { ...rest, VINOPS_DATA_DIR: '/nonexistent/vinops-cli-test', ...env }, encoding: 'utf8', timeout: 20_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('the command line', () => {
  it('--version prints the package version', () => {
    expect(cli(['--version'])).toEqual({ code: 0, stdout: `vinops-etl ${VERSION}\n`, stderr: '' });
  });

  it.each(['run', 'status', 'ingest', 'replay', 'migrate', 'sample'])('`%s --help` prints that command\'s help and exits 0', (command) => {
    const r = cli([command, '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^Usage: vinops-etl ${command}`));
    expect(r.stdout).toMatch(/Options:/);
    expect(cli(['help', command]).stdout).toBe(r.stdout);
  });

  it('help lists every command and the exit statuses', () => {
    const r = cli(['--help']);
    expect(r.code).toBe(0);
    for (const c of ['run', 'status', 'ingest', 'replay', 'migrate', 'sample']) expect(r.stdout).toMatch(new RegExp(`^  ${c} `, 'm'));
    expect(r.stdout).toMatch(/Exit status: 0 done, 1 a file failed/);
  });

  it.each([
    [['status', '--limit', 'abc'], 'vinops-etl status: --limit: expected a positive whole number, got "abc"'],
    [['status', '--limit', '0'], 'vinops-etl status: --limit: expected a positive whole number, got "0"'],
    [['sample', '--rows', '1e3'], 'vinops-etl sample: --rows: expected a positive whole number, got "1e3"'],
    [['status', '--limit'], 'vinops-etl status: --limit: expected a value'],
    [['status', '--bogus'], 'vinops-etl status: unknown option --bogus'],
    [['--bogus', 'status'], 'vinops-etl status: unknown option --bogus'],
    [['status', '--rows', '5'], 'vinops-etl status: --rows is not an option of status'],
    [['status', '--json=yes'], 'vinops-etl status: --json takes no value (got "yes")'],
    [['status', 'extra'], 'vinops-etl status: unexpected argument "extra"'],
    [['ingest'], 'vinops-etl ingest: expected at least one file: vinops-etl ingest [--json] <file>...'],
    [['replay'], 'vinops-etl replay: expected --file FILE_ID (repeatable) or --all'],
    [['replay', '--file', 'nope'], 'vinops-etl replay: --file: not a file_id (a uuid, see vinops-etl status), got "nope"'],
    [['fetch'], 'vinops-etl fetch: expected --once (the daemon fetches on its schedule)'],
    [['fetch', '--once'], 'vinops-etl fetch: fetching is off: set fetchUrl in the config file or VINOPS_FETCH_URL'],
    [['frobnicate'], 'vinops-etl: unknown command "frobnicate" (commands: run, status, ingest, replay, fetch, export, prune, migrate, roles, sample, help)'],
  ])('%j: a usage error names the option, points to --help and exits 2', (args, message) => {
    const r = cli(args);
    const command = /^vinops-etl (\w+):/.exec(message)?.[1];
    expect(r).toEqual({ code: 2, stdout: '', stderr: `${message}\nSee: vinops-etl ${command ? `${command} ` : ''}--help\n` });
  });

  it.each([
    [{ VINOPS_LOG_PRETTY: 'maybe' }, 'VINOPS_LOG_PRETTY: expected true or false (or 1/0, yes/no, on/off) (got "maybe")'],
    [{ DATABASE_URL: 'postgresql://etl:p@ss#1@db:5432/vinops' }, 'DATABASE_URL: not a valid URL (percent-encode reserved characters in the user name and password: %23 for #, %2F for /, %3F for ?, %40 for @; the port must be 1 to 65535) (got "postgresql://etl:***@db:5432/vinops")'],
  ])('a bad configuration %j stops every command with one error naming it, exit 2', (env, line) => {
    for (const command of [['status'], ['run'], ['ingest', FIXTURE]]) {
      expect(cli(command, env)).toEqual({ code: 2, stdout: '', stderr: `invalid configuration:\n  ${line}\n` });
    }
  });

  it('`ingest` of a missing file says so in words, without starting a database, and exits 1', () => {
    const r = cli(['ingest', '/nonexistent/2025/01/31/1215.csv']);
    expect(r).toEqual({ code: 1, stdout: '/nonexistent/2025/01/31/1215.csv: FAILED: no such file: /nonexistent/2025/01/31/1215.csv\n', stderr: '' });
    const json = cli(['ingest', '--json', '/nonexistent/a.csv', '/tmp']);
    expect(json.code).toBe(1);
    expect(json.stdout.trim().split('\n').map((l) => JSON.parse(l))).toEqual([
      { outcome: 'failed', path: '/nonexistent/a.csv', reason: 'no such file: /nonexistent/a.csv' },
      { outcome: 'failed', path: '/tmp', reason: 'not a regular file: /tmp' },
    ]);
  });
});

describe('on an embedded PostgreSQL of its own', () => {
  const cleanup: string[] = [];
  afterAll(async () => {
    for (const dir of cleanup) await rm(dir, { recursive: true, force: true });
  });

  /** A config with its own cluster under /tmp (mode 0755: as root, the postgres user must reach it). */
  async function ownCluster(): Promise<{ dir: string; config: string; port: number }> {
    const dir = await mkdtemp('/tmp/vinops-cli-');
    await chmod(dir, 0o755);
    cleanup.push(dir);
    const port = await freePort();
    const config = join(dir, 'config.json');
    await writeFile(config, JSON.stringify({ dataDir: join(dir, 'var'), rawDir: join(dir, 'raw'), embeddedPort: port, metricsAddr: '127.0.0.1:0' }));
    return { dir, config, port };
  }

  function spawnCli(args: string[]) {
    const { DATABASE_URL: _d, ...env } = process.env;
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...env, VINOPS_LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
    return { child, exited, out: () => stdout, err: () => stderr };
  }

  function listening(port: number): Promise<boolean> {
    return new Promise((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => { socket.destroy(); resolve(true); });
      socket.once('error', () => resolve(false));
    });
  }

  it('`ingest --json` prints only snake_case JSON lines on stdout (logs on stderr); SIGTERM mid-way rolls back, stops the server, exits 143', async () => {
    const { dir, config, port } = await ownCluster();
    const big = join(dir, 'big.csv');
    await writeFeedFile(big, { rows: 60_000, seed: 7 });
    const run = spawnCli(['ingest', '--json', '--config', config, FIXTURE, big]);
    // The first summary is out: the second file is being read when the signal arrives.
    await new Promise<void>((resolve) => run.child.stdout.on('data', () => resolve()));
    run.child.kill('SIGTERM');
    expect(await run.exited).toEqual({ code: 143, signal: null });
    const lines = run.out().trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({ outcome: 'ingested', path: FIXTURE, file_id: expect.any(String), data_rows: expect.any(Number),
      parse_errors: 0, vin_unknown_pct: expect.any(Number), rows_per_second: expect.any(Number),
      upserts: { lots: { inserted: expect.any(Number) }, vin_conflicts: 0, unknown_sale_status: 0 }, phases: { read_ms: expect.any(Number) } });
    expect(lines[1]).toEqual({ outcome: 'failed', path: big, reason: 'interrupted by SIGTERM: rolled back, nothing stored' });
    expect(JSON.stringify(lines)).not.toMatch(/"[a-z]+[A-Z]\w*":/); // no camelCase key
    expect(run.err()).toMatch(/"msg":"using the embedded PostgreSQL"/);
    expect(run.err()).toMatch(/vinops-etl: SIGTERM: stopping/);
    expect(run.err()).not.toMatch(/^\s+at /m);
    expect(await listening(port)).toBe(false);

    // `status` whose stdout is closed before it writes (`vinops-etl status | head -1` when the reader
    // is gone): no EPIPE stack trace, exit 141 as for SIGPIPE, and the embedded server is stopped.
    const status = spawnCli(['status', '--config', config]);
    status.child.stdout.destroy();
    expect(await status.exited).toEqual({ code: 141, signal: null });
    expect(status.err()).not.toMatch(/EPIPE|^\s+at /m);
    expect(status.err()).toMatch(/"msg":"using the embedded PostgreSQL"/); // it did start one
    expect(await listening(port)).toBe(false);
  });
});
