-- Replays of stored files from raw (`vinops-etl replay`): staging typed again from the stored
-- payloads and the core upsert run again over every lot of the file. One row per file replayed.

CREATE TABLE audit.replays (
  replay_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  file_id         uuid        NOT NULL REFERENCES raw.csv_files (file_id) ON DELETE CASCADE,
  data_rows       integer     NOT NULL,
  payloads        integer     NOT NULL,   -- distinct payloads typed again (fewer when --all met them in an earlier file)
  typed_inserted  integer     NOT NULL,   -- staging rows that were missing
  typed_updated   integer     NOT NULL,   -- staging rows whose typing changed
  lots            jsonb       NOT NULL,   -- {"inserted", "updated", "unchanged", "stale"}
  vehicles        jsonb       NOT NULL,
  vin_conflicts   integer     NOT NULL,
  started_at      timestamptz NOT NULL,
  finished_at     timestamptz NOT NULL DEFAULT now(),
  duration_ms     integer     NOT NULL,
  worker          text
);
CREATE INDEX replays_file_id_idx ON audit.replays (file_id);

-- A replay looks up a VIN conflict by its VIN before recording it (by lot: vin_conflicts_lot_idx).
CREATE INDEX vin_conflicts_vin_idx ON audit.vin_conflicts (vin_normalized);

-- Sale Status of the lots: the three values the feed is known to carry, and any other kept as it
-- came (never an error; counted by vinops_etl_unknown_sale_status_total as lots are applied).
CREATE VIEW audit.v_sale_status AS
SELECT l.sale_status,
       l.sale_status IN ('Pure Sale', 'On Minimum Bid', 'On Approval') AS known,
       count(*)::integer AS lots,
       max(l.updated_at) AS last_updated_at
  FROM public.lots l
 GROUP BY l.sale_status;
COMMENT ON VIEW audit.v_sale_status IS 'Lots per Sale Status; known = false for a value the feed was not known to carry (NULL: empty)';
