/**
 * Typing rules for the feed's values (docs/feed.md). Pure functions from the trimmed text of a field to
 * the text PostgreSQL reads for the typed column, or null when the value is empty or odd. Odd values
 * never throw: the caller records a note in processing_error and keeps the row.
 */

/** UTC offset in minutes of the feed's time-zone abbreviations. */
import type { ColumnRole } from './columns.js';

const TZ_OFFSETS: Readonly<Record<string, number>> = {
  NDT: -150, NST: -210, ADT: -180, AST: -240, EDT: -240, EST: -300, CDT: -300, CST: -360,
  MDT: -360, MST: -420, PDT: -420, PST: -480, AKDT: -480, AKST: -540, HDT: -540, HST: -600, UTC: 0, GMT: 0,
};

/**
 * Offset of a zone abbreviation on a sale date (YYYY-MM-DD). The Nova Scotia yards of the feed are
 * labelled AKST whatever the season (docs/feed.md; test/fixtures/real-2025-v3.csv), yet they sell on
 * Atlantic local time, which keeps North American DST: so AKST/AKDT on a Canadian lot means AST (-4 h)
 * or, from the second Sunday of March to the first Sunday of November, ADT (-3 h).
 */
export function tzOffsetMinutes(tz: string | null, country: string | null, saleDate: string | null = null): number | null {
  if (tz === null) return null;
  const key = tz.toUpperCase();
  if ((key === 'AKST' || key === 'AKDT') && country !== null && /^(CAN|CA)$/i.test(country)) {
    return saleDate !== null && inNorthAmericanDst(saleDate) ? -180 : -240;
  }
  return TZ_OFFSETS[key] ?? null;
}

/** Whether a day (YYYY-MM-DD) is in daylight time under the US/Canada rule since 2007. */
export function inNorthAmericanDst(day: string): boolean {
  const [y, m, d] = day.split('-').map(Number) as [number, number, number];
  const nthSunday = (month: number, n: number): number => {
    const firstDow = new Date(Date.UTC(y, month - 1, 1)).getUTCDay();
    return 1 + ((7 - firstDow) % 7) + 7 * (n - 1);
  };
  if (m < 3 || m > 11) return false;
  if (m > 3 && m < 11) return true;
  return m === 3 ? d >= nthSunday(3, 2) : d < nthSunday(11, 1);
}

function isLeap(y: number): boolean {
  return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
}

/** y-m-d is a real calendar day between 1900 and 2199. */
export function isRealDay(y: number, m: number, d: number): boolean {
  if (y < 1900 || y > 2199 || m < 1 || m > 12 || d < 1) return false;
  const days = m === 2 ? (isLeap(y) ? 29 : 28) : m === 4 || m === 6 || m === 9 || m === 11 ? 30 : 31;
  return d <= days;
}

const YYYYMMDD = /^(\d{4})(\d{2})(\d{2})$/;
/** Sale Date `20251017` -> `2025-10-17`; `0`, empty or impossible -> null. */
export function parseSaleDate(v: string | null): string | null {
  const m = v === null ? null : YYYYMMDD.exec(v);
  if (m === null) return null;
  return isRealDay(+m[1]!, +m[2]!, +m[3]!) ? `${m[1]}-${m[2]}-${m[3]}` : null;
}

/** Sale time `1200`, `700` (HHMM, not zero-padded) -> 1200, 700; anything else -> null. */
export function parseSaleTime(v: string | null): number | null {
  if (v === null || !/^\d{1,4}$/.test(v)) return null;
  const n = +v;
  return Math.floor(n / 100) < 24 && n % 100 < 60 ? n : null;
}

/** Sale Date + Sale time + zone offset -> `YYYY-MM-DD HH:MM:00±HH:MM` (local time with its offset, which PostgreSQL turns into the UTC instant), or null. */
export function auctionAt(saleDate: string | null, hhmm: number | null, offsetMinutes: number | null): string | null {
  if (saleDate === null || hhmm === null || offsetMinutes === null) return null;
  // Local wall time with its offset: PostgreSQL does the conversion to UTC when it reads the value.
  const sign = offsetMinutes >= 0 ? '+' : '-';
  const abs = Math.abs(offsetMinutes);
  return `${saleDate} ${pad2(Math.floor(hhmm / 100))}:${pad2(hhmm % 100)}:00${sign}${pad2(Math.floor(abs / 60))}:${pad2(abs % 60)}`;
}

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

const ISO_UTC = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,6})?Z$/;
/** Last Updated Time `2025-10-14T07:01:00Z` -> the same text when it is a real instant, else null. */
export function parseIsoUtc(v: string | null): string | null {
  const m = v === null ? null : ISO_UTC.exec(v);
  if (m === null) return null;
  return isRealDay(+m[1]!, +m[2]!, +m[3]!) && +m[4]! < 24 && +m[5]! < 60 && +m[6]! < 60 ? v : null;
}

const DB2 = /^(\d{4})-(\d{2})-(\d{2})-(\d{2})\.(\d{2})\.(\d{2})(\.\d{1,6})?$/;
/** Create Date/Time `2025-10-14-08.55.06.000795` (no zone) -> `2025-10-14 08:55:06.000795`, else null. */
export function parseDb2Timestamp(v: string | null): string | null {
  const m = v === null ? null : DB2.exec(v);
  if (m === null) return null;
  if (!isRealDay(+m[1]!, +m[2]!, +m[3]!) || +m[4]! >= 24 || +m[5]! >= 60 || +m[6]! >= 60) return null;
  return `${m[1]}-${m[2]}-${m[3]} ${m[4]}:${m[5]}:${m[6]}${m[7] ?? ''}`;
}

const NUMBER = /^-?\d{1,15}(\.\d{1,6})?$/;
/** Decimal text -> itself; `0`/`0.0` means unknown in this feed -> null; non-numeric -> undefined (odd). */
export function parseAmount(v: string | null): string | null | undefined {
  if (v === null) return null;
  if (!NUMBER.test(v)) return undefined;
  return Number(v) === 0 ? null : v;
}

/** Whole number text (Year, Yard number, Item#, Cylinders) -> itself; odd -> undefined. */
export function parseInteger(v: string | null): string | null | undefined {
  if (v === null) return null;
  return /^-?\d{1,9}$/.test(v) ? String(Number(v)) : undefined;
}

/** A record's typed staging values by column name (TYPED_COLUMNS), as text PostgreSQL reads; null for NULL. */
export type TypedValues = Readonly<Record<string, string | null>>;

/**
 * Types one record. `value` gives a role's decoded field exactly as in the file (null when the header
 * lacks the column). The encoder (live) and replay (from stored payloads) both call this.
 */
export function typeRecord(value: (role: ColumnRole) => string | null): TypedValues {
  const notes: string[] = [];
  const str = (role: ColumnRole): string | null => {
    const v = value(role);
    if (v === null) return null;
    const t = trimSpaces(v);
    return t === '' ? null : t;
  };
  // VIN: exact, normalized (trimmed, ASCII upper-case), valid per docs/feed.md; the rules of public.normalize_vin.
  const vinText = value('vin');
  const vinTrimmed = vinText === null ? '' : vinText.replace(/^[ \t\r\n]+|[ \t\r\n]+$/g, '');
  const vinNorm = vinTrimmed === '' ? null : vinTrimmed.replace(/[a-z]+/g, (m) => m.toUpperCase());
  const vinValid = vinNorm !== null && (vinNorm.length === 17 ? /^[A-HJ-NPR-Z0-9]{17}$/.test(vinNorm) : /^[A-Z0-9]{3,16}$/.test(vinNorm));
  const lot = str('lotNumber');
  if (lot === null) notes.push('Lot number empty');
  if (vinNorm === null) notes.push('VIN empty');
  else if (!vinValid) notes.push('VIN not a valid VIN or legacy identifier');

  const sdText = str('saleDate');
  const saleDate = parseSaleDate(sdText);
  if (saleDate === null && sdText !== null && sdText !== '0') notes.push(`Sale Date not YYYYMMDD: ${sdText.slice(0, 40)}`);
  const stText = str('saleTime');
  const saleTime = parseSaleTime(stText);
  if (saleDate !== null && stText !== null && saleTime === null) notes.push(`Sale time not HHMM: ${stText.slice(0, 40)}`);
  const tz = str('timeZone');
  const offset = tzOffsetMinutes(tz, str('locationCountry'), saleDate);
  if (saleDate !== null && saleTime !== null && offset === null) notes.push(`Time Zone unknown: ${tz ?? '(empty)'}`);
  const luText = str('lastUpdatedTime');
  const updated = parseIsoUtc(luText);
  if (updated === null && luText !== null) notes.push(`Last Updated Time not ISO 8601 UTC: ${luText.slice(0, 40)}`);
  const cdText = str('createDateTime');
  const created = parseDb2Timestamp(cdText);
  if (created === null && cdText !== null) notes.push(`Create Date/Time not YYYY-MM-DD-HH.MM.SS: ${cdText.slice(0, 40)}`);
  const amount = (role: ColumnRole, label: string): string | null => {
    const v = parseAmount(str(role));
    if (v === undefined) { notes.push(`${label} not a number`); return null; }
    return v;
  };
  const integer = (role: ColumnRole, label: string): string | null => {
    const v = parseInteger(str(role));
    if (v === undefined) { notes.push(`${label} not a whole number`); return null; }
    return v;
  };
  // Built in the order the notes have always been written in (processing_error is compared as text).
  const yardNumber = integer('yardNumber', 'Yard number');
  const itemNumber = integer('itemNumber', 'Item#');
  const year = integer('year', 'Year');
  const odometer = amount('odometer', 'Odometer');
  const estRetailValue = amount('estRetailValue', 'Est. Retail Value');
  const repairCost = amount('repairCost', 'Repair cost');
  const cylinders = integer('cylinders', 'Cylinders');
  const highBid = amount('highBid', 'High Bid');
  const buyItNowPrice = amount('buyItNowPrice', 'Buy-It-Now Price');
  return {
    lot_external_id: lot,
    vin_raw: vinText === null || vinText === '' ? null : vinText,
    vin_normalized: vinNorm,
    vin_valid: vinValid ? 't' : 'f',
    yard_number: yardNumber,
    sale_date: saleDate,
    sale_time_hhmm: saleTime === null ? null : String(saleTime),
    time_zone: tz,
    auction_at: auctionAt(saleDate, saleTime, offset),
    item_number: itemNumber,
    vehicle_type: str('vehicleType'),
    year,
    has_keys: str('hasKeys')?.toUpperCase() ?? null,
    odometer,
    est_retail_value: estRetailValue,
    repair_cost: repairCost,
    buy_it_now_price: buyItNowPrice,
    high_bid: highBid,
    cylinders,
    sale_status: str('saleStatus'),
    currency_code: str('currencyCode'),
    source_created_at: created,
    source_updated_at: updated,
    processing_error: notes.length === 0 ? null : notes.join('; '),
  };
}

/** Without leading and trailing ASCII spaces (PostgreSQL's btrim default). */
function trimSpaces(v: string): string {
  let a = 0;
  let b = v.length;
  while (a < b && v.charCodeAt(a) === 32) a++;
  while (b > a && v.charCodeAt(b - 1) === 32) b--;
  return a === 0 && b === v.length ? v : v.slice(a, b);
}
