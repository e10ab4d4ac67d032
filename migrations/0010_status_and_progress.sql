-- What `vinops-etl status` and the status page need to show every file, the one in flight, and
-- the right finish time of an ingested file.

-- An ingested file's run took the default finished_at, now(): the start of its transaction, before
-- the COPY (16 ms after started_at for a 12 s load). Runs record it themselves from now on; the
-- earlier ones are set from their duration.
UPDATE audit.etl_runs SET finished_at = started_at + make_interval(secs => duration_ms / 1000.0)
 WHERE outcome = 'ingested' AND duration_ms IS NOT NULL;

-- The queue entry an attempt belongs to; NULL for a run outside the daemon's queue (`vinops-etl
-- ingest FILE`). Status lists queue entries and these runs, so a file ingested by hand is listed
-- too, and a queue entry's earlier failed attempts are not listed a second time. No foreign key:
-- a run outlives whatever happens to the queue, as it does the file.
ALTER TABLE audit.etl_runs ADD COLUMN queue_id bigint;
-- Runs recorded before this column: an attempt belongs to the entry of its path (and size, when
-- known) that was discovered before it started.
UPDATE audit.etl_runs r SET queue_id = (
  SELECT q.queue_id FROM raw.file_queue q
   WHERE q.path = r.path AND (r.bytes IS NULL OR r.bytes = q.size) AND q.discovered_at <= r.started_at
   ORDER BY q.discovered_at DESC LIMIT 1);
CREATE INDEX etl_runs_outside_queue_idx ON audit.etl_runs (started_at) WHERE queue_id IS NULL;

-- Progress of the attempt in flight, written every few seconds by its worker (another process,
-- `vinops-etl status`, reads it). Left as they were when the attempt ends.
ALTER TABLE raw.file_queue
  ADD COLUMN progress_phase text,          -- reading | promoting | upserting | committing
  ADD COLUMN progress_rows  bigint,        -- data rows read so far
  ADD COLUMN progress_bytes bigint,        -- bytes of the file read so far (size is the total)
  ADD COLUMN progress_at    timestamptz;   -- when the worker wrote these
