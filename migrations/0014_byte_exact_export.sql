-- Byte-exact export (docs/storage.md, *Byte-exact export*): a stored file's original bytes can be
-- written back from the database alone. A record is rendered canonically from its stored values
-- (every field quoted, quotes doubled, the header's line ending); what that rendering cannot give
-- back is kept here: the header line's bytes (with a BOM), the blank lines after the last record,
-- and, per record that is not in canonical form (a bare quote, an unquoted field, another line
-- ending, blank lines before it, a parse error), its exact bytes. The feed's usual style needs none.

ALTER TABLE raw.csv_files
  ADD COLUMN header_bytes  bytea,    -- from the first byte to the first record (BOM, header line, its line ending)
  ADD COLUMN trailer_bytes bytea,    -- blank lines after the last record
  -- true: every byte is kept; false: not all could be (export_note says why); NULL: stored before 0014
  ADD COLUMN export_exact  boolean,
  ADD COLUMN export_note   text;

CREATE TABLE raw.file_residuals (
  file_id   uuid    NOT NULL REFERENCES raw.csv_files (file_id) ON DELETE CASCADE,
  record_no integer NOT NULL,        -- 1-based among the file's data records (rows and parse errors)
  bytes     bytea   NOT NULL,        -- the blank lines before the record, the record, its line ending
  PRIMARY KEY (file_id, record_no)
);
COMMENT ON TABLE raw.file_residuals IS 'Exact bytes of the records whose canonical rendering differs from the file (byte-exact export)';
