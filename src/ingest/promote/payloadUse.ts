import type pg from 'pg';
import { LOAD_TABLE, carriesValues } from '../copy/loadTable.js';
import { NEW_PAYLOADS } from './promoteFile.js';

/**
 * The bookkeeping database retention relies on (migrations/0016 and 0018, docs/retention.md), run
 * under the payload lock once the file's rows are in: compared with the file committed just before it
 * (the newest by ingested_at), this file logs as retired the payloads that one had and this one lacks,
 * and as returned those it has and that one lacks which were stored before it (they may have been
 * retired). Retirements are appended in time order and returns are rare: nothing here probes an
 * index whose size grows with history. The steady state compares with the file its encoder knew (the
 * same one) and gets the leavers from it for free (`removed`); otherwise it compares in SQL.
 */
export async function recordPayloadUse(client: pg.ClientBase, fileId: string, knownFrom: string | null, removed: () => readonly string[]): Promise<void> {
  // ingested_at as text: a JavaScript Date drops the microseconds, and a retirement stamped a moment
  // before its file's ingested_at would let retention delete the payload while that file remains.
  const { rows: [state] } = await client.query<{ latest: string | null; latest_at: string | null; head: string | null }>(
    `SELECT l.file_id AS latest, l.ingested_at::text AS latest_at, (SELECT file_id FROM raw.payload_head) AS head
       FROM (SELECT 1) one
       LEFT JOIN LATERAL (SELECT file_id, ingested_at FROM raw.csv_files WHERE file_id <> $1 ORDER BY ingested_at DESC LIMIT 1) l ON true`, [fileId]);
  const { latest, latest_at: latestAt, head } = state!;
  // The log is whole up to the latest file when that is the file the last load compared against;
  // in the steady state that file is also the one whose addresses the encoder held.
  const whole = latest !== null && latest === head;
  const steady = whole && latest === knownFrom;
  // Returns: this file's payloads stored before it that the latest file lacks (those it has are not
  // retired since it); in the steady state these are its rows with values that are not new. With the
  // log not whole (the newest file deleted by hand, whose load logged retirements at the latest
  // file's time; the first load after migration 0016), every stored payload of this file. Stamped
  // later than every retirement logged, whatever the clock did, and taken once per hash (a hash in
  // several rows would make ON CONFLICT refuse).
  const rows = `SELECT DISTINCT l.hash FROM ${LOAD_TABLE} l WHERE l.err IS NULL${steady ? ` AND ${carriesValues('l')}` : ''}
       AND NOT EXISTS (SELECT 1 FROM ${NEW_PAYLOADS} n WHERE n.hash = l.hash)`;
  const exceptLatest = whole && !steady;
  const returning = exceptLatest ? `${rows} EXCEPT SELECT unnest(payload_hashes) FROM raw.file_contents WHERE file_id = $1` : rows;
  await client.query(`INSERT INTO raw.payload_returns (hash, returned_at)
    SELECT x.hash, greatest(clock_timestamp(), (SELECT max(last_seen_at) FROM raw.payload_retirements) + interval '1 microsecond')
      FROM (${returning}) x
    ON CONFLICT (hash) DO UPDATE SET returned_at = excluded.returned_at`, exceptLatest ? [latest] : []);
  if (steady) {
    const leavers = removed();
    if (leavers.length > 0) {
      await client.query(`INSERT INTO raw.payload_retirements (hash, last_seen_at) SELECT DISTINCT h, $2::timestamptz FROM unnest($1::uuid[]) h`,
        [leavers, latestAt]);
    }
  } else if (latest !== null) {
    // The encoder held another file's addresses (loads in parallel, a catch-up) or none: the leavers in SQL.
    await client.query(`INSERT INTO raw.payload_retirements (hash, last_seen_at)
      SELECT h, $3::timestamptz FROM (SELECT unnest(payload_hashes) h FROM raw.file_contents WHERE file_id = $2
                                      EXCEPT SELECT unnest(payload_hashes) FROM raw.file_contents WHERE file_id = $1) x WHERE h IS NOT NULL`,
      [fileId, latest, latestAt]);
  }
  await client.query(`INSERT INTO raw.payload_head (one, file_id) VALUES (true, $1) ON CONFLICT (one) DO UPDATE SET file_id = excluded.file_id`, [fileId]);
}
