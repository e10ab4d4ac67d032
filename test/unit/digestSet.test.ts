import { createHash } from 'node:crypto';
import { expect, it } from 'vitest';
import { DigestSet } from '../../src/ingest/encode/digestSet.js';

const md5 = (s: string): Buffer => createHash('md5').update(s).digest();
const uuid = (b: Buffer): string => b.toString('hex').replace(/^(.{8})(.{4})(.{4})(.{4})(.{12})$/, '$1-$2-$3-$4-$5');

it('finds its digests, and lists once each of those never found (the previous file\'s rows a file did not repeat)', () => {
  const all = Array.from({ length: 1000 }, (_, i) => md5(`row ${i}`));
  // A repeated digest (the same row twice in the previous file) is one entry.
  const set = new DigestSet(Buffer.concat([...all, all[7]!]));
  expect(set.has(md5('not there'))).toBe(false);
  for (let i = 0; i < all.length; i++) if (i % 10 !== 0) expect(set.has(all[i]!)).toBe(true);
  expect(set.has(all[7]!)).toBe(true);
  expect(set.unseen().sort()).toEqual(all.filter((_, i) => i % 10 === 0).map(uuid).sort());
  expect(new DigestSet(Buffer.alloc(0)).unseen()).toEqual([]);
});
