-- Every table that refers to raw.csv_files gets an index on the reference. Deleting files
-- (retention, docs/operations.md) makes each foreign key's action find the rows of each deleted
-- file; without an index that is a scan of the whole table per file: 8,640 files (90 days) against
-- audit.upsert_conflicts (~80 stale rows a file, ~700,000 rows after 90 days) is 8,640 full scans.
CREATE INDEX vin_conflicts_file_id_idx ON audit.vin_conflicts (file_id);
CREATE INDEX upsert_conflicts_file_id_idx ON audit.upsert_conflicts (file_id);
CREATE INDEX file_queue_file_id_idx ON raw.file_queue (file_id);
