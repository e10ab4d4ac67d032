-- The loads refresh the statistics of the tables a big file has just grown (inside their own
-- transaction: docs/performance.md). ANALYZE needs the table's owner (or, from PostgreSQL 17, the
-- MAINTAIN privilege): the daemon's least-privilege role owns nothing (docs/security.md), so it calls
-- these functions, which run as the schema owner and can analyze exactly these columns, nothing else:
-- the ones the upsert joins and groups on (the wide value columns would take twice as long to sample
-- for nothing).
-- search_path is fixed so the caller cannot redirect a name.

CREATE FUNCTION raw.analyze_payload_store() RETURNS void
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  ANALYZE raw.payloads (hash), staging.copart_typed (payload_hash, lot_external_id, vin_normalized);
END $$;

CREATE FUNCTION public.analyze_lot_events() RETURNS void
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  ANALYZE public.lot_events (lot_external_id, kind, file_id, related_lot_external_id);
END $$;

-- Only the writer role gets EXECUTE (vinops-etl roles / migrate grant it).
REVOKE EXECUTE ON FUNCTION raw.analyze_payload_store(), public.analyze_lot_events() FROM PUBLIC;
