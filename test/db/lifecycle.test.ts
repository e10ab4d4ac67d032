import { copyFile, mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { HEADER_V3 } from '../../src/feed/headers.js';
import { replayFiles } from '../../src/core/replay.js';
import { COUNT_LISTED } from '../../src/lifecycle/lifecycleStatements.js';
import { createTestDatabase, type TestDatabase } from '../helpers/testDatabase.js';
import { feedFile, fillers, ingest, shuffled, vin, type Lot } from '../helpers/lotFeed.js';

const FIXTURES = new URL('../fixtures/', import.meta.url).pathname;
let dir: string;

const FILLERS = fillers(40);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vinops-lifecycle-'));
});

/**
 * The scenario (snapshots every 15 minutes from 2025-10-17 12:00 UTC; EDT = UTC-4):
 * A sold after its auction; A2 left 15 min before its auction (within the grace: sold); B left days
 * before its auction (withdrawn); C never scheduled (withdrawn); D On Approval; E left after its
 * auction (presumed sold), then relisted as E2 (E not sold), E2 left and was relisted as E3; F gone
 * for one file and back; G changes every tracked field; H new in the third file; a truncated file
 * (13:00) between the fourth and fifth; and a duplicate of the second under another name.
 */
async function writeScenario(root: string): Promise<string[]> {
  const A: Lot = { lot: '50000001', vin: vin(1), sale: ['20251017', '835'], updated: '2025-10-17T08:00:00Z', bid: '1200.0' };
  const A2: Lot = { lot: '50000011', vin: vin(11), sale: ['20251017', '900'], updated: '2025-10-17T08:00:00Z' };
  const B: Lot = { lot: '50000002', vin: vin(2), sale: ['20251020', '1000'], updated: '2025-10-17T08:00:00Z' };
  const C: Lot = { lot: '50000003', vin: vin(3), sale: null, updated: '2025-10-17T08:00:00Z' };
  const D: Lot = { lot: '50000004', vin: vin(4), sale: ['20251017', '800'], status: 'On Approval', bid: '3100.0', updated: '2025-10-17T08:00:00Z' };
  const E: Lot = { lot: '50000005', vin: vin(5), sale: ['20251017', '800'], bid: '700.0', updated: '2025-10-17T08:00:00Z' };
  const E2: Lot = { lot: '50000025', vin: vin(5), sale: ['20251017', '830'], bid: '650.0', updated: '2025-10-17T12:40:00Z' };
  const E3: Lot = { lot: '50000035', vin: vin(5), sale: ['20251024', '830'], updated: '2025-10-17T13:25:00Z' };
  const F: Lot = { lot: '50000006', vin: vin(6), sale: null, updated: '2025-10-17T08:00:00Z' };
  const G1: Lot = { lot: '50000007', vin: vin(7), sale: ['20251018', '1000'], status: 'Pure Sale', bid: '100.0', updated: '2025-10-17T08:00:00Z' };
  const G2: Lot = { ...G1, status: 'On Minimum Bid', bid: '150.5', sale: ['20251018', '1100'], updated: '2025-10-17T12:10:00Z' };
  const G3: Lot = { ...G2, buyNow: '5000.0', retail: '9500.0', repair: '4100.25', odometer: '120001.0', damage: 'REAR END',
    keys: 'NO', yard: '31', vin: vin(77), updated: '2025-10-17T12:25:00Z' };
  const H: Lot = { lot: '50000008', vin: vin(8), sale: null, updated: '2025-10-17T12:20:00Z' };
  const files = [
    await feedFile(root, '1200', [...FILLERS, A, A2, B, C, D, E, F, G1]),
    await feedFile(root, '1215', [...FILLERS, A, A2, B, C, D, G2]),
    await feedFile(root, '1230', [...FILLERS, A, A2, D, F, G3, H]),
    await feedFile(root, '1245', [...FILLERS, F, G3, H, E2]),
    await feedFile(root, '1300', FILLERS.slice(0, 12)),
    await feedFile(root, '1315', [...FILLERS, F, G3, H]),
    await feedFile(root, '1330', [...FILLERS, F, G3, H, E3]),
  ];
  const dup = join(root, '2025/10/18/0000.csv');
  await mkdir(dirname(dup), { recursive: true });
  await copyFile(files[1]!, dup);
  return [...files, dup];
}

/** Events and lot states as comparable text: no ids, files by path. */
async function lifecycleOf(db: TestDatabase): Promise<{ events: string[]; lots: string[]; files: string[] }> {
  const events = await db.pool.query<{ e: string }>(`SELECT concat_ws(' | ', substr(f.path, length(f.path) - 17), e.kind, e.lot_external_id, e.vin,
      e.field, e.old_value, e.new_value, e.related_lot_external_id, e.snapshot_at, e.previous_snapshot_at) AS e
    FROM public.lot_events e JOIN raw.csv_files f USING (file_id) ORDER BY 1`);
  const lots = await db.pool.query<{ l: string }>(`SELECT concat_ws(' | ', lot_external_id, vin, first_seen_at, coalesce(last_seen_at::text, '-'), listed,
      coalesce(last_high_bid::text, '-'), coalesce(outcome, '-'), coalesce(outcome_at::text, '-'), coalesce(outcome_method, '-'),
      coalesce(previous_lot_external_id, '-'), relist_count) AS l FROM public.lots ORDER BY lot_external_id`);
  const files = await db.pool.query<{ f: string }>(`SELECT concat_ws(' | ', substr(path, length(path) - 17), snapshot_at, snapshot_rule, partial::text) AS f
    FROM raw.csv_files ORDER BY snapshot_at`);
  return { events: events.rows.map((r) => r.e), lots: lots.rows.map((r) => r.l), files: files.rows.map((r) => r.f) };
}

async function lot(db: TestDatabase, id: string): Promise<Record<string, unknown>> {
  const { rows } = await db.pool.query(`SELECT lot_external_id, listed, to_char(first_seen_at AT TIME ZONE 'UTC', 'HH24:MI') AS first_seen,
      to_char(last_seen_at AT TIME ZONE 'UTC', 'HH24:MI') AS last_seen, last_high_bid::text, outcome,
      to_char(outcome_at AT TIME ZONE 'UTC', 'HH24:MI') AS outcome_at, outcome_method, previous_lot_external_id, relist_count
    FROM public.lots WHERE lot_external_id = $1`, [id]);
  return rows[0]!;
}

async function eventsOf(db: TestDatabase, where = 'true'): Promise<string[]> {
  const { rows } = await db.pool.query<{ e: string }>(`SELECT concat_ws(' ', to_char(snapshot_at AT TIME ZONE 'UTC', 'HH24:MI'), kind, lot_external_id,
      field, CASE WHEN field IS NOT NULL THEN coalesce(old_value, '∅') END, CASE WHEN field IS NOT NULL THEN coalesce(new_value, '∅') END,
      related_lot_external_id) AS e
    FROM public.lot_events WHERE ${where} ORDER BY snapshot_at, kind, lot_external_id, field`);
  return rows.map((r) => r.e);
}

describe('lot lifecycle', () => {
  let db: TestDatabase;
  let files: string[];
  let inOrder: Awaited<ReturnType<typeof lifecycleOf>>;
  beforeAll(async () => {
    files = await writeScenario(join(dir, 'scenario'));
    db = await createTestDatabase();
    for (const f of files) await ingest(db, f);
    inOrder = await lifecycleOf(db);
  });
  afterAll(async () => { await db.drop(); });

  it('orders files by the window of their path and flags the truncated one, whose absences are no disappearances', async () => {
    expect(inOrder.files.map((f) => f.replace(/^.*?(\d\d\/\d\d\/\d{4}\.csv)/, '$1'))).toEqual([
      '10/17/1200.csv | 2025-10-17 12:00:00+00 | window | false',
      '10/17/1215.csv | 2025-10-17 12:15:00+00 | window | false',
      '10/17/1230.csv | 2025-10-17 12:30:00+00 | window | false',
      '10/17/1245.csv | 2025-10-17 12:45:00+00 | window | false',
      '10/17/1300.csv | 2025-10-17 13:00:00+00 | window | true',
      '10/17/1315.csv | 2025-10-17 13:15:00+00 | window | false',
      '10/17/1330.csv | 2025-10-17 13:30:00+00 | window | false',
    ]);
    const { rows: [p] } = await db.pool.query(`SELECT partial_reason FROM raw.csv_files WHERE partial`);
    expect(p!.partial_reason).toBe('12 rows, below 80 % of the median 46 of the 4 files before it');
    expect(await eventsOf(db, `snapshot_at = '2025-10-17 13:00Z'`)).toEqual([]);
  });

  it('writes the events between consecutive full snapshots', async () => {
    expect(await eventsOf(db, `snapshot_at > '2025-10-17 12:00Z'`)).toEqual([
      '12:15 changed 50000007 auction_at 2025-10-18T14:00:00Z 2025-10-18T15:00:00Z',
      '12:15 changed 50000007 high_bid 100 150.5',
      '12:15 changed 50000007 sale_status Pure Sale On Minimum Bid',
      '12:15 disappeared 50000005',
      '12:15 disappeared 50000006',
      '12:30 appeared 50000008',
      '12:30 changed 50000007 buy_it_now_price ∅ 5000',
      '12:30 changed 50000007 damage_description FRONT END REAR END',
      '12:30 changed 50000007 est_retail_value 9000 9500',
      '12:30 changed 50000007 has_keys YES NO',
      '12:30 changed 50000007 odometer 120000 120001',
      '12:30 changed 50000007 repair_cost 4000 4100.25',
      `12:30 changed 50000007 vin ${vin(7)} ${vin(77)}`,
      '12:30 changed 50000007 yard_number 30 31',
      '12:30 disappeared 50000002',
      '12:30 disappeared 50000003',
      '12:30 reappeared 50000006',
      '12:45 appeared 50000025',
      '12:45 disappeared 50000001',
      '12:45 disappeared 50000004',
      '12:45 disappeared 50000011',
      '12:45 relisted 50000025 50000005',
      '13:15 disappeared 50000025',
      '13:30 appeared 50000035',
      '13:30 relisted 50000035 50000025',
    ]);
    const { rows: [first] } = await db.pool.query(`SELECT count(*)::int AS n, count(DISTINCT kind)::int AS kinds FROM public.lot_events WHERE snapshot_at = '2025-10-17 12:00Z'`);
    expect(first).toEqual({ n: 48, kinds: 1 });
    const { rows: [ev] } = await db.pool.query(`SELECT vin, previous_snapshot_at FROM public.lot_events WHERE kind = 'disappeared' AND lot_external_id = '50000001'`);
    expect(ev).toEqual({ vin: vin(1), previous_snapshot_at: new Date('2025-10-17T12:30:00Z') });
  });

  it('decides each lot’s outcome, and corrects a presumed sale when the VIN is relisted', async () => {
    const none = { previous_lot_external_id: null, relist_count: 0 };
    expect(await lot(db, '50000001')).toMatchObject({ listed: false, first_seen: '12:00', last_seen: '12:30', last_high_bid: '1200.0',
      outcome: 'sold', outcome_at: '12:45', outcome_method: 'left_after_auction', ...none });
    expect(await lot(db, '50000011')).toMatchObject({ outcome: 'sold', outcome_method: 'left_after_auction' });
    expect(await lot(db, '50000002')).toMatchObject({ listed: false, last_seen: '12:15', outcome: 'withdrawn', outcome_at: '12:30', outcome_method: 'left_before_auction' });
    expect(await lot(db, '50000003')).toMatchObject({ outcome: 'withdrawn', outcome_method: 'never_scheduled' });
    expect(await lot(db, '50000004')).toMatchObject({ outcome: 'on_approval', outcome_method: 'left_on_approval', last_high_bid: '3100.0' });
    expect(await lot(db, '50000005')).toMatchObject({ listed: false, last_seen: '12:00', outcome: 'not_sold', outcome_at: '12:45', outcome_method: 'relisted', ...none });
    expect(await lot(db, '50000025')).toMatchObject({ listed: false, first_seen: '12:45', last_seen: '12:45', outcome: 'not_sold', outcome_at: '13:30',
      outcome_method: 'relisted', previous_lot_external_id: '50000005', relist_count: 1 });
    expect(await lot(db, '50000035')).toMatchObject({ listed: true, first_seen: '13:30', last_seen: null, outcome: null, previous_lot_external_id: '50000025', relist_count: 2 });
    expect(await lot(db, '50000006')).toMatchObject({ listed: true, first_seen: '12:00', last_seen: null, outcome: null, outcome_method: null });
    expect(await lot(db, '50000007')).toMatchObject({ listed: true, last_high_bid: '150.5', outcome: null });
    const { rows: [listed] } = await db.pool.query(`SELECT count(*)::int AS n FROM public.lots WHERE listed`);
    expect(listed!.n).toBe(44); // 40 fillers, F, G, H, E3
    // The gauge's figure comes from the files' lot counts, not a count of public.lots.
    const { rows: [gauge] } = await db.pool.query(COUNT_LISTED);
    expect(gauge!.n).toBe(44);
  });

  it('a presumed sale is recorded first and corrected when the relist arrives', async () => {
    const own = await createTestDatabase();
    onTestFinished(() => own.drop());
    for (const f of files.slice(0, 3)) await ingest(own, f);
    expect(await lot(own, '50000005')).toMatchObject({ outcome: 'sold', outcome_at: '12:15', outcome_method: 'left_after_auction' });
    const r = await ingest(own, files[3]!);
    expect(r.lifecycle).toMatchObject({ partial: false, pairs: 1, events: { appeared: 1, disappeared: 3, relisted: 1, reappeared: 0, changed: 0 } });
    expect(r.lifecycle!.outcomes).toEqual({ sold: 2, not_sold: 1, on_approval: 1, withdrawn: 0 });
    expect(await lot(own, '50000005')).toMatchObject({ outcome: 'not_sold', outcome_method: 'relisted' });
  });

  it('gives the same events and outcomes whatever order the files arrive in', async () => {
    for (const seed of [1, 2, 3]) {
      const own = await createTestDatabase();
      try {
        // The duplicate stays last: the same bytes are registered under the first name that brings them.
        const order = [...(seed === 1 ? files.slice(0, -1).reverse() : shuffled(files.slice(0, -1), seed)), files.at(-1)!];
        for (const f of order) await ingest(own, f);
        const label = `order ${order.map((f) => f.slice(-8)).join(' ')}`;
        expect(await lifecycleOf(own), label).toEqual(inOrder);
      } finally {
        await own.drop();
      }
    }
  });

  it('a late file between two stored files replaces their pair with its two', async () => {
    const own = await createTestDatabase();
    onTestFinished(() => own.drop());
    for (const f of [files[0]!, files[2]!]) await ingest(own, f);
    expect(await eventsOf(own, `lot_external_id = '50000006'`)).toEqual(['12:00 appeared 50000006']);
    const r = await ingest(own, files[1]!);
    expect(r.lifecycle!.pairs).toBe(2);
    expect(await eventsOf(own, `lot_external_id = '50000006'`)).toEqual(['12:00 appeared 50000006', '12:15 disappeared 50000006', '12:30 reappeared 50000006']);
  });

  it('`replay --all` computes the same events and outcomes again', async () => {
    const own = await createTestDatabase();
    onTestFinished(() => own.drop());
    for (const f of files) await ingest(own, f);
    await own.pool.query('TRUNCATE public.lot_events, public.lots, public.vehicles, staging.copart_typed');
    const client = await own.pool.connect();
    try {
      expect((await replayFiles(client, 'all')).lifecycle?.pairs).toBe(6);
    } finally {
      client.release();
    }
    expect(await lifecycleOf(own)).toEqual(inOrder);
  });

  it('the application’s view and a lot’s rows across files', async () => {
    const { rows } = await db.pool.query(`SELECT lot_external_id, listed, outcome, previous_lot_external_id, relist_count, next_lot_external_id,
        to_char(last_seen_at AT TIME ZONE 'UTC', 'HH24:MI') AS last_seen
      FROM public.vin_history WHERE vin = $1 ORDER BY first_seen_at`, [vin(5)]);
    expect(rows).toEqual([
      { lot_external_id: '50000005', listed: false, outcome: 'not_sold', previous_lot_external_id: null, relist_count: 0, next_lot_external_id: '50000025', last_seen: '12:00' },
      { lot_external_id: '50000025', listed: false, outcome: 'not_sold', previous_lot_external_id: '50000005', relist_count: 1, next_lot_external_id: '50000035', last_seen: '12:45' },
      { lot_external_id: '50000035', listed: true, outcome: null, previous_lot_external_id: '50000025', relist_count: 2, next_lot_external_id: null, last_seen: '13:30' },
    ]);
    const { rows: versions } = await db.pool.query(`SELECT first_path, payload_jsonb->>'Sale Status' AS status, payload_jsonb->>'Lot number' AS lot
      FROM staging.lot_rows('50000007')`);
    expect(versions.map((v) => [v.first_path.slice(-8), v.status, v.lot])).toEqual([
      ['1200.csv', 'Pure Sale', '50000007'], ['1215.csv', 'On Minimum Bid', '50000007'], ['1230.csv', 'On Minimum Bid', '50000007'],
    ]);
    // The lookup goes through the lot index (the bench times it at 154,000 lots: docs/lifecycle.md).
    const { rows: idx } = await db.pool.query(`SELECT indexdef FROM pg_indexes WHERE schemaname = 'staging' AND tablename = 'copart_typed'`);
    expect(idx.map((r) => r.indexdef)).toContainEqual(expect.stringMatching(/USING btree \(lot_external_id\)$/));
  });

  it('a sequence of real rows: what left, what came, what changed', async () => {
    const own = await createTestDatabase();
    onTestFinished(() => own.drop());
    const text = await readFile(join(FIXTURES, 'real-2025-v3.csv'), 'utf8');
    const [header, ...rows] = text.trimEnd().split('\n');
    const records = (parse(text) as string[][]).slice(1);
    const bidCol = HEADER_V3.indexOf('High Bid =non-vix,Sealed=Vix');
    const lotCol = HEADER_V3.indexOf('Lot number');
    const root = join(dir, 'real');
    const write = async (hhmm: string, lines: string[]): Promise<string> => {
      const path = join(root, '2025/10/17', `${hhmm}.csv`);
      await mkdir(dirname(path), { recursive: true });
      await writeFile(path, `${[header, ...lines].join('\n')}\n`);
      return path;
    };
    // The second file: the first 5 rows gone, 3 rows with a higher bid (the line rewritten in the feed's style).
    const bid = (i: number): number => Number(records[i]![bidCol]);
    const bumped = rows.map((line, i) => i < 10 || i >= 13 ? line
      : records[i]!.map((x, c) => `"${(c === bidCol ? `${bid(i) + 100}.0` : x).replaceAll('"', '""')}"`).join(','));
    await ingest(own, await write('1200', rows.slice(0, 100)));
    const r = await ingest(own, await write('1215', bumped.slice(5)));
    expect(r.lifecycle!.events).toEqual({ appeared: 9, disappeared: 5, reappeared: 0, relisted: 0, changed: 3 });
    const changed = await own.pool.query(`SELECT lot_external_id, field, old_value, new_value FROM public.lot_events WHERE kind = 'changed' ORDER BY 1`);
    expect(changed.rows).toEqual([10, 11, 12].map((i) => ({ lot_external_id: records[i]![lotCol]!, field: 'high_bid',
      old_value: bid(i) === 0 ? null : String(bid(i)), new_value: String(bid(i) + 100) })).sort((a, b) => a.lot_external_id.localeCompare(b.lot_external_id)));
    const gone = await own.pool.query(`SELECT lot_external_id FROM public.lot_events WHERE kind = 'disappeared' ORDER BY 1`);
    expect(gone.rows.map((x) => x.lot_external_id)).toEqual(records.slice(0, 5).map((v) => v[lotCol]).sort());
  });

  it('a duplicate file adds no events', async () => {
    const { rows: [n] } = await db.pool.query(`SELECT count(*)::int AS n FROM raw.csv_files WHERE path LIKE '%/10/18/0000.csv'`);
    expect(n!.n).toBe(0);
  });
});
