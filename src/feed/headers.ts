/** The Copart feed's four real header variants (docs/feed.md); columns are found by name, never by position. */

const V1 = [
  'Id', 'Yard number', 'Yard name', 'Sale Date M/D/CY', 'Day of Week', 'Sale time (HHMM)', 'Time Zone', 'Item#',
  'Lot number', 'Vehicle Type', 'Year', 'Make', 'Model Group', 'Model Detail', 'Body Style', 'Color',
  'Damage Description', 'Secondary Damage', 'Sale Title State', 'Sale Title Type', 'Has Keys-Yes or No',
  'Lot Cond. Code', 'VIN', 'Odometer', 'Odometer Brand', 'Est. Retail Value', 'Repair cost', 'Engine', 'Drive',
  'Transmission', 'Fuel Type', 'Cylinders', 'Runs/Drives', 'Sale Status', 'High Bid =non-vix,Sealed=Vix',
  'Special Note', 'Location city', 'Location state', 'Location ZIP', 'Location country', 'Currency Code',
  'Image Thumbnail', 'Create Date/Time', 'Grid/Row', 'Make-an-Offer Eligible', 'Buy-It-Now Price', 'Image URL',
  'Trim', 'Last Updated Time',
] as const;
const V2_EXTRA = ['Rentals', 'Copart Select', 'Seller Name', 'Offsite Address1', 'Offsite State', 'Offsite City', 'Offsite Zip'] as const;
const V3_EXTRA = ['Sale Light', 'AutoGrade', 'Announcements'] as const;

/** 2020: 49 columns, ending at Last Updated Time. */
export const HEADER_V1: readonly string[] = Object.freeze([...V1]);
/** 2024: 56 columns. */
export const HEADER_V2: readonly string[] = Object.freeze([...V1, ...V2_EXTRA]);
/** Oct 2025: 59 columns with Copart Select. */
export const HEADER_V3: readonly string[] = Object.freeze([...V1, ...V2_EXTRA, ...V3_EXTRA]);
/** From about Nov 2025: Copart Select renamed Wholesale. */
export const HEADER_V4: readonly string[] = Object.freeze(HEADER_V3.map((n) => (n === 'Copart Select' ? 'Wholesale' : n)));

export const HEADER_VARIANTS: Readonly<Record<string, readonly string[]>> = Object.freeze({
  v1: HEADER_V1, v2: HEADER_V2, v3: HEADER_V3, v4: HEADER_V4,
});

const KNOWN_NAMES: ReadonlySet<string> = new Set([...HEADER_V4, 'Copart Select'].map(nameKey));

/** How a header name is compared: trimmed, lower-case, runs of white space as one space. */
export function nameKey(name: string): string {
  return name.trim().replace(/\s+/g, ' ').toLowerCase();
}

/** The known variant this exact header is, if any. */
export function headerVariant(names: readonly string[]): string | undefined {
  for (const [variant, header] of Object.entries(HEADER_VARIANTS)) {
    if (header.length === names.length && header.every((n, i) => n === names[i])) return variant;
  }
  return undefined;
}

/** Names in no known variant. */
export function extraColumns(names: readonly string[]): string[] {
  return names.filter((n) => !KNOWN_NAMES.has(nameKey(n)));
}
