-- Database retention (docs/retention.md): which payloads no stored file refers to any more, without
-- scanning every file's array. Loads take turns (the payload lock) and each compares itself with the
-- file committed just before it: a payload of that file this one lacks is retired (it was last in a
-- file ingested at last_seen_at); one this file carries that was retired comes back (its row goes).
-- So a retired payload is in no file ingested after last_seen_at, and once every file ingested up
-- to then is deleted, no file refers to it. Payloads stored before this migration are never retired
-- (kept for good: docs/retention.md).

CREATE TABLE raw.payload_retirements (
  hash         uuid        PRIMARY KEY,     -- raw.payloads.hash
  last_seen_at timestamptz NOT NULL         -- ingested_at of the last file that had it
);
CREATE INDEX payload_retirements_last_seen_idx ON raw.payload_retirements (last_seen_at);
COMMENT ON TABLE raw.payload_retirements IS 'Payloads the newest file no longer has, with when they were last in one';

-- The file the bookkeeping last compared against (one row): a load whose predecessor is not this
-- file (the newest file was deleted by hand, the first load after this migration) recounts in full.
CREATE TABLE raw.payload_head (
  one     boolean PRIMARY KEY DEFAULT true CHECK (one),
  file_id uuid    NOT NULL
);

-- The lifecycle keeps a file's events when its recorded predecessor was pruned (removed by retention)
-- and no file has come between them since: it needs that predecessor's place in the feed, kept here.
ALTER TABLE raw.csv_files ADD COLUMN lifecycle_prev_snapshot_at timestamptz;
UPDATE raw.csv_files c SET lifecycle_prev_snapshot_at = p.snapshot_at
  FROM raw.csv_files p WHERE p.file_id = c.lifecycle_prev_file_id;
