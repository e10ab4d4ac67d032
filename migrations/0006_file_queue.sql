-- The daemon's durable queue: one row per version of a file seen in the raw tree (path, size, mtime).
-- Workers claim rows with FOR UPDATE SKIP LOCKED, so several daemons on one tree and one database take
-- each file exactly once; a claim whose heartbeat stopped (the worker died) is taken over.

CREATE TABLE raw.file_queue (
  queue_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  path            text        NOT NULL,
  size            bigint      NOT NULL,
  mtime           timestamptz NOT NULL,
  state           text        NOT NULL DEFAULT 'pending'
                  CHECK (state IN ('pending', 'running', 'ingested', 'duplicate', 'rejected', 'failed')),
  attempts        integer     NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  locked_by       text,                  -- host:pid:worker of the claim
  heartbeat_at    timestamptz,           -- renewed while the file is being ingested
  last_error      text,
  file_id         uuid REFERENCES raw.csv_files (file_id) ON DELETE SET NULL,
  run_id          uuid,                  -- audit.etl_runs of the last attempt
  discovered_at   timestamptz NOT NULL DEFAULT now(),
  started_at      timestamptz,
  finished_at     timestamptz,
  UNIQUE (path, size, mtime)             -- new bytes at the same path are a new file
);
CREATE INDEX file_queue_pending_idx ON raw.file_queue (next_attempt_at, mtime) WHERE state = 'pending';
CREATE INDEX file_queue_running_idx ON raw.file_queue (heartbeat_at) WHERE state = 'running';
COMMENT ON TABLE raw.file_queue IS 'Files discovered in the raw tree and their ingest state (the daemon''s queue)';
