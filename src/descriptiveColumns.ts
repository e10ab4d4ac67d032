import type { ColumnRole } from './feedColumns.js';

/**
 * The descriptive text of a lot and of its vehicle (yard name, damage, make, model…), by header role.
 * Not typed and not kept in staging (the payload holds it once); public.lots / public.vehicles store it
 * trimmed, empty as NULL. The encoder sends these values with each row whose payload is new, so the
 * core upsert reads them from the load table instead of cutting them out of the stored payload.
 */
export const LOT_TEXT: readonly (readonly [string, ColumnRole])[] = [
  ['yard_name', 'yardName'], ['odometer_brand', 'odometerBrand'], ['lot_cond_code', 'lotCondCode'],
  ['damage_description', 'damageDescription'], ['secondary_damage', 'secondaryDamage'], ['title_state', 'titleState'],
  ['title_type', 'titleType'], ['color', 'color'], ['runs_drives', 'runsDrives'], ['special_note', 'specialNote'],
  ['location_city', 'locationCity'], ['location_state', 'locationState'], ['location_zip', 'locationZip'],
  ['location_country', 'locationCountry'], ['grid_row', 'gridRow'], ['image_url', 'imageUrl'],
  ['image_thumbnail', 'imageThumbnail'], ['seller_name', 'sellerName'],
];

export const VEHICLE_TEXT: readonly (readonly [string, ColumnRole])[] = [
  ['make', 'make'], ['model_group', 'modelGroup'], ['model_detail', 'modelDetail'], ['body_style', 'bodyStyle'],
  ['engine', 'engine'], ['drive', 'drive'], ['transmission', 'transmission'], ['fuel_type', 'fuelType'],
];

/** Both, in the order the load table carries them. */
export const DESCRIPTIVE_COLUMNS: readonly (readonly [string, ColumnRole])[] = [...LOT_TEXT, ...VEHICLE_TEXT];
