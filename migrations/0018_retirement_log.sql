-- The payload bookkeeping of database retention (migrations/0016, docs/retention.md) without a
-- random-key index. Each load inserted its ~1,500 leavers into raw.payload_retirements' primary key
-- on hash and deleted the rows of the payloads it carried again, probing that key per row. Hashes are
-- content addresses, spread over the whole key, and at a year's history (13 million retirements) each
-- load touched ~1,500 leaf pages of a 0.66 GB index to insert and ~1,800 more to probe: the steady
-- state's reads, dirtied pages and full-page images grew with history (docs/performance.md).
--
-- Now the retirements are a log in time order, found only through last_seen_at (whose index grows at
-- its end), and a payload that comes back is recorded in raw.payload_returns instead of its retirement
-- being deleted. A payload's retirement at T stands unless it came back after T: retention deletes a
-- payload when one of its due retirements has no later return (src/archive/pruneDatabase.ts). Returns
-- are rare (a row whose values are exactly those of an earlier, older file), so that table stays small.

ALTER TABLE raw.payload_retirements DROP CONSTRAINT payload_retirements_pkey;
COMMENT ON TABLE raw.payload_retirements IS
  'Payloads a file had and the next one lacked, with when they were last in one: a log in ingest order; a later raw.payload_returns row undoes one';

CREATE TABLE raw.payload_returns (
  hash        uuid        PRIMARY KEY,   -- raw.payloads.hash
  returned_at timestamptz NOT NULL       -- when a load carried it again, after the file before lacked it
);
COMMENT ON TABLE raw.payload_returns IS 'Payloads carried again after a retirement: a retirement before returned_at does not free the payload';

-- A retirement whose payload is gone (deleted by hand with the SQL docs/operations.md gave before
-- this migration) would, with the log, outlive a payload stored again under the same address.
DELETE FROM raw.payload_retirements r WHERE NOT EXISTS (SELECT 1 FROM raw.payloads p WHERE p.hash = r.hash);
