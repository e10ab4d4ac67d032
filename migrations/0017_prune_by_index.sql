-- Database retention at a year's scale (docs/retention.md, docs/performance.md): every statement of a
-- prune batch finds its rows by index. Measured on 90 days of files and 3.6 million lots, a day's 12
-- batches of 8 files took 272 s under the payload lock, loads waiting for them. In EXPLAIN, one batch:
-- forgetting the removed files as lots' sources scanned all of public.lots (3.8 s), and deleting the
-- retired payloads hash-joined all of raw.payloads and staging.copart_typed (32 s; migrations/0016
-- and src/archive/pruneDatabase.ts).

-- The lots whose source file is removed, by index. source_file_id changes with every row a load
-- writes, so an index on it takes those updates off the heap-only path: ~1,500 lots a file.
-- IF NOT EXISTS: on a big table an operator may build it first with CREATE INDEX CONCURRENTLY
-- (docs/operations.md, Upgrade), so this migration does not hold writes to public.lots meanwhile.
CREATE INDEX IF NOT EXISTS lots_source_file_idx ON public.lots (source_file_id);

-- = ANY (ARRAY(...)) instead of IN (SELECT ...): a transition table has no statistics, and a guess of
-- many rows made the planner scan public.lots whatever the index.
CREATE OR REPLACE FUNCTION raw.forget_deleted_sources() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF TG_OP = 'TRUNCATE' THEN
    UPDATE public.lots SET source_file_id = NULL WHERE source_file_id IS NOT NULL;
  ELSE
    UPDATE public.lots SET source_file_id = NULL
     WHERE source_file_id = ANY (ARRAY(SELECT file_id FROM deleted_files));
  END IF;
  RETURN NULL;
END
$$;
