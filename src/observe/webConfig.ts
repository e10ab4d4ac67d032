import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import bcrypt from 'bcryptjs';
import { parse } from 'yaml';
import { ConfigError } from '../config.js';

/**
 * The HTTP endpoint's protection, from a web configuration file in the Prometheus exporter convention
 * (what `node_exporter --web.config.file` reads): `tls_server_config.cert_file` / `key_file` and
 * `basic_auth_users` (user: bcrypt hash). Paths are relative to the file. Keys of the convention this
 * server does not implement are refused, not ignored: a client CA the operator set must not be
 * silently dropped.
 */
export interface WebConfig {
  readonly tls: { readonly cert: string; readonly key: string } | undefined;
  /** User name → bcrypt hash; empty: no authentication. */
  readonly users: ReadonlyMap<string, string>;
}

const TLS_KEYS = new Set(['cert_file', 'key_file']);
const TOP_KEYS = new Set(['tls_server_config', 'basic_auth_users']);

export function loadWebConfig(path: string): WebConfig {
  let doc: unknown;
  try {
    doc = parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ConfigError(`webConfigFile ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
  const fail = (why: string): never => { throw new ConfigError(`webConfigFile ${path}: ${why}`); };
  if (doc === null || doc === undefined) doc = {};
  if (typeof doc !== 'object' || Array.isArray(doc)) fail('expected a YAML mapping');
  const top = doc as Record<string, unknown>;
  for (const k of Object.keys(top)) if (!TOP_KEYS.has(k)) fail(`${k} is not supported (only tls_server_config.cert_file / key_file and basic_auth_users)`);
  const base = dirname(resolve(path));
  const read = (what: string, file: unknown): string => {
    if (typeof file !== 'string' || file === '') fail(`${what}: expected a file path`);
    const full = resolve(base, file as string);
    try {
      return readFileSync(full, 'utf8');
    } catch (err) {
      return fail(`${what} ${full}: cannot read it: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  };
  let tls: WebConfig['tls'];
  if (top.tls_server_config !== undefined && top.tls_server_config !== null) {
    const t = top.tls_server_config as Record<string, unknown>;
    if (typeof t !== 'object') fail('tls_server_config: expected a mapping');
    for (const k of Object.keys(t)) if (!TLS_KEYS.has(k)) fail(`tls_server_config.${k} is not supported (only cert_file and key_file)`);
    tls = { cert: read('tls_server_config.cert_file', t.cert_file), key: read('tls_server_config.key_file', t.key_file) };
  }
  const users = new Map<string, string>();
  const u = top.basic_auth_users;
  if (u !== undefined && u !== null) {
    if (typeof u !== 'object' || Array.isArray(u)) fail('basic_auth_users: expected a mapping of user names to bcrypt hashes');
    for (const [name, hash] of Object.entries(u as Record<string, unknown>)) {
      if (typeof hash !== 'string' || !/^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$/.test(hash)) fail(`basic_auth_users.${name}: expected a bcrypt hash ($2y$…)`);
      users.set(name, hash as string);
    }
  }
  return { tls, users };
}

/**
 * Checks `Authorization: Basic …` against the users' bcrypt hashes. bcrypt costs tens of ms by design;
 * a scraper sends the same credentials every few seconds, so a verified pair is remembered (by a
 * digest of it, never the password) as the exporter toolkit does.
 */
export class BasicAuth {
  private readonly verified = new Set<string>();

  constructor(private readonly users: ReadonlyMap<string, string>) {}

  get enabled(): boolean {
    return this.users.size > 0;
  }

  async check(header: string | undefined): Promise<boolean> {
    const m = header === undefined ? null : /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
    if (m === null) return false;
    const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return false;
    const user = decoded.slice(0, colon);
    const hash = this.users.get(user);
    if (hash === undefined) return false;
    const key = createHash('sha256').update(hash).update('\0').update(decoded).digest('hex');
    if (this.verified.has(key)) return true;
    // bcryptjs reads $2y$ as $2b$ (the same algorithm; the PHP/htpasswd spelling).
    const ok = await bcrypt.compare(decoded.slice(colon + 1), hash.replace(/^\$2y\$/, '$2b$'));
    if (ok) {
      if (this.verified.size > 64) this.verified.clear();
      this.verified.add(key);
    }
    return ok;
  }
}
