-- Database retention for the payloads stored before migration 0016 (docs/retention.md). The
-- bookkeeping began then: a payload that had left the feed before it (in no file since) was never
-- logged as retired, so retention kept it for good, and the operator was left a manual SQL pass.
--
-- Every payload the bookkeeping has seen leave has a retirement, and one that came back is in the
-- newest file or has left again since (a retirement again). So a payload with no retirement that the
-- newest file lacks is retired now, as last seen at the newest file: no file ingested after it can
-- have it without logging its return. That is later than it truly left (finding when would read every
-- stored file's array), so retention removes it once the newest file of today has aged out too:
-- within one retention period. One anti-join over the payloads, once.

-- Loads that run meanwhile (a daemon of the previous version) take turns with this.
SELECT pg_advisory_xact_lock(1986621039, 2);

WITH newest AS (SELECT file_id, ingested_at FROM raw.csv_files ORDER BY ingested_at DESC LIMIT 1),
     kept AS MATERIALIZED (SELECT DISTINCT h FROM raw.file_contents c JOIN newest n USING (file_id), unnest(c.payload_hashes) h WHERE h IS NOT NULL)
INSERT INTO raw.payload_retirements (hash, last_seen_at)
SELECT p.hash, n.ingested_at FROM raw.payloads p, newest n
 WHERE NOT EXISTS (SELECT 1 FROM raw.payload_retirements r WHERE r.hash = p.hash)
   AND NOT EXISTS (SELECT 1 FROM kept k WHERE k.h = p.hash);
