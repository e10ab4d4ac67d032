import type pg from 'pg';
import { LOAD_TABLE, carriesValues } from '../copy/loadTable.js';

/**
 * The bookkeeping database retention relies on (migrations/0016, docs/retention.md), run under the
 * payload lock once the file's rows are in: compared with the file committed just before it (the
 * newest by ingested_at), this file retires the payloads that one had and this one lacks, and brings
 * back those it carries that were retired. The steady state compares with the file its encoder knew
 * (the same one) and gets the leavers from it for free (`removed`); otherwise it compares in SQL.
 */
export async function recordPayloadUse(client: pg.ClientBase, fileId: string, knownFrom: string | null, removed: () => readonly string[]): Promise<void> {
  // ingested_at as text: a JavaScript Date drops the microseconds, and a retirement stamped a moment
  // before its file's ingested_at would let retention delete the payload while that file remains.
  const { rows: [state] } = await client.query<{ latest: string | null; latest_at: string | null; head: string | null }>(
    `SELECT l.file_id AS latest, l.ingested_at::text AS latest_at, (SELECT file_id FROM raw.payload_head) AS head
       FROM (SELECT 1) one
       LEFT JOIN LATERAL (SELECT file_id, ingested_at FROM raw.csv_files WHERE file_id <> $1 ORDER BY ingested_at DESC LIMIT 1) l ON true`, [fileId]);
  const { latest, latest_at: latestAt, head } = state!;
  if (latest !== null && latest === knownFrom && latest === head) {
    // Rows sent by address are the latest file's, so not retired; rows with values may have been.
    await client.query(`DELETE FROM raw.payload_retirements r USING ${LOAD_TABLE} l WHERE r.hash = l.hash AND ${carriesValues('l')}`);
    const leavers = removed();
    if (leavers.length > 0) {
      await client.query(`INSERT INTO raw.payload_retirements (hash, last_seen_at) SELECT h, $2::timestamptz FROM unnest($1::uuid[]) h
        ON CONFLICT (hash) DO UPDATE SET last_seen_at = excluded.last_seen_at`, [leavers, latestAt]);
    }
  } else {
    // Another predecessor than the encoder's, or a broken chain: every payload of this file is live.
    await client.query(`DELETE FROM raw.payload_retirements r USING (SELECT DISTINCT h FROM raw.file_contents c, unnest(c.payload_hashes) h WHERE c.file_id = $1) x
      WHERE r.hash = x.h`, [fileId]);
    if (latest !== null) {
      await client.query(`INSERT INTO raw.payload_retirements (hash, last_seen_at)
        SELECT h, $3::timestamptz FROM (SELECT unnest(payload_hashes) h FROM raw.file_contents WHERE file_id = $2
                           EXCEPT SELECT unnest(payload_hashes) FROM raw.file_contents WHERE file_id = $1) x WHERE h IS NOT NULL
        ON CONFLICT (hash) DO UPDATE SET last_seen_at = excluded.last_seen_at`, [fileId, latest, latestAt]);
    }
  }
  await client.query(`INSERT INTO raw.payload_head (one, file_id) VALUES (true, $1) ON CONFLICT (one) DO UPDATE SET file_id = excluded.file_id`, [fileId]);
}
