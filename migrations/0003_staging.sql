-- Typed staging. Typing is a pure function of (header layout, values), i.e. of the payload, so typed
-- rows are stored once per payload (staging.copart_typed) and staging.copart_raw presents them per
-- file row. The typing statement itself is src/sql/typePayloads.ts (column positions differ per header
-- variant); the helpers here are total: an odd value yields NULL, never an error, so one bad date never
-- fails a file.

-- y/m/d -> date, NULL unless it is a real calendar day (1900-2199). Only integer arithmetic and a
-- make_date on clamped arguments: it cannot raise, not even when the planner folds constants.
CREATE FUNCTION staging.make_date_or_null(y integer, m integer, d integer) RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE
  WHEN y BETWEEN 1900 AND 2199 AND m BETWEEN 1 AND 12
   AND d BETWEEN 1 AND CASE WHEN m = 2 THEN CASE WHEN (y % 4 = 0 AND y % 100 <> 0) OR y % 400 = 0 THEN 29 ELSE 28 END
                            WHEN m IN (4, 6, 9, 11) THEN 30
                            ELSE 31 END
  THEN make_date(least(greatest(y, 1900), 2199), least(greatest(m, 1), 12), 1) + (least(greatest(d, 1), 31) - 1)
END;

-- UTC offset in minutes of the feed's time-zone abbreviations. AKST/AKDT on Canadian lots are the
-- feed's label for Atlantic time (FEED.md: Nova Scotia yards), which does not follow DST there.
CREATE FUNCTION staging.tz_offset_minutes(tz text, country text) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE upper(btrim(tz))
  WHEN 'NDT' THEN -150  WHEN 'NST' THEN -210
  WHEN 'ADT' THEN -180  WHEN 'AST' THEN -240
  WHEN 'EDT' THEN -240  WHEN 'EST' THEN -300
  WHEN 'CDT' THEN -300  WHEN 'CST' THEN -360
  WHEN 'MDT' THEN -360  WHEN 'MST' THEN -420
  WHEN 'PDT' THEN -420  WHEN 'PST' THEN -480
  WHEN 'AKDT' THEN CASE WHEN upper(btrim(country)) IN ('CAN', 'CA') THEN -240 ELSE -480 END
  WHEN 'AKST' THEN CASE WHEN upper(btrim(country)) IN ('CAN', 'CA') THEN -240 ELSE -540 END
  WHEN 'HDT' THEN -540  WHEN 'HST' THEN -600
  WHEN 'UTC' THEN 0     WHEN 'GMT' THEN 0
END;

CREATE TABLE staging.copart_typed (
  payload_hash       uuid PRIMARY KEY,         -- raw.payloads.hash
  lot_external_id    text,                     -- Lot number, trimmed
  vin_raw            text,                     -- VIN exactly as in the file
  vin_normalized     text,                     -- normalize_vin(vin_raw)
  vin_valid          boolean NOT NULL,         -- is_valid_vin(vin_raw)
  yard_number        integer,
  yard_name          text,
  sale_date          date,                     -- NULL when not scheduled (0)
  sale_time_hhmm     integer,
  time_zone          text,
  auction_at         timestamptz,              -- Sale Date + Sale time + Time Zone, in UTC
  item_number        integer,
  vehicle_type       text,
  year               integer,
  make               text,
  model_group        text,
  model_detail       text,
  body_style         text,
  color              text,
  damage_description text,
  secondary_damage   text,
  title_state        text,
  title_type         text,
  has_keys           text,                     -- YES | NO | EXM, as in the file
  lot_cond_code      text,
  odometer           numeric,                  -- 0.0 -> NULL
  odometer_brand     text,
  est_retail_value   numeric,                  -- 0.0 -> NULL
  repair_cost        numeric,                  -- 0.0 -> NULL
  engine             text,
  drive              text,
  transmission       text,
  fuel_type          text,
  cylinders          integer,
  runs_drives        text,
  sale_status        text,
  high_bid           numeric,                  -- 0.0 (no bids yet) -> NULL
  special_note       text,
  location_city      text,
  location_state     text,
  location_zip       text,
  location_country   text,
  currency_code      text,
  image_thumbnail    text,
  image_url          text,
  source_created_at  timestamp,                -- Create Date/Time (no zone in the feed)
  grid_row           text,
  make_offer_eligible text,
  buy_it_now_price   numeric,                  -- 0.0 -> NULL
  trim_level         text,
  source_updated_at  timestamptz,              -- Last Updated Time: the last-write-wins clock
  seller_name        text,
  processing_error   text                      -- why a present value was typed as NULL, '; '-separated
);
COMMENT ON TABLE staging.copart_typed IS 'Typed values, one row per distinct payload';

CREATE VIEW staging.copart_raw AS
SELECT r.file_id, r.row_no, t.*
  FROM raw.file_rows r
  JOIN staging.copart_typed t ON t.payload_hash = r.payload_hash;
COMMENT ON VIEW staging.copart_raw IS 'One typed row per data row of every file';
