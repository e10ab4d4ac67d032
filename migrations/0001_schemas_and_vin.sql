-- Schemas and the VIN rules every later layer relies on (FEED.md, "Rules the business needs").
CREATE SCHEMA IF NOT EXISTS raw;
CREATE SCHEMA IF NOT EXISTS staging;
CREATE SCHEMA IF NOT EXISTS audit;

COMMENT ON SCHEMA raw IS 'vinops-etl: file registry and every CSV row, stored losslessly';
COMMENT ON SCHEMA staging IS 'vinops-etl: typed, normalised keys per row';
COMMENT ON SCHEMA audit IS 'vinops-etl: runs, parse errors, conflicts and monitoring views';

-- Trim (spaces, tabs, CR/LF) and upper-case A-Z (C collation: the same in every database locale, and
-- the same as the loader's own normalisation in src/rowEncoder.ts); empty becomes NULL.
CREATE OR REPLACE FUNCTION public.normalize_vin(vin text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN nullif(upper(btrim(vin, E' \t\r\n') COLLATE "C"), '');

-- A 17-character VIN uses A-Z and 0-9 without I, O and Q. Shorter identifiers (3 to 16
-- characters: trailers, boats, vintage cars) are real and stay valid, I/O/Q included.
-- NULL or empty is not a VIN.
CREATE OR REPLACE FUNCTION public.is_valid_vin(vin text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN coalesce(
  CASE
    WHEN length(public.normalize_vin(vin)) = 17 THEN public.normalize_vin(vin) ~ '^[A-HJ-NPR-Z0-9]{17}$'
    ELSE public.normalize_vin(vin) ~ '^[A-Z0-9]{3,16}$'
  END,
  false);
