import { mkdir, mkdtemp, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isFeedPath, listFeedPaths, statSettled } from '../../src/discovery/rawTree.js';
import { windowFromPath } from '../../src/feed/paths.js';

describe('isFeedPath', () => {
  const root = '/data/raw';
  it.each([
    ['/data/raw/2025/10/17/1200.csv', true],
    ['/data/raw/2025/10/17/1200.CSV', true],
    ['/data/raw/2025/10/17/extra-name.csv', true],
    ['/data/raw/2025/10/17/1200.csv.part', false],
    ['/data/raw/2025/10/17/1200.tmp', false],
    ['/data/raw/2025/10/17/.1200.csv', false],
    ['/data/raw/2025/10/1200.csv', false],
    ['/data/raw/1200.csv', false],
    ['/data/raw/2025/10/17/sub/1200.csv', false],
    ['/data/other/2025/10/17/1200.csv', false],
    ['/data/raw/../raw2/2025/10/17/1200.csv', false],
  ])('%s -> %s', (path, expected) => {
    expect(isFeedPath(root, path)).toBe(expected);
  });
});

describe('statSettled and listFeedPaths', () => {
  it('takes settled regular files only; refuses links leading outside the root and directories named *.csv', async () => {
    const root = await mkdtemp(join(tmpdir(), 'vinops-tree-'));
    const outside = await mkdtemp(join(tmpdir(), 'vinops-outside-'));
    const day = join(root, '2025', '10', '17');
    await mkdir(day, { recursive: true });
    const old = new Date(Date.now() - 60_000);
    await writeFile(join(day, '1200.csv'), 'x');
    await utimes(join(day, '1200.csv'), old, old);
    await writeFile(join(day, '1215.csv'), 'fresh'); // just written: not settled
    await mkdir(join(day, '1230.csv')); // a directory with a feed name
    await writeFile(join(outside, 'secret.csv'), 'x');
    await utimes(join(outside, 'secret.csv'), old, old);
    await symlink(join(outside, 'secret.csv'), join(day, '1245.csv')); // leads outside
    await symlink(join(day, '1200.csv'), join(day, '1300.csv')); // stays inside

    expect(await listFeedPaths(root)).toEqual(['1200.csv', '1215.csv', '1230.csv', '1245.csv', '1300.csv'].map((n) => join(day, n)));
    expect(await statSettled(root, join(day, '1200.csv'), 3000)).toMatchObject({ size: 1 });
    expect(await statSettled(root, join(day, '1215.csv'), 3000)).toBeUndefined();
    expect(await statSettled(root, join(day, '1215.csv'), 0)).toMatchObject({ size: 5 });
    expect(await statSettled(root, join(day, '1230.csv'), 0)).toBeUndefined();
    expect(await statSettled(root, join(day, '1245.csv'), 0)).toBeUndefined();
    expect(await statSettled(root, join(day, '1300.csv'), 0)).toMatchObject({ size: 1 });
    expect(await statSettled(root, join(day, 'gone.csv'), 0)).toBeUndefined();
    expect(await listFeedPaths(join(root, 'missing'))).toEqual([]);
  });
});

describe('windowFromPath', () => {
  it.each([
    ['/var/data/vinops/raw/copart/2025/10/17/1215.csv', '2025-10-17T12:15:00.000Z'],
    ['/x/2024/02/29/0000.csv', '2024-02-29T00:00:00.000Z'],
    ['/x/2025/02/29/0000.csv', null],
    ['/x/2025/10/17/2460.csv', null],
    ['/x/2025/10/17/latest.csv', null],
    ['/tmp/file.csv', null],
  ])('%s -> %s', (path, expected) => {
    expect(windowFromPath(path)?.toISOString() ?? null).toBe(expected);
  });
});
