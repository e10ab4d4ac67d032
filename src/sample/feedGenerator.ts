/**
 * Deterministic, streaming generator of realistic Copart "Sales Data" CSV files.
 *
 * Shapes, fill rates and quirks follow docs/feed.md and the real sample rows
 * (test/fixtures/): every field double-quoted, LF line endings, header first, about 636 bytes
 * per row (the real feed: ~623).
 *
 * Model of time: a "base population" of lots indexed 0, 1, 2, … . Generation n (the file taken
 * 15 * n minutes after generation 0) lists base lots n·t … n·t + rows - 1, t = `turnover` (default 1):
 * the first n·t lots have left the feed, n·t new lots have been appended at the end (t per generation;
 * every Id shifts, and every file has `rows` rows), and in each generation g ≥ 1 about
 * `updateFraction` of the lots are updated (High Bid, Sale Status, scheduling, Last Updated Time).
 * Everything about lot i is a pure function of (seed, i, rows, turnover, generation, updateFraction,
 * baseTime), so any generation can be produced directly, without the earlier ones. Compare
 * generations only with the same rows/seed/turnover/updateFraction/baseTime.
 */
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { HEADER_V1, HEADER_V2, HEADER_V3, HEADER_V4 } from '../feed/headers.js';

// ---------------------------------------------------------------------------------------------
// Headers
// ---------------------------------------------------------------------------------------------

// The header variants are the feed's own facts (feedColumns.ts); re-exported for callers of the generator.
export { HEADER_V1, HEADER_V2, HEADER_V3, HEADER_V4 };

// Value slots: one per V4 column, in V4 order. `Copart Select` reads the `Wholesale` slot.
const NCOL = HEADER_V4.length;
function col(name: string): number {
  const i = HEADER_V4.indexOf(name);
  if (i < 0) throw new Error(`feedGenerator: unknown column ${name}`);
  return i;
}
const C = {
  id: col('Id'), yardNo: col('Yard number'), yardName: col('Yard name'), saleDate: col('Sale Date M/D/CY'),
  dow: col('Day of Week'), saleTime: col('Sale time (HHMM)'), tz: col('Time Zone'), item: col('Item#'),
  lot: col('Lot number'), vtype: col('Vehicle Type'), year: col('Year'), make: col('Make'),
  modelGroup: col('Model Group'), modelDetail: col('Model Detail'), body: col('Body Style'), color: col('Color'),
  damage: col('Damage Description'), damage2: col('Secondary Damage'), titleState: col('Sale Title State'),
  titleType: col('Sale Title Type'), keys: col('Has Keys-Yes or No'), cond: col('Lot Cond. Code'), vin: col('VIN'),
  odo: col('Odometer'), odoBrand: col('Odometer Brand'), erv: col('Est. Retail Value'), repair: col('Repair cost'),
  engine: col('Engine'), drive: col('Drive'), trans: col('Transmission'), fuel: col('Fuel Type'),
  cyl: col('Cylinders'), runs: col('Runs/Drives'), status: col('Sale Status'),
  bid: col('High Bid =non-vix,Sealed=Vix'), note: col('Special Note'), city: col('Location city'),
  state: col('Location state'), zip: col('Location ZIP'), country: col('Location country'),
  currency: col('Currency Code'), thumb: col('Image Thumbnail'), created: col('Create Date/Time'),
  grid: col('Grid/Row'), offer: col('Make-an-Offer Eligible'), bin: col('Buy-It-Now Price'),
  imageUrl: col('Image URL'), trim: col('Trim'), updated: col('Last Updated Time'), rentals: col('Rentals'),
  wholesale: col('Wholesale'), seller: col('Seller Name'), offAddr: col('Offsite Address1'),
  offState: col('Offsite State'), offCity: col('Offsite City'), offZip: col('Offsite Zip'),
  light: col('Sale Light'), grade: col('AutoGrade'), announce: col('Announcements'),
} as const;

// ---------------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------------

/** Options of {@link generateFeed} / {@link writeFeedFile}. Same options → identical bytes. */
export interface FeedOptions {
  /** number of data rows (default 154_000) */
  rows?: number;
  /** PRNG seed (default 1) */
  seed?: number;
  /** generation index: 0 = first file; n = the file 15*n minutes later. Successor n drops the first n·turnover lots of the base population, appends as many new ones (so every Id shifts) and updates ~1 % of lots per generation (new High Bid, Sale Status, Last Updated Time moved forward, etc.), deterministically. */
  generation?: number;
  /** fraction of lots updated per generation, default 0.01 */
  updateFraction?: number;
  /**
   * lots that leave the feed (sold) and join it per generation, default 1. The real feed keeps a lot
   * for about three weeks (sale dates reach 21 days ahead), i.e. about rows / 2000 per 15 minutes.
   */
  turnover?: number;
  /** header to use, default HEADER_V4 (values generated for the columns present, by name) */
  header?: readonly string[];
  /** the timestamp of generation 0 (default 2025-10-17T12:00:00Z); Last Updated Time values are before it, updated ones move to (base + 15 min * generation) */
  baseTime?: Date;
  /**
   * When true, ~0.1 % of rows carry a Model Detail or Body Style with a bare, undoubled `"` inside the
   * quoted field (`"125" SLEEPER CAB"`), exactly like the real feed, so strict RFC 4180 parsers reject
   * those lines. Default false: output is then strict RFC 4180.
   */
  bareQuotes?: boolean;
}

const DEFAULT_ROWS = 154_000;
const DEFAULT_BASE_TIME = Date.UTC(2025, 9, 17, 12, 0, 0);
const GENERATION_SECONDS = 15 * 60;
const CHUNK_BYTES = 1 << 20;
const CHUNK_SLACK = 64 * 1024;
const LOT_MIN = 20_000_000;
const LOT_SPAN = 80_000_000; // lot numbers 20000000 … 99999999: always 8 digits
const LOT_MULT = 48_271_007; // coprime with 80e6 (= 2^10 * 5^7), so index → lot is a bijection

interface Resolved {
  rows: number;
  generation: number;
  turnover: number;
  updateFraction: number;
  logKeep: number; // log(1 - updateFraction), for geometric gaps between updates
  header: readonly string[];
  baseSec: number;
  bareQuotes: boolean;
  seedHash: number;
  lotOffset: number;
}

function resolveOptions(o: FeedOptions): Resolved {
  const rows = o.rows ?? DEFAULT_ROWS;
  const generation = o.generation ?? 0;
  const turnover = o.turnover ?? 1;
  const fraction = o.updateFraction ?? 0.01;
  const seed = o.seed ?? 1;
  const base = o.baseTime === undefined ? DEFAULT_BASE_TIME : o.baseTime.getTime();
  const header = o.header ?? HEADER_V4;
  if (!Number.isSafeInteger(rows) || rows < 0) throw new RangeError(`rows must be a non-negative integer, got ${rows}`);
  if (!Number.isSafeInteger(generation) || generation < 0) {
    throw new RangeError(`generation must be a non-negative integer, got ${generation}`);
  }
  if (!Number.isSafeInteger(turnover) || turnover < 1) throw new RangeError(`turnover must be a positive integer, got ${turnover}`);
  if (rows + generation * turnover > LOT_SPAN) throw new RangeError('rows + generation * turnover exceeds the 8-digit lot number space');
  if (!(fraction >= 0 && fraction <= 1)) throw new RangeError(`updateFraction must be in [0, 1], got ${fraction}`);
  if (!Number.isFinite(seed)) throw new RangeError(`seed must be a finite number, got ${seed}`);
  if (!Number.isFinite(base)) throw new RangeError('baseTime is not a valid date');
  if (header.length === 0) throw new RangeError('header must not be empty');
  // Seeds are folded to 32 bits; fractional seeds keep their fraction in the hash.
  const seedHash = mix32((Math.trunc(seed) ^ mix32(Math.round((seed % 1) * 1e9) >>> 0)) >>> 0);
  return {
    rows,
    generation,
    turnover,
    updateFraction: fraction,
    logKeep: Math.log1p(-fraction),
    header,
    baseSec: Math.floor(base / 1000),
    bareQuotes: o.bareQuotes === true,
    seedHash,
    lotOffset: mix32(seedHash ^ 0x51ed270b) % LOT_SPAN,
  };
}

// ---------------------------------------------------------------------------------------------
// PRNG and hashing
// ---------------------------------------------------------------------------------------------

/** murmur3 fmix32: a bijective 32-bit mixer, used to derive independent per-lot streams. */
function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/** A deterministic uniform [0, 1) source (mulberry32) for tests and tools that need repeatable randomness. */
export function seededRandom(seed: number): () => number {
  const rng = new Rng();
  rng.s = seed | 0;
  return () => rng.next();
}

/** mulberry32, reseedable so the hot loop allocates no PRNG objects. */
class Rng {
  s = 0;
  u32(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) | 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }
  /** uniform in [0, 1) */
  next(): number {
    return this.u32() / 4294967296;
  }
  /** integer in [0, n) */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  /** integer in [lo, hi] */
  range(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
}

/**
 * A weighted choice flattened into a 1000-slot table: one multiply per pick in the hot loop.
 * Weights are relative; resolution is 0.1 %.
 */
function weighted<T>(entries: readonly (readonly [T, number])[]): readonly T[] {
  const total = entries.reduce((s, [, w]) => s + w, 0);
  const out: T[] = [];
  let acc = 0;
  for (const [v, w] of entries) {
    acc += w;
    const upto = Math.round((acc / total) * 1000);
    while (out.length < upto) out.push(v);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Calendar helpers (integer arithmetic: fast and free of host time zone)
// ---------------------------------------------------------------------------------------------

const P2: readonly string[] = Array.from({ length: 100 }, (_, i) => String(i).padStart(2, '0'));
const P3: readonly string[] = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, '0'));
const DAY_NAMES = ['SUNDAY', 'MONDAY', 'TUESDAY', 'WEDNESDAY', 'THURSDAY', 'FRIDAY', 'SATURDAY'] as const;

/** Days since 1970-01-01 → YYYYMMDD as an integer (H. Hinnant's civil_from_days). */
function civil(days: number): number {
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp < 10 ? mp + 3 : mp - 9;
  const y = yoe + era * 400 + (m <= 2 ? 1 : 0);
  return y * 10000 + m * 100 + d;
}

/** 0 = Sunday (1970-01-01 was a Thursday). */
function weekday(days: number): number {
  return (((days + 4) % 7) + 7) % 7;
}

const dstCache = new Map<number, readonly [number, number]>();
/** US/Canada DST at day resolution: second Sunday of March (inclusive) to first Sunday of November. */
function isDst(days: number): boolean {
  const y = Math.floor(civil(days) / 10000);
  let span = dstCache.get(y);
  if (span === undefined) {
    const mar1 = Date.UTC(y, 2, 1) / 86400000;
    const nov1 = Date.UTC(y, 10, 1) / 86400000;
    const start = mar1 + ((7 - weekday(mar1)) % 7) + 7;
    const end = nov1 + ((7 - weekday(nov1)) % 7);
    span = [start, end];
    dstCache.set(y, span);
  }
  return days >= span[0] && days < span[1];
}

// Date prefixes repeat across rows (lots cluster on few days): cache "YYYY-MM-DD" per day number.
const dayPrefixes = new Map<number, string>();
function dayPrefix(days: number): string {
  let p = dayPrefixes.get(days);
  if (p === undefined) {
    const ymd = civil(days);
    p = `${Math.floor(ymd / 10000)}-${P2[Math.floor(ymd / 100) % 100]!}-${P2[ymd % 100]!}`;
    if (dayPrefixes.size < 100_000) dayPrefixes.set(days, p);
  }
  return p;
}
const HHMM_COLON: readonly string[] = Array.from({ length: 1440 }, (_, i) => `${P2[Math.floor(i / 60)]!}:${P2[i % 60]!}`);
const HHMM_DOT: readonly string[] = HHMM_COLON.map((t) => t.replace(':', '.'));

/** 2025-10-14T07:01:00Z */
function isoUtc(sec: number): string {
  const days = Math.floor(sec / 86400);
  const s = sec - days * 86400;
  const min = Math.floor(s / 60);
  return dayPrefix(days) + 'T' + HHMM_COLON[min]! + ':' + P2[s - min * 60]! + 'Z';
}

/** DB2 style 2025-10-14-08.55.06.000795 (the feed always shows 000 in the upper micro digits). */
function db2(sec: number, micro: number): string {
  const days = Math.floor(sec / 86400);
  const s = sec - days * 86400;
  const min = Math.floor(s / 60);
  return dayPrefix(days) + '-' + HHMM_DOT[min]! + '.' + P2[s - min * 60]! + '.000' + P3[micro]!;
}

/** Money / odometer text from integer cents, same digits as String(cents / 100): `12345.0`, `20314.23`, `9255.1`. */
function money(cents: number): string {
  const c = cents % 100;
  const d = (cents - c) / 100;
  return c === 0 ? d + '.0' : c % 10 === 0 ? d + '.' + c / 10 : d + '.' + P2[c]!;
}

// ---------------------------------------------------------------------------------------------
// Pools
// ---------------------------------------------------------------------------------------------

/** Time-zone families: E/C/M/P/A(laska) follow DST; Z = Arizona (MST all year), H = HST, N = Atlantic Canada (AKST, verbatim feed quirk). */
type TzFamily = 'E' | 'C' | 'M' | 'P' | 'A' | 'H' | 'Z' | 'N';
const TZ_NAMES: Record<TzFamily, readonly [string, string]> = {
  E: ['EST', 'EDT'], C: ['CST', 'CDT'], M: ['MST', 'MDT'], P: ['PST', 'PDT'], A: ['AKST', 'AKDT'],
  H: ['HST', 'HST'], Z: ['MST', 'MST'], N: ['AKST', 'AKST'],
};

interface Yard {
  no: string;
  name: string;
  city: string;
  state: string;
  zip: string;
  tz: TzFamily;
  canada: boolean;
}

// number|name|city|state|zip|tz|weight. The first block is the yards of the real samples; the rest
// are plausible additions so every zone family occurs.
const YARD_TABLE = `
1|CA - VALLEJO|VALLEJO|CA|94590 7203|P|3
2|CA - SACRAMENTO|SACRAMENTO|CA|95828 1829|P|3
6|CA - SAN JOSE|SAN MARTIN|CA|95046 9564|P|2
11|TX - HOUSTON|HOUSTON|TX|77073 4903|C|4
15|GA - ATLANTA WEST|AUSTELL|GA|30168|E|3
20|MO - ST. LOUIS|BRIDGETON|MO|63044 1418|C|3
21|AR - LITTLE ROCK|CONWAY|AR|72032|C|2
22|TN - MEMPHIS|MEMPHIS|TN|38118|C|2
24|NY - NEWBURGH|MARLBORO|NY|12542|E|2
26|PA - PHILADELPHIA|PENNSBURG|PA|18073 2303|E|3
30|NY - LONG ISLAND|BROOKHAVEN|NY|11719 9203|E|3
31|NJ - GLASSBORO EAST|GLASSBORO|NJ|08028 2600|E|2
32|DC - WASHINGTON DC|WALDORF|MD|20602 3455|E|3
34|FL - TAMPA SOUTH|RIVERVIEW|FL|33578 7610|E|3
36|IL - CHICAGO NORTH|ELGIN|IL|60120 7419|C|3
40|MS - JACKSON|FLORENCE|MS|39073|C|2
43|CA - VAN NUYS|VAN NUYS|CA|91405 1509|P|3
44|IN - INDIANAPOLIS|INDIANAPOLIS|IN|46254 2452|E|3
47|AZ - PHOENIX|PHOENIX|AZ|85043 4706|Z|3
55|FL - ORLANDO SOUTH|ORLANDO|FL|32824 7826|E|3
59|CA - SAN DIEGO|SAN DIEGO|CA|92154 8309|P|3
62|TX - AUSTIN|NEW BRAUNFELS|TX|78130 7208|C|2
63|TN - NASHVILLE|LEBANON|TN|37090|C|2
64|WA - GRAHAM|GRAHAM|WA|98338 9206|P|2
65|TX - MCALLEN|MERCEDES|TX|78570 4961|C|2
70|FL - WEST PALM BEACH|WEST PALM BEACH|FL|33411 3823|E|2
74|TX - SAN ANTONIO|SAN ANTONIO|TX|78224 3051|C|3
76|PA - HARRISBURG|GRANTVILLE|PA|17028 8210|E|2
80|MN - MINNEAPOLIS NORTH|HAM LAKE|MN|55304 6921|C|2
81|IL - CHICAGO SOUTH|CHICAGO HEIGHTS|IL|60411 5546|C|3
82|VA - DANVILLE|CHATHAM|VA|24531 3471|E|1
83|KY - LEXINGTON WEST|LAWRENCEBURG|KY|40342 9225|E|2
86|FL - FT. PIERCE|FORT PIERCE|FL|34946 7502|E|2
92|MO - SPRINGFIELD|ROGERSVILLE|MO|65742 7171|C|2
97|CA - RANCHO CUCAMONGA|RANCHO CUCAMONGA|CA|91739 9601|P|3
98|TX - FT. WORTH|HASLET|TX|76052 3840|C|3
106|MT - HELENA|HELENA|MT|59601 6406|M|1
107|GA - ATLANTA EAST|LOGANVILLE|GA|30052 4625|E|2
123|NE - LINCOLN|GREENWOOD|NE|68366 1607|C|1
125|MO - COLUMBIA|COLUMBIA|MO|65201 8826|C|1
129|PA - ALTOONA|EBENSBURG|PA|15931 3919|E|1
133|NV - LAS VEGAS WEST|NORTH LAS VEGAS|NV|89032|P|2
134|OR - PORTLAND SOUTH|WOODBURN|OR|97071 9666|P|2
135|NJ - TRENTON|WINDSOR|NJ|08561 0489|E|2
136|AL - BIRMINGHAM|HUEYTOWN|AL|35023 2868|C|2
141|MO - SIKESTON|SIKESTON|MO|63801 7262|C|1
145|AL - MONTGOMERY|MONTGOMERY|AL|36116 6553|C|1
148|FL - MIAMI SOUTH|HOMESTEAD|FL|33032 3801|E|3
151|CA - ANTELOPE|ANTELOPE|CA|95843 3930|P|2
153|FL - ORLANDO NORTH|APOPKA|FL|32712 5870|E|2
157|GA - ATLANTA NORTH|GAINESVILLE|GA|30507 7306|E|2
162|VA - HAMPTON|HAMPTON|VA|23666 1525|E|2
166|OH - DAYTON|MORAINE|OH|45439 1950|E|2
175|GA - CARTERSVILLE|CARTERSVILLE|GA|30120|E|1
182|TX - WACO|TEMPLE|TX|76501 6617|C|1
185|TX - ANDREWS|ANDREWS|TX|79714 5041|C|1
186|CA - LONG BEACH|WILMINGTON|CA|90744 1609|P|3
189|IL - SOUTHERN ILLINOIS|CAHOKIA HEIGHTS|IL|62205 1001|C|1
309|CA - ADELANTO|ADELANTO|CA|92301|P|2
339|WI - MILWAUKEE NORTH|MILWAUKEE|WI|53224|C|1
344|NY - BUFFALO|ANGOLA|NY|14006 9726|E|2
345|KY - EARLINGTON|EARLINGTON|KY|42410|C|1
360|IN - FORT WAYNE|FORT WAYNE|IN|46803 1546|E|1
361|MA - FREETOWN|ASSONET|MA|02702|E|2
366|FL - CLEWISTON|CLEWISTON|FL|33440|E|1
367|CA - MENTONE|MENTONE|CA|92359|P|2
369|KS - KANSAS CITY|KANSAS CITY|KS|66111 2629|C|2
370|IN - DYER|DYER|IN|46311|C|2
371|WI - MILWAUKEE SOUTH|FRANKLIN|WI|53132|C|1
12|TX - DALLAS|DALLAS|TX|75254|C|4
18|CO - DENVER|BRIGHTON|CO|80603 9337|M|3
19|UT - OGDEN|FARR WEST|UT|84404 9127|M|2
23|NM - ALBUQUERQUE|ALBUQUERQUE|NM|87105 4755|M|2
27|LA - SHREVEPORT|SHREVEPORT|LA|71109 5405|C|2
28|CT - HARTFORD|NEW BRITAIN|CT|06051 4123|E|2
29|SC - COLUMBIA|GASTON|SC|29053|E|2
35|CA - FRESNO|FRESNO|CA|93725 9364|P|2
38|PA - PITTSBURGH NORTH|ELLWOOD CITY|PA|16117 3772|E|2
39|TX - EL PASO|ANTHONY|TX|79821 9305|M|1
41|TX - DALLAS SOUTH|LEWISVILLE|TX|75057 4667|C|2
42|NC - RALEIGH|RALEIGH|NC|27610 5328|E|3
45|NC - CHINA GROVE|CHINA GROVE|NC|28023|E|2
46|MI - DETROIT|DETROIT|MI|48209 3915|E|3
48|OH - COLUMBUS|COLUMBUS|OH|43207 4306|E|2
49|OK - OKLAHOMA CITY|OKLAHOMA CITY|OK|73129 7221|C|2
51|WA - NORTH SEATTLE|ARLINGTON|WA|98223|P|2
52|ID - BOISE|NAMPA|ID|83687 3211|M|1
53|MD - BALTIMORE|BALTIMORE|MD|21226 1702|E|2
54|AK - ANCHORAGE|ANCHORAGE|AK|99501|A|0.5
56|HI - HONOLULU|KAPOLEI|HI|96707 1804|H|0.5
204|AB - EDMONTON|NISKU|AB|T9E 8L1|M|1.2
206|AB - CALGARY|CALGARY|AB|T2C 2N4|M|1
205|QC - MONTREAL|MONTREAL-EST|QC|H1B 4W3|E|1.2
207|QC - QUEBEC|LEVIS|QC|G6K 1L4|E|0.6
208|ON - TORONTO|TORONTO|ON|M9W 5Y1|E|1.2
209|ON - OTTAWA|OTTAWA|ON|K2R 1B1|E|0.8
295|ATLANTIC CANADA AUCTION|ELMSDALE|NS|B2S 2L2|N|0.6
210|NB - MONCTON|MONCTON|NB|E1H 2J5|N|0.4
`;

const CANADIAN = new Set(['AB', 'QC', 'ON', 'NS', 'NB', 'BC', 'MB', 'SK']);
const YARDS: Yard[] = [];
const yardWeights: [number, number][] = [];
for (const line of YARD_TABLE.trim().split('\n')) {
  const [no = '', name = '', city = '', state = '', zip = '', tz = 'C', w = '1'] = line.split('|');
  yardWeights.push([YARDS.length, Number(w)]);
  YARDS.push({ no, name, city, state, zip, tz: tz as TzFamily, canada: CANADIAN.has(state) });
}
const YARD_PICK = weighted(yardWeights);
const US_YARDS = YARDS.filter((y) => !y.canada);

/** Specialty sales: national yards whose lots sit at other yards' addresses. */
const SPECIALTY = {
  heavyTrailerRv: { no: '833', name: 'HEAVY-TRAILER-RV CLEAN SALE', tz: 'C' as TzFamily },
  mediumDuty: { no: '835', name: 'MEDIUM DUTY SPECIALTY SALE', tz: 'C' as TzFamily },
  heavyTruck: { no: '836', name: 'HEAVY TRUCK SPECIALTY SALE', tz: 'C' as TzFamily },
  powersport: { no: '841', name: 'CRASHEDTOYS POWERSPORT AUCTION', tz: 'C' as TzFamily },
  wholesale: { no: '855', name: 'WHOLESALE AUCTION', tz: 'E' as TzFamily },
};

const US_STATES = [
  'AL', 'AR', 'AZ', 'CA', 'CO', 'CT', 'DE', 'FL', 'GA', 'IA', 'ID', 'IL', 'IN', 'KS', 'KY', 'LA', 'MA', 'MD', 'ME',
  'MI', 'MN', 'MO', 'MS', 'MT', 'NC', 'ND', 'NE', 'NH', 'NJ', 'NM', 'NV', 'NY', 'OH', 'OK', 'OR', 'PA', 'RI', 'SC',
  'SD', 'TN', 'TX', 'UT', 'VA', 'VT', 'WA', 'WI', 'WV', 'WY',
] as const;

interface Model {
  make: string;
  group: string;
  detail: string; // Model Detail prefix (before the trim), truncated to 10 with it
  trims: readonly string[];
  engines: readonly (readonly [string, string])[]; // [Engine, Cylinders] pre-rendered: ['1.8L  4', '4'], ['2', '2'], ['', '']
  drives: readonly string[];
  fuels: readonly string[];
  wmi: readonly string[];
  bodies: readonly string[];
  y0: number;
  y1: number;
  price: number; // new price in dollars, drives Est. Retail Value
}

const DRIVE: Record<string, string> = {
  F: 'Front-wheel Drive', R: 'Rear-wheel drive', A: 'All wheel drive', '4': '4x4 w/Rear Wheel Drv',
  '5': '4x4 w/Front Whl Drv', '-': '',
};
const FUEL: Record<string, string> = {
  G: 'GAS', F: 'FLEXIBLE FUEL', D: 'DIESEL', H: 'HYBRID ENGINE', E: 'ELECTRIC', N: 'COMPRESSED NATURAL GAS', '-': '',
};

/**
 * Compact model rows: make|group|detail|trims|engines|drives|fuels|wmi|bodies|years|price|weight.
 * engines: `2.5:4` = "2.5L  4"; `:2` = cylinders only ("2"); `-` = no engine (trailers, EVs).
 */
function models(table: string): { list: Model[]; pick: readonly number[] } {
  const list: Model[] = [];
  const w: [number, number][] = [];
  for (const raw of table.trim().split('\n')) {
    const f = raw.split('|');
    const g = (i: number): string => f[i] ?? '';
    const split = (s: string): string[] => (s === '' ? [''] : s.split(','));
    const [y0 = '2010', y1 = '2024'] = g(9).split('-');
    w.push([list.length, Number(g(11) || '1')]);
    list.push({
      make: g(0),
      group: g(1),
      detail: g(2),
      trims: split(g(3)),
      engines: split(g(4)).map((e): readonly [string, string] => {
        if (e === '-' || e === '') return ['', ''];
        const [d = '', c = '0'] = e.split(':');
        // the cylinder count is right-aligned to 2 after "L ": "1.8L  4", "6.8L 10"
        return [d === '' ? c : `${d}L ${c.padStart(2, ' ')}`, c];
      }),
      drives: split(g(5)).map((d) => DRIVE[d] ?? ''),
      fuels: split(g(6)).map((x) => FUEL[x] ?? ''),
      wmi: split(g(7)),
      bodies: split(g(8)),
      y0: Number(y0),
      y1: Number(y1),
      price: Number(g(10)),
    });
  }
  return { list, pick: weighted(w) };
}

const CARS = models(`
TOYOTA|CAMRY|CAMRY|LE,SE,XLE,HYBRID,L|2.5:4,3.5:6|F|G,G,G,H|4T1,4T4,4T1|SEDAN 4D|2007-2025|28000|40
TOYOTA|COROLLA|COROLLA|L,LE,S,SE,BASE|1.8:4,2.0:4|F|G|5YF,2T1,JTD|SEDAN 4D|2008-2025|22000|38
TOYOTA|RAV4|RAV4|LE,XLE,LIMITED,ADVENTURE,|2.5:4|A,F|G,G,H|2T3,JTM|4DR SPOR|2008-2025|31000|28
TOYOTA|TACOMA|TACOMA|DOUBLE CAB,ACCESS CAB,TRD OFF ROAD|2.7:4,3.5:6,4.0:6|4,R|G|5TF,3TM|PICKUP,CREW PIC|2006-2024|34000|14
TOYOTA|TUNDRA|TUNDRA|DOUBLE CAB SR/SR5,CREWMAX LIMITED,SR5|5.7:8,4.6:8|4,R|G,F|5TF|CREW PIC|2008-2024|45000|8
TOYOTA|HIGHLANDER|HIGHLANDER|LE,XLE,LIMITED|3.5:6,2.7:4|A,F|G,H|5TD|4DR SPOR|2010-2025|40000|12
TOYOTA|PRIUS|PRIUS|,TWO,THREE|1.8:4|F|H|JTD|HATCHBAC|2010-2023|26000|6
HONDA|CIVIC|CIVIC|LX,EX,SPORT,SI,|2.0:4,1.5:4,1.8:4|F|G|2HG,19X,SHH|SEDAN 4D,COUPE|2006-2025|24000|36
HONDA|ACCORD|ACCORD|LX,EX,EXL,SPORT,|2.4:4,1.5:4,3.5:6|F|G|1HG|SEDAN 4D,COUPE|2006-2025|28000|30
HONDA|CR-V|CR-V|LX,EX,EXL,TOURING|2.4:4,1.5:4|A,F|G|2HK,5J6,7FA|4DR SPOR|2007-2025|31000|22
HONDA|PILOT|PILOT|EX,EXL,TOURING,|3.5:6|A,F|G|5FN,2HK|4DR SPOR|2006-2024|40000|9
HONDA|ODYSSEY|ODYSSEY|EX,EXL,TOURING|3.5:6|F|G|5FN|SPORTS V|2008-2024|36000|6
NISSAN|ALTIMA|ALTIMA|2.5,2.5 S,SR,SV|2.5:4,3.5:6|F|G|1N4|SEDAN 4D|2007-2025|26000|34
NISSAN|SENTRA|SENTRA|S,SV,SR|1.8:4,2.0:4|F|G|3N1|SEDAN 4D|2008-2025|20000|26
NISSAN|ROGUE|ROGUE|S,SV,SL|2.5:4,1.5:3|A,F|G|JN8,5N1,KNM|4DR SPOR|2009-2025|28000|24
NISSAN|VERSA|VERSA|S,SV,|1.6:4|F|G|3N1|SEDAN 4D,HATCHBAC|2009-2024|17000|12
NISSAN|FRONTIER|FRONTIER|S,SV,PRO-4X|4.0:6,2.5:4,3.8:6|R,4|G|1N6|CREW PIC,PICKUP|2006-2024|30000|6
NISSAN|PATHFINDER|PATHFINDER|S,SV,SL,|3.5:6,4.0:6|R,A,4|G|5N1,JN8|4DR SPOR|2005-2024|36000|5
FORD|F-150|F150|SUPERCREW,SUPER CAB,XL,XLT,LARIAT|3.5:6,5.0:8,2.7:6,3.3:6|4,R|G,F|1FT,1FT,3FT|CREW PIC,PICKUP|2006-2025|45000|40
FORD|ESCAPE|ESCAPE|SE,S,TITANIUM,XLT|1.6:4,1.5:3,2.0:4,2.5:4|F,5|G|1FM|4DR SPOR|2008-2024|28000|22
FORD|FUSION|FUSION|SE,S,TITANIUM,HYBRID SE|2.5:4,1.5:4,2.0:4|F|G,G,H|3FA|SEDAN 4D|2010-2020|24000|18
FORD|EXPLORER|EXPLORER|XLT,LIMITED,BASE,|3.5:6,2.3:4|F,A,4|G|1FM|4DR SPOR|2008-2025|40000|16
FORD|MUSTANG|MUSTANG|GT,ECOBOOST,|5.0:8,2.3:4,3.7:6|R|G|1FA,1ZV|COUPE,CONVERTI|2006-2024|34000|10
FORD|FOCUS|FOCUS|SE,S,TITANIUM,ST|2.0:4|F|G|1FA,1FADP|SEDAN 4D,HATCHBAC|2008-2018|20000|12
FORD|RANGER|RANGER|XL,XLT,SUPERCREW,LARIAT|2.3:4|4,R|G|1FT|CREW PIC|2019-2025|34000|6
FORD|TRANSIT|TRANSIT|T-250,T-350|3.5:6,3.7:6|R,A|G|1FT|CARGO VA|2015-2024|42000|5
FORD|F250|F250|SUPER DUTY,|6.7:8,6.2:8,6.4:8|4,R|D,G|1FT|CREW PIC|2008-2024|55000|6
CHEVROLET|SILVERADO|SILVERADO|K1500 LT,C1500,K1500 LTZ,K1500 CUSTOM,|5.3:8,4.3:6,6.2:8,2.7:4|4,R|G,F|1GC,3GC,2GC|CREW PIC,PICKUP|2006-2025|46000|34
CHEVROLET|MALIBU|MALIBU|LT,LS,1LT,PREMIER|1.5:4,2.5:4,2.0:4|F|G|1G1|SEDAN 4D|2008-2024|25000|22
CHEVROLET|EQUINOX|EQUINOX|LT,LS,PREMIER,RS|1.5:4,2.4:4,3.6:6|F,A|G,F|2GN,3GN|4DR SPOR|2010-2025|29000|24
CHEVROLET|CRUZE|CRUZE|LT,LS,LTZ|1.4:4,1.8:4|F|G|1G1,3G1|SEDAN 4D,HATCHBAC|2011-2019|20000|14
CHEVROLET|TAHOE|TAHOE|LT,LS,PREMIER,C1500|5.3:8,6.2:8|4,R|G,F|1GN|4DR SPOR|2007-2024|55000|8
CHEVROLET|TRAVERSE|TRAVERSE|LT,LS,RS|3.6:6|F,A|G|1GN|4DR SPOR|2010-2024|36000|7
CHEVROLET|IMPALA|IMPALA|LT,LS,LTZ|3.6:6,2.5:4,3.5:6|F|G,F|2G1,2G1WB|SEDAN 4D|2006-2020|28000|6
DODGE|CHARGER|CHARGER|SE,SXT,R/T,GT,SCAT PACK|3.6:6,5.7:8,6.4:8|R,A|G,F|2C3|SEDAN 4D|2008-2023|33000|18
DODGE|CHALLENGER|CHALLENGER|SXT,R/T,GT,SRT-8|3.6:6,5.7:8,6.4:8|R|G|2C3|COUPE|2009-2023|34000|12
DODGE|CARAVAN|GRAND CARAVAN|SE,SXT,GT|3.6:6,3.3:6|F|F,G|2C4,2D4|SPORTS V|2008-2020|27000|12
DODGE|DURANGO|DURANGO|SXT,GT,R/T,CITADEL|3.6:6,5.7:8|A,R|G,F|1C4|4DR SPOR|2011-2024|40000|7
DODGE|JOURNEY|JOURNEY|SE,SXT,CROSSROAD|2.4:4,3.6:6|F|G|3C4|4DR SPOR|2009-2020|23000|8
RAM|1500|1500|SLT,BIG HORN,TRADESMAN,LARAMIE,ST|5.7:8,3.6:6,3.0:6|4,R|G,F,D|1C6,3C6|CREW PIC,PICKUP|2011-2025|46000|18
RAM|2500|2500|LARAMIE,TRADESMAN,BIG HORN|6.7:6,6.4:8|4|D,G|3C6|CREW PIC|2011-2024|58000|5
JEEP|WRANGLER|WRANGLER|UNLIMITED SPORT,SPORT,RUBICON,UNLIMITED SAHARA|3.6:6,2.0:4,3.8:6|4|G,F,H|1C4,1J4|4DR SPOR,2DR SPOR|2007-2025|38000|14
JEEP|GRAND CHER|GRAND CHEROKEE|LAREDO,LIMITED,OVERLAND|3.6:6,5.7:8|4,R|G,F|1C4,1J4|4DR SPOR|2008-2025|42000|16
JEEP|CHEROKEE|CHEROKEE|LATITUDE,SPORT,LIMITED,TRAILHAWK|2.4:4,3.2:6|F,4|G|1C4|4DR SPOR|2014-2023|30000|10
JEEP|COMPASS|COMPASS|LATITUDE,SPORT,LIMITED|2.4:4,2.0:4|F,4|G|3C4,1C4|4DR SPOR|2010-2025|27000|9
HYUNDAI|ELANTRA|ELANTRA|SE,SEL,GLS,LIMITED,BLUE,GT|2.0:4,1.8:4,1.4:4|F|G|5NP,KMH|SEDAN 4D|2008-2025|21000|28
HYUNDAI|SONATA|SONATA|SE,SEL,LIMITED,HYBRID,GLS|2.4:4,2.5:4,1.6:4,2.0:4|F|G,G,H|5NP,KMH|SEDAN 4D|2008-2025|26000|22
HYUNDAI|TUCSON|TUCSON|GL,SE,SEL,LIMITED|2.0:4,2.4:4,2.5:4|F,A|G|KM8,5NM|4DR SPOR|2010-2025|28000|14
HYUNDAI|SANTA FE|SANTA FE|GLS,SE,SEL,LIMITED|2.4:4,2.7:6,3.3:6,2.5:4|F,A|G|5NM,KM8,5XY|4DR SPOR|2007-2025|32000|10
KIA|FORTE|FORTE|LX,GT LINE,S,EX|2.0:4,1.8:4|F|G|3KP,KNA|SEDAN 4D|2010-2025|20000|14
KIA|OPTIMA|OPTIMA|LX,SX,EX|2.4:4,2.0:4|F|G,H|5XX,KNA|SEDAN 4D|2011-2020|24000|10
KIA|SORENTO|SORENTO|LX,EX,SX,S|2.4:4,3.3:6,2.5:4|F,A|G|5XY,5XYP|4DR SPOR|2011-2025|32000|10
KIA|SOUL|SOUL|+,BASE,LX,EX|1.6:4,2.0:4|F|G|KND|4DR SPOR|2010-2025|20000|10
KIA|SPORTAGE|SPORTAGE|LX,EX,SX|2.4:4,2.0:4|F,A|G|KND,KNDP|4DR SPOR|2011-2025|27000|10
BMW|3 SERIES|328|I,XI,I SULEV|2.0:4,3.0:6|R,A|G|WBA,WBA8|SEDAN 4D|2007-2019|42000|8
BMW|X5|X5|XDRIVE35I,XDRIVE40I,SDRIVE40I|3.0:6,4.4:8|A|G|5UX|4DR SPOR|2008-2024|62000|5
MERCEDES-BENZ|C-CLASS|C 300|4MATIC,|2.0:4,3.0:6,3.5:6|R,A|G|WDD,55S|SEDAN 4D|2008-2024|45000|7
MERCEDES-BENZ|GLE-CLASS|GLE 350|4MATIC,|3.5:6,2.0:4|A,R|G|4JG|4DR SPOR|2016-2024|58000|4
AUDI|A4|A4|PREMIUM,PREMIUM PLUS,PRESTIGE|2.0:4|A,F|G|WAU|SEDAN 4D|2009-2024|42000|5
AUDI|Q5|Q5|PREMIUM,PREMIUM PLUS,PRESTIGE|2.0:4,3.0:6|A|G|WA1|4DR SPOR|2010-2025|46000|5
TESLA|MODEL 3|MODEL 3|LONG RANGE,STANDARD RANGE,PERFORMANCE,|-|R,A|E|5YJ|SEDAN 4D|2018-2025|45000|8
TESLA|MODEL Y|MODEL Y|LONG RANGE,PERFORMANCE,|-|A|E|7SA,5YJ|4DR SPOR|2020-2025|50000|5
SUBARU|OUTBACK|OUTBACK|2.5I PREMIUM,2.5I LIMITED,|2.5:4,3.6:6|A|G|4S4|4DR SPOR|2008-2025|32000|7
SUBARU|FORESTER|FORESTER|2.5I PREMIUM,2.5X,|2.5:4|A|G|JF2|4DR SPOR|2008-2025|30000|6
VOLKSWAGEN|JETTA|JETTA|S,SE,SEL,TDI|1.4:4,2.0:4,2.5:5|F|G,D|3VW|SEDAN 4D|2008-2024|22000|9
VOLKSWAGEN|TIGUAN|TIGUAN|S,SE,SEL|2.0:4|F,A|G|WVG,3VV|4DR SPOR|2009-2024|30000|6
MAZDA|CX-5|CX-5|TOURING,SPORT,GRAND TOURING|2.5:4,2.0:4|F,A|G|JM3|4DR SPOR|2013-2025|30000|8
MAZDA|MAZDA3|3|I,S,SPORT,PREFERRED|2.0:4,2.5:4|F|G|JM1,3MZ|SEDAN 4D,HATCHBAC|2008-2025|22000|7
GMC|SIERRA|SIERRA|K1500 SLT,K1500 SLE,C1500|5.3:8,6.2:8,4.3:6|4,R|G,F|1GT,3GT|CREW PIC|2007-2025|50000|9
GMC|ACADIA|ACADIA|SLT,SLE,DENALI|3.6:6,2.5:4|F,A|G|1GK|4DR SPOR|2008-2024|38000|6
CHRYSLER|300|300|S,TOURING,LIMITED,C|3.6:6,5.7:8|R,A|G,F|2C3|SEDAN 4D|2006-2023|36000|7
CHRYSLER|PACIFICA|PACIFICA|TOURING L,LIMITED,HYBRID|3.6:6|F|G,H|2C4|SPORTS V|2017-2024|40000|5
LEXUS|RX 350|RX 350|,BASE,F SPORT|3.5:6|A,F|G|2T2,JTJ|4DR SPOR|2007-2024|50000|5
ACURA|MDX|MDX|,TECHNOLOGY,A-SPEC|3.5:6,3.7:6|A,F|G|5J8,2HN|4DR SPOR|2007-2025|50000|4
INFINITI|Q50|Q50|BASE,PREMIUM,SPORT|3.7:6,3.0:6,2.0:4|R,A|G|JN1|SEDAN 4D|2014-2024|42000|4
BUICK|ENCORE|ENCORE|,PREFERRED,SPORT TOURING|1.4:4|F,A|G|KL4|4DR SPOR|2013-2022|25000|5
CADILLAC|ESCALADE|ESCALADE|LUXURY,PREMIUM,|6.2:8|4,R|G|1GY|4DR SPOR|2008-2024|85000|2
MITSUBISHI|OUTLANDER|OUTLANDER|SE,ES,SEL|2.4:4,3.0:6|F,A|G|JA4|4DR SPOR|2010-2024|27000|4
PORSCHE|CAYENNE|CAYENNE|,S,TURBO|3.6:6,4.8:8,3.0:6|A|G|WP1|4DR SPOR|2008-2024|80000|1
BENTLEY|CONTINENTA|CONTINENTA|FLYING SPUR,GT|6.0:12,4.0:8|A|G,F|SCB|SEDAN 4D,COUPE|2006-2020|200000|0.3
LAMBORGHINI|ALL MODELS|GALLARDO S|SPYDER,LP560|5.0:10,5.2:10|A|G|ZHW|CONVERTI,COUPE|2006-2014|200000|0.2
`);

// The other vehicle types, keyed by the Vehicle Type letter.
const OTHERS: Record<string, { list: Model[]; pick: readonly number[] }> = {
  C: models(`
HARLEY-DAVIDSON|FL|FLHX|STREET GLIDE,ROAD GLIDE SPECIAL,ROAD KING|:2|-|G|1HD|,ROAD/STR|2004-2024|24000|4
HARLEY-DAVIDSON|SPRTSTR120|XL1200|CX,C,X|:2|-|G|1HD|,ROAD/STR|2004-2022|11000|2
HONDA|CBR CYCLE|CBR600|RR,F4I,|:4|-|G|JH2|,ROAD/STR|2004-2024|12000|2
YAMAHA|YZF CYCLE|YZF R6|,R3|:4,:2|-|G|JYA|,ROAD/STR|2006-2024|12000|2
KAWASAKI|ZX CYCLE|ZX636|,E|:4|-|G|JKA|,ROAD/STR|2006-2024|11000|1
SUZUKI|GSX-R CYCLE|GSX-R600|,750|:4|-|G|JS1|,ROAD/STR|2006-2024|12000|1
POLARIS|SLINGSHOT|SLINGSHOT|R,SL,|:4|-|G|57X|,|2015-2024|28000|1
`),
  K: models(`
FORD|F550|F550|SUPER DUTY,|6.7:8,6.8:10|4,R|D,G|1FD|CHASSIS|2008-2024|65000|3
FORD|ALL Models|ECONOLINE|E350 SUPER DUTY CUTAWAY VAN,E450 SUPER DUTY CUTAWAY VAN|6.8:10,5.4:8|R|G|1FD|CUTAWAY,|2008-2024|60000|3
ISUZU|NPR|NPR|HD,XD,|5.2:4,6.0:8|R|D,G|JAL,54D|TILT CAB|2008-2023|55000|2
CHEVROLET|EXPRESS|EXPRESS|G3500,G3500 LT|6.0:8,4.8:8|R|G,F|1GB,1GC|CARGO VA,EXTENDED|2008-2024|42000|2
RAM|All Models|PROMASTER|3500 HIGH,2500 HIGH|3.6:6|F|F,G|3C6|CARGO VA,|2014-2024|45000|2
FREIGHTLINER|M2|M2 106|MEDIUM DUTY,|6.7:6,:6|R|D|1FV,3AL|CONVENTIO|2008-2024|90000|1
`),
  U: models(`
FREIGHTLINER|ALL OTHER|CASCADIA 1|,25,26|14.8:6,12.8:6,:6|R|D|1FU,3AK|TRACTOR|2008-2024|150000|4
VOLVO|VN|VN VNL|,64T,670|12.8:6,:6|R|D|4V4|TRACTOR|2008-2024|140000|2
KENWORTH|CONSTRUCTI|T680|,|12.9:6,:6|R|D|1XK|TRACTOR|2013-2024|150000|2
PETERBILT|ALL MODELS|579|,389|12.9:6,:6|R|D|1XP|TRACTOR|2012-2024|150000|2
INTERNATIONAL|LT625|LT625|,|12.4:6,:6|R|D,N|3HS|TRACTOR|2017-2024|130000|1
MACK|ALL MODELS|600 LEU|LEU600,ANTHEM|8.9:6,12.8:6|R|N,D|1M1,1M2|TILT CAB,TRACTOR|2008-2024|160000|1
BLUE BIRD|ALL MODELS|SCHOOL BUS|,|6.7:6,:6|R|D|1BA|,|2005-2020|100000|0.5
`),
  R: models(`
WINNEBAGO|ALL MODELS|MINNIE WIN|,|-|-|-|1FD,54D|,MOTORIZE|2008-2023|90000|2
FORD|F530|F53|,|6.8:10|R|G|1F6|MOTORIZE|2008-2022|100000|2
JAYCO|ALL MODELS|JAY FLIGHT|,|-|-|-|1UJ|,|2008-2023|30000|2
KEYSTONE|CARBON|CARBON|,|-|-|-|4YD|,|2010-2023|35000|1
FOREST RIVER|ALL MODELS|SALEM|,|-|-|-|4X4|,|2008-2023|28000|2
`),
  L: models(`
UTILITY|TRAILER|TRAILER|,|-|-|-|1UY|,|2000-2023|35000|3
GREAT DANE|TRAILER|TRAILER|,|-|-|-|1GR|,|2000-2023|35000|2
WABASH|TRAILER|TRAILER|,|-|-|-|1JJ|,|2000-2023|30000|2
BIG TEX|ALL MODELS|UTILITY TR|,|-|-|-|16V|,|2005-2024|5000|2
OTHER|12FT CARGO|12FT CARGO|,|-|-|-|5NH,4YM|,|2000-2023|4000|2
`),
  A: models(`
POLARIS|SPORTSMAN|SPORTSMAN|570,850,|:1,:2|-|G|4XA|,|2008-2024|10000|3
CAN-AM|OUTLANDER|OUTLANDER|650,1000R,|:2|-|G|3JB|,|2010-2024|12000|2
HONDA|TRX|TRX420|FA,FM,|:1|-|G|1HF|,|2008-2024|8000|2
YAMAHA|GRIZZLY|GRIZZLY|700,|:1|-|G|5Y4|,|2008-2024|9000|1
`),
  M: models(`
BAYLINER|ALL MODELS|BOAT|,|-|-|-|BL3|,|1980-2022|25000|2
SEA RAY|ALL MODELS|SUNDANCER|,|-|-|-|SER|,|1985-2022|60000|1
TRACKER|ALL MODELS|PRO TEAM|,|-|-|-|BUJ|,|1995-2023|20000|2
`),
  E: models(`
CATERPILLAR|ALL MODELS|SKID STEER|,|:4|-|D|CAT|,|2005-2023|40000|2
JOHN DEERE|ALL MODELS|BACKHOE|,|:4|-|D|1T0|,|2005-2023|60000|1
BOBCAT|ALL MODELS|S650|,|:4|-|D|AJZ|,|2008-2023|45000|1
`),
  J: models(`
SEA-DOO|ALL MODELS|GTI|,SE 130|-|-|-|YDV|,|2010-2024|11000|2
YAMAHA|WAVERUNNER|VX|,CRUISER|-|-|-|YAM|,|2010-2024|12000|1
`),
};

const VEHICLE_TYPES = weighted<string>([
  ['V', 910], ['K', 25], ['C', 20], ['U', 15], ['L', 10], ['R', 7], ['A', 6], ['M', 4], ['E', 2], ['J', 1],
]);

const COLORS = weighted<string>([
  ['BLACK', 24], ['WHITE', 21], ['GRAY', 12], ['SILVER', 11], ['BLUE', 10], ['RED', 8], ['CHARCOAL', 3],
  ['MAROON', 2], ['BEIGE', 2], ['BURN', 2], ['GREEN', 1.5], ['TAN', 1], ['GOLD', 1], ['BROWN', 1], ['TWO TONE', 1],
  ['ORANGE', 0.5], ['PURPLE', 0.5], ['BURGUNDY', 0.5], ['YELLOW', 0.5],
]);
const DAMAGES = weighted<string>([
  ['FRONT END', 37], ['ALL OVER', 12], ['SIDE', 10], ['REAR END', 8], ['MINOR DENT/SCRATCHES', 6], ['BURN', 4],
  ['ROLLOVER', 3], ['MECHANICAL', 4], ['NORMAL WEAR', 4], ['VANDALISM', 2], ['WATER/FLOOD', 3], ['HAIL', 2],
  ['BURN - ENGINE', 1], ['UNDERCARRIAGE', 1], ['BURN - INTERIOR', 0.5], ['DAMAGE HISTORY', 1], ['TOP/ROOF', 1],
  ['BIOHAZARD/CHEMICAL', 0.3], ['FRAME DAMAGE', 0.5], ['STRIPPED', 0.3], ['REJECTED REPAIR', 0.2],
]);
const DAMAGES2 = weighted<string>([
  ['FRONT END', 12], ['MINOR DENT/SCRATCHES', 9], ['REAR END', 8], ['SIDE', 8], ['UNDERCARRIAGE', 6],
  ['MECHANICAL', 4], ['HAIL', 2], ['ALL OVER', 2], ['ROLLOVER', 1], ['FRAME DAMAGE', 1], ['WATER/FLOOD', 1],
  ['BIOHAZARD/CHEMICAL', 1], ['TOP/ROOF', 1], ['BURN - INTERIOR', 0.5], ['VANDALISM', 1], ['REJECTED REPAIR', 0.5],
]);
const TITLE_TYPES = weighted<string>([
  ['SC', 37], ['ST', 11], ['BS', 9], ['JT', 5], ['BP', 4], ['CD', 4], ['SV', 4], ['CT', 4], ['BR', 2], ['NX', 2],
  ['BV', 2], ['RB', 1.5], ['SM', 1.5], ['SR', 1.5], ['RS', 1.5], ['IP', 1.5], ['PO', 1.5], ['SH', 1.5], ['DP', 0.7],
  ['NT', 0.7], ['DV', 0.7], ['FS', 0.7], ['VD', 0.7], ['FV', 0.7], ['IR', 0.7], ['CC', 0.7], ['RJ', 0.7],
]);
const KEYS = weighted<string>([['YES', 72], ['NO', 24], ['EXM', 4]]);
const COND = weighted<string>([['E', 58], ['D', 32], ['S', 7], ['', 3]]);
const RUNS = weighted<string>([['DEFAULT', 56], ['Run & Drive Verified', 32], ['Vehicle Starts', 7], ['', 5]]);
const STATUS = weighted<string>([['Pure Sale', 65], ['On Minimum Bid', 28], ['On Approval', 7]]);
const TRANSMISSION = weighted<string>([['AUTOMATIC', 80], ['', 17], ['MANUAL', 3]]);
const SALE_TIMES = weighted<string>([['1200', 64], ['1000', 24], ['1100', 7], ['700', 3], ['900', 2]]);
const SELLERS = weighted<string>([
  ['State Farm Insurance', 30], ['Progressive', 18], ['GEICO', 14], ['Allstate Insurance', 10],
  ['Farmers Insurance', 8], ['USAA', 6], ['Liberty Mutual Insurance', 5], ['Nationwide Insurance', 3],
  ['Travelers', 2], ['Bristol West Insurance', 2], ['American Family Insurance', 2], ['Erie Insurance', 1],
  ['Hertz Vehicles, LLC', 1], ['Ally Financial, Inc.', 1], ['Avis Budget Group', 1], ['ENTERPRISE-LOGO.jpeg', 0.3],
  ['Westlake Financial Services', 1], ['Santander Consumer USA, Inc.', 0.7],
]);
const SELLERS_CA = ['Intact Insurance', 'Desjardins Assurances', 'Aviva Canada', 'Co-operators General Insurance', 'TD Assurance'];
const TRIM_EMPTY_TYPES = new Set(['L', 'M', 'E', 'J', 'R']);

// Special Note: the sublot notes are right-padded to 28 characters, free text is not (docs/feed.md, test/fixtures/).
const NOTES_PADDED = [
  'VEH LOCATED @ FAIRFLD SUBLOT', 'VEH LOC @ STH GASTON SUBLOT', 'VEH LOC @ WOODMAR SUBLOT', 'POTENTIAL HAIL',
  'VEH LOC @ SPRINGFIELD SUBLOT', 'VEH LOCATED AT OTAY SUB LOT', 'TSS TEST SUB LOT', 'VEH LOC @ NORTH LOT',
].map((s) => s.padEnd(28, ' '));
const NOTES_FREE = [
  'TITLE PENDING', 'True mileage unknown.', 'Rear Side damage.', 'Minor dents & Scratches.',
  'P/U BY APPT ONLY 813-6715550', 'Front end damage, airbags deployed.', 'Engine noise, no warranty.',
  'Vehicle located at affiliate yard. Biohazard for blood Rear & side damage. True mileage unknown.',
  'Keys in ignition, battery dead.',
];
// French notes of Quebec yards; the accented forms put a little non-ASCII (valid UTF-8) into the file.
const NOTES_QC = [
  'VÉH. SITUÉ HORS-SITE LÉVIS', 'VÉH. SITUÉ HORS-SITE BEGIN', 'VEH. SITUE HORS-SITE PERR.',
  'VÉHICULE ENTREPOSÉ À L’EXTÉRIEUR', 'PIÈCES MANQUANTES',
].map((s) => s.padEnd(28, ' '));
const OFFSITE_QC = [
  ['SAINT-JÉRÔME', 'J7Y 4B5'], ['LÉVIS', 'G6V 6N7'], ['TROIS-RIVIÈRES', 'G9A 5H3'], ['SAINT-HYACINTHE', 'J2S 7B6'],
] as const;
const STREETS = ['INDUSTRIAL PKWY', 'MAIN ST', 'COMMERCE DR', 'AIRPORT RD', 'HWY 41', 'RAILROAD AVE', 'PARK AVE'];
const ANNOUNCEMENTS = [
  'STRUCTURAL DAMAGE', 'FRAME DAMAGE, AIRBAG DEPLOYED', 'TMU', 'ODOMETER NOT ACTUAL', 'FLOOD DAMAGE',
  'PRIOR RENTAL', 'ENGINE NOISE, CHECK ENGINE LIGHT ON',
];
const NUM: readonly string[] = Array.from({ length: 10000 }, (_, i) => String(i)); // small ints, preformatted
const DEPRECIATION: readonly number[] = Array.from({ length: 100 }, (_, age) => Math.max(0.05, Math.pow(0.86, age)));
const THUMB_DIR = 'cs.copart.com/v1/AUTH_svc.pdoc00001/';
const THUMB_LPP = THUMB_DIR + 'LPP';
const THUMB_PIX = THUMB_DIR + 'PIX';
const SMALL_BIDS = [10, 15, 20, 30, 35, 50, 80];
const GRID_LETTERS = 'ABCDEFGHJKLMNPQRSTUVW';
const GRID_SPECIAL = ['  HVY', '  MC2', '  MCI', '  VIX', '   E7', 'GARG1', 'SHOP', 'HVY', 'AF'];
const VIN_CHARS = 'ABCDEFGHJKLMNPRSTUVWXYZ0123456789';
const YEAR_CODES = 'ABCDEFGHJKLMNPRSTVWXY123456789';
const VIN_WEIGHTS = [8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2];

/**
 * True if any text pool holds a `"`. Generated values are pool text, digits, hex and dates, so when
 * this is false no value can contain a quote and the writer skips the per-value RFC 4180 check.
 * (The bare-quote values below are deliberately not part of this scan.)
 */
const POOLS_HAVE_QUOTES = ((): boolean => {
  const text: string[] = [
    ...YARDS.flatMap((y) => [y.name, y.city, y.state, y.zip]),
    ...Object.values(SPECIALTY).map((y) => y.name),
    ...[CARS, ...Object.values(OTHERS)].flatMap((p) =>
      p.list.flatMap((m) => [m.make, m.group, m.detail, ...m.trims, ...m.drives, ...m.fuels, ...m.wmi, ...m.bodies])),
    ...COLORS, ...DAMAGES, ...DAMAGES2, ...TITLE_TYPES, ...KEYS, ...COND, ...RUNS, ...STATUS, ...TRANSMISSION,
    ...SELLERS, ...SELLERS_CA, ...NOTES_PADDED, ...NOTES_FREE, ...NOTES_QC, ...OFFSITE_QC.flat(), ...STREETS,
    ...ANNOUNCEMENTS, ...GRID_SPECIAL, ...US_STATES, ...DAY_NAMES, ...Object.values(TZ_NAMES).flat(),
    'CORP TRAINING SELLER AVIS', 'RED LIGHT', 'GREEN LIGHT', 'ALL Models', 'ALL MODELS',
  ];
  return text.some((t) => t.includes('"'));
})();

// Bare-quote values of the real feed (only with bareQuotes: true). The quote is always inside the
// value and followed by a space, like `125" SLEEPER CAB`: a quote at the end would read as `""` and
// make the line ambiguous even for a tolerant parser.
// Each entry: [vehicle type forced on the lot, true = Body Style / false = Model Detail, value].
const BARE_VALUES: readonly (readonly [string, boolean, string])[] = [
  ['U', true, '125" SLEEPER CAB'], ['U', true, '72" SLEEPER'], ['U', false, '125" SLEEP'], ['U', false, '72" RAISED'],
  ['L', true, '48" DECK'], ['L', true, '53\'X102" VAN'],
];

// ---------------------------------------------------------------------------------------------
// Value generators
// ---------------------------------------------------------------------------------------------

const hexBytes = Buffer.alloc(16);
/** 32 lower-case hex digits (a picture hash); one native toString beats 16 table lookups. */
function hex32(rng: Rng): string {
  hexBytes.writeUInt32BE(rng.u32(), 0);
  hexBytes.writeUInt32BE(rng.u32(), 4);
  hexBytes.writeUInt32BE(rng.u32(), 8);
  hexBytes.writeUInt32BE(rng.u32(), 12);
  return hexBytes.toString('hex');
}

const VIN_VALUE = new Int8Array(128); // ISO 3779 transliteration, indexed by char code
for (const ch of '0123456789') VIN_VALUE[ch.charCodeAt(0)] = Number(ch);
'ABCDEFGH'.split('').forEach((ch, i) => (VIN_VALUE[ch.charCodeAt(0)] = i + 1));
'JKLMN'.split('').forEach((ch, i) => (VIN_VALUE[ch.charCodeAt(0)] = i + 1));
VIN_VALUE['P'.charCodeAt(0)] = 7;
VIN_VALUE['R'.charCodeAt(0)] = 9;
'STUVWXYZ'.split('').forEach((ch, i) => (VIN_VALUE[ch.charCodeAt(0)] = i + 2));
const vinCodes: number[] = new Array<number>(17).fill(48);

/** 17-char VIN: WMI, random VDS, valid check digit, model-year code, plant, 6-digit serial. */
function vin17(rng: Rng, wmi: string, year: number): string {
  let sum = 0;
  for (let i = 0; i < 17; i++) {
    let c: number;
    if (i < 8 && i < wmi.length) c = wmi.charCodeAt(i); // a few pool WMIs (1FADP) fix characters 4-5 too
    else if (i === 8) c = 48; // check digit placeholder (weight 0)
    else if (i === 9) c = YEAR_CODES.charCodeAt((((year - 1980) % 30) + 30) % 30);
    else if (i >= 11) c = 48 + rng.int(10);
    else c = VIN_CHARS.charCodeAt(rng.int(VIN_CHARS.length));
    vinCodes[i] = c;
    sum += (VIN_VALUE[c] ?? 0) * VIN_WEIGHTS[i]!;
  }
  const check = sum % 11;
  vinCodes[8] = check === 10 ? 88 : 48 + check;
  return String.fromCharCode(...vinCodes);
}

/** Legacy / non-standard identifier (trailers, boats, vintage): 3–14 chars, may contain I/O/Q. */
function shortVin(rng: Rng, wmi: string, lot: string): string {
  const r = rng.next();
  if (r < 0.1) return lot; // real quirk: the VIN field repeats the lot number
  if (r < 0.45) {
    // hull-id style: BL3A31SB1687
    return (wmi + 'A' + P2[rng.int(100)]! + VIN_CHARS.charAt(rng.int(23)) + VIN_CHARS.charAt(rng.int(23)) +
      P3[rng.int(1000)]! + P2[rng.int(100)]!).slice(0, 12);
  }
  const len = rng.range(3, 14);
  const chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
  let s = '';
  for (let i = 0; i < len; i++) s += chars.charAt(rng.next() < 0.6 ? 26 + rng.int(10) : rng.int(36));
  return s;
}

/** Random version-4 UUID, lower case (PIX picture names). */
function uuid(rng: Rng): string {
  const h = hex32(rng);
  return h.slice(0, 8) + '-' + h.slice(8, 12) + '-4' + h.slice(13, 16) + '-' + '89ab'.charAt(rng.int(4)) +
    h.slice(17, 20) + '-' + h.slice(20);
}

function gridRow(rng: Rng): string {
  const r = rng.next();
  const letter = GRID_LETTERS.charAt(rng.int(GRID_LETTERS.length));
  const num = P3[rng.range(1, 33) * 10]!;
  if (r < 0.52) return ' ' + letter + num; // right-aligned to 5 with a leading space: " D090"
  if (r < 0.82) return (rng.chance(0.1) ? String(rng.range(1, 9)) : GRID_LETTERS.charAt(rng.int(GRID_LETTERS.length))) + letter + num;
  if (r < 0.93) return letter + letter + P3[rng.range(1, 9)]!;
  if (r < 0.999) return GRID_SPECIAL[rng.int(GRID_SPECIAL.length)]!;
  return '';
}

// ---------------------------------------------------------------------------------------------
// Row generation
// ---------------------------------------------------------------------------------------------

interface Ctx {
  cfg: Resolved;
  rng: Rng;
  urng: Rng;
  v: string[];
}

/**
 * The latest generation g in (birth, cfg.generation] in which the lot was updated, or 0.
 * Each lot is updated in each generation independently with probability updateFraction: a Bernoulli
 * process, walked forward by geometric gaps drawn from the lot's own hash chain, so a lot's update
 * generations never depend on which generation is being produced (gen n and gen n+1 agree).
 * Cost per lot ≈ min(generation * updateFraction, 1 / updateFraction) steps.
 */
function lastUpdate(cfg: Resolved, lotHash: number, birth: number): number {
  const p = cfg.updateFraction;
  if (p <= 0) return 0;
  if (p >= 1) return cfg.generation;
  if (p > 0.5) {
    // frequent updates: scanning back from the newest generation is cheaper (≈ 1/p steps)
    const threshold = p * 4294967296;
    for (let g = cfg.generation; g > birth; g--) {
      if (mix32((lotHash + Math.imul(g, 0x85ebca77)) >>> 0) < threshold) return g;
    }
    return 0;
  }
  let h = mix32(lotHash ^ 0x68e31da4);
  let g = birth;
  let last = 0;
  for (;;) {
    h = mix32((h + 0x9e3779b9) >>> 0);
    const u = (h + 1) / 4294967296; // (0, 1]
    g += 1 + Math.floor(Math.log(u) / cfg.logKeep);
    if (g > cfg.generation) return last;
    last = g;
  }
}

/**
 * Fills ctx.v (one slot per V4 column) for base lot `index` as it appears in generation cfg.generation.
 * Returns the V4 column index of a bare-quote value, or -1.
 */
function fillLot(ctx: Ctx, index: number, id: number): number {
  const { cfg, rng, urng, v } = ctx;
  const lotHash = mix32((cfg.seedHash ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0);
  rng.s = lotHash | 0;

  // Lots of the base population are "born" in generation 0; later ones join the feed `turnover` per generation.
  const birth = index < cfg.rows ? 0 : Math.floor((index - cfg.rows) / cfg.turnover) + 1;
  const refSec = cfg.baseSec + birth * GENERATION_SECONDS;
  const refDay = Math.floor(refSec / 86400);

  const lot = String(LOT_MIN + ((index * LOT_MULT + cfg.lotOffset) % LOT_SPAN));

  // --- vehicle ---------------------------------------------------------------------------------
  // Bare-quote lots (~0.1 %, bareQuotes only) are picked by hash, not from the row stream, so the option
  // changes only those rows; they become sleeper-cab trucks or trailers, where such values occur.
  const bare = cfg.bareQuotes && mix32(lotHash ^ 0x2545f491) < 4294967 ? BARE_VALUES[(lotHash >>> 1) % BARE_VALUES.length]! : null;
  const typeDraw = VEHICLE_TYPES[rng.int(1000)]!;
  const vtype = bare === null ? typeDraw : bare[0];
  const pool = vtype === 'V' ? CARS : (OTHERS[vtype] ?? CARS);
  const m = pool.list[pool.pick[rng.int(pool.pick.length)]!]!;
  const refYear = Math.floor(civil(refDay) / 10000);
  let year = rng.range(m.y0, Math.max(m.y0, Math.min(m.y1, refYear + 1)));
  if (vtype === 'V' && rng.chance(0.003)) year = rng.range(1955, 1980); // vintage: legacy VINs
  const age = Math.max(0, refYear - year);
  const trim = TRIM_EMPTY_TYPES.has(vtype) || rng.chance(0.22) ? '' : m.trims[rng.int(m.trims.length)]!;
  let detail = (trim === '' || m.detail === m.group && rng.chance(0.15) ? m.detail : `${m.detail} ${trim}`);
  if (!rng.chance(0.015)) detail = detail.slice(0, 10).trimEnd(); // a few untruncated ones exist: SILVERADO C1500
  const groupR = rng.next();
  const group = vtype === 'V' && groupR < 0.04 ? 'ALL Models' : vtype === 'V' && groupR < 0.06 ? 'ALL MODELS' : m.group;
  const body = rng.chance(vtype === 'U' ? 0.7 : 0.18) ? m.bodies[rng.int(m.bodies.length)]! : '';
  const [engineText, cylText] = m.engines[rng.int(m.engines.length)]!;
  const blanked = vtype === 'V' && rng.chance(0.03); // a few cars come without engine data (Engine ~94 % filled)
  const engine = blanked ? '' : engineText;
  const cylinders = blanked ? '' : cylText;
  const drive = blanked && rng.chance(0.6) ? '' : m.drives[rng.int(m.drives.length)]!;
  const fuel = blanked && rng.chance(0.8) ? '' : m.fuels[rng.int(m.fuels.length)]!;
  const trans = vtype === 'C' ? (rng.chance(0.6) ? 'MANUAL' : '') : m.drives[0] === '' ? '' : TRANSMISSION[rng.int(1000)]!;

  // --- yard and location -----------------------------------------------------------------------
  let yardNo: string;
  let yardName: string;
  let tz: TzFamily;
  let loc: Yard;
  let wholesale = false;
  const special = rng.next();
  const sp =
    vtype === 'V' ? (special < 0.003 ? SPECIALTY.wholesale : null)
    : special < 0.4 ? (vtype === 'K' ? SPECIALTY.mediumDuty : vtype === 'U' ? SPECIALTY.heavyTruck
      : vtype === 'L' || vtype === 'R' ? SPECIALTY.heavyTrailerRv : SPECIALTY.powersport)
    : null;
  if (sp !== null) {
    loc = US_YARDS[rng.int(US_YARDS.length)]!;
    yardNo = sp.no;
    yardName = sp.name;
    tz = sp.tz;
    wholesale = sp === SPECIALTY.wholesale;
  } else {
    loc = YARDS[YARD_PICK[rng.int(1000)]!]!;
    yardNo = loc.no;
    yardName = loc.name;
    tz = loc.tz;
  }

  // --- VIN -------------------------------------------------------------------------------------
  const wmi = m.wmi[rng.int(m.wmi.length)]!;
  const vr = rng.next();
  const shortShare = vtype === 'M' ? 0.7 : vtype === 'E' ? 0.6 : vtype === 'L' ? 0.3 : vtype === 'J' ? 0.3 : 0;
  let vin: string;
  if (vr < 0.0001) vin = '';
  else if (year <= 1980 || vr < shortShare) vin = shortVin(rng, wmi, lot);
  else {
    vin = vin17(rng, wmi, year);
    if (rng.chance(0.0002)) {
      // a mistyped VIN with I/O/Q: invalid but real
      const p = rng.range(3, 16);
      vin = vin.slice(0, p) + 'IOQ'.charAt(rng.int(3)) + vin.slice(p + 1);
    }
  }

  // --- condition and money ---------------------------------------------------------------------
  const titleState = loc.canada || rng.chance(0.75) ? loc.state : US_STATES[rng.int(US_STATES.length)]!;
  let odoCents = 0;
  let brand: string;
  const big = vtype === 'U' ? 60000 : vtype === 'C' || vtype === 'A' ? 3000 : 12000;
  if (vtype !== 'L' && vtype !== 'M' && vtype !== 'J' && vtype !== 'E' && rng.chance(0.57)) {
    odoCents = Math.max(1, Math.round((age + rng.next()) * big * (0.4 + rng.next() * 1.2))) * 100;
    if (rng.chance(0.004)) odoCents = 9999900; // 99999.0 placeholder readings exist
    brand = rng.chance(0.82) ? 'A' : rng.chance(0.7) ? 'N' : 'E';
  } else {
    brand = rng.chance(0.66) ? 'N' : 'E';
  }
  if (rng.chance(0.012)) brand = '';
  const depreciation = DEPRECIATION[Math.min(age, 99)]!;
  let ervCents = 0;
  if (!rng.chance(0.15)) {
    const dollars = m.price * depreciation * (0.6 + rng.next() * 0.7);
    ervCents = rng.chance(0.6) ? Math.round(dollars) * 100 : Math.round(dollars * 100);
    if (ervCents < 100) ervCents = 100;
  }
  const rr = rng.next();
  const repairCents = rr < 0.35 ? 0 : rr < 0.55 ? ervCents
    : rng.chance(0.4) ? Math.round((ervCents * (0.2 + rng.next())) / 100) * 100 : Math.round(ervCents * (0.2 + rng.next()));
  const hasBids = !rng.chance(0.1);
  const bidBase = ervCents > 0 ? ervCents / 100 : 800;
  let bid = hasBids ? Math.max(1, Math.round((bidBase * (0.01 + rng.next() * 0.25)) / 25)) * 25 : 0;
  if (hasBids && rng.chance(0.05)) bid = SMALL_BIDS[rng.int(SMALL_BIDS.length)]!;
  const bidStep = rng.range(1, 8) * 25;
  const offer = rng.chance(0.03) ? 'Y' : 'N';
  const binCents = rng.chance(0.07) && ervCents > 0 ? Math.max(1, Math.round(ervCents / 100 / 50 * 0.6)) * 5000 : 0;

  // --- scheduling --------------------------------------------------------------------------------
  let scheduled = rng.chance(0.47);
  let saleDay = refDay + rng.range(-1, 21);
  let saleTime = SALE_TIMES[rng.int(1000)]!;
  let item = rng.chance(scheduled ? 0.05 : 0.25) ? 0 : rng.range(1, 3500);
  const tzNoise = rng.chance(0.01); // "consistent-ish": a few zones disagree with DST on the sale date
  let status = STATUS[rng.int(1000)]!;

  // --- times -----------------------------------------------------------------------------------
  let createdSec: number;
  let updatedSec: number;
  if (birth === 0) {
    // a day before the file, between 01:00 and 13:59 (no rarely-taken branch: it would deoptimize this function)
    createdSec = (refDay - rng.range(1, 150)) * 86400 + rng.range(1, 13) * 3600 + rng.int(3600);
    // Last Updated Time: ~45 % shortly before the creation stamp (real quirk), else between it and base.
    updatedSec = rng.chance(0.45) ? createdSec - rng.range(60, 3 * 86400) : createdSec + rng.int(Math.max(1, refSec - createdSec));
    if (rng.chance(0.4)) updatedSec -= updatedSec % 3600 - rng.int(60); // many land on HH:00:SS
    if (updatedSec >= refSec) updatedSec = refSec - 1 - rng.int(3600);
  } else {
    // joined the feed in generation `birth`: stamped inside that 15-minute window
    createdSec = refSec - rng.range(0, 2 * 86400);
    updatedSec = refSec - 1 - rng.int(GENERATION_SECONDS - 1);
  }
  const micro = rng.int(1000);

  // --- sparse columns --------------------------------------------------------------------------
  let seller = '';
  if (wholesale) seller = rng.chance(0.8) ? 'CORP TRAINING SELLER AVIS' : 'Avis Budget Group';
  else if (rng.chance(0.34)) seller = loc.canada ? SELLERS_CA[rng.int(SELLERS_CA.length)]! : SELLERS[rng.int(1000)]!;
  let note = '';
  const nr = rng.next();
  if (loc.state === 'QC' && nr < 0.35) note = NOTES_QC[rng.int(NOTES_QC.length)]!;
  else if (nr < 0.05) note = NOTES_PADDED[rng.int(NOTES_PADDED.length)]!;
  else if (nr < 0.09) note = NOTES_FREE[rng.int(NOTES_FREE.length)]!;
  else if (nr < 0.092) note = lot.padEnd(28, ' ');
  let offAddr = '';
  let offState = '';
  let offCity = '';
  let offZip = '';
  if (rng.chance(0.014)) {
    offAddr = `${rng.range(100, 19999)} ${STREETS[rng.int(STREETS.length)]!}`;
    offState = loc.state;
    if (loc.state === 'QC') {
      const [c, z] = OFFSITE_QC[rng.int(OFFSITE_QC.length)]!;
      offCity = c;
      offZip = z;
    } else {
      offCity = US_YARDS[rng.int(US_YARDS.length)]!.city;
      offZip = String(rng.range(10000, 99999));
    }
  }
  const light = wholesale ? (rng.chance(0.8) ? 'RED LIGHT' : 'GREEN LIGHT') : '';
  const grade = wholesale ? (rng.chance(0.7) ? '0.0' : `${rng.range(1, 4)}.${rng.chance(0.5) ? '0' : '5'}`) : '';
  const announce = (wholesale && rng.chance(0.5)) || rng.chance(0.0008) ? ANNOUNCEMENTS[rng.int(ANNOUNCEMENTS.length)]! : '';
  const rentals = rng.chance(0.002) ? 'Y' : 'N';
  const keys = KEYS[rng.int(1000)]!;

  const tr = rng.next();
  let thumb: string;
  if (tr < 0.0002) thumb = '';
  else if (tr < 0.5) thumb = THUMB_LPP + NUM[rng.range(100, 499)]! + '/' + hex32(rng) + '_thb.jpg';
  else if (tr < 0.91) thumb = THUMB_PIX + NUM[rng.range(100, 399)]! + '/' + uuid(rng) + '.JPG';
  else {
    const ymd = civil(Math.floor(createdSec / 86400));
    thumb = `${THUMB_DIR}lpp/${P2[Math.floor(ymd / 100) % 100]!}${P2[Math.floor(ymd / 10000) % 100]!}/${hex32(rng)}_thb.jpg`;
  }

  // the bare-quote value replaces Body Style or Model Detail (written verbatim, see generateFeed)
  const bareCol = bare === null ? -1 : bare[1] ? C.body : C.modelDetail;
  const bareValue = bare === null ? '' : bare[2];

  // --- updates of later generations ------------------------------------------------------------
  // The latest generation g ≤ n in which this lot was updated determines the mutable fields; each
  // field is a function of g that only moves forward, so replaying generations is never needed.
  const gLast = cfg.generation > birth ? lastUpdate(cfg, lotHash, birth) : 0;
  if (gLast > 0) {
    urng.s = mix32(lotHash ^ mix32(gLast)) | 0;
    const upSec = cfg.baseSec + gLast * GENERATION_SECONDS;
    updatedSec = upSec - 1 - urng.int(GENERATION_SECONDS - 1);
    bid = bid + bidStep * (1 + Math.floor(Math.sqrt(gLast)));
    status = STATUS[urng.int(1000)]!;
    if (!scheduled && (lotHash & 0x100) !== 0) {
      scheduled = true;
      saleDay = Math.floor(upSec / 86400) + urng.range(1, 14);
      saleTime = SALE_TIMES[urng.int(1000)]!;
      if (item === 0) item = urng.range(1, 3500);
    }
  }

  let wd = weekday(saleDay);
  if (wd === 6) saleDay += 2;
  else if (wd === 0) saleDay += 1;
  wd = weekday(saleDay);
  const zoneDay = scheduled ? saleDay : Math.floor(updatedSec / 86400);
  const names = TZ_NAMES[tz];
  const dst = isDst(zoneDay) !== tzNoise;

  // --- fill ------------------------------------------------------------------------------------
  v[C.id] = String(id);
  v[C.yardNo] = yardNo;
  v[C.yardName] = yardName;
  v[C.saleDate] = scheduled ? String(civil(saleDay)) : '0';
  v[C.dow] = scheduled ? DAY_NAMES[wd]! : '';
  v[C.saleTime] = scheduled ? saleTime : '';
  v[C.tz] = dst ? names[1] : names[0];
  v[C.item] = NUM[item]!;
  v[C.lot] = lot;
  v[C.vtype] = vtype;
  v[C.year] = NUM[year]!;
  v[C.make] = m.make;
  v[C.modelGroup] = group;
  v[C.modelDetail] = bareCol === C.modelDetail ? bareValue : detail;
  v[C.body] = bareCol === C.body ? bareValue : body;
  v[C.color] = COLORS[rng.int(1000)]!;
  v[C.damage] = DAMAGES[rng.int(1000)]!;
  v[C.damage2] = rng.chance(0.4) ? DAMAGES2[rng.int(1000)]! : '';
  v[C.titleState] = titleState;
  v[C.titleType] = TITLE_TYPES[rng.int(1000)]!;
  v[C.keys] = keys;
  v[C.cond] = COND[rng.int(1000)]!;
  v[C.vin] = vin;
  v[C.odo] = money(odoCents);
  v[C.odoBrand] = brand;
  v[C.erv] = money(ervCents);
  v[C.repair] = money(Math.max(0, repairCents));
  v[C.engine] = engine;
  v[C.drive] = drive;
  v[C.trans] = trans;
  v[C.fuel] = fuel;
  v[C.cyl] = cylinders;
  v[C.runs] = RUNS[rng.int(1000)]!;
  v[C.status] = status;
  v[C.bid] = `${bid}.0`;
  v[C.note] = note;
  v[C.city] = loc.city;
  v[C.state] = loc.state;
  v[C.zip] = loc.zip;
  v[C.country] = loc.canada ? 'CAN' : 'USA';
  v[C.currency] = loc.canada ? 'CAD' : 'USD';
  v[C.thumb] = thumb;
  v[C.created] = db2(createdSec, micro);
  v[C.grid] = gridRow(rng);
  v[C.offer] = offer;
  v[C.bin] = money(binCents);
  v[C.imageUrl] = `http://inventoryv2.copart.io/v1/lotImages/${lot}?country=us&brand=cprt&yardNumber=${yardNo}`;
  v[C.trim] = trim;
  v[C.updated] = isoUtc(updatedSec);
  v[C.rentals] = rentals;
  v[C.wholesale] = wholesale ? 'Y' : 'N';
  v[C.seller] = seller;
  v[C.offAddr] = offAddr;
  v[C.offState] = offState;
  v[C.offCity] = offCity;
  v[C.offZip] = offZip;
  v[C.light] = light;
  v[C.grade] = grade;
  v[C.announce] = announce;
  return bareCol;
}

/** RFC 4180 quoting of one value (generated values normally contain no quote). */
function quoted(value: string): string {
  return value.includes('"') ? `"${value.replace(/"/g, '""')}"` : `"${value}"`;
}

/** Maps each header name to its value slot; `Copart Select` is the pre-rename `Wholesale`; unknown names stay empty. */
function slotsFor(header: readonly string[]): number[] {
  return header.map((name) => {
    if (name === 'Copart Select') return C.wholesale;
    return HEADER_V4.indexOf(name);
  });
}

/**
 * Yields the file as Buffers of roughly 1 MiB (header line first); every chunk ends on a row boundary.
 * Memory stays flat: the whole file is never built in memory. 154,000 rows ≈ 97.9 MB (about 636 bytes
 * per row; the real feed: ~96 MB, ~623 bytes per row). Invalid options throw a RangeError right away.
 */
export function generateFeed(options: FeedOptions = {}): Generator<Buffer> {
  return rowsOf(resolveOptions(options)); // options are validated now, not at the first next()
}

function* rowsOf(cfg: Resolved): Generator<Buffer> {
  const slots = slotsFor(cfg.header);
  const ncols = slots.length;
  const ctx: Ctx = { cfg, rng: new Rng(), urng: new Rng(), v: new Array<string>(NCOL).fill('') };
  const v = ctx.v;
  // Every text value is pool text, digits, hex or a date: unless a pool holds a quote, no value can
  // need RFC 4180 doubling and the per-value check (15-25 % of the run time) is skipped.
  const escape = POOLS_HAVE_QUOTES;
  // Each row is one string written straight into a preallocated ~1 MiB chunk. Array#join builds the
  // row flat in one pass (measured faster than += concatenation, joining rows per chunk, or encoding
  // bytes by hand in JS). For V4/V3 headers the slot array itself is the row, in order.
  const identity = ncols === NCOL && slots.every((s, k) => s === k);
  const out = identity ? v : new Array<string>(ncols).fill('');
  const headerLine = cfg.header.map(quoted).join(',') + '\n';
  let buf = Buffer.allocUnsafe(Math.max(CHUNK_BYTES + CHUNK_SLACK, headerLine.length * 3));
  let off = buf.write(headerLine, 0, 'utf8');
  for (let r = 0; r < cfg.rows; r++) {
    const bareCol = fillLot(ctx, cfg.generation * cfg.turnover + r, r + 1);
    if (!identity || escape) {
      for (let k = 0; k < ncols; k++) {
        const s = slots[k]!;
        let value = s < 0 ? '' : v[s]!;
        // RFC 4180 doubling, except for the deliberate bare-quote value (written verbatim like the real feed)
        if (escape && s !== bareCol && value.includes('"')) value = value.replace(/"/g, '""');
        out[k] = value;
      }
    }
    const line = '"' + out.join('","') + '"\n';
    // UTF-8 needs at most 3 bytes per UTF-16 unit; flush first if the row might not fit
    if (off + line.length * 3 > buf.length) {
      if (off > 0) yield buf.subarray(0, off);
      buf = Buffer.allocUnsafe(Math.max(CHUNK_BYTES + CHUNK_SLACK, line.length * 3));
      off = 0;
    }
    off += buf.write(line, off, 'utf8');
    if (off >= CHUNK_BYTES) {
      yield buf.subarray(0, off);
      buf = Buffer.allocUnsafe(CHUNK_BYTES + CHUNK_SLACK);
      off = 0;
    }
  }
  if (off > 0) yield buf.subarray(0, off);
}

/**
 * Writes generateFeed(options) to a path (creating parent dirs), returns { bytes, rows }.
 * Uses a write stream with backpressure (stream.pipeline waits for 'drain').
 */
export async function writeFeedFile(path: string, options: FeedOptions = {}): Promise<{ bytes: number; rows: number }> {
  const rows = resolveOptions(options).rows; // validate before touching the file system
  await mkdir(dirname(path), { recursive: true });
  let bytes = 0;
  function* counted(): Generator<Buffer> {
    for (const chunk of generateFeed(options)) {
      bytes += chunk.length;
      yield chunk;
    }
  }
  await pipeline(counted(), createWriteStream(path));
  return { bytes, rows };
}
