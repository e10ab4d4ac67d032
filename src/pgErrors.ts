/**
 * PostgreSQL errors classified by SQLSTATE, never by message text (graphile-worker's lib.ts habit).
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

/** Class 22 (data exception): the input itself is wrong, e.g. invalid UTF-8 or bad CSV in COPY. */
export function isBadInputPgError(err: unknown): boolean {
  const code = sqlState(err);
  return code !== undefined && code.startsWith('22');
}

/** 23505: a unique constraint said no. */
export function isUniqueViolation(err: unknown): boolean {
  return sqlState(err) === '23505';
}

/** 57014: query_canceled, what PostgreSQL answers to a COPY the client aborted (CopyFail). */
export function isQueryCanceled(err: unknown): boolean {
  return sqlState(err) === '57014';
}
