import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { replayFiles } from '../../src/core/replay.js';
import { COUNT_LISTED } from '../../src/lifecycle/lifecycleStatements.js';
import { seededRandom } from '../../src/sample/feedGenerator.js';
import { createTestDatabase, type TestDatabase } from '../helpers/testDatabase.js';
import { feedFile, fillers, ingest, shuffled, vin, type Lot } from '../helpers/lotFeed.js';

/*
 * Edge cases of the lot lifecycle (docs/lifecycle.md): arrival order, late and partial files, relist
 * chains with VIN changes, the live pair against the general one, lots with several rows in a file.
 * Most tests compare the lifecycle columns and events of several arrival orders (and of a
 * `replay --all` style rebuild) on one scenario.
 */

let dir: string;

const FILLERS = fillers(40);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vinops-lifecycle-edge-'));
});

let scenarioNo = 0;
const newRoot = (name: string): string => join(dir, `${++scenarioNo}-${name}`);

type State = { events: string[]; lots: string[]; files: string[] };

/** Events and lifecycle columns as comparable text: no ids, files by window. */
async function lifecycleOf(db: TestDatabase): Promise<State> {
  const events = await db.pool.query<{ e: string }>(`SELECT concat_ws(' | ', substr(f.path, length(f.path) - 7), e.kind, e.lot_external_id, e.vin,
      e.field, e.old_value, e.new_value, e.related_lot_external_id, e.snapshot_at, e.previous_snapshot_at) AS e
    FROM public.lot_events e JOIN raw.csv_files f USING (file_id) ORDER BY 1`);
  const lots = await db.pool.query<{ l: string }>(`SELECT concat_ws(' | ', lot_external_id, vin, first_seen_at, coalesce(last_seen_at::text, '-'), listed,
      coalesce(last_high_bid::text, '-'), coalesce(outcome, '-'), coalesce(outcome_at::text, '-'), coalesce(outcome_method, '-'),
      coalesce(previous_lot_external_id, '-'), relist_count) AS l FROM public.lots WHERE lot_external_id NOT LIKE '9000%' ORDER BY lot_external_id`);
  const files = await db.pool.query<{ f: string }>(`SELECT concat_ws(' | ', substr(path, length(path) - 7), snapshot_at, partial::text) AS f
    FROM raw.csv_files ORDER BY snapshot_at`);
  return { events: events.rows.map((r) => r.e), lots: lots.rows.map((r) => r.l), files: files.rows.map((r) => r.f) };
}

async function lotRow(db: TestDatabase, id: string): Promise<Record<string, unknown>> {
  const { rows } = await db.pool.query(`SELECT lot_external_id, vin, listed, to_char(first_seen_at AT TIME ZONE 'UTC', 'HH24:MI') AS first_seen,
      to_char(last_seen_at AT TIME ZONE 'UTC', 'HH24:MI') AS last_seen, last_high_bid::text, outcome,
      to_char(outcome_at AT TIME ZONE 'UTC', 'HH24:MI') AS outcome_at, outcome_method, previous_lot_external_id, relist_count, sale_status
    FROM public.lots WHERE lot_external_id = $1`, [id]);
  return rows[0]!;
}

/** Ingests the files in the given order into a fresh database; returns its lifecycle (and whatever `probe` reads). */
async function run<T = undefined>(order: readonly string[], probe?: (db: TestDatabase) => Promise<T>): Promise<{ state: State; probe: T }> {
  const db = await createTestDatabase();
  try {
    for (const f of order) {
      const r = await ingest(db, f);
      expect(r.outcome, f).toBe('ingested');
    }
    return { state: await lifecycleOf(db), probe: (probe ? await probe(db) : undefined) as T };
  } finally {
    await db.drop();
  }
}

/**
 * Ingests the files in order, then rebuilds everything as `replay --all` does: over emptied core
 * tables, or (`inPlace`) over the live state, as the command runs.
 */
async function runReplayed(order: readonly string[], options: { inPlace?: boolean } = {}): Promise<State> {
  const db = await createTestDatabase();
  try {
    for (const f of order) await ingest(db, f);
    if (options.inPlace !== true) await db.pool.query('TRUNCATE public.lot_events, public.lots, public.vehicles, staging.copart_typed');
    const client = await db.pool.connect();
    try {
      await replayFiles(client, 'all');
    } finally {
      client.release();
    }
    return await lifecycleOf(db);
  } finally {
    await db.drop();
  }
}

const hhmm = (minutesAfterNoon: number): string => {
  const m = 12 * 60 + minutesAfterNoon;
  return `${String(Math.floor(m / 60)).padStart(2, '0')}${String(m % 60).padStart(2, '0')}`;
};
const isoAt = (minutesAfterNoon: number): string => new Date(Date.UTC(2025, 9, 17, 12, minutesAfterNoon)).toISOString().replace('.000Z', 'Z');

/**
 * A random feed: `n` files 15 minutes apart, a pool of lots sharing VINs by threes (so relists and
 * reappearances happen), rows that change now and then (Last Updated Time before the file's window),
 * occasional VIN changes, and optionally truncated files and lots with an older second row.
 */
async function randomFeed(root: string, seed: number, o: { n: number; partial: boolean; multiRow: boolean; vinChanges: boolean }): Promise<string[]> {
  const rnd = seededRandom(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const pool = Array.from({ length: 15 }, (_, i) => ({
    lot: `7${String(seed).padStart(3, '0')}${String(i).padStart(4, '0')}`,
    vinNo: 500 + Math.floor(i / 3),
    sale: pick<[string, string] | null>([null, ['20251017', '830'], ['20251017', '1000'], ['20251020', '1000']]),
    row: undefined as Lot | undefined,
  }));
  const many = fillers(100);
  const files: string[] = [];
  for (let t = 0; t < o.n; t++) {
    const rows: Lot[] = [];
    for (const p of pool) {
      if (rnd() < 0.35) continue; // absent from this file
      if (p.row === undefined || rnd() < 0.4) {
        const vinNo = o.vinChanges && p.row !== undefined && rnd() < 0.1 ? 500 + Math.floor(rnd() * 5) : p.row === undefined ? p.vinNo : Number(p.row.vin.slice(-6));
        p.row = { lot: p.lot, vin: vin(vinNo), sale: p.sale, status: pick(['Pure Sale', 'On Approval', 'On Minimum Bid']),
          bid: pick(['0.0', '100.0', '250.0', '900.0']), updated: isoAt(15 * t - 1 - Math.floor(rnd() * 10)) };
      }
      rows.push(p.row);
      if (o.multiRow && rnd() < 0.2) rows.push({ ...p.row, bid: pick(['0.0', '333.0', '50.0']), updated: isoAt(15 * t - 30) });
    }
    const truncated = o.partial && t > 0 && rnd() < 0.2;
    files.push(await feedFile(root, hhmm(15 * t), truncated ? [...many.slice(0, 30), ...rows.slice(0, Math.floor(rows.length / 2))] : [...many, ...rows]));
  }
  return files;
}

describe('lot lifecycle edge cases (passing)', () => {
  it('a lot with an identical row twice in a file, and a file that only re-orders rows, add no events', async () => {
    const root = newRoot('dup-rows');
    const X: Lot = { lot: '60000101', vin: vin(301), sale: ['20251018', '1000'], bid: '100.0', updated: '2025-10-17T08:00:00Z' };
    const Y: Lot = { lot: '60000102', vin: vin(302), sale: null, updated: '2025-10-17T08:00:00Z' };
    const files = [
      await feedFile(root, '1200', [...FILLERS, X, Y]),
      await feedFile(root, '1215', [Y, X, X, ...FILLERS]),
      await feedFile(root, '1230', [...FILLERS, X]),
    ];
    const inOrder = await run(files);
    expect(inOrder.state.events.filter((e) => !e.startsWith('1200'))).toEqual([
      expect.stringMatching(/^1230\.csv \| disappeared \| 60000102 \|/),
    ]);
    for (const order of [[...files].reverse(), [files[0]!, files[2]!, files[1]!], [files[1]!, files[0]!, files[2]!]]) {
      expect((await run(order)).state, order.map((f) => f.slice(-8)).join(' ')).toEqual(inOrder.state);
    }
    expect(await runReplayed(files)).toEqual(inOrder.state);
  });

  it('a relist chain A → B → C with reappearance of A after its relist: every order gives the same', async () => {
    const root = newRoot('relist-reappear');
    const V = vin(401);
    const A: Lot = { lot: '60000201', vin: V, sale: ['20251017', '800'], updated: '2025-10-17T08:00:00Z' };
    const B: Lot = { lot: '60000202', vin: V, sale: ['20251017', '830'], updated: '2025-10-17T12:20:00Z' };
    const C: Lot = { lot: '60000203', vin: V, sale: ['20251017', '900'], updated: '2025-10-17T12:50:00Z' };
    const files = [
      await feedFile(root, '1200', [...FILLERS, A]),
      await feedFile(root, '1215', [...FILLERS]),
      await feedFile(root, '1230', [...FILLERS, B]),
      await feedFile(root, '1245', [...FILLERS, A]), // A back under its own number, B gone
      await feedFile(root, '1300', [...FILLERS, A, C]),
      await feedFile(root, '1315', [...FILLERS, C]),
    ];
    const inOrder = await run(files, async (db) => [await lotRow(db, A.lot), await lotRow(db, B.lot), await lotRow(db, C.lot)]);
    expect(inOrder.probe.map((l) => [l.lot_external_id, l.listed, l.outcome, l.previous_lot_external_id, l.relist_count])).toEqual([
      ['60000201', false, 'sold', null, 0],
      ['60000202', false, 'not_sold', '60000201', 1],
      ['60000203', true, null, '60000202', 2],
    ]);
    for (const seed of [11, 12, 13]) {
      const order = seed === 11 ? [...files].reverse() : shuffled(files, seed);
      expect((await run(order)).state, order.map((f) => f.slice(-8)).join(' ')).toEqual(inOrder.state);
    }
    expect(await runReplayed(files)).toEqual(inOrder.state);
  });

  it('random feeds without partial files, several rows per lot or VIN changes: shuffles and replay agree with in-order (live pairs)', async () => {
    for (const seed of [101, 102, 103]) {
      const files = await randomFeed(newRoot(`random-${seed}`), seed, { n: 8, partial: false, multiRow: false, vinChanges: false });
      const inOrder = await run(files);
      expect(inOrder.state.files.every((f) => f.endsWith('false'))).toBe(true);
      expect(inOrder.state.events.length).toBeGreaterThan(20);
      expect(await runReplayed(files), `seed ${seed}: replay`).toEqual(inOrder.state);
      const order = shuffled(files, seed);
      expect((await run(order)).state, `seed ${seed}: ${order.map((f) => f.slice(-8)).join(' ')}`).toEqual(inOrder.state);
    }
  });

  it('`replay --all` over the live state (no truncate) gives the in-order state', async () => {
    const files = await randomFeed(newRoot('random-inplace'), 104, { n: 8, partial: false, multiRow: false, vinChanges: false });
    const inOrder = await run(files);
    expect(await runReplayed(files, { inPlace: true })).toEqual(inOrder.state);
  });
  it('random feeds with truncated files and lots with an older second row: shuffles agree with in-order', async () => {
    const failures: string[] = [];
    for (const seed of [201, 202, 203]) {
      const files = await randomFeed(newRoot(`random-p-${seed}`), seed, { n: 8, partial: true, multiRow: true, vinChanges: true });
      const inOrder = await run(files);
      for (const order of [[...files].reverse(), shuffled(files, seed)]) {
        const got = (await run(order)).state;
        const diff = [...got.lots.filter((l) => !inOrder.state.lots.includes(l)).map((l) => `+ ${l}`),
          ...inOrder.state.lots.filter((l) => !got.lots.includes(l)).map((l) => `- ${l}`),
          ...got.events.filter((l) => !inOrder.state.events.includes(l)).map((l) => `+ev ${l}`),
          ...inOrder.state.events.filter((l) => !got.events.includes(l)).map((l) => `-ev ${l}`)];
        if (diff.length > 0) failures.push(`seed ${seed}, order ${order.map((f) => f.slice(-8, -4)).join(' ')}:\n  ${diff.join('\n  ')}`);
      }
    }
    expect(failures.join('\n')).toBe('');
  });

  it('random feeds with several rows per lot and VIN changes: the events of in-order (live pairs), shuffled and replayed loads agree', async () => {
    for (const seed of [301, 302]) {
      const files = await randomFeed(newRoot(`random-m-${seed}`), seed, { n: 8, partial: false, multiRow: true, vinChanges: true });
      const inOrder = await run(files);
      expect((await runReplayed(files)).events, `seed ${seed}: replay`).toEqual(inOrder.state.events);
      const order = shuffled(files, seed);
      expect((await run(order)).state.events, `seed ${seed}: ${order.map((f) => f.slice(-8)).join(' ')}`).toEqual(inOrder.state.events);
    }
  });
});

describe('regressions found by review', () => {
  it('a lot with two rows in a later file: last_high_bid is the newest bid, the older row’s, in every order', async () => {
    // The doc: last_high_bid is "the High Bid of the lot's newest row that has one".
    const root = newRoot('multirow-bid');
    const X: Lot = { lot: '60000001', vin: vin(101), sale: ['20251018', '1000'], bid: '0.0', updated: '2025-10-17T08:00:00Z' };
    const files = [
      await feedFile(root, '1200', [...FILLERS, X]),
      await feedFile(root, '1215', [...FILLERS, { ...X, bid: '500.0', updated: '2025-10-17T12:05:00Z' }, { ...X, bid: '0.0', updated: '2025-10-17T12:10:00Z' }]),
    ];
    const inOrder = await run(files, (db) => lotRow(db, X.lot));
    const reverse = await run([...files].reverse(), (db) => lotRow(db, X.lot));
    expect(reverse.probe.last_high_bid).toBe('500.0');
    expect(inOrder.probe.last_high_bid).toBe('500.0'); // was null before the fix
    expect(inOrder.state).toEqual(reverse.state);
  });

  it('a partial file arriving late with a newer Sale Status: the outcome is decided again from it', async () => {
    const root = newRoot('partial-late-status');
    // Auction 2025-10-17 08:00 EDT = 12:00 UTC; leaves at 12:30: on approval by its newest row.
    const X: Lot = { lot: '60000002', vin: vin(102), sale: ['20251017', '800'], status: 'Pure Sale', updated: '2025-10-17T08:00:00Z' };
    const files = [
      await feedFile(root, '1200', [...FILLERS, X]),
      await feedFile(root, '1215', [...FILLERS.slice(0, 6), { ...X, status: 'On Approval', updated: '2025-10-17T12:10:00Z' }]),
      await feedFile(root, '1230', [...FILLERS]),
    ];
    const inOrder = await run(files, (db) => lotRow(db, X.lot));
    expect(inOrder.state.files.map((f) => f.endsWith('true'))).toEqual([false, true, false]);
    expect(inOrder.probe).toMatchObject({ sale_status: 'On Approval', outcome: 'on_approval', outcome_method: 'left_on_approval' });
    const late = await run([files[0]!, files[2]!, files[1]!], (db) => lotRow(db, X.lot));
    expect(late.probe.sale_status).toBe('On Approval');
    expect(late.probe).toMatchObject({ outcome: 'on_approval' }); // was sold / left_after_auction before the fix
    expect(late.state).toEqual(inOrder.state);
  });

  it('a partial file arriving late with the only High Bid: last_high_bid takes it', async () => {
    const root = newRoot('partial-late-bid');
    const X: Lot = { lot: '60000003', vin: vin(103), sale: ['20251018', '1000'], bid: '0.0', updated: '2025-10-17T08:00:00Z' };
    const files = [
      await feedFile(root, '1200', [...FILLERS, X]),
      await feedFile(root, '1215', [...FILLERS.slice(0, 6), { ...X, bid: '900.0', updated: '2025-10-17T12:10:00Z' }]),
      await feedFile(root, '1230', [...FILLERS, { ...X, bid: '0.0', updated: '2025-10-17T12:20:00Z' }]),
    ];
    const inOrder = await run(files, (db) => lotRow(db, X.lot));
    expect(inOrder.probe.last_high_bid).toBe('900.0');
    const late = await run([files[0]!, files[2]!, files[1]!], (db) => lotRow(db, X.lot));
    expect(late.probe.last_high_bid).toBe('900.0'); // was null before the fix
    expect(late.state).toEqual(inOrder.state);
  });

  it('a file first taken as full and flagged partial later: its lots lose the presence and outcome it gave them', async () => {
    const root = newRoot('partial-withdrawn');
    const Y: Lot = { lot: '60000004', vin: vin(104), sale: null, updated: '2025-10-17T08:00:00Z' };
    const files = [
      await feedFile(root, '1200', [...FILLERS]),
      await feedFile(root, '1215', [...FILLERS]),
      await feedFile(root, '1230', [...FILLERS.slice(0, 6), Y]), // truncated; Y only here
      await feedFile(root, '1245', [...FILLERS]),
    ];
    const probe = async (db: TestDatabase): Promise<unknown> => ({ y: await lotRow(db, Y.lot),
      listed: (await db.pool.query(`SELECT count(*)::int AS n FROM public.lots WHERE listed`)).rows[0]!.n,
      gauge: (await db.pool.query(COUNT_LISTED)).rows[0]!.n });
    const inOrder = await run(files, probe);
    // As the doc says: a lot seen only in partial files has no events, is not listed, and has no first_seen_at.
    expect(inOrder.probe).toMatchObject({ y: { listed: false, outcome: null, last_seen: null, first_seen: null }, listed: 40, gauge: 40 });
    // The truncated file first, alone (then nothing says it is truncated), the full ones after.
    const earlyA = await run([files[2]!, files[0]!, files[1]!, files[3]!], probe);
    const earlyB = await run([files[2]!, files[3]!, files[0]!, files[1]!], probe);
    expect(earlyA.state.files).toEqual(inOrder.state.files);
    expect.soft(earlyA.probe, 'order 1230 1200 1215 1245').toEqual(inOrder.probe); // was: y.listed true, 41 lots listed (gauge 40)
    expect.soft(earlyB.probe, 'order 1230 1245 1200 1215').toEqual(inOrder.probe); // was: y withdrawn/never_scheduled at 12:45, last_seen 12:30
    expect.soft(earlyA.state).toEqual(inOrder.state);
    expect.soft(earlyB.state).toEqual(inOrder.state);
  });

  it('a lot seen only in partial files has no first_seen_at, whichever partial file arrives first', async () => {
    const root = newRoot('partial-only-first-seen');
    const Z: Lot = { lot: '60000005', vin: vin(105), sale: null, updated: '2025-10-17T08:00:00Z' };
    const files = [
      await feedFile(root, '1200', [...FILLERS]),
      await feedFile(root, '1215', [...FILLERS.slice(0, 6), Z]),
      await feedFile(root, '1230', [...FILLERS]),
      await feedFile(root, '1245', [...FILLERS.slice(0, 7), Z]),
      await feedFile(root, '1300', [...FILLERS]),
    ];
    const inOrder = await run(files, (db) => lotRow(db, Z.lot));
    expect(inOrder.probe).toMatchObject({ first_seen: null, listed: false });
    const other = await run([files[0]!, files[2]!, files[3]!, files[1]!, files[4]!], (db) => lotRow(db, Z.lot));
    expect(other.state.files).toEqual(inOrder.state.files);
    expect(other.probe).toMatchObject({ first_seen: null }); // was 12:45 (the first partial file to arrive)
    expect(other.state).toEqual(inOrder.state);
  });

  it('relist chain G → K → K2, then G comes back under another VIN: K2’s relist_count follows (1) in every order', async () => {
    const root = newRoot('relist-vin-change');
    const V1 = vin(201);
    const V2 = vin(202);
    const G: Lot = { lot: '61000001', vin: V1, sale: null, updated: '2025-10-17T08:00:00Z' };
    const K: Lot = { lot: '61000002', vin: V1, sale: null, updated: '2025-10-17T12:20:00Z' };
    const K2: Lot = { lot: '61000003', vin: V1, sale: null, updated: '2025-10-17T12:50:00Z' };
    const files = [
      await feedFile(root, '1200', [...FILLERS, G]),
      await feedFile(root, '1215', [...FILLERS]),
      await feedFile(root, '1230', [...FILLERS, K]),
      await feedFile(root, '1245', [...FILLERS]),
      await feedFile(root, '1300', [...FILLERS, K2]),
      await feedFile(root, '1315', [...FILLERS, K2, { ...G, vin: V2, updated: '2025-10-17T13:10:00Z' }]),
    ];
    const probe = async (db: TestDatabase): Promise<unknown[]> => Promise.all([G, K, K2].map(async (l) => {
      const r = await lotRow(db, l.lot);
      return [r.lot_external_id, r.vin, r.previous_lot_external_id, r.relist_count];
    }));
    const reverse = await run([...files].reverse(), probe);
    expect(reverse.probe).toEqual([['61000001', V2, null, 0], ['61000002', V1, null, 0], ['61000003', V1, '61000002', 1]]);
    expect(await runReplayed(files)).toEqual(reverse.state);
    const inOrder = await run(files, probe);
    expect(inOrder.probe).toEqual(reverse.probe); // was: K2 relist_count 2
    expect(inOrder.state).toEqual(reverse.state);
  });

});
