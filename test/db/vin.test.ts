import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/testDatabase.js';

let db: TestDatabase;
beforeAll(async () => { db = await createTestDatabase(); });
afterAll(async () => { await db.drop(); });

async function vin(value: string | null): Promise<{ normalized: string | null; valid: boolean }> {
  const { rows } = await db.pool.query<{ normalized: string | null; valid: boolean }>(
    'SELECT public.normalize_vin($1) AS normalized, public.is_valid_vin($1) AS valid', [value]);
  return rows[0]!;
}

describe('normalize_vin / is_valid_vin (docs/feed.md rules)', () => {
  it.each([
    // value, normalized, valid
    ['2C3CDYCJ2DH744113', '2C3CDYCJ2DH744113', true],
    ['  2c3cdycj2dh744113 ', '2C3CDYCJ2DH744113', true],
    ['\t4JGBF7BE5AA585531\r\n', '4JGBF7BE5AA585531', true],
    ['1HGCM82633A00435I', '1HGCM82633A00435I', false], // I in a 17-char VIN
    ['1HGCM82633A00435O', '1HGCM82633A00435O', false], // O
    ['1HGCM82633A00435Q', '1HGCM82633A00435Q', false], // Q
    ['1HGCM82633A004352X', '1HGCM82633A004352X', false], // 18 chars
    ['44305R', '44305R', true], // legacy 6-char trailer id (real)
    ['SC022004430', 'SC022004430', true], // legacy 11-char (real)
    ['TAWN72N3WZ123321', 'TAWN72N3WZ123321', true], // 16 chars (real)
    ['32974742', '32974742', true], // VIN equal to its lot number (real)
    ['OIQ', 'OIQ', true], // legacy ids may hold I/O/Q
    ['AB', 'AB', false], // too short
    ['ABC-123', 'ABC-123', false], // punctuation
    ['', null, false],
    ['   ', null, false],
  ])('%j -> %j, valid=%j', async (value, normalized, valid) => {
    expect(await vin(value)).toEqual({ normalized, valid });
  });

  it('NULL -> NULL, not valid', async () => {
    expect(await vin(null)).toEqual({ normalized: null, valid: false });
  });
});
