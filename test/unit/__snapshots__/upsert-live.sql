-- candidates
CREATE TEMP TABLE vinops_candidates ON COMMIT DROP AS
    SELECT r.*, CASE WHEN v.carries THEN v.yard_name ELSE nullif(btrim(CASE WHEN p.vals IS NULL THEN split_part(p.vals_text, E'\x1f', 2) ELSE p.vals[2] END), '') END AS yard_name,
           CASE WHEN v.carries THEN v.odometer_brand ELSE nullif(btrim(CASE WHEN p.vals IS NULL THEN split_part(p.vals_text, E'\x1f', 24) ELSE p.vals[24] END), '') END AS odometer_brand,
           CASE WHEN v.carries THEN v.lot_cond_code ELSE nullif(btrim(CASE WHEN p.vals IS NULL THEN split_part(p.vals_text, E'\x1f', 21) ELSE p.vals[21] END), '') END AS lot_cond_code,
           CASE WHEN v.carries THEN v.damage_description ELSE nullif(btrim(CASE WHEN p.vals IS NULL THEN split_part(p.vals_text, E'\x1f', 16) ELSE p.vals[16] END), '') END AS damage_description,
           CASE WHEN v.carries THEN v.secondary_damage ELSE nullif(btrim(CASE WHEN p.vals IS NULL THEN split_part(p.vals_text, E'\x1f', 17) ELSE p.vals[17] END), '') END AS secondary_damage,
           CASE WHEN v.carries THEN v.title_state ELSE nullif(btrim(CASE WHEN p.vals IS NULL THEN split_part(p.vals_text, E'\x1f', 18) ELSE p.vals[18] END), '') END AS title_state,
           CASE WHEN v.carries THEN v.title_type ELSE nullif(btrim(CASE WHEN p.vals IS NULL THEN split_part(p.vals_text, E'\x1f', 19) ELSE p.vals[19] END), '') END AS title_type,
           CASE WHEN v.carries THEN v.color ELSE nullif(btrim(CASE WHEN p.vals IS NULL THEN split_part(p.vals_text, E'\x1f', 15) ELSE p.vals[15] END), '') END AS color,
           CASE WHEN v.carries THEN v.runs_drives ELSE nullif(btrim(CASE WHEN p.vals IS NULL THEN split_part(p.vals_text, E'\x1f', 32) ELSE p.vals[32] END), '') END AS runs_drives,
           CASE WHEN v.carries THEN v.special_note ELSE nullif(btrim(CASE WHEN p.vals IS NULL THEN split_part(p.vals_text, E'\x1f', 35) ELSE p.vals[35] END), '') END AS special_note,
           CASE WHEN v.carries THEN v.location_city ELSE nullif(btrim(CASE WHEN p.vals IS NULL THEN split_part(p.vals_text, E'\x1f', 36) ELSE p.vals[36] END), '') END AS location_city,
           CASE WHEN v.carries THEN v.location_state ELSE nullif(btrim(CASE WHEN p.vals IS NULL THEN split_part(p.vals_text, E'\x1f', 37) ELSE p.vals[37] END), '') END AS location_state,
           CASE WHEN v.carries THEN v.location_zip ELSE nullif(btrim(CASE WHEN p.vals IS NULL THEN split_part(p.vals_text, E'\x1f', 38) ELSE p.vals[38] END), '') END AS location_zip,
           CASE WHEN v.carries THEN v.location_country ELSE nullif(btrim(CASE WHEN p.vals IS NULL THEN split_part(p.vals_text, E'\x1f', 39) ELSE p.vals[39] END), '') END AS location_country,
           CASE WHEN v.carries THEN v.grid_row ELSE nullif(btrim(CASE WHEN p.vals IS NULL THEN split_part(p.vals_text, E'\x1f', 43) ELSE p.vals[43] END), '') END AS grid_row,
           CASE WHEN v.carries THEN v.image_url ELSE nullif(btrim(CASE WHEN p.vals IS NULL THEN split_part(p.vals_text, E'\x1f', 46) ELSE p.vals[46] END), '') END AS image_url,
           CASE WHEN v.carries THEN v.image_thumbnail ELSE nullif(btrim(CASE WHEN p.vals IS NULL THEN split_part(p.vals_text, E'\x1f', 41) ELSE p.vals[41] END), '') END AS image_thumbnail,
           CASE WHEN v.carries THEN v.seller_name ELSE nullif(btrim(CASE WHEN p.vals IS NULL THEN split_part(p.vals_text, E'\x1f', 51) ELSE p.vals[51] END), '') END AS seller_name,
           CASE WHEN v.carries THEN v.make ELSE nullif(btrim(CASE WHEN p.vals IS NULL THEN split_part(p.vals_text, E'\x1f', 11) ELSE p.vals[11] END), '') END AS make,
           CASE WHEN v.carries THEN v.model_group ELSE nullif(btrim(CASE WHEN p.vals IS NULL THEN split_part(p.vals_text, E'\x1f', 12) ELSE p.vals[12] END), '') END AS model_group,
           CASE WHEN v.carries THEN v.model_detail ELSE nullif(btrim(CASE WHEN p.vals IS NULL THEN split_part(p.vals_text, E'\x1f', 13) ELSE p.vals[13] END), '') END AS model_detail,
           CASE WHEN v.carries THEN v.body_style ELSE nullif(btrim(CASE WHEN p.vals IS NULL THEN split_part(p.vals_text, E'\x1f', 14) ELSE p.vals[14] END), '') END AS body_style,
           CASE WHEN v.carries THEN v.engine ELSE nullif(btrim(CASE WHEN p.vals IS NULL THEN split_part(p.vals_text, E'\x1f', 27) ELSE p.vals[27] END), '') END AS engine,
           CASE WHEN v.carries THEN v.drive ELSE nullif(btrim(CASE WHEN p.vals IS NULL THEN split_part(p.vals_text, E'\x1f', 28) ELSE p.vals[28] END), '') END AS drive,
           CASE WHEN v.carries THEN v.transmission ELSE nullif(btrim(CASE WHEN p.vals IS NULL THEN split_part(p.vals_text, E'\x1f', 29) ELSE p.vals[29] END), '') END AS transmission,
           CASE WHEN v.carries THEN v.fuel_type ELSE nullif(btrim(CASE WHEN p.vals IS NULL THEN split_part(p.vals_text, E'\x1f', 30) ELSE p.vals[30] END), '') END AS fuel_type
      FROM (SELECT DISTINCT ON (t.lot_external_id) l.row_no, count(*) OVER (PARTITION BY t.lot_external_id) AS file_rows, t.*
              FROM (SELECT row_no, hash, lot FROM vinops_load WHERE err IS NULL) l JOIN staging.copart_typed t ON t.payload_hash = l.hash
             WHERE l.lot IS NOT NULL AND l.lot IN (SELECT n.lot FROM vinops_new n WHERE n.lot IS NOT NULL)
             ORDER BY t.lot_external_id, coalesce(t.source_updated_at, '-infinity'::timestamptz) DESC, t.payload_hash DESC, l.row_no DESC) r JOIN (SELECT row_no, (d.vin_valid IS NOT NULL) AS carries, d.yard_name, d.odometer_brand, d.lot_cond_code, d.damage_description, d.secondary_damage, d.title_state, d.title_type, d.color, d.runs_drives, d.special_note, d.location_city, d.location_state, d.location_zip, d.location_country, d.grid_row, d.image_url, d.image_thumbnail, d.seller_name, d.make, d.model_group, d.model_detail, d.body_style, d.engine, d.drive, d.transmission, d.fuel_type FROM vinops_load d) v ON v.row_no = r.row_no
      LEFT JOIN LATERAL (SELECT q.vals_text, q.vals FROM raw.payloads q WHERE q.hash = r.payload_hash AND NOT v.carries OFFSET 0) p ON true;

-- addFlags
ALTER TABLE vinops_candidates ADD COLUMN loses boolean NOT NULL DEFAULT false, ADD COLUMN stored boolean NOT NULL DEFAULT false;

-- markStored
UPDATE vinops_candidates c SET stored = true, loses = coalesce((coalesce(c.source_updated_at, '-infinity'::timestamptz), c.payload_hash) < (coalesce(x.source_updated_at, '-infinity'::timestamptz), x.payload_hash), false) FROM public.lots x
     WHERE x.lot_external_id = c.lot_external_id;

-- staleStored
INSERT INTO audit.upsert_conflicts
        (table_name, lot_external_id, file_id, row_no, incoming_updated_at, current_updated_at, reason)
      SELECT 'lots', c.lot_external_id, $1::uuid, c.row_no, c.source_updated_at, x.source_updated_at, 'older than the stored lot (last write wins)'
        FROM vinops_candidates c JOIN public.lots x USING (lot_external_id) WHERE c.loses;

-- staleInFile
INSERT INTO audit.upsert_conflicts
        (table_name, lot_external_id, file_id, row_no, incoming_updated_at, current_updated_at, reason)
      SELECT 'lots', c.lot_external_id, $1::uuid, l.row_no, t.source_updated_at, c.source_updated_at, 'a newer row of the same lot in this file'
      FROM vinops_candidates c JOIN (SELECT row_no, hash, lot FROM vinops_load WHERE err IS NULL) l ON l.lot = c.lot_external_id AND l.row_no <> c.row_no AND l.hash <> c.payload_hash
      JOIN staging.copart_typed t ON t.payload_hash = l.hash WHERE c.file_rows > 1;

-- vehiclesIn
CREATE TEMP TABLE vinops_vehicles_in ON COMMIT DROP AS
    SELECT DISTINCT ON (c.vin_normalized) c.vin_normalized AS vin, c.vin_raw, c.source_updated_at, c.payload_hash, c.vehicle_type, c.year, c.cylinders, c.make, c.model_group, c.model_detail, c.body_style, c.engine, c.drive, c.transmission, c.fuel_type,
           false AS stored, false AS stale
      FROM vinops_candidates c WHERE c.vin_valid AND NOT c.loses
     ORDER BY c.vin_normalized, coalesce(c.source_updated_at, '-infinity'::timestamptz) DESC, c.payload_hash DESC;

-- markVehiclesStored
UPDATE vinops_vehicles_in i SET stored = true, stale = (coalesce(i.source_updated_at, '-infinity'::timestamptz), i.payload_hash) < (coalesce(v.source_updated_at, '-infinity'::timestamptz), v.payload_hash)
    FROM public.vehicles v WHERE v.vin = i.vin;

-- vinVariants
INSERT INTO audit.vin_conflicts (kind, vin_normalized, old_value, new_value, file_id, row_no)
    SELECT 'vin_raw_variant', c.vin_normalized, coalesce(v.vin_raw, i.vin_raw), c.vin_raw, $1::uuid, c.row_no
      FROM vinops_candidates c JOIN vinops_vehicles_in i ON i.vin = c.vin_normalized
      LEFT JOIN public.vehicles v ON v.vin = c.vin_normalized
     WHERE c.vin_valid AND NOT c.loses AND coalesce(v.vin_raw, i.vin_raw) IS DISTINCT FROM c.vin_raw
       ;

-- updateVehicles
UPDATE public.vehicles v SET
      vehicle_type = coalesce(i.vehicle_type, v.vehicle_type),
      year = coalesce(i.year, v.year),
      cylinders = coalesce(i.cylinders, v.cylinders),
      make = coalesce(i.make, v.make),
      model_group = coalesce(i.model_group, v.model_group),
      model_detail = coalesce(i.model_detail, v.model_detail),
      body_style = coalesce(i.body_style, v.body_style),
      engine = coalesce(i.engine, v.engine),
      drive = coalesce(i.drive, v.drive),
      transmission = coalesce(i.transmission, v.transmission),
      fuel_type = coalesce(i.fuel_type, v.fuel_type),
      vin_raw = i.vin_raw, source_updated_at = i.source_updated_at, payload_hash = i.payload_hash, updated_at = now()
    FROM vinops_vehicles_in i WHERE v.vin = i.vin AND (coalesce(i.source_updated_at, '-infinity'::timestamptz), i.payload_hash) > (coalesce(v.source_updated_at, '-infinity'::timestamptz), v.payload_hash)
      ;

-- insertVehicles
INSERT INTO public.vehicles (vin, vin_raw, source_updated_at, payload_hash, vehicle_type, year, cylinders, make, model_group, model_detail, body_style, engine, drive, transmission, fuel_type)
    SELECT i.vin, i.vin_raw, i.source_updated_at, i.payload_hash, i.vehicle_type, i.year, i.cylinders, i.make, i.model_group, i.model_detail, i.body_style, i.engine, i.drive, i.transmission, i.fuel_type FROM vinops_vehicles_in i WHERE NOT i.stored;

-- vinChanges
INSERT INTO audit.vin_conflicts (kind, lot_external_id, vin_normalized, old_value, new_value, file_id, row_no)
    SELECT 'lot_vin_changed', c.lot_external_id, c.vin_normalized, x.vin, CASE WHEN c.vin_valid THEN c.vin_normalized END, $1::uuid, c.row_no
      FROM vinops_candidates c JOIN public.lots x USING (lot_external_id)
     WHERE (coalesce(c.source_updated_at, '-infinity'::timestamptz), c.payload_hash) > (coalesce(x.source_updated_at, '-infinity'::timestamptz), x.payload_hash) AND x.vin IS DISTINCT FROM (CASE WHEN c.vin_valid THEN c.vin_normalized END)
       ;

-- updateLots
UPDATE public.lots x SET
      yard_number = coalesce(i.yard_number, x.yard_number),
      sale_date = coalesce(i.sale_date, x.sale_date),
      time_zone = coalesce(i.time_zone, x.time_zone),
      auction_at = coalesce(i.auction_at, x.auction_at),
      item_number = coalesce(i.item_number, x.item_number),
      has_keys = coalesce(i.has_keys, x.has_keys),
      odometer = coalesce(i.odometer, x.odometer),
      est_retail_value = coalesce(i.est_retail_value, x.est_retail_value),
      repair_cost = coalesce(i.repair_cost, x.repair_cost),
      buy_it_now_price = coalesce(i.buy_it_now_price, x.buy_it_now_price),
      high_bid = coalesce(i.high_bid, x.high_bid),
      sale_status = coalesce(i.sale_status, x.sale_status),
      currency_code = coalesce(i.currency_code, x.currency_code),
      source_created_at = coalesce(i.source_created_at, x.source_created_at),
      yard_name = coalesce(i.yard_name, x.yard_name),
      odometer_brand = coalesce(i.odometer_brand, x.odometer_brand),
      lot_cond_code = coalesce(i.lot_cond_code, x.lot_cond_code),
      damage_description = coalesce(i.damage_description, x.damage_description),
      secondary_damage = coalesce(i.secondary_damage, x.secondary_damage),
      title_state = coalesce(i.title_state, x.title_state),
      title_type = coalesce(i.title_type, x.title_type),
      color = coalesce(i.color, x.color),
      runs_drives = coalesce(i.runs_drives, x.runs_drives),
      special_note = coalesce(i.special_note, x.special_note),
      location_city = coalesce(i.location_city, x.location_city),
      location_state = coalesce(i.location_state, x.location_state),
      location_zip = coalesce(i.location_zip, x.location_zip),
      location_country = coalesce(i.location_country, x.location_country),
      grid_row = coalesce(i.grid_row, x.grid_row),
      image_url = coalesce(i.image_url, x.image_url),
      image_thumbnail = coalesce(i.image_thumbnail, x.image_thumbnail),
      seller_name = coalesce(i.seller_name, x.seller_name),
      vin = i.vin, vin_raw = i.vin_raw, vin_issue = i.vin_issue, source_updated_at = i.source_updated_at, source_file_id = i.source_file_id, source_row_no = i.source_row_no, payload_hash = i.payload_hash, last_high_bid = coalesce(i.high_bid, x.last_high_bid), updated_at = now()
    FROM (SELECT c.lot_external_id, CASE WHEN c.vin_valid THEN c.vin_normalized END AS vin, c.vin_raw,
           CASE WHEN c.vin_normalized IS NULL THEN 'empty' WHEN NOT c.vin_valid THEN 'invalid' END AS vin_issue,
           c.source_updated_at, $1::uuid AS source_file_id, c.row_no AS source_row_no, c.payload_hash,
           c.yard_number, c.sale_date, c.time_zone, c.auction_at, c.item_number, c.has_keys, c.odometer, c.est_retail_value, c.repair_cost, c.buy_it_now_price, c.high_bid, c.sale_status, c.currency_code, c.source_created_at, c.yard_name, c.odometer_brand, c.lot_cond_code, c.damage_description, c.secondary_damage, c.title_state, c.title_type, c.color, c.runs_drives, c.special_note, c.location_city, c.location_state, c.location_zip, c.location_country, c.grid_row, c.image_url, c.image_thumbnail, c.seller_name, c.stored
      FROM vinops_candidates c) i WHERE x.lot_external_id = i.lot_external_id AND (coalesce(i.source_updated_at, '-infinity'::timestamptz), i.payload_hash) > (coalesce(x.source_updated_at, '-infinity'::timestamptz), x.payload_hash)
      ;

-- insertLots
INSERT INTO public.lots (lot_external_id, vin, vin_raw, vin_issue, source_updated_at, source_file_id, source_row_no, payload_hash, yard_number, sale_date, time_zone, auction_at, item_number, has_keys, odometer, est_retail_value, repair_cost, buy_it_now_price, high_bid, sale_status, currency_code, source_created_at, yard_name, odometer_brand, lot_cond_code, damage_description, secondary_damage, title_state, title_type, color, runs_drives, special_note, location_city, location_state, location_zip, location_country, grid_row, image_url, image_thumbnail, seller_name, first_seen_at, listed, last_high_bid)
    SELECT i.lot_external_id, i.vin, i.vin_raw, i.vin_issue, i.source_updated_at, i.source_file_id, i.source_row_no, i.payload_hash, i.yard_number, i.sale_date, i.time_zone, i.auction_at, i.item_number, i.has_keys, i.odometer, i.est_retail_value, i.repair_cost, i.buy_it_now_price, i.high_bid, i.sale_status, i.currency_code, i.source_created_at, i.yard_name, i.odometer_brand, i.lot_cond_code, i.damage_description, i.secondary_damage, i.title_state, i.title_type, i.color, i.runs_drives, i.special_note, i.location_city, i.location_state, i.location_zip, i.location_country, i.grid_row, i.image_url, i.image_thumbnail, i.seller_name, CASE WHEN NOT f.partial THEN f.snapshot_at END, NOT f.partial, i.high_bid
      FROM (SELECT c.lot_external_id, CASE WHEN c.vin_valid THEN c.vin_normalized END AS vin, c.vin_raw,
           CASE WHEN c.vin_normalized IS NULL THEN 'empty' WHEN NOT c.vin_valid THEN 'invalid' END AS vin_issue,
           c.source_updated_at, $1::uuid AS source_file_id, c.row_no AS source_row_no, c.payload_hash,
           c.yard_number, c.sale_date, c.time_zone, c.auction_at, c.item_number, c.has_keys, c.odometer, c.est_retail_value, c.repair_cost, c.buy_it_now_price, c.high_bid, c.sale_status, c.currency_code, c.source_created_at, c.yard_name, c.odometer_brand, c.lot_cond_code, c.damage_description, c.secondary_damage, c.title_state, c.title_type, c.color, c.runs_drives, c.special_note, c.location_city, c.location_state, c.location_zip, c.location_country, c.grid_row, c.image_url, c.image_thumbnail, c.seller_name, c.stored
      FROM vinops_candidates c) i CROSS JOIN (SELECT snapshot_at, partial FROM raw.csv_files WHERE file_id = $1::uuid) f WHERE NOT i.stored;

-- tally
SELECT
      (SELECT count(*) FROM vinops_vehicles_in WHERE stale)::int AS vehicles_stale,
      (SELECT count(*) FROM vinops_candidates WHERE NOT loses AND sale_status IS NOT NULL AND sale_status <> ALL ($1::text[]))::int AS unknown_status;
