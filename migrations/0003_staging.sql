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
  sale_date          date,                     -- NULL when not scheduled (0)
  sale_time_hhmm     integer,                  -- 1200, 700 (HHMM as in the file)
  time_zone          text,                     -- EDT, CST, ... as in the file
  auction_at         timestamptz,              -- Sale Date + Sale time + Time Zone, in UTC
  item_number        integer,
  vehicle_type       text,                     -- V, K, C, ...
  year               integer,
  has_keys           text,                     -- YES | NO | EXM
  odometer           numeric,                  -- 0.0 -> NULL (unknown)
  est_retail_value   numeric,                  -- 0.0 -> NULL
  repair_cost        numeric,                  -- 0.0 -> NULL
  buy_it_now_price   numeric,                  -- 0.0 -> NULL
  high_bid           numeric,                  -- 0.0 (no bids yet) -> NULL
  cylinders          integer,
  sale_status        text,                     -- Pure Sale | On Minimum Bid | On Approval | other, as in the file
  currency_code      text,
  source_created_at  timestamp,                -- Create Date/Time (the feed states no zone)
  source_updated_at  timestamptz,              -- Last Updated Time: the last-write-wins clock
  processing_error   text                      -- why a present value was typed as NULL, '; '-separated
);
COMMENT ON TABLE staging.copart_typed IS 'Typed keys, dates, money and codes, one row per distinct payload; descriptive text stays in raw';

CREATE VIEW staging.copart_raw AS
SELECT r.file_id, r.row_no, t.*
  FROM raw.file_rows r
  JOIN staging.copart_typed t ON t.payload_hash = r.payload_hash;
COMMENT ON VIEW staging.copart_raw IS 'One typed row per data row of every file';
