import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { ConfigError } from '../config.js';

/** libpq's sslmode values vinops-etl supports. */
export const SSL_MODES = ['disable', 'prefer', 'require', 'verify-ca', 'verify-full'] as const;
export type SslMode = (typeof SSL_MODES)[number];

export interface TlsSettings {
  readonly sslMode?: SslMode | undefined;
  readonly sslRootCert?: string | undefined;
  readonly sslCert?: string | undefined;
  readonly sslKey?: string | undefined;
}

/**
 * The connection string without its TLS parameters, and the TLS options node-postgres takes, with
 * libpq's meaning of sslmode (node-postgres by itself reads require and verify-ca as verify-full):
 * require encrypts without checking the server (with a root certificate it checks the chain, as libpq
 * does), verify-ca checks the chain, verify-full the chain and the host name. The URL's parameters win
 * over the config keys. Files are read here, so a missing one is a configuration error at start.
 */
export function tlsOptions(url: string, settings: TlsSettings): { connectionString: string; ssl: ConnectionOptions | false | undefined } {
  const u = URL.parse(url);
  if (u === null) return { connectionString: url, ssl: undefined };
  const take = (name: string): string | undefined => {
    const v = u.searchParams.get(name) ?? undefined;
    u.searchParams.delete(name);
    return v;
  };
  const fromUrl = { sslMode: take('sslmode'), sslRootCert: take('sslrootcert'), sslCert: take('sslcert'), sslKey: take('sslkey') };
  const mode = (fromUrl.sslMode ?? settings.sslMode) as string | undefined;
  const rootCert = fromUrl.sslRootCert ?? settings.sslRootCert;
  const cert = fromUrl.sslCert ?? settings.sslCert;
  const key = fromUrl.sslKey ?? settings.sslKey;
  // Only a URL that had TLS parameters is rewritten (the URL class may re-encode the rest).
  const connectionString = Object.values(fromUrl).some((v) => v !== undefined) ? u.toString() : url;
  if (mode === undefined && rootCert === undefined && cert === undefined) return { connectionString, ssl: undefined };
  if (mode !== undefined && !(SSL_MODES as readonly string[]).includes(mode)) {
    throw new ConfigError(`sslmode: expected one of ${SSL_MODES.join(', ')} (got ${JSON.stringify(mode)})`);
  }
  if (mode === 'disable') return { connectionString, ssl: false };
  const read = (what: string, path: string): string => {
    try {
      return readFileSync(path, 'utf8');
    } catch (err) {
      throw new ConfigError(`${what} ${path}: cannot read it: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
    }
  };
  const ssl: ConnectionOptions = {};
  if (rootCert !== undefined) ssl.ca = read('sslrootcert', rootCert);
  if (cert !== undefined) ssl.cert = read('sslcert', cert);
  if (key !== undefined) ssl.key = read('sslkey', key);
  const effective = mode ?? 'verify-full';
  if (effective === 'verify-ca' && rootCert === undefined) throw new ConfigError('sslmode verify-ca needs sslrootcert (the CA that signed the server\'s certificate)');
  if (effective === 'prefer' || (effective === 'require' && rootCert === undefined)) ssl.rejectUnauthorized = false;
  else if (effective === 'require' || effective === 'verify-ca') ssl.checkServerIdentity = () => undefined;
  return { connectionString, ssl };
}
