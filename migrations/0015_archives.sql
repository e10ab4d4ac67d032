-- The archive ledger (docs/retention.md): one row per stored file written to an archive target and
-- read back. Not tied to raw.csv_files by a foreign key: the record of where a file went outlives
-- the file's rows in the database.

CREATE TABLE raw.archives (
  archive_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  sha256       text        NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),   -- of the original file
  file_id      uuid,                                                      -- when it was archived
  target       text        NOT NULL,                                      -- archiveUrl (no credentials)
  object_key   text        NOT NULL,                                      -- YYYY/MM/DD/HHmm.csv.gz under the target
  bytes        bigint      NOT NULL,                                      -- original bytes
  stored_bytes bigint      NOT NULL,                                      -- compressed bytes written
  archived_at  timestamptz NOT NULL DEFAULT now(),
  verified_at  timestamptz NOT NULL,                                      -- read back, decompressed, sha256 equal
  UNIQUE (target, sha256),
  UNIQUE (target, object_key)                                           -- one file per object
);
CREATE INDEX archives_file_id_idx ON raw.archives (file_id);
COMMENT ON TABLE raw.archives IS 'Stored files written to an archive target and verified by reading them back';
