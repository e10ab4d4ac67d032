/**
 * The one model of the feed's columns: for each column vinops-etl reads by name, its header, its role,
 * the column it is kept in, its type in staging.copart_typed and the core table that keeps it. Every
 * list the encoder, the load table, the promote and the core upsert use is derived from this table.
 */
import { HEADER_V4 } from './headers.js';

export type StagingType = 'text' | 'boolean' | 'integer' | 'numeric' | 'date' | 'timestamp' | 'timestamptz';

/**
 * `staging`: the typed column's type, or null for descriptive text (kept once in the payload, copied
 * trimmed into the core table) and for columns read only from the payload.
 * `core`: the table where a NULL in the winning row keeps the known value; null where the core upsert
 * has its own rule (keys, VIN, clock) or the value is not in a core table.
 */
interface ColumnSpec {
  readonly header: string | null;
  readonly role: string | null;
  readonly column: string | null;
  readonly staging: StagingType | null;
  readonly core: 'lots' | 'vehicles' | null;
}

const c = <const R extends string | null>(column: string | null, header: string | null, role: R, staging: StagingType | null,
  core: 'lots' | 'vehicles' | null) => ({ column, header, role, staging, core }) as const;

/** Typed columns in staging.copart_typed's order, then descriptive text (lots, then vehicles), then payload-only columns. */
export const FEED_COLUMNS = [
  c('lot_external_id', 'Lot number', 'lotNumber', 'text', null),
  c('vin_raw', 'VIN', 'vin', 'text', null),
  c('vin_normalized', 'VIN', 'vin', 'text', null),
  c('vin_valid', 'VIN', 'vin', 'boolean', null),
  c('yard_number', 'Yard number', 'yardNumber', 'integer', 'lots'),
  c('sale_date', 'Sale Date M/D/CY', 'saleDate', 'date', 'lots'),
  c('sale_time_hhmm', 'Sale time (HHMM)', 'saleTime', 'integer', null),
  c('time_zone', 'Time Zone', 'timeZone', 'text', 'lots'),
  c('auction_at', 'Sale Date M/D/CY', 'saleDate', 'timestamptz', 'lots'),
  c('item_number', 'Item#', 'itemNumber', 'integer', 'lots'),
  c('vehicle_type', 'Vehicle Type', 'vehicleType', 'text', 'vehicles'),
  c('year', 'Year', 'year', 'integer', 'vehicles'),
  c('has_keys', 'Has Keys-Yes or No', 'hasKeys', 'text', 'lots'),
  c('odometer', 'Odometer', 'odometer', 'numeric', 'lots'),
  c('est_retail_value', 'Est. Retail Value', 'estRetailValue', 'numeric', 'lots'),
  c('repair_cost', 'Repair cost', 'repairCost', 'numeric', 'lots'),
  c('buy_it_now_price', 'Buy-It-Now Price', 'buyItNowPrice', 'numeric', 'lots'),
  c('high_bid', 'High Bid =non-vix,Sealed=Vix', 'highBid', 'numeric', 'lots'),
  c('cylinders', 'Cylinders', 'cylinders', 'integer', 'vehicles'),
  c('sale_status', 'Sale Status', 'saleStatus', 'text', 'lots'),
  c('currency_code', 'Currency Code', 'currencyCode', 'text', 'lots'),
  c('source_created_at', 'Create Date/Time', 'createDateTime', 'timestamp', 'lots'),
  c('source_updated_at', 'Last Updated Time', 'lastUpdatedTime', 'timestamptz', null),
  c('processing_error', null, null, 'text', null),

  c('yard_name', 'Yard name', 'yardName', null, 'lots'),
  c('odometer_brand', 'Odometer Brand', 'odometerBrand', null, 'lots'),
  c('lot_cond_code', 'Lot Cond. Code', 'lotCondCode', null, 'lots'),
  c('damage_description', 'Damage Description', 'damageDescription', null, 'lots'),
  c('secondary_damage', 'Secondary Damage', 'secondaryDamage', null, 'lots'),
  c('title_state', 'Sale Title State', 'titleState', null, 'lots'),
  c('title_type', 'Sale Title Type', 'titleType', null, 'lots'),
  c('color', 'Color', 'color', null, 'lots'),
  c('runs_drives', 'Runs/Drives', 'runsDrives', null, 'lots'),
  c('special_note', 'Special Note', 'specialNote', null, 'lots'),
  c('location_city', 'Location city', 'locationCity', null, 'lots'),
  c('location_state', 'Location state', 'locationState', null, 'lots'),
  c('location_zip', 'Location ZIP', 'locationZip', null, 'lots'),
  c('location_country', 'Location country', 'locationCountry', null, 'lots'),
  c('grid_row', 'Grid/Row', 'gridRow', null, 'lots'),
  c('image_url', 'Image URL', 'imageUrl', null, 'lots'),
  c('image_thumbnail', 'Image Thumbnail', 'imageThumbnail', null, 'lots'),
  c('seller_name', 'Seller Name', 'sellerName', null, 'lots'),
  c('make', 'Make', 'make', null, 'vehicles'),
  c('model_group', 'Model Group', 'modelGroup', null, 'vehicles'),
  c('model_detail', 'Model Detail', 'modelDetail', null, 'vehicles'),
  c('body_style', 'Body Style', 'bodyStyle', null, 'vehicles'),
  c('engine', 'Engine', 'engine', null, 'vehicles'),
  c('drive', 'Drive', 'drive', null, 'vehicles'),
  c('transmission', 'Transmission', 'transmission', null, 'vehicles'),
  c('fuel_type', 'Fuel Type', 'fuelType', null, 'vehicles'),

  c(null, 'Id', 'id', null, null),
  c(null, 'Make-an-Offer Eligible', 'makeOfferEligible', null, null),
  c(null, 'Trim', 'trim', null, null),
] as const satisfies readonly ColumnSpec[];

type Row = (typeof FEED_COLUMNS)[number];
export type ColumnRole = Exclude<Row['role'], null>;

/** Header name of each role, in header order (so a header's missing columns are listed as they would appear). */
export const COLUMN_ROLES: Readonly<Record<ColumnRole, string>> = Object.freeze(Object.fromEntries(
  [...new Map(FEED_COLUMNS.filter((r) => r.role !== null).map((r) => [r.role!, r.header!])).entries()]
    .sort(([, a], [, b]) => HEADER_V4.indexOf(a) - HEADER_V4.indexOf(b)),
) as Record<ColumnRole, string>);

/** Columns without which a file is refused. */
export const REQUIRED_ROLES: readonly ColumnRole[] = ['lotNumber', 'vin'];

/** staging.copart_typed's columns after payload_hash, with their types. */
export const TYPED_COLUMNS: readonly (readonly [string, StagingType])[] = FEED_COLUMNS
  .filter((r) => r.staging !== null).map((r) => [r.column!, r.staging!] as const);
export const TYPED_NAMES: readonly string[] = TYPED_COLUMNS.map(([name]) => name);

const descriptive = (table: 'lots' | 'vehicles'): readonly (readonly [string, ColumnRole])[] => FEED_COLUMNS
  .filter((r) => r.staging === null && r.column !== null && r.core === table).map((r) => [r.column!, r.role as ColumnRole] as const);
/**
 * The descriptive text of a lot and of its vehicle: not typed and not in staging (the payload holds it
 * once); the core tables store it trimmed, empty as NULL.
 */
export const LOT_TEXT = descriptive('lots');
export const VEHICLE_TEXT = descriptive('vehicles');
/** Both, in the order the load table carries them. */
export const DESCRIPTIVE_COLUMNS: readonly (readonly [string, ColumnRole])[] = [...LOT_TEXT, ...VEHICLE_TEXT];

/** Typed columns a core table keeps (a NULL in the winning row keeps the known value). */
const typedKept = (table: 'lots' | 'vehicles'): readonly string[] => FEED_COLUMNS
  .filter((r) => r.staging !== null && r.core === table).map((r) => r.column!);
export const LOT_TYPED = typedKept('lots');
export const VEHICLE_TYPED = typedKept('vehicles');

/** The Sale Status values the feed is known to carry (docs/feed.md); any other is kept raw and counted. */
export const KNOWN_SALE_STATUSES = ['Pure Sale', 'On Minimum Bid', 'On Approval'] as const;
