-- public.lots.source_file_id: from a foreign key to a statement-level rule on raw.csv_files.
--
-- The foreign key checked every inserted or updated lot by itself: 154,000 checks of the same
-- raw.csv_files row on a first file (~0.55 s of ~9 s), and on delete it cleared the lots of each
-- deleted file with a scan of public.lots per file (retention deleting 8,640 files: 8,640 scans of
-- public.lots). Now a deletion clears the lots of all deleted files in one statement, and nothing
-- checks inserts: only the loader writes public.lots, and it sets source_file_id to the file it is
-- registering in the same transaction, or in a replay to the file it holds FOR SHARE (so it cannot
-- be deleted meanwhile). A value written by anything else is not checked (docs/core-tables.md).
-- The rule runs as its owner, as a foreign key's action does, so a role that may delete files
-- need not be allowed to update public.lots. Retention runs at READ COMMITTED (the default): each
-- statement of the rule then sees what loads committed while the delete waited for their locks.

ALTER TABLE public.lots DROP CONSTRAINT lots_source_file_id_fkey;

-- What ON DELETE SET NULL did: a lot whose source file is deleted keeps its data, not its source.
-- TRUNCATE raw.csv_files … CASCADE likewise keeps the lots (the foreign key made it truncate them).
CREATE FUNCTION raw.forget_deleted_sources() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF TG_OP = 'TRUNCATE' THEN
    UPDATE public.lots SET source_file_id = NULL WHERE source_file_id IS NOT NULL;
  ELSE
    UPDATE public.lots SET source_file_id = NULL
     WHERE source_file_id IN (SELECT file_id FROM deleted_files);
  END IF;
  RETURN NULL;
END
$$;

CREATE TRIGGER csv_files_forget_deleted_sources AFTER DELETE ON raw.csv_files
  REFERENCING OLD TABLE AS deleted_files FOR EACH STATEMENT EXECUTE FUNCTION raw.forget_deleted_sources();
CREATE TRIGGER csv_files_forget_truncated_sources AFTER TRUNCATE ON raw.csv_files
  FOR EACH STATEMENT EXECUTE FUNCTION raw.forget_deleted_sources();
