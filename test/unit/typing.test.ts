/**
 * Pure unit tests of the typing rules (src/feed/typing.ts) against the feed's formats (docs/feed.md).
 */
import { describe, expect, it } from 'vitest';
import {
  auctionAt, isRealDay, parseAmount, parseDb2Timestamp, parseInteger, parseIsoUtc, parseSaleDate, parseSaleTime, tzOffsetMinutes,
} from '../../src/feed/typing.js';

/** The UTC instant of a `YYYY-MM-DD HH:MM:SS±HH:MM` value, as JavaScript reads it. */
function instant(value: string): string {
  return new Date(value.replace(' ', 'T')).toISOString();
}

describe('tzOffsetMinutes', () => {
  it.each([
    ['EDT', -240], ['EST', -300], ['CDT', -300], ['CST', -360], ['MDT', -360], ['MST', -420],
    ['PDT', -420], ['PST', -480], ['AKDT', -480], ['AKST', -540], ['HDT', -540], ['HST', -600],
    ['ADT', -180], ['AST', -240], ['NDT', -150], ['NST', -210], ['UTC', 0], ['GMT', 0],
  ])('%s (US) -> %d', (tz, offset) => {
    expect(tzOffsetMinutes(tz, 'USA')).toBe(offset);
    expect(tzOffsetMinutes(tz, null)).toBe(offset);
  });

  it('AKST/AKDT on Canadian (Nova Scotia) lots is Atlantic time: -240', () => {
    expect(tzOffsetMinutes('AKST', 'CAN')).toBe(-240);
    expect(tzOffsetMinutes('AKST', 'CA')).toBe(-240);
    expect(tzOffsetMinutes('AKDT', 'CAN')).toBe(-240);
    expect(tzOffsetMinutes('akst', 'can')).toBe(-240);
    expect(tzOffsetMinutes('Akst', 'Ca')).toBe(-240);
  });

  it('AKST elsewhere stays Alaska time', () => {
    expect(tzOffsetMinutes('AKST', 'USA')).toBe(-540);
    expect(tzOffsetMinutes('AKST', 'US')).toBe(-540);
    expect(tzOffsetMinutes('AKST', 'CANADA')).toBe(-540); // only the feed's codes CAN / CA
    expect(tzOffsetMinutes('AKST', '')).toBe(-540);
  });

  it('other zones on Canadian lots keep their own offset', () => {
    expect(tzOffsetMinutes('EDT', 'CAN')).toBe(-240);
    expect(tzOffsetMinutes('MST', 'CAN')).toBe(-420);
  });

  it('is case-insensitive', () => {
    expect(tzOffsetMinutes('edt', null)).toBe(-240);
    expect(tzOffsetMinutes('Cst', 'USA')).toBe(-360);
    expect(tzOffsetMinutes('pDt', null)).toBe(-420);
  });

  it('unknown, empty or null -> null', () => {
    expect(tzOffsetMinutes('XYZ', 'USA')).toBeNull();
    expect(tzOffsetMinutes('CET', null)).toBeNull();
    expect(tzOffsetMinutes('', null)).toBeNull();
    expect(tzOffsetMinutes(' EDT', null)).toBeNull(); // callers pass trimmed text
    expect(tzOffsetMinutes(null, 'CAN')).toBeNull();
    // Object.prototype names are not zones.
    expect(tzOffsetMinutes('constructor', null)).toBeNull();
    expect(tzOffsetMinutes('__proto__', null)).toBeNull();
    expect(tzOffsetMinutes('toString', null)).toBeNull();
  });
});

describe('isRealDay', () => {
  it('leap years: 2000 and 2024 have 29 February; 1900, 2100 and 2025 do not', () => {
    expect(isRealDay(2000, 2, 29)).toBe(true);
    expect(isRealDay(2024, 2, 29)).toBe(true);
    expect(isRealDay(1900, 2, 29)).toBe(false);
    expect(isRealDay(2100, 2, 29)).toBe(false);
    expect(isRealDay(2025, 2, 29)).toBe(false);
    expect(isRealDay(2025, 2, 28)).toBe(true);
    expect(isRealDay(2024, 2, 30)).toBe(false);
  });

  it('month lengths', () => {
    const lengths = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    lengths.forEach((days, i) => {
      expect(isRealDay(2025, i + 1, days), `2025-${i + 1}-${days}`).toBe(true);
      expect(isRealDay(2025, i + 1, days + 1), `2025-${i + 1}-${days + 1}`).toBe(false);
      expect(isRealDay(2025, i + 1, 1)).toBe(true);
    });
  });

  it('rejects day 0, month 0 or 13 and years outside 1900..2199', () => {
    expect(isRealDay(2025, 1, 0)).toBe(false);
    expect(isRealDay(2025, 0, 1)).toBe(false);
    expect(isRealDay(2025, 13, 1)).toBe(false);
    expect(isRealDay(1899, 12, 31)).toBe(false);
    expect(isRealDay(1900, 1, 1)).toBe(true);
    expect(isRealDay(2199, 12, 31)).toBe(true);
    expect(isRealDay(2200, 1, 1)).toBe(false);
    expect(isRealDay(0, 1, 1)).toBe(false);
  });
});

describe('parseSaleDate', () => {
  it('YYYYMMDD -> YYYY-MM-DD', () => {
    expect(parseSaleDate('20251017')).toBe('2025-10-17');
    expect(parseSaleDate('20240229')).toBe('2024-02-29');
    expect(parseSaleDate('20200702')).toBe('2020-07-02');
  });

  it.each([
    ['0'], [''], ['20250230'], ['20250229'], ['2025101'], ['202510170'], ['2025-10-17'], ['20251317'], ['20251000'],
    ['10/17/2025'], ['101725'], ['abcdefgh'], [' 20251017'], ['18991231'],
  ])('%j -> null', (v) => {
    expect(parseSaleDate(v)).toBeNull();
  });

  it('null -> null', () => {
    expect(parseSaleDate(null)).toBeNull();
  });
});

describe('parseSaleTime', () => {
  it.each([
    ['1200', 1200], ['700', 700], ['1000', 1000], ['0700', 700], ['2359', 2359], ['1', 1], ['59', 59],
  ])('%j -> %d', (v, n) => {
    expect(parseSaleTime(v)).toBe(n);
  });

  it('midnight 0 is a valid HHMM', () => {
    expect(parseSaleTime('0')).toBe(0);
    expect(parseSaleTime('0000')).toBe(0);
  });

  it.each([
    ['2400'], ['1260'], ['60'], ['99'], ['12:00'], ['abc'], [''], ['12000'], ['-100'], ['12.0'], [' 700'],
  ])('%j -> null', (v) => {
    expect(parseSaleTime(v)).toBeNull();
  });

  it('null -> null', () => {
    expect(parseSaleTime(null)).toBeNull();
  });
});

describe('auctionAt', () => {
  it('local wall time with its offset, as PostgreSQL reads timestamptz', () => {
    const v = auctionAt('2025-10-17', 1200, -240);
    expect(v).toBe('2025-10-17 12:00:00-04:00');
    expect(instant(v!)).toBe('2025-10-17T16:00:00.000Z');
  });

  it('zero-pads a not zero-padded HHMM (700 -> 07:00)', () => {
    const v = auctionAt('2025-10-17', 700, -420);
    expect(v).toBe('2025-10-17 07:00:00-07:00');
    expect(instant(v!)).toBe('2025-10-17T14:00:00.000Z');
  });

  it('half-hour offsets: Newfoundland -150 -> -02:30', () => {
    const v = auctionAt('2025-07-10', 1030, -150);
    expect(v).toBe('2025-07-10 10:30:00-02:30');
    expect(instant(v!)).toBe('2025-07-10T13:00:00.000Z');
    expect(auctionAt('2025-01-10', 1000, -210)).toBe('2025-01-10 10:00:00-03:30');
  });

  it('midnight, UTC and positive offsets', () => {
    expect(auctionAt('2025-10-17', 0, -300)).toBe('2025-10-17 00:00:00-05:00');
    expect(instant(auctionAt('2025-10-17', 0, -300)!)).toBe('2025-10-17T05:00:00.000Z');
    expect(auctionAt('2025-10-17', 2359, 0)).toBe('2025-10-17 23:59:00+00:00');
    expect(auctionAt('2025-10-17', 905, 330)).toBe('2025-10-17 09:05:00+05:30');
    expect(instant(auctionAt('2025-10-17', 905, 330)!)).toBe('2025-10-17T03:35:00.000Z');
  });

  it('crosses the UTC date line correctly', () => {
    const v = auctionAt('2025-12-31', 2200, -600); // HST
    expect(v).toBe('2025-12-31 22:00:00-10:00');
    expect(instant(v!)).toBe('2026-01-01T08:00:00.000Z');
  });

  it('from the feed\'s fields end to end', () => {
    const v = auctionAt(parseSaleDate('20250501'), parseSaleTime('700'), tzOffsetMinutes('AKST', 'CAN'));
    expect(v).toBe('2025-05-01 07:00:00-04:00');
    expect(instant(v!)).toBe('2025-05-01T11:00:00.000Z');
    // Sale Date 0: not scheduled.
    expect(auctionAt(parseSaleDate('0'), parseSaleTime('1200'), tzOffsetMinutes('PDT', 'USA'))).toBeNull();
  });

  it('any null input -> null', () => {
    expect(auctionAt(null, 1200, -240)).toBeNull();
    expect(auctionAt('2025-10-17', null, -240)).toBeNull();
    expect(auctionAt('2025-10-17', 1200, null)).toBeNull();
    expect(auctionAt(null, null, null)).toBeNull();
  });
});

describe('parseIsoUtc', () => {
  it.each([
    ['2025-10-14T07:01:00Z'], ['2025-10-14T07:01:00.5Z'], ['2025-10-14T07:01:00.123456Z'], ['2024-02-29T23:59:59Z'], ['2020-06-06T00:00:00Z'],
  ])('%j is kept', (v) => {
    expect(parseIsoUtc(v)).toBe(v);
  });

  it.each([
    ['2025-02-29T07:01:00Z'], ['2025-04-31T07:01:00Z'], ['2025-13-01T07:01:00Z'], ['2025-10-14T24:00:00Z'], ['2025-10-14T07:60:00Z'],
    ['2025-10-14T07:01:60Z'], ['2025-10-14T07:01:00'], ['2025-10-14T07:01:00+00:00'], ['2025-10-14 07:01:00Z'],
    ['2025-10-14T07:01:00.1234567Z'], ['2025-10-14T07:01:00.Z'], ['2025-10-14'], [''], ['garbage'],
  ])('%j -> null', (v) => {
    expect(parseIsoUtc(v)).toBeNull();
  });

  it('null -> null', () => {
    expect(parseIsoUtc(null)).toBeNull();
  });
});

describe('parseDb2Timestamp', () => {
  it('DB2 style -> PostgreSQL timestamp text', () => {
    expect(parseDb2Timestamp('2025-10-14-08.55.06.000795')).toBe('2025-10-14 08:55:06.000795');
    expect(parseDb2Timestamp('2025-10-14-08.55.06')).toBe('2025-10-14 08:55:06');
    expect(parseDb2Timestamp('2024-02-29-23.59.59.1')).toBe('2024-02-29 23:59:59.1');
    expect(parseDb2Timestamp('2025-10-14-00.00.00.000000')).toBe('2025-10-14 00:00:00.000000');
  });

  it.each([
    ['2025-02-29-08.55.06.000795'], ['2025-10-32-08.55.06'], ['2025-10-14-24.00.00'], ['2025-10-14-08.60.06'], ['2025-10-14-08.55.60'],
    ['2025-10-14 08:55:06'], ['2025-10-14-08.55.06.0007951'], ['2025-10-14-08.55'], ['2025-10-14-08.55.06.'], [''], ['0'],
  ])('%j -> null', (v) => {
    expect(parseDb2Timestamp(v)).toBeNull();
  });

  it('null -> null', () => {
    expect(parseDb2Timestamp(null)).toBeNull();
  });
});

describe('parseAmount', () => {
  it('0 / 0.0 mean unknown -> null', () => {
    expect(parseAmount('0.0')).toBeNull();
    expect(parseAmount('0')).toBeNull();
    expect(parseAmount('0.00')).toBeNull();
    expect(parseAmount('-0')).toBeNull();
  });

  it.each([
    ['20314.23'], ['172691.0'], ['1050.0'], ['-5'], ['-5.5'], ['1'], ['0.01'], ['123456789012345'], ['1.123456'],
  ])('%j is kept as text', (v) => {
    expect(parseAmount(v)).toBe(v);
  });

  it.each([
    ['abc'], ['1,000'], ['1e5'], ['$100'], ['1.'], ['.5'], ['+5'], ['1.1234567'], ['1234567890123456'], ['NaN'], ['Infinity'], ['12 34'],
  ])('%j is odd -> undefined', (v) => {
    expect(parseAmount(v)).toBeUndefined();
  });

  it('null (an empty field) -> null; empty text is not a number', () => {
    expect(parseAmount(null)).toBeNull();
    // Callers pass trimmed non-empty text or null; '' itself is not a decimal.
    expect(parseAmount('')).toBeUndefined();
  });
});

describe('parseInteger', () => {
  it.each([
    ['2017', '2017'], ['007', '7'], ['0', '0'], ['-3', '-3'], ['-0', '0'], ['999999999', '999999999'], ['1', '1'],
  ])('%j -> %j', (v, expected) => {
    expect(parseInteger(v)).toBe(expected);
  });

  it.each([
    ['12.5'], ['x'], ['1e3'], ['1,000'], ['+1'], ['1234567890'], ['12 '], [''], ['2017.0'],
  ])('%j is odd -> undefined', (v) => {
    expect(parseInteger(v)).toBeUndefined();
  });

  it('null -> null', () => {
    expect(parseInteger(null)).toBeNull();
  });
});
