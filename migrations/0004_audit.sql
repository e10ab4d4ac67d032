-- Runs, parse errors, conflicts, and the views operations monitor.

CREATE TABLE audit.etl_runs (
  run_id        uuid PRIMARY KEY,
  file_id       uuid REFERENCES raw.csv_files (file_id) ON DELETE SET NULL,  -- the registered (or already registered) file
  path          text        NOT NULL,
  sha256        text,
  bytes         bigint,
  outcome       text        NOT NULL CHECK (outcome IN ('ingested', 'duplicate', 'rejected', 'failed')),
  reason        text,                      -- why a file was rejected or failed
  data_rows     integer,
  parse_errors  integer,
  started_at    timestamptz NOT NULL,
  finished_at   timestamptz NOT NULL DEFAULT now(),
  duration_ms   integer,
  worker        text                       -- host:pid of the process that ran it
);
CREATE INDEX etl_runs_finished_at_idx ON audit.etl_runs (finished_at);
CREATE INDEX etl_runs_file_id_idx ON audit.etl_runs (file_id);

CREATE TABLE audit.parse_errors (
  parse_error_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  run_id         uuid    NOT NULL REFERENCES audit.etl_runs (run_id) ON DELETE CASCADE,
  file_id        uuid    REFERENCES raw.csv_files (file_id) ON DELETE CASCADE,  -- NULL when the file was rejected
  path           text    NOT NULL,
  line_no        bigint  NOT NULL,        -- physical line in the file where the record starts (header = 1)
  record_no      bigint  NOT NULL,        -- 1-based position among data records (the row_no it would have had)
  error          text    NOT NULL,
  raw_text       text    NOT NULL,        -- the line(s) as text; invalid UTF-8 and NUL shown as U+FFFD
  raw_bytes      bytea   NOT NULL,        -- the exact bytes (first raw_truncated_at bytes at most)
  raw_length     bigint  NOT NULL,        -- length of the record in bytes, before any truncation
  created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX parse_errors_file_id_idx ON audit.parse_errors (file_id);
CREATE INDEX parse_errors_run_id_idx ON audit.parse_errors (run_id);

CREATE TABLE audit.vin_conflicts (
  vin_conflict_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  kind            text NOT NULL CHECK (kind IN ('lot_vin_changed', 'vin_raw_variant')),
  lot_external_id text,
  vin_normalized  text,
  old_value       text,     -- previous normalized VIN of the lot, or the raw form already known
  new_value       text,     -- incoming normalized VIN, or the other raw form
  file_id         uuid REFERENCES raw.csv_files (file_id) ON DELETE CASCADE,
  row_no          integer,
  detected_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX vin_conflicts_lot_idx ON audit.vin_conflicts (lot_external_id);

CREATE TABLE audit.upsert_conflicts (
  upsert_conflict_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  table_name          text NOT NULL,
  lot_external_id     text,
  file_id             uuid REFERENCES raw.csv_files (file_id) ON DELETE CASCADE,
  row_no              integer,
  incoming_updated_at timestamptz,
  current_updated_at  timestamptz,
  reason              text NOT NULL,
  detected_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX upsert_conflicts_lot_idx ON audit.upsert_conflicts (lot_external_id);

-- Declared rows (the registry) against rows actually stored, per file. A mismatch is a bug.
CREATE VIEW audit.v_ingest_count AS
SELECT f.file_id, f.path, f.row_count AS declared_rows, c.actual_rows, f.ingested_at
  FROM raw.csv_files f
  CROSS JOIN LATERAL (SELECT count(*)::integer AS actual_rows FROM raw.file_contents fc, unnest(fc.payload_hashes) h
                      WHERE fc.file_id = f.file_id AND h IS NOT NULL) c;

-- Share of rows with an empty VIN / Lot number per file, in percent (counted at promote time).
CREATE VIEW audit.v_unknown_rate AS
SELECT f.file_id, f.path,
       round(100.0 * f.vin_empty_rows / nullif(f.row_count, 0), 4) AS vin_null_pct,
       round(100.0 * f.lot_empty_rows / nullif(f.row_count, 0), 4) AS lot_null_pct,
       f.row_count AS total_rows,
       f.ingested_at
  FROM raw.csv_files f;

-- Parse errors per run (a rejected file has a run but no file_id).
CREATE VIEW audit.v_parse_errors AS
SELECT e.run_id, e.file_id, e.path,
       count(*)::integer AS error_count,
       min(e.line_no) AS first_line_no,
       (array_agg(e.error ORDER BY e.line_no))[1] AS first_error,
       max(e.created_at) AS last_seen_at
  FROM audit.parse_errors e
 GROUP BY e.run_id, e.file_id, e.path;
