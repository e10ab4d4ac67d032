import type pg from 'pg';

/** Transaction-level advisory lock serialising the payload insert of concurrent loads. */
const PAYLOAD_LOCK: readonly [number, number] = [0x76696e6f, 2];

/**
 * Takes the payload lock until the transaction ends: loads (and replays) that write raw.payloads,
 * staging and the core tables take turns from here to their commit.
 * It also gives that transaction the work_mem its whole-file sorts and hashes need, no JIT, and the
 * setting that says it keeps the payload bookkeeping.
 */
export async function lockPayloadStore(client: pg.ClientBase): Promise<void> {
  await client.query('SELECT pg_advisory_xact_lock($1, $2)', [...PAYLOAD_LOCK]);
  // Whole-file sorts and hashes spill at the default 4 MB; one transaction at a time holds the lock.
  // JIT compiling cost more than it saved on these statements (docs/performance.md).
  await client.query(`SET LOCAL work_mem = '${PROMOTE_WORK_MEM}'`);
  await client.query('SET LOCAL jit = off');
  // This transaction keeps the payload bookkeeping by the rules of migration 0018; writes to it from a
  // version that does not are refused (migrations/0020, 0021).
  await client.query(`SET LOCAL vinops.retirement_log = 'on'`);
}

/** work_mem of the transaction that holds the payload lock. */
const PROMOTE_WORK_MEM = '64MB';
