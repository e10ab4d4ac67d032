/**
 * PostgreSQL errors classified by SQLSTATE, never by message text.
 */

/** Connection loss, server shutdown, serialization failure, deadlock: trying again may succeed. */
const RETRYABLE_CODES: ReadonlySet<string> = new Set([
  '08000', '08003', '08006', '08001', '08004', '08007', '08P01', // connection exceptions
  '40001', // serialization_failure
  '40P01', // deadlock_detected
  '55P03', // lock_not_available
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up, recovery)
  '53300', // too_many_connections
  '53100', // disk_full
  '53200', // out_of_memory
]);

/** Network errors raised by the driver before PostgreSQL says anything. */
const RETRYABLE_NODE_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN',
]);

export function sqlState(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code = (err as { code: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}

/** True when the operation may succeed if tried again later (the database went away, a lock clash). */
export function isRetryablePgError(err: unknown): boolean {
  const code = sqlState(err);
  if (code !== undefined && (RETRYABLE_CODES.has(code) || RETRYABLE_NODE_CODES.has(code))) return true;
  // node-postgres reports a connection closed under a query without a code.
  const message = err instanceof Error ? err.message : '';
  return code === undefined && /Connection terminated|connection is closed|Client has encountered a connection error/i.test(message);
}

/**
 * What the server refuses for as long as the configuration stays as it is: the login (28P01 wrong
 * password, 28000 no such role or no pg_hba.conf entry), a privilege (42501) or the database named in
 * the URL (3D000). Retrying soon only repeats the refusal; a person has to change something.
 */
export type RefusalKind = 'login' | 'privilege' | 'database' | 'tls';
/** Node's codes for a server certificate that does not verify: a person must fix the CA, the name or sslmode. */
const TLS_CODES: ReadonlySet<string> = new Set(['ERR_TLS_CERT_ALTNAME_INVALID', 'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'UNABLE_TO_GET_ISSUER_CERT', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID']);
const REFUSED_CODES: ReadonlyMap<string, RefusalKind> = new Map([
  ['28P01', 'login'], ['28000', 'login'], ['42501', 'privilege'], ['3D000', 'database'],
]);

/**
 * The server's refusal behind err (its kind, SQLSTATE and the server's own words), looking through
 * `cause`: migrate() wraps a failing migration's error. undefined for anything else.
 */
export function findRefusal(err: unknown): { kind: RefusalKind; code: string | undefined; message: string } | undefined {
  for (let e = err, depth = 0; typeof e === 'object' && e !== null && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = sqlState(e);
    const message = e instanceof Error ? e.message : String(e);
    const kind = code === undefined ? undefined : REFUSED_CODES.get(code);
    if (kind !== undefined) return { kind, code, message };
    const nodeCode = (e as { code?: unknown }).code;
    if (typeof nodeCode === 'string' && TLS_CODES.has(nodeCode)) return { kind: 'tls', code: nodeCode, message };
    if (/server does not support SSL connections/i.test(message)) return { kind: 'tls', code: undefined, message };
    // node-postgres itself refuses to answer a password request when the URL has no password (no SQLSTATE).
    if (code === undefined && /client password must be a string/.test(message)) {
      return { kind: 'login', code: undefined, message: 'the server asks for a password and the connection string has none' };
    }
  }
  return undefined;
}

/** First and longest wait (ms) before asking again a server that refused: only a person fixes that, so ask rarely. */
export const REFUSED_RETRY_MS = { base: 15_000, max: 300_000 } as const;

/** True when the server refused the login, a privilege or the database: a configuration problem, not an outage. */
export function isRefusedPgError(err: unknown): boolean {
  return findRefusal(err) !== undefined;
}
