-- The lot lifecycle (docs/lifecycle.md): files in feed order, the events between consecutive full
-- snapshots, and each lot's presence and most likely outcome.

-- Feed order. snapshot_at: the UTC window of a …/YYYY/MM/DD/HHmm.csv path, else the newest Last
-- Updated Time in the file, else its mtime. Files are compared in (snapshot_at, sha256) order.
ALTER TABLE raw.csv_files
  ADD COLUMN snapshot_at            timestamptz,
  ADD COLUMN snapshot_rule          text CHECK (snapshot_rule IN ('window', 'last_updated', 'file_mtime')),
  -- Not a full snapshot (a truncated download that is still a valid CSV): its rows are stored and
  -- applied, its absences are not taken as disappearances.
  ADD COLUMN partial                boolean NOT NULL DEFAULT false,
  ADD COLUMN partial_reason         text,
  -- The full snapshot before this one that its events were computed against (NULL: the first, or
  -- not computed yet); lifecycle_at says when. A file whose predecessor in feed order is no longer
  -- this one has its events computed again.
  ADD COLUMN lifecycle_prev_file_id uuid,
  ADD COLUMN lifecycle_at           timestamptz,
  ADD COLUMN lot_count              integer;       -- distinct lots, once its events are computed (full snapshots)

UPDATE raw.csv_files f SET
  snapshot_at = coalesce(f.window_start, m.newest, f.file_mtime, f.ingested_at),
  snapshot_rule = CASE WHEN f.window_start IS NOT NULL THEN 'window' WHEN m.newest IS NOT NULL THEN 'last_updated' ELSE 'file_mtime' END
  FROM (SELECT c.file_id, max(t.source_updated_at) AS newest
          FROM raw.file_contents c CROSS JOIN LATERAL unnest(c.payload_hashes) h
          JOIN staging.copart_typed t ON t.payload_hash = h
         GROUP BY c.file_id) m
 WHERE m.file_id = f.file_id;
UPDATE raw.csv_files SET snapshot_at = coalesce(window_start, file_mtime, ingested_at),
       snapshot_rule = CASE WHEN window_start IS NOT NULL THEN 'window' ELSE 'file_mtime' END
 WHERE snapshot_at IS NULL;
ALTER TABLE raw.csv_files ALTER COLUMN snapshot_at SET NOT NULL, ALTER COLUMN snapshot_rule SET NOT NULL;
CREATE INDEX csv_files_feed_order_idx ON raw.csv_files (snapshot_at, sha256);

-- A lot's rows across all files: its distinct contents by lot number, and the file that first
-- brought each (whose header names its values).
ALTER TABLE staging.copart_typed ADD COLUMN first_file_id uuid;
UPDATE staging.copart_typed t SET first_file_id = x.file_id
  FROM (SELECT DISTINCT ON (h) h, c.file_id
          FROM raw.file_contents c JOIN raw.csv_files f USING (file_id) CROSS JOIN LATERAL unnest(c.payload_hashes) h
         WHERE h IS NOT NULL ORDER BY h, f.ingested_at) x
 WHERE t.payload_hash = x.h;
CREATE INDEX copart_typed_lot_idx ON staging.copart_typed (lot_external_id);

CREATE TABLE public.lot_events (
  event_id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  lot_external_id         text        NOT NULL,
  vin                     text,                   -- normalized VIN of the lot's row, NULL when none
  kind                    text        NOT NULL CHECK (kind IN ('appeared', 'disappeared', 'reappeared', 'relisted', 'changed')),
  field                   text,                   -- changed: which field
  old_value               text,                   -- changed: canonical text of the value before / after
  new_value               text,
  related_lot_external_id text,                   -- relisted: the earlier lot of the VIN
  file_id                 uuid        NOT NULL,   -- the later file of the pair (no foreign key: events outlive pruned files)
  snapshot_at             timestamptz NOT NULL,   -- that file's snapshot_at
  previous_snapshot_at    timestamptz,            -- the earlier file's snapshot_at (NULL: the first file)
  CHECK ((kind = 'changed') = (field IS NOT NULL)),
  CHECK ((kind = 'relisted') = (related_lot_external_id IS NOT NULL))
);
CREATE INDEX lot_events_lot_idx ON public.lot_events (lot_external_id, snapshot_at);
CREATE INDEX lot_events_file_idx ON public.lot_events (file_id);
CREATE INDEX lot_events_related_idx ON public.lot_events (related_lot_external_id) WHERE related_lot_external_id IS NOT NULL;
COMMENT ON TABLE public.lot_events IS 'What changed between consecutive full snapshots, per lot (docs/lifecycle.md)';

-- first_seen_at was the time the row was inserted; it is now the snapshot time of the first full
-- snapshot that listed the lot (set again for every lot when the lifecycle catches up), NULL for a
-- lot seen only in partial files.
ALTER TABLE public.lots
  ADD COLUMN last_seen_at             timestamptz,  -- snapshot of the last file that listed it, once it has left (NULL while listed)
  ADD COLUMN listed                   boolean NOT NULL DEFAULT false,  -- present in the newest full snapshot
  ADD COLUMN last_high_bid            numeric,      -- the newest High Bid seen: the best known figure for the sale price
  ADD COLUMN outcome                  text CHECK (outcome IN ('sold', 'not_sold', 'on_approval', 'withdrawn')),
  ADD COLUMN outcome_at               timestamptz,
  ADD COLUMN outcome_method           text,
  ADD COLUMN previous_lot_external_id text,
  ADD COLUMN relist_count             integer NOT NULL DEFAULT 0;
UPDATE public.lots SET last_high_bid = high_bid WHERE high_bid IS NOT NULL;
ALTER TABLE public.lots ALTER COLUMN first_seen_at DROP NOT NULL, ALTER COLUMN first_seen_at DROP DEFAULT;
CREATE INDEX lots_outcome_idx ON public.lots (outcome, outcome_at) WHERE outcome IS NOT NULL;
CREATE INDEX lots_listed_idx ON public.lots (lot_id) WHERE listed;

-- One row per lot of a VIN, for a VIN-history page.
CREATE VIEW public.vin_history AS
SELECT l.vin, l.lot_external_id, l.first_seen_at,
       CASE WHEN l.listed THEN (SELECT max(f.snapshot_at) FROM raw.csv_files f WHERE NOT f.partial) ELSE l.last_seen_at END AS last_seen_at,
       l.listed, l.auction_at, l.sale_status AS last_sale_status, l.last_high_bid, l.outcome, l.outcome_at, l.outcome_method,
       l.previous_lot_external_id, l.relist_count,
       (SELECT n.lot_external_id FROM public.lot_events n
         WHERE n.kind = 'relisted' AND n.related_lot_external_id = l.lot_external_id
         ORDER BY n.snapshot_at LIMIT 1) AS next_lot_external_id
  FROM public.lots l
 WHERE l.vin IS NOT NULL;
COMMENT ON VIEW public.vin_history IS 'Every lot of a VIN with its presence, outcome and relist chain; ORDER BY vin, first_seen_at';

-- A lot's rows across every file, in milliseconds: its distinct contents through the lot index, each
-- with the header of the file that first brought it. Which files held each content: the lot's events
-- (public.lot_events) or raw.file_rows.
CREATE FUNCTION staging.lot_rows(lot text)
RETURNS TABLE (payload_hash uuid, source_updated_at timestamptz, first_file_id uuid, first_path text,
               first_snapshot_at timestamptz, payload_jsonb jsonb)
LANGUAGE sql STABLE
BEGIN ATOMIC
  SELECT t.payload_hash, t.source_updated_at, t.first_file_id, f.path, f.snapshot_at,
         jsonb_object(f.payload_keys, raw.payload_values(p))
    FROM staging.copart_typed t
    JOIN raw.payloads p ON p.hash = t.payload_hash
    LEFT JOIN raw.csv_files f ON f.file_id = t.first_file_id
   WHERE t.lot_external_id = lot_rows.lot
   ORDER BY coalesce(t.source_updated_at, '-infinity'::timestamptz), t.payload_hash;
END;
