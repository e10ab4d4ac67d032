-- Typed staging. Typing is a pure function of (header layout, values), i.e. of the payload, so typed
-- rows are stored once per payload (staging.copart_typed) and staging.copart_raw presents them per
-- file row. The typing rules live in src/typing.ts and src/rowEncoder.ts (they run while the file
-- streams in); an odd value becomes NULL with a note in processing_error, never an error.

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
