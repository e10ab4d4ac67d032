import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { describe, it, expect } from 'vitest';
import {
  HEADER_V1,
  HEADER_V2,
  HEADER_V3,
  HEADER_V4,
  generateFeed,
  writeFeedFile,
  type FeedOptions,
} from '../../src/sample/feedGenerator.js';

const ROWS = 2_000;
const BASE_TIME = Date.UTC(2025, 9, 17, 12, 0, 0); // the documented default baseTime

function feed(options: FeedOptions): Buffer {
  return Buffer.concat([...generateFeed(options)]);
}
function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}
function col(name: string): number {
  const i = HEADER_V4.indexOf(name);
  if (i < 0) throw new Error(`no column ${name}`);
  return i;
}
const LOT = col('Lot number');
const UPDATED = col('Last Updated Time');

/** data records keyed by Lot number */
function byLot(records: string[][]): Map<string, string[]> {
  return new Map(records.slice(1).map((r) => [r[LOT]!, r]));
}

// Generated once and shared: the tests stay well under the 2 s budget.
const base = feed({ rows: ROWS });
const records = parse(base) as string[][]; // strict RFC 4180 parser: throws on any malformed line
const rows = records.slice(1);

describe('generateFeed: determinism', () => {
  it('produces identical bytes for identical options', () => {
    const again = feed({ rows: ROWS, seed: 1, generation: 0, updateFraction: 0.01, header: HEADER_V4, bareQuotes: false });
    expect(sha256(again)).toBe(sha256(base));
  });

  it('depends on the seed', () => {
    const small = feed({ rows: 200 });
    expect(sha256(feed({ rows: 200, seed: 2 }))).not.toBe(sha256(small));
  });

  it('a shorter file of the same generation is a prefix of the longer one (rows are per lot, not per file)', () => {
    const shorter = feed({ rows: 500 });
    expect(base.subarray(0, shorter.length).equals(shorter)).toBe(true);
  });
});

describe('generateFeed: headers', () => {
  it('exports the four header variants', () => {
    expect(HEADER_V4).toHaveLength(59);
    expect(HEADER_V3).toHaveLength(59);
    expect(HEADER_V2).toHaveLength(56);
    expect(HEADER_V1).toHaveLength(49);
    expect(HEADER_V1.at(-1)).toBe('Last Updated Time');
    expect(HEADER_V4[34]).toBe('High Bid =non-vix,Sealed=Vix');
    expect(HEADER_V4[50]).toBe('Wholesale');
    expect(HEADER_V3[50]).toBe('Copart Select');
    expect(HEADER_V3.filter((name, i) => name !== HEADER_V4[i])).toEqual(['Copart Select']);
    expect(HEADER_V2).toEqual(HEADER_V3.slice(0, 56));
    expect(HEADER_V1).toEqual(HEADER_V2.slice(0, 49));
    expect(HEADER_V2.slice(49)).toEqual([
      'Rentals', 'Copart Select', 'Seller Name', 'Offsite Address1', 'Offsite State', 'Offsite City', 'Offsite Zip',
    ]);
    expect(HEADER_V4.slice(56)).toEqual(['Sale Light', 'AutoGrade', 'Announcements']);
  });

  it('writes the header line first, every name quoted', () => {
    const firstLine = base.subarray(0, base.indexOf(10)).toString('utf8');
    expect(firstLine).toBe(HEADER_V4.map((n) => `"${n}"`).join(','));
    expect(records[0]).toEqual(HEADER_V4);
  });

  it('fills the columns of other header variants by name, with the same values', () => {
    const v3 = parse(feed({ rows: 300, header: HEADER_V3 })) as string[][];
    const v1 = parse(feed({ rows: 300, header: HEADER_V1 })) as string[][];
    expect(v3[0]).toEqual(HEADER_V3);
    expect(v1[0]).toEqual(HEADER_V1);
    expect(v3.slice(1)).toEqual(records.slice(1, 301)); // Copart Select carries the Wholesale value
    expect(v1.slice(1)).toEqual(records.slice(1, 301).map((r) => r.slice(0, 49)));
  });
});

describe('generateFeed: file format', () => {
  it('parses strictly into 59 fields on every record', () => {
    expect(records).toHaveLength(ROWS + 1);
    expect(records.filter((r) => r.length !== 59)).toEqual([]);
  });

  it('quotes every field, uses LF only and ends with a newline', () => {
    const text = base.toString('utf8');
    expect(text.includes('\r')).toBe(false);
    expect(text.endsWith('"\n')).toBe(true);
    const lines = text.slice(0, -1).split('\n');
    expect(lines).toHaveLength(ROWS + 1);
    const allQuoted = /^"[^"]*"(,"[^"]*")*$/; // no generated value contains a quote
    expect(lines.filter((line) => !allQuoted.test(line))).toEqual([]);
  });

  it('numbers Id 1..N and gives every row a unique 8-digit Lot number', () => {
    expect(rows.map((r) => r[col('Id')])).toEqual(rows.map((_, i) => String(i + 1)));
    const lots = rows.map((r) => r[LOT]!);
    expect(lots.filter((lot) => !/^\d{8}$/.test(lot))).toEqual([]);
    expect(new Set(lots).size).toBe(ROWS);
  });

  it('uses the real value shapes', () => {
    const baseIso = new Date(BASE_TIME).toISOString().replace('.000', '');
    // Per-column checks collect offending values (one expect per column keeps the test fast).
    const bad: string[] = [];
    const check = (r: string[], name: string, ok: (v: string) => boolean): void => {
      const v = r[col(name)]!;
      if (!ok(v)) bad.push(`${r[LOT]} ${name}=${JSON.stringify(v)}`);
    };
    const matches = (re: RegExp) => (v: string) => re.test(v);
    let vin17 = 0;
    for (const r of rows) {
      if (r[col('Sale Date M/D/CY')] === '0') {
        check(r, 'Day of Week', (v) => v === '');
        check(r, 'Sale time (HHMM)', (v) => v === '');
      } else {
        check(r, 'Sale Date M/D/CY', matches(/^20\d{6}$/));
        check(r, 'Day of Week', matches(/^(MON|TUES|WEDNES|THURS|FRI)DAY$/));
        check(r, 'Sale time (HHMM)', matches(/^[1-9]\d{2,3}$/)); // 1200, 700: not zero-padded
      }
      check(r, 'Time Zone', matches(/^(E|C|M|P|AK)[SD]T$|^HST$/));
      check(r, 'Has Keys-Yes or No', matches(/^(YES|NO|EXM)$/));
      check(r, 'Sale Status', matches(/^(Pure Sale|On Minimum Bid|On Approval)$/));
      for (const money of ['Odometer', 'Est. Retail Value', 'Repair cost', 'Buy-It-Now Price', 'High Bid =non-vix,Sealed=Vix']) {
        check(r, money, matches(/^\d+\.\d{1,2}$/));
      }
      check(r, 'Engine', matches(/^(\d+\.\dL( {2}\d| \d\d)|\d{1,2})?$/)); // 1.8L  4, 6.8L 10, 2
      check(r, 'Create Date/Time', matches(/^\d{4}-\d\d-\d\d-\d\d\.\d\d\.\d\d\.000\d{3}$/));
      check(r, 'Last Updated Time', (v) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/.test(v) && v < baseIso);
      check(r, 'Image URL', (v) =>
        v === `http://inventoryv2.copart.io/v1/lotImages/${r[LOT]}?country=us&brand=cprt&yardNumber=${r[col('Yard number')]}`);
      check(r, 'Image Thumbnail', matches(/^(cs\.copart\.com\/v1\/AUTH_svc\.pdoc00001\/\S+\.(JPG|jpg))?$/));
      check(r, 'Currency Code', (v) => v === (r[col('Location country')] === 'CAN' ? 'CAD' : 'USD'));
      if (/^[A-HJ-NPR-Z0-9]{17}$/.test(r[col('VIN')]!)) vin17++;
    }
    expect(bad).toEqual([]);
    expect(vin17 / ROWS).toBeGreaterThan(0.97);
    expect(vin17).toBeLessThan(ROWS); // some legacy identifiers are in the mix
    const scheduled = rows.filter((r) => r[col('Sale Date M/D/CY')] !== '0').length / ROWS;
    expect(scheduled).toBeGreaterThan(0.4);
    expect(scheduled).toBeLessThan(0.55);
    expect(rows.some((r) => r[col('Grid/Row')]!.startsWith(' '))).toBe(true);
    expect(rows.some((r) => r[col('Currency Code')] === 'CAD')).toBe(true);
  });
});

describe('generateFeed: successive generations', () => {
  const next = parse(feed({ rows: ROWS, generation: 1 })) as string[][];
  const before = byLot(records);
  const after = byLot(next);

  it('drops the first lot, shifts every Id and appends one new lot', () => {
    expect(next).toHaveLength(ROWS + 1);
    expect(after.has(rows[0]![LOT]!)).toBe(false);
    expect(next[1]![col('Id')]).toBe('1');
    expect(next[1]![LOT]).toBe(rows[1]![LOT]); // the old second row is now Id 1
    const added = [...after.keys()].filter((lot) => !before.has(lot));
    expect(added).toEqual([next[ROWS]![LOT]]);
  });

  it('changes about 1 % of the remaining lots, moving their Last Updated Time forward', () => {
    const lastBase = rows.reduce((m, r) => (r[UPDATED]! > m ? r[UPDATED]! : m), '');
    const windowEnd = new Date(BASE_TIME + 15 * 60_000).toISOString().replace('.000', '');
    let changed = 0;
    for (const [lot, old] of before) {
      const now = after.get(lot);
      if (now === undefined) continue;
      const differs = old.some((v, i) => i !== col('Id') && v !== now[i]);
      if (!differs) continue;
      changed++;
      expect(now[UPDATED]! > lastBase).toBe(true);
      expect(now[UPDATED]! <= windowEnd).toBe(true);
      expect(now[LOT]).toBe(lot);
      expect(now[col('VIN')]).toBe(old[col('VIN')]); // identity fields stay
    }
    const share = changed / (ROWS - 1);
    expect(share).toBeGreaterThan(0.003);
    expect(share).toBeLessThan(0.025);
  });

  it('with a turnover of t, drops the first n·t lots and appends n·t new ones; turnover 1 is the default', () => {
    expect(sha256(feed({ rows: ROWS, generation: 1, turnover: 1 }))).toBe(sha256(feed({ rows: ROWS, generation: 1 })));
    const third = byLot(parse(feed({ rows: ROWS, generation: 3, turnover: 5 })) as string[][]);
    const second = byLot(parse(feed({ rows: ROWS, generation: 2, turnover: 5 })) as string[][]);
    expect([...before.keys()].filter((lot) => !third.has(lot))).toEqual(rows.slice(0, 15).map((r) => r[LOT]));
    expect([...third.keys()].filter((lot) => !before.has(lot))).toHaveLength(15);
    // Successive generations agree: what generation 2 has, generation 3 keeps (updated or not), but its first five lots.
    expect([...second.keys()].filter((lot) => !third.has(lot))).toHaveLength(5);
    for (const [lot, r] of third) {
      const was = second.get(lot);
      if (was !== undefined) expect(r[UPDATED]! >= was[UPDATED]!).toBe(true);
    }
  });
});

describe('generateFeed: bareQuotes and encoding', () => {
  const bare = feed({ rows: ROWS, bareQuotes: true });

  it('adds lines with a bare quote that a strict parser rejects (off by default)', () => {
    expect(() => parse(bare)).toThrow(/Invalid Closing Quote/);
    const a = base.toString('utf8').split('\n');
    const b = bare.toString('utf8').split('\n');
    expect(b).toHaveLength(a.length);
    const differing = b.filter((line, i) => line !== a[i]);
    expect(differing.length).toBeGreaterThan(0);
    expect(differing.length).toBeLessThan(ROWS * 0.005); // ~0.1 %
    for (const line of differing) {
      expect(line).toMatch(/[^,]" /); // an undoubled quote inside a quoted field, like 125" SLEEPER CAB
      expect(() => parse(line)).toThrow();
      const [relaxed] = parse(line, { relax_quotes: true }) as string[][];
      expect(relaxed).toHaveLength(59);
    }
  });

  it('is valid UTF-8 with a little non-ASCII text', () => {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(base);
    expect(/[^\x00-\x7f]/.test(text)).toBe(true);
  });

  it('yields ~1 MiB chunks that end on a row boundary', () => {
    const chunks = [...generateFeed({ rows: ROWS })];
    expect(chunks.length).toBeGreaterThan(1);
    chunks.forEach((c, i) => {
      expect(c.length).toBeLessThanOrEqual(1.1 * 1024 * 1024);
      if (i < chunks.length - 1) expect(c.length).toBeGreaterThanOrEqual(1024 * 1024);
      expect(c[c.length - 1]).toBe(10);
    });
    expect(Buffer.concat(chunks).equals(base)).toBe(true);
  });
});

describe('writeFeedFile', () => {
  it('creates parent directories and writes exactly generateFeed()', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'feedgen-'));
    try {
      const path = join(dir, '2025', '10', '17', '1200.csv');
      const result = await writeFeedFile(path, { rows: ROWS });
      const written = await readFile(path);
      expect(result).toEqual({ bytes: base.length, rows: ROWS });
      expect(sha256(written)).toBe(sha256(base));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('rejects invalid options', async () => {
    expect(() => generateFeed({ rows: -1 })).toThrow(RangeError);
    expect(() => generateFeed({ generation: 1.5 })).toThrow(RangeError);
    expect(() => generateFeed({ turnover: 0 })).toThrow(RangeError);
    expect(() => generateFeed({ baseTime: new Date(Number.NaN) })).toThrow(RangeError);
    await expect(writeFeedFile(join(tmpdir(), 'never.csv'), { updateFraction: 2 })).rejects.toThrow(RangeError);
  });
});
