-- Since migration 0018 a retirement is undone by a later raw.payload_returns row instead of being
-- deleted. A vinops-etl from before 0018 still running on another host during an upgrade (it ignores
-- migrations it does not know: docs/operations.md, Upgrade) would prune by the old rule, deleting
-- every due retirement's payload, including one that came back and that a remaining file still has.
-- Its loads already fail (their upsert needs the primary key 0018 dropped); this makes its prune fail
-- too: deleting retirements needs the setting this version's loads and prunes set (src/db/locks.ts).

-- Refuses the statement unless the transaction set vinops.retirement_log; the trigger's argument is
-- the message (migration 0021 guards raw.file_contents with it too).
CREATE FUNCTION raw.require_payload_bookkeeping() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF coalesce(current_setting('vinops.retirement_log', true), '') <> 'on' THEN
    RAISE EXCEPTION '%', TG_ARGV[0] USING ERRCODE = 'object_not_in_prerequisite_state';
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER refuse_retirement_delete BEFORE DELETE OR TRUNCATE ON raw.payload_retirements
  FOR EACH STATEMENT EXECUTE FUNCTION raw.require_payload_bookkeeping(
    'raw.payload_retirements is a log since migration 0018: this program predates it, upgrade it (or SET LOCAL vinops.retirement_log = on, docs/operations.md, Retention)');

-- Retention drops each batch the returns older than every remaining retirement: by index.
CREATE INDEX payload_returns_returned_at_idx ON raw.payload_returns (returned_at);
