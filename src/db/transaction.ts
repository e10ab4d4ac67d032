import type pg from 'pg';

/**
 * Runs fn in a transaction on client: COMMIT when it returns, ROLLBACK when it throws (the error is
 * rethrown; a failed ROLLBACK on a broken connection does not hide it).
 */
export async function withTransaction<T>(client: pg.ClientBase, fn: () => Promise<T>): Promise<T> {
  await client.query('BEGIN');
  let result: T;
  try {
    result = await fn();
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
  await client.query('COMMIT');
  return result;
}
