-- The file registry and the lossless row store.
--
-- Storage design (see docs/storage.md): a new file every ~15 minutes repeats almost every lot of the
-- previous one. Each data row is split into
--   * its Id cell (a row counter that shifts between downloads), kept per file row, and
--   * the other cells, stored once per distinct content in raw.payloads, addressed by
--     md5(header layout || values): joined with U+001F (unit separator) in vals_text, or, for a file
--     that contains that byte anywhere, as a text[] in vals (lossless either way).
-- raw.file_rows keeps one narrow row per (file, row) pointing at its payload; the header is stored once
-- per file. raw.rows reassembles header name -> exact string for every row of every file.

CREATE TABLE raw.csv_files (
  file_id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  path              text        NOT NULL,
  sha256            text        NOT NULL UNIQUE CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  bytes             bigint      NOT NULL CHECK (bytes >= 0),
  row_count         integer     NOT NULL CHECK (row_count >= 0),      -- data rows stored
  record_count      integer     NOT NULL CHECK (record_count >= 0),   -- data records read (stored + parse errors)
  parse_error_count integer     NOT NULL DEFAULT 0 CHECK (parse_error_count >= 0),
  headers_jsonb     jsonb       NOT NULL,                            -- header names, verbatim, in file order
  payload_keys      text[]      NOT NULL,                            -- JSON keys of payload values (header minus Id, made unique)
  id_key            text,                                            -- JSON key of the Id column, NULL when the file has none
  header_variant    text,                                            -- v1 | v2 | v3 | v4, NULL when the header matches none
  missing_columns   text[]      NOT NULL DEFAULT '{}',               -- known columns the typing uses that the file lacks
  extra_columns     text[]      NOT NULL DEFAULT '{}',               -- columns of no known variant
  has_bom           boolean     NOT NULL DEFAULT false,
  line_ending       text        NOT NULL DEFAULT 'LF' CHECK (line_ending IN ('LF', 'CRLF', 'mixed', 'none')),
  blank_lines       integer     NOT NULL DEFAULT 0,                  -- empty lines skipped (not records)
  first_irregularity text,                                           -- first thing a strict RFC 4180 reader would read differently, e.g. 'line 550: bare quote'
  vin_empty_rows    integer     NOT NULL DEFAULT 0,
  lot_empty_rows    integer     NOT NULL DEFAULT 0,
  window_start      timestamptz,                                     -- from a .../YYYY/MM/DD/HHmm.csv path (UTC)
  file_mtime        timestamptz,
  started_at        timestamptz NOT NULL,
  ingested_at       timestamptz NOT NULL DEFAULT now(),
  read_ms           integer,                                         -- streaming the file into the temp table
  promote_ms        integer,                                         -- set-based promote into raw, staging, audit
  duration_ms       integer
);
CREATE INDEX csv_files_ingested_at_idx ON raw.csv_files (ingested_at);
CREATE INDEX csv_files_window_start_idx ON raw.csv_files (window_start);
COMMENT ON TABLE raw.csv_files IS 'One row per distinct file content (sha256), committed together with all of its rows';

CREATE TABLE raw.payloads (
  hash      uuid PRIMARY KEY,  -- md5 of the file's header layout and the values, as uuid (16 bytes)
  vals_text text,              -- cell values in header order, Id excluded, exact strings, joined by U+001F
  vals      text[],            -- the same as an array, for values that contain U+001F themselves
  CHECK ((vals_text IS NULL) <> (vals IS NULL))
);
COMMENT ON TABLE raw.payloads IS 'Content-addressed row values shared by every file row with the same content';

CREATE TABLE raw.file_contents (
  file_id        uuid PRIMARY KEY REFERENCES raw.csv_files (file_id) ON DELETE CASCADE,
  payload_hashes uuid[] NOT NULL,   -- element n: raw.payloads.hash of data record n (NULL: a parse error)
  id_values      text[]            -- element n: the Id cell of record n; NULL when the file has no Id column
);
COMMENT ON TABLE raw.file_contents IS 'Every data row of a file, in file order, as payload addresses: one row per file';

-- A payload's values as text[], whichever way they are stored.
CREATE FUNCTION raw.payload_values(p raw.payloads) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN coalesce(p.vals, string_to_array(p.vals_text, E'\x1f'));

-- One row per data row of every file: (file_id, row_no, payload_hash, id_value).
CREATE VIEW raw.file_rows AS
SELECT c.file_id, u.row_no::integer AS row_no, u.payload_hash, u.id_value
  FROM raw.file_contents c
  CROSS JOIN LATERAL unnest(c.payload_hashes, c.id_values) WITH ORDINALITY AS u(payload_hash, id_value, row_no)
 WHERE u.payload_hash IS NOT NULL;
COMMENT ON VIEW raw.file_rows IS 'Every data row of every file as its payload address (row_no: position among the file''s data records)';

CREATE VIEW raw.rows AS
SELECT r.file_id,
       r.row_no,
       CASE WHEN f.id_key IS NULL THEN jsonb_object(f.payload_keys, raw.payload_values(p))
            ELSE jsonb_object(f.payload_keys, raw.payload_values(p)) || jsonb_build_object(f.id_key, r.id_value)
       END AS payload_jsonb
  FROM raw.file_rows r
  JOIN raw.csv_files f USING (file_id)
  JOIN raw.payloads p ON p.hash = r.payload_hash;
COMMENT ON VIEW raw.rows IS 'Every data row of every file: header name -> exact string in the file';
