-- The tables the application reads, filled from staging by the core upsert (last write wins by
-- Last Updated Time).

CREATE TABLE public.vehicles (
  vin               text PRIMARY KEY CHECK (vin = public.normalize_vin(vin) AND public.is_valid_vin(vin)),
  vin_raw           text,              -- the raw form the winning row carried
  year              integer,
  make              text,
  model_group       text,
  model_detail      text,
  body_style        text,
  engine            text,
  drive             text,
  transmission      text,
  fuel_type         text,
  cylinders         integer,
  vehicle_type      text,
  source_updated_at timestamptz,     -- Last Updated Time of the row that set these values
  payload_hash      uuid,              -- that row's payload (ties on source_updated_at break on it)
  first_seen_at     timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE public.lots (
  lot_id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  lot_external_id     text NOT NULL UNIQUE,      -- Copart Lot number
  vin                 text REFERENCES public.vehicles (vin),  -- NULL when empty or invalid
  vin_raw             text,
  vin_issue           text,                      -- why vin is NULL: 'empty' | 'invalid'
  source_updated_at   timestamptz,               -- Last Updated Time: the last-write-wins clock
  source_file_id      uuid REFERENCES raw.csv_files (file_id) ON DELETE SET NULL,
  source_row_no       integer,
  payload_hash        uuid,
  yard_number         integer,
  yard_name           text,
  sale_date           date,
  auction_at          timestamptz,
  time_zone           text,
  item_number         integer,
  sale_status         text,
  high_bid            numeric,
  est_retail_value    numeric,
  repair_cost         numeric,
  buy_it_now_price    numeric,
  odometer            numeric,
  odometer_brand      text,
  has_keys            text,
  lot_cond_code       text,
  damage_description  text,
  secondary_damage    text,
  title_state         text,
  title_type          text,
  color               text,
  runs_drives         text,
  special_note        text,
  location_city       text,
  location_state      text,
  location_zip        text,
  location_country    text,
  currency_code       text,
  grid_row            text,
  image_url           text,
  image_thumbnail     text,
  seller_name         text,
  source_created_at   timestamp,
  first_seen_at       timestamptz NOT NULL DEFAULT now(),
  updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX lots_vin_idx ON public.lots (vin);
CREATE INDEX lots_auction_at_idx ON public.lots (auction_at);
