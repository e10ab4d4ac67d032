import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { z } from 'zod';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const hostPort = z.string().regex(/^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'expected host:port, e.g. 127.0.0.1:9464')
  .refine((v) => Number(v.slice(v.lastIndexOf(':') + 1)) <= 65535, 'expected host:port with a port from 0 to 65535');

/**
 * A whole number from min to max: a JSON number, or a string of digits (the environment, or a
 * quoted number in the file). Not z.coerce: it took `true` as 1, `""` and `null` as 0 and `"0x10"` as 16.
 */
function wholeNumber(min: number, max: number) {
  const range = `expected a whole number from ${min} to ${max}`;
  return z.preprocess(
    (v) => (typeof v === 'string' && /^\s*[+-]?\d+\s*$/.test(v) ? Number(v) : v),
    z.number({ error: 'expected a whole number' }).int(range).min(min, range).max(max, range),
  );
}

const TRUE_WORDS = /^(1|true|yes|on)$/i;
const FALSE_WORDS = /^(0|false|no|off)$/i;

/**
 * true or false: a JSON boolean, or one of the words below (environment or file). Anything else is
 * an error; z.coerce.boolean took every non-empty string, "false" and "maybe" included, as true.
 */
const flag = z.preprocess(
  (v) => (typeof v === 'string' ? (TRUE_WORDS.test(v.trim()) ? true : FALSE_WORDS.test(v.trim()) ? false : v) : v),
  z.boolean({ error: 'expected true or false (or 1/0, yes/no, on/off)' }),
);

/**
 * Whether node-postgres reads the connection string as written. It parses with the URL class,
 * retrying with a dummy host for `user@/db`, after percent-encoding spaces; a string it cannot parse
 * fails at the first connection with a bare "Invalid URL" that names nothing (an unencoded reserved
 * character in the password, a port above 65535). A `#` starts a fragment, which PostgreSQL URLs do
 * not have: it is an unencoded `#` in the password, and the rest would be silently dropped.
 */
function parsesAsPgUrl(value: string): boolean {
  const s = /\s|%[^a-f0-9]|%[a-f0-9][^a-f0-9]/i.test(value) ? encodeURI(value).replace(/%25(\d\d)/g, '%$1') : value;
  const url = URL.parse(s) ?? URL.parse(s.replace('@/', '@___DUMMY___/'));
  return url !== null && url.hash === '' && !s.includes('#');
}

/** The configuration schema: every key, its type and its default. */
const ConfigSchema = z.object({
  /** PostgreSQL connection string. Absent: an embedded PostgreSQL under `<dataDir>/pg`. */
  databaseUrl: z.string().regex(/^postgres(ql)?:\/\//, 'expected a postgres:// or postgresql:// URL')
    .refine(parsesAsPgUrl, 'not a valid URL (percent-encode reserved characters in the user name and password: %23 for #, %2F for /, %3F for ?, %40 for @; the port must be 1 to 65535)')
    .optional(),
  /** TLS to PostgreSQL (libpq's meaning): disable | prefer | require | verify-ca | verify-full. The URL's sslmode wins. */
  databaseSslMode: z.enum(['disable', 'prefer', 'require', 'verify-ca', 'verify-full']).optional(),
  /** The CA certificate (PEM file) that signed the server's certificate; the URL's sslrootcert wins. */
  databaseSslRootCert: z.string().min(1).optional(),
  /** A client certificate and its key (PEM files), when the server asks for one. */
  databaseSslCert: z.string().min(1).optional(),
  databaseSslKey: z.string().min(1).optional(),
  /** Root of the raw tree, watched for `YYYY/MM/DD/HHmm.csv`. Default `/var/data/vinops/raw/copart`. */
  rawDir: z.string().min(1).default('/var/data/vinops/raw/copart'),
  /** Local state: the embedded PostgreSQL cluster lives in `<dataDir>/pg`. Default `./var`. */
  dataDir: z.string().min(1).default('./var'),
  /** Port of the embedded PostgreSQL. Default 54329. */
  embeddedPort: wholeNumber(1024, 65535).default(54329),
  /** host:port of the HTTP server for /metrics, /healthz, /readyz and the status page. Default 127.0.0.1:9464. */
  metricsAddr: hostPort.default('127.0.0.1:9464'),
  /** Files ingested at the same time. Default 1. */
  workers: wholeNumber(1, 16).default(1),
  /** A file is taken when its size and mtime have not changed for this long (ms). Default 3000. */
  settleMs: wholeNumber(0, 600_000).default(3000),
  /** Full re-scan of the raw tree, reconciling it with the database (ms). Default 60000. */
  rescanIntervalMs: wholeNumber(1000, 86_400_000).default(60_000),
  /** A claim not renewed for this long belongs to a dead worker and is taken over (ms). Default 120000. */
  claimTimeoutMs: wholeNumber(5000, 86_400_000).default(120_000),
  /** Attempts per file before it stays `failed`. Default 5. */
  maxAttempts: wholeNumber(1, 100).default(5),
  /** First retry delay; doubles per attempt up to retryMaxMs. Default 5000. */
  retryBaseMs: wholeNumber(10, 3_600_000).default(5000),
  /** Cap of the retry delay (ms). Default 300000. */
  retryMaxMs: wholeNumber(10, 86_400_000).default(300_000),
  /** On SIGTERM/SIGINT, how long the file in flight may take to finish before it is rolled back (ms). Default 60000. */
  drainTimeoutMs: wholeNumber(0, 3_600_000).default(60_000),
  /** Largest CSV record accepted by the tolerant parser (bytes); a longer one is a parse error. Default 16 MiB. */
  maxRecordBytes: wholeNumber(1024, 512 * 1024 * 1024).default(16 * 1024 * 1024),
  /**
   * The feed's download URL (`…/salesdata.cgi?authKey=…`, a secret). Absent: the daemon fetches
   * nothing (someone else fills the raw tree). docs/fetch.md.
   */
  fetchUrl: z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' }).optional(),
  /** How often to fetch, aligned to the quarter hour, plus a small random delay (ms). Default 900000. */
  fetchIntervalMs: wholeNumber(60_000, 86_400_000).default(900_000),
  /** Extra request headers (a browser-like User-Agent, a Referer…). Default none. */
  fetchHeaders: z.record(z.string().regex(/^[A-Za-z0-9-]+$/, 'expected a header name'), z.string()).default({}),
  /** A session Cookie header value (a secret; expires after about a day). */
  fetchCookie: z.string().min(1).optional(),
  /** One download, request to last byte (ms). Default 600000. */
  fetchTimeoutMs: wholeNumber(1000, 3_600_000).default(600_000),
  /** The random delay after the quarter hour is at most this (ms). Default 60000. */
  fetchDelayMaxMs: wholeNumber(0, 600_000).default(60_000),
  /**
   * Where stored files are archived before anything local is deleted (docs/retention.md): a local
   * directory `file:///path` or an S3-compatible bucket `s3://bucket/prefix` (credentials from the
   * standard AWS chain). Default none: nothing is archived.
   */
  archiveUrl: z.string().regex(/^(file:\/\/\/|s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/|$))/, 'expected file:///path or s3://bucket/prefix').optional(),
  /** The S3 endpoint of an S3-compatible store (Cloudflare R2: `https://<account>.r2.cloudflarestorage.com`). Default AWS. */
  archiveEndpoint: z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' }).optional(),
  /** The S3 region. Default `auto` with an endpoint (R2), else the AWS chain's. */
  archiveRegion: z.string().min(1).optional(),
  /** Files in the raw tree older than this many days (by their window) are deleted once stored (and archived). Default none: kept. */
  rawRetentionDays: wholeNumber(1, 36_500).optional(),
  /**
   * Files ingested more than this many days ago leave raw, staging and audit (archived first when
   * archiveUrl is set); public.lots, public.vehicles and public.lot_events stay. Default none: kept.
   */
  dbRetentionDays: wholeNumber(1, 36_500).optional(),
  /** How often the daemon archives and prunes (ms). Default 3600000. */
  pruneIntervalMs: wholeNumber(60_000, 86_400_000).default(3_600_000),
  /**
   * TLS and basic auth for the HTTP endpoint, in the Prometheus exporter convention (the file
   * `node_exporter --web.config.file` reads). Default none: plain HTTP, no authentication.
   */
  webConfigFile: z.string().min(1).optional(),
  /** pino level. Default info. */
  logLevel: z.enum(LOG_LEVELS).default('info'),
  /** Human-readable logs instead of JSON lines. Default false. */
  logPretty: flag.default(false),
}).strict();

/** The parsed, fully defaulted, frozen configuration. */
export type Config = Readonly<z.infer<typeof ConfigSchema>>;
export type ConfigInput = z.input<typeof ConfigSchema>;

/** Environment variables that override the file, by config key. */
export const ENV_KEYS: Readonly<Record<string, keyof ConfigInput>> = {
  DATABASE_URL: 'databaseUrl',
  VINOPS_DATABASE_SSLMODE: 'databaseSslMode',
  VINOPS_DATABASE_SSLROOTCERT: 'databaseSslRootCert',
  VINOPS_DATABASE_SSLCERT: 'databaseSslCert',
  VINOPS_DATABASE_SSLKEY: 'databaseSslKey',
  VINOPS_RAW_DIR: 'rawDir',
  VINOPS_DATA_DIR: 'dataDir',
  VINOPS_EMBEDDED_PORT: 'embeddedPort',
  VINOPS_METRICS_ADDR: 'metricsAddr',
  VINOPS_WORKERS: 'workers',
  VINOPS_SETTLE_MS: 'settleMs',
  VINOPS_RESCAN_INTERVAL_MS: 'rescanIntervalMs',
  VINOPS_CLAIM_TIMEOUT_MS: 'claimTimeoutMs',
  VINOPS_MAX_ATTEMPTS: 'maxAttempts',
  VINOPS_RETRY_BASE_MS: 'retryBaseMs',
  VINOPS_RETRY_MAX_MS: 'retryMaxMs',
  VINOPS_DRAIN_TIMEOUT_MS: 'drainTimeoutMs',
  VINOPS_MAX_RECORD_BYTES: 'maxRecordBytes',
  VINOPS_LOG_LEVEL: 'logLevel',
  VINOPS_WEB_CONFIG_FILE: 'webConfigFile',
  VINOPS_FETCH_URL: 'fetchUrl',
  VINOPS_FETCH_COOKIE: 'fetchCookie',
  VINOPS_FETCH_INTERVAL_MS: 'fetchIntervalMs',
  VINOPS_ARCHIVE_URL: 'archiveUrl',
  VINOPS_ARCHIVE_ENDPOINT: 'archiveEndpoint',
  VINOPS_ARCHIVE_REGION: 'archiveRegion',
  VINOPS_RAW_RETENTION_DAYS: 'rawRetentionDays',
  VINOPS_DB_RETENTION_DAYS: 'dbRetentionDays',
  VINOPS_PRUNE_INTERVAL_MS: 'pruneIntervalMs',
  VINOPS_FETCH_TIMEOUT_MS: 'fetchTimeoutMs',
  VINOPS_LOG_PRETTY: 'logPretty',
};

/** Keys whose values never appear in an error. */
const SECRET_KEYS: ReadonlySet<string> = new Set(['fetchUrl', 'fetchCookie']);

/**
 * Secrets that can come from a file instead of the environment: `<VAR>_FILE` names it, or systemd's
 * `LoadCredential=<credential>:…` puts it in `$CREDENTIALS_DIRECTORY/<credential>`. The variable
 * itself wins over its file, a file over the credential, all of them over the config file.
 */
export const SECRET_SOURCES = [
  { key: 'databaseUrl', variable: 'DATABASE_URL', file: 'VINOPS_DATABASE_URL_FILE', credential: 'database-url' },
  { key: 'fetchUrl', variable: 'VINOPS_FETCH_URL', file: 'VINOPS_FETCH_URL_FILE', credential: 'fetch-url' },
  { key: 'fetchCookie', variable: 'VINOPS_FETCH_COOKIE', file: 'VINOPS_FETCH_COOKIE_FILE', credential: 'fetch-cookie' },
] as const;

/** The environment without the secrets' variables: what a child process (the embedded server) gets. */
export function withoutSecrets(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out = { ...env };
  for (const s of SECRET_SOURCES) delete out[s.variable];
  return out;
}

function readSecretFiles(env: NodeJS.ProcessEnv, input: Record<string, unknown>, origin: Record<string, string>): void {
  for (const s of SECRET_SOURCES) {
    const named = env[s.file];
    const given = env[s.variable] !== undefined && env[s.variable] !== '';
    if (named !== undefined && named !== '' && given) throw new ConfigError(`${s.variable} and ${s.file} are both set: set one`);
    if (given) continue;
    const credential = env.CREDENTIALS_DIRECTORY ? join(env.CREDENTIALS_DIRECTORY, s.credential) : undefined;
    const path = named !== undefined && named !== '' ? named : credential !== undefined && existsSync(credential) ? credential : undefined;
    if (path === undefined) continue;
    const where = path === named ? `${s.file} (${path})` : `credential ${s.credential} (${path})`;
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new ConfigError(`${where}: cannot read it: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
    }
    const value = text.replace(/\r?\n$/, '');
    if (value.trim() === '') throw new ConfigError(`${where}: the file is empty`);
    input[s.key] = value;
    origin[s.key] = where;
  }
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/**
 * Builds the Config from an optional JSON file and the environment (environment wins). Relative
 * paths in the file resolve against the file's folder; in the environment, against the working
 * directory. Errors name the key, where it came from, and the bad value.
 */
export function loadConfig(options: { file?: string; env?: NodeJS.ProcessEnv } = {}): Config {
  const env = options.env ?? process.env;
  const input: Record<string, unknown> = {};
  const origin: Record<string, string> = {};
  let baseDir = process.cwd();
  if (options.file !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(options.file, 'utf8'));
    } catch (err) {
      throw new ConfigError(`config file ${options.file}: ${(err as Error).message}`, { cause: err });
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new ConfigError(`config file ${options.file}: expected a JSON object`);
    }
    for (const [key, value] of Object.entries(parsed)) {
      if (key.startsWith('$') || key.startsWith('//')) continue; // $schema, comments
      input[key] = value;
      origin[key] = `${options.file}: ${key}`;
    }
    baseDir = resolve(options.file, '..');
  }
  for (const [envName, key] of Object.entries(ENV_KEYS)) {
    const value = env[envName];
    if (value === undefined || value === '') continue;
    input[key] = value; // the schema parses numbers and booleans from strings, and refuses what it cannot
    origin[key] = envName;
  }
  readSecretFiles(env, input, origin);
  const result = ConfigSchema.safeParse(input);
  if (!result.success) {
    const lines = result.error.issues.map((issue) => {
      const key = String(issue.path[0] ?? '');
      const where = origin[key] ?? key;
      const value = !(key in input) ? '(missing)' : SECRET_KEYS.has(key) ? '(a secret, not shown)'
        : key === 'databaseUrl' ? shownUrl(String(input[key])) : JSON.stringify(input[key]);
      return issue.code === 'unrecognized_keys'
        ? `unknown config key(s): ${issue.keys.join(', ')}`
        : `${where}: ${issue.message} (got ${value})`;
    });
    throw new ConfigError(`invalid configuration:\n  ${lines.join('\n  ')}`);
  }
  const c = result.data;
  const fromFile = (key: string): boolean => origin[key] !== undefined && !origin[key]!.startsWith('VINOPS_');
  return Object.freeze({
    ...c,
    rawDir: resolve(fromFile('rawDir') ? baseDir : process.cwd(), c.rawDir),
    dataDir: resolve(fromFile('dataDir') ? baseDir : process.cwd(), c.dataDir),
    ...(c.webConfigFile === undefined ? {} : { webConfigFile: resolve(fromFile('webConfigFile') ? baseDir : process.cwd(), c.webConfigFile) }),
  });
}

/** A connection string as an error may show it: redacted, or not at all when it is no URL (all of it may be the password). */
function shownUrl(v: string): string {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(v) ? JSON.stringify(redactUrl(v)) : '(not a URL; not shown: it may hold the password)';
}

/**
 * A connection string with its password replaced, for logs and error messages: all up to the last
 * `@`, since a password with an unencoded `@` is exactly what an error message shows.
 */
export function redactUrl(url: string): string {
  return url.replace(/(\/\/[^:/@]+:).*@/, '$1***@');
}
