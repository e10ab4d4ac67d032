/**
 * The lifecycle's statements (docs/lifecycle.md), fixed texts run by src/lifecycle/updateLifecycle.ts
 * in the ingest's (or replay's) transaction, which holds the payload lock: loads take turns, so the
 * feed order they read cannot change under them.
 */

/** The temp tables of one lifecycle run (ON COMMIT DROP). */
export const LIFECYCLE_TABLES = {
  /** Lots whose events were written or removed: their kinds, relists and state are evaluated again. */
  affected: 'vinops_lc_affected',
  /** The affected lots with every lot of their VINs and of their relist links. */
  lots: 'vinops_lc_lots',
  /** One pair's rows: every typed row of the lots whose content moved between the two files. */
  rows: 'vinops_lc_rows',
  /** One pair's lots: the winning row of each side, tracked fields as canonical text. */
  pair: 'vinops_lc_pair',
} as const;
const T = LIFECYCLE_TABLES;

/** Below this share of the median row count of the files before it, a file is not a full snapshot. */
export const PARTIAL_SHARE = 0.8;
/** How many files before a file that median is taken over. */
export const PARTIAL_WINDOW = 8;
/**
 * A lot that leaves the feed less than this before its auction time is taken to have left at its
 * auction (docs/lifecycle.md#outcome): one feed interval, plus the lag of the feed's own export.
 */
export const AUCTION_GRACE = '30 minutes';

/** The tracked fields of `changed` events, and how each value is rendered as text. */
export const TRACKED_FIELDS: readonly (readonly [field: string, canonical: (t: string) => string])[] = [
  ['sale_status', (t) => `${t}.sale_status`],
  ['high_bid', (t) => `trim_scale(${t}.high_bid)::text`],
  ['auction_at', (t) => `to_char(${t}.auction_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')`],
  ['buy_it_now_price', (t) => `trim_scale(${t}.buy_it_now_price)::text`],
  ['est_retail_value', (t) => `trim_scale(${t}.est_retail_value)::text`],
  ['repair_cost', (t) => `trim_scale(${t}.repair_cost)::text`],
  ['odometer', (t) => `trim_scale(${t}.odometer)::text`],
  ['damage_description', (t) => `${t}.damage_description`],
  ['has_keys', (t) => `${t}.has_keys`],
  ['yard_number', (t) => `${t}.yard_number::text`],
  ['vin', (t) => `${t}.vin_normalized`],
];

export const CREATE_AFFECTED = `CREATE TEMP TABLE ${T.affected} (lot text NOT NULL) ON COMMIT DROP`;

/**
 * Sets a file's snapshot_at from the newest Last Updated Time of its rows when its path gave no
 * window ($1: file_id). Runs after the rows are promoted.
 */
export const SNAPSHOT_FROM_ROWS = `UPDATE raw.csv_files f SET (snapshot_at, snapshot_rule) = (
    SELECT coalesce(max(t.source_updated_at), f.snapshot_at), CASE WHEN max(t.source_updated_at) IS NULL THEN f.snapshot_rule ELSE 'last_updated' END
      FROM raw.file_contents c CROSS JOIN LATERAL unnest(c.payload_hashes) h
      JOIN staging.copart_typed t ON t.payload_hash = h
     WHERE c.file_id = f.file_id)
 WHERE f.file_id = $1 AND f.window_start IS NULL`;

/**
 * Flags, from the file $1 on in feed order, the files whose row count is below PARTIAL_SHARE of the
 * median of the PARTIAL_WINDOW files before each (flags or not: no file's flag depends on another's).
 * A later file's median includes $1, so the next PARTIAL_WINDOW files are judged again. Returns the
 * files whose flag changed.
 */
export const MARK_PARTIAL = `WITH ordered AS (
    SELECT file_id, snapshot_at, sha256, row_count, partial, row_number() OVER (ORDER BY snapshot_at, sha256) AS pos
      FROM raw.csv_files),
  me AS (SELECT pos FROM ordered WHERE file_id = $1),
  judged AS (
    SELECT o.file_id, o.partial, o.row_count, r.median, r.n,
           coalesce(o.row_count < ${PARTIAL_SHARE} * r.median, false) AS now_partial
      FROM ordered o CROSS JOIN me
      CROSS JOIN LATERAL (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY b.row_count) AS median, count(*) AS n
                            FROM ordered b WHERE b.pos < o.pos AND b.pos >= o.pos - ${PARTIAL_WINDOW}) r
     WHERE o.pos BETWEEN me.pos AND me.pos + ${PARTIAL_WINDOW})
  UPDATE raw.csv_files f SET partial = j.now_partial,
         partial_reason = CASE WHEN j.now_partial THEN format('%s rows, below %s of the median %s of the %s files before it',
           j.row_count, '${PARTIAL_SHARE * 100} %', round(j.median::numeric), j.n) END
    FROM judged j WHERE f.file_id = j.file_id AND f.partial IS DISTINCT FROM j.now_partial
  RETURNING f.file_id, f.partial`;

/** Files that left the chain (now partial) but still have events: they are withdrawn. */
export const LIST_WITHDRAWN = `SELECT file_id FROM raw.csv_files WHERE partial AND lifecycle_at IS NOT NULL`;

/**
 * The chain of full snapshots in feed order, and the files whose events are missing or were computed
 * against another predecessor than theirs now. A file whose recorded predecessor is no longer stored
 * (pruned) keeps its events.
 */
const PENDING = `WITH chain AS (
    SELECT file_id, snapshot_at, sha256, headers_jsonb, lifecycle_prev_file_id, lifecycle_prev_snapshot_at, lifecycle_at,
           lag(file_id) OVER w AS prev_id, lag(snapshot_at) OVER w AS prev_snapshot_at, lag(headers_jsonb) OVER w AS prev_headers
      FROM raw.csv_files WHERE NOT partial WINDOW w AS (ORDER BY snapshot_at, sha256))
  SELECT c.file_id, c.snapshot_at, c.sha256, c.headers_jsonb AS headers, c.prev_id, c.prev_snapshot_at, c.prev_headers
    FROM chain c
   WHERE c.lifecycle_at IS NULL
      OR (c.prev_id IS NOT NULL AND c.prev_id IS DISTINCT FROM c.lifecycle_prev_file_id
          -- a pruned predecessor with nothing come between: the events stand
          AND (c.lifecycle_prev_file_id IS NULL OR c.lifecycle_prev_snapshot_at IS NULL
               OR EXISTS (SELECT 1 FROM raw.csv_files p WHERE p.file_id = c.lifecycle_prev_file_id)
               OR c.prev_snapshot_at > c.lifecycle_prev_snapshot_at))
      OR (c.prev_id IS NULL AND c.lifecycle_prev_file_id IS NOT NULL
          AND EXISTS (SELECT 1 FROM raw.csv_files p WHERE p.file_id = c.lifecycle_prev_file_id))`;
/** The pending pairs, oldest first, at most $1 (all when NULL). */
export const LIST_PENDING = `${PENDING}
   ORDER BY c.snapshot_at, c.sha256 LIMIT $1`;
export const COUNT_PENDING = `SELECT count(*)::int AS n FROM (${PENDING}) p`;

/** Removes the events of file $1 (its pair is computed again, or it left the chain). */
export const DELETE_FILE_EVENTS = `WITH gone AS (DELETE FROM public.lot_events WHERE file_id = $1 RETURNING lot_external_id)
  INSERT INTO ${T.affected} (lot) SELECT DISTINCT lot_external_id FROM gone`;

export const FORGET_FILE_PAIR = `UPDATE raw.csv_files SET lifecycle_prev_file_id = NULL, lifecycle_at = NULL, lifecycle_prev_snapshot_at = NULL WHERE file_id = $1`;

/**
 * 1. The pair's rows ($1: earlier file, $2: later file): the payloads in one file and not the other
 * (a steady-state pair: ~1 % of each), their lots, and every typed row of those lots, marked with
 * the side(s) holding it.
 */
export const PAIR_ROWS = `CREATE TEMP TABLE ${T.rows} ON COMMIT DROP AS
  WITH a AS MATERIALIZED (SELECT h FROM raw.file_contents c CROSS JOIN LATERAL unnest(c.payload_hashes) h
                           WHERE c.file_id = $1 AND h IS NOT NULL),
       b AS MATERIALIZED (SELECT h FROM raw.file_contents c CROSS JOIN LATERAL unnest(c.payload_hashes) h
                           WHERE c.file_id = $2 AND h IS NOT NULL),
       moved AS (SELECT coalesce(a.h, b.h) AS h FROM a FULL JOIN b ON a.h = b.h WHERE a.h IS NULL OR b.h IS NULL),
       lots AS (SELECT array_agg(DISTINCT t.lot_external_id) AS ls FROM moved JOIN staging.copart_typed t ON t.payload_hash = moved.h
                 WHERE t.lot_external_id IS NOT NULL),
       cand AS MATERIALIZED (SELECT t.* FROM lots CROSS JOIN staging.copart_typed t WHERE t.lot_external_id = ANY (lots.ls))
  SELECT * FROM (SELECT c.*, c.payload_hash IN (SELECT h FROM a) AS in_prev, c.payload_hash IN (SELECT h FROM b) AS in_cur FROM cand c) x
   WHERE in_prev OR in_cur`;

/** 1, for the first full snapshot ($2; $1 is NULL): every row of the file, all on the later side. */
export const PAIR_ROWS_FIRST = `CREATE TEMP TABLE ${T.rows} ON COMMIT DROP AS
  SELECT t.*, false AS in_prev, true AS in_cur
    FROM (SELECT DISTINCT h FROM raw.file_contents c CROSS JOIN LATERAL unnest(c.payload_hashes) h
           WHERE c.file_id = $2 AND h IS NOT NULL AND $1::uuid IS NULL) b
    JOIN staging.copart_typed t ON t.payload_hash = b.h
   WHERE t.lot_external_id IS NOT NULL`;

/**
 * 1, live, when the earlier file is the one whose addresses the encoder held: what moved is known
 * without unnesting the earlier file. `added`: the load's rows that carry values (not in the earlier
 * file); $1: the earlier file's addresses that no row of this file repeated; `current`: every
 * address of the load. Both are relations of `h`.
 */
export function pairRowsLive(added: string, current: string): string {
  return `CREATE TEMP TABLE ${T.rows} ON COMMIT DROP AS
  WITH removed AS MATERIALIZED (SELECT DISTINCT unnest($1::uuid[]) AS h),
       added AS MATERIALIZED (SELECT DISTINCT h FROM (${added}) x),
       moved AS (SELECT array_agg(h) AS hs FROM (SELECT h FROM removed UNION ALL SELECT h FROM added) m),
       lots AS (SELECT array_agg(DISTINCT t.lot_external_id) AS ls FROM moved CROSS JOIN staging.copart_typed t
                 WHERE t.payload_hash = ANY (moved.hs) AND t.lot_external_id IS NOT NULL),
       cand AS MATERIALIZED (SELECT t.* FROM lots CROSS JOIN staging.copart_typed t WHERE t.lot_external_id = ANY (lots.ls)),
       in_b AS MATERIALIZED (SELECT DISTINCT c.payload_hash AS h FROM cand c JOIN (${current}) b ON b.h = c.payload_hash)
  SELECT * FROM (
    SELECT c.*, c.payload_hash IN (SELECT h FROM removed)
                OR (c.payload_hash IN (SELECT h FROM in_b) AND c.payload_hash NOT IN (SELECT h FROM added)) AS in_prev,
           c.payload_hash IN (SELECT h FROM in_b) AS in_cur
      FROM cand c) x
   WHERE in_prev OR in_cur`;
}

const winner = (side: 'in_prev' | 'in_cur'): string => `(SELECT DISTINCT ON (lot_external_id) * FROM ${T.rows} WHERE ${side}
    ORDER BY lot_external_id, coalesce(source_updated_at, '-infinity'::timestamptz) DESC, payload_hash DESC)`;
/** Damage Description of a row, cut from its payload at $n (its position in that file's payload; NULL when absent). */
const damage = (side: string, n: string): string => `(SELECT nullif(btrim(CASE WHEN q.vals IS NULL THEN split_part(q.vals_text, E'\\x1f', ${n}) ELSE q.vals[${n}] END), '')
           FROM raw.payloads q WHERE q.hash = ${side}.payload_hash AND ${n} IS NOT NULL)`;

/**
 * 2. Per lot of the pair, the winning row of each side (last write wins within a file) and its
 * tracked fields ($1, $2: Damage Description's payload position in the earlier / later file; it is
 * read only for lots whose content differs).
 */
export const PAIR_LOTS = `CREATE TEMP TABLE ${T.pair} ON COMMIT DROP AS
  SELECT coalesce(c.lot_external_id, p.lot_external_id) AS lot, p.payload_hash AS p_hash, c.payload_hash AS c_hash,
         p.vin_normalized AS p_vin, c.vin_normalized AS c_vin,
         CASE WHEN p.payload_hash <> c.payload_hash THEN ARRAY[${TRACKED_FIELDS.map(([f, canon]) => f === 'damage_description' ? damage('p', '$1::int') : canon('p')).join(', ')}] END AS p_vals,
         CASE WHEN p.payload_hash <> c.payload_hash THEN ARRAY[${TRACKED_FIELDS.map(([f, canon]) => f === 'damage_description' ? damage('c', '$2::int') : canon('c')).join(', ')}] END AS c_vals
    FROM ${winner('in_prev')} p FULL JOIN ${winner('in_cur')} c ON c.lot_external_id = p.lot_external_id`;

/**
 * 3. The pair's events, at the later file ($1: its file_id, $2: its snapshot_at, $3: the earlier
 * file's snapshot_at, $4: TRACKED_FIELDS' names). Every start of presence is written `appeared`;
 * FIX_PRESENCE_KINDS then makes all but a lot's first `reappeared`.
 */
export const INSERT_PAIR_EVENTS = `WITH ins AS (
    INSERT INTO public.lot_events (lot_external_id, vin, kind, field, old_value, new_value, file_id, snapshot_at, previous_snapshot_at)
    SELECT x.lot, x.c_vin, 'appeared', NULL, NULL, NULL, $1::uuid, $2::timestamptz, $3::timestamptz FROM ${T.pair} x WHERE x.p_hash IS NULL
    UNION ALL
    SELECT x.lot, x.p_vin, 'disappeared', NULL, NULL, NULL, $1, $2, $3 FROM ${T.pair} x WHERE x.c_hash IS NULL
    UNION ALL
    SELECT x.lot, x.c_vin, 'changed', f.field, f.old_value, f.new_value, $1, $2, $3
      FROM ${T.pair} x CROSS JOIN LATERAL unnest($4::text[], x.p_vals, x.c_vals) AS f(field, old_value, new_value)
     WHERE x.p_vals IS NOT NULL AND f.old_value IS DISTINCT FROM f.new_value
    RETURNING lot_external_id, kind, field),
  -- Another field's change cannot change a listed lot's state, nor a High Bid the core upsert applied
  -- with the lot's row (it keeps last_high_bid then); a stale or late row's bid is evaluated here.
  aff AS (INSERT INTO ${T.affected} (lot) SELECT DISTINCT i.lot_external_id FROM ins i
           WHERE i.kind <> 'changed' OR i.field = 'vin'
              OR (i.field = 'high_bid' AND NOT EXISTS (SELECT 1 FROM ${T.pair} x JOIN public.lots l ON l.lot_external_id = x.lot AND l.payload_hash = x.c_hash
                                                        WHERE x.lot = i.lot_external_id)))
  SELECT count(*)::int AS n, count(*) FILTER (WHERE kind = 'appeared')::int AS starts,
         count(*) FILTER (WHERE kind = 'disappeared')::int AS gone FROM ins`;

/**
 * The first file of an empty database ($1: file_id, $2: snapshot_at): every lot appeared, none can be
 * relisted or back, and the core upsert inserted each lot with the state this gives it. Only a lot
 * with several rows in the file is evaluated (its newest high bid may be another row's).
 */
export const ONLY_FILE_EVENTS = `WITH r AS MATERIALIZED (
    SELECT t.lot_external_id, t.vin_normalized, t.source_updated_at, t.payload_hash
      FROM (SELECT DISTINCT h FROM raw.file_contents c CROSS JOIN LATERAL unnest(c.payload_hashes) h
             WHERE c.file_id = $1 AND h IS NOT NULL) b
      JOIN staging.copart_typed t ON t.payload_hash = b.h
     WHERE t.lot_external_id IS NOT NULL),
  ins AS (
    INSERT INTO public.lot_events (lot_external_id, vin, kind, file_id, snapshot_at)
    SELECT DISTINCT ON (r.lot_external_id) r.lot_external_id, r.vin_normalized, 'appeared', $1::uuid, $2::timestamptz FROM r
     ORDER BY r.lot_external_id, coalesce(r.source_updated_at, '-infinity'::timestamptz) DESC, r.payload_hash DESC
    RETURNING 1),
  aff AS (INSERT INTO ${T.affected} (lot) SELECT lot_external_id FROM r GROUP BY lot_external_id HAVING count(*) > 1)
  SELECT count(*)::int AS n FROM ins`;

/** Whether the database holds no other file and no event: ONLY_FILE_EVENTS applies. */
export const IS_ONLY_FILE = `SELECT NOT EXISTS (SELECT 1 FROM raw.csv_files WHERE file_id <> $1) AND NOT EXISTS (SELECT 1 FROM public.lot_events) AS only`;

export const RECORD_FILE_PAIR = `UPDATE raw.csv_files SET lifecycle_prev_file_id = $2, lifecycle_at = now(),
    lifecycle_prev_snapshot_at = (SELECT snapshot_at FROM raw.csv_files WHERE file_id = $2) WHERE file_id = $1`;

export const DROP_PAIR_TABLES = `DROP TABLE ${T.rows}, ${T.pair}`;

/**
 * A lot's first start of presence in feed order is `appeared`, every later one `reappeared`; only a
 * lot with more than one start, or whose one start is `reappeared`, can be wrong.
 */
export const FIX_PRESENCE_KINDS = `UPDATE public.lot_events e SET kind = x.want
    FROM (SELECT v.event_id, v.kind,
                 CASE WHEN row_number() OVER (PARTITION BY v.lot_external_id ORDER BY v.snapshot_at, f.sha256) = 1 THEN 'appeared' ELSE 'reappeared' END AS want
            FROM public.lot_events v LEFT JOIN raw.csv_files f USING (file_id)
           WHERE v.kind IN ('appeared', 'reappeared')
             AND v.lot_external_id IN (SELECT s.lot_external_id FROM public.lot_events s
                                        WHERE s.kind IN ('appeared', 'reappeared') AND s.lot_external_id = ANY ((SELECT array_agg(DISTINCT lot) FROM ${T.affected})::text[])
                                        GROUP BY s.lot_external_id HAVING count(*) > 1 OR bool_or(s.kind = 'reappeared'))) x
   WHERE e.event_id = x.event_id AND x.kind <> x.want`;

/**
 * The lots to evaluate again: the affected ones, every other lot of their VINs, and the lots their
 * relist events link them to (a lot whose VIN changed leaves its earlier relist partner behind).
 * `shared`: its VIN has another lot (only then can it relist one).
 */
export const COLLECT_LOTS = `CREATE TEMP TABLE ${T.lots} ON COMMIT DROP AS
  WITH RECURSIVE a AS MATERIALIZED (SELECT l.lot_external_id AS lot, l.vin FROM public.lots l WHERE l.lot_external_id = ANY ((SELECT array_agg(DISTINCT lot) FROM ${T.affected})::text[])),
       kin AS MATERIALIZED (SELECT o.lot_external_id AS lot, o.vin FROM public.lots o
                             WHERE o.vin = ANY ((SELECT array_agg(DISTINCT vin) FROM a)::text[])
                               AND o.lot_external_id NOT IN (SELECT lot FROM a)),
       linked AS (SELECT e.related_lot_external_id AS lot FROM public.lot_events e
                   WHERE e.kind = 'relisted' AND e.lot_external_id = ANY ((SELECT array_agg(lot) FROM a)::text[])
                  UNION SELECT e.lot_external_id FROM public.lot_events e
                   WHERE e.kind = 'relisted' AND e.related_lot_external_id = ANY ((SELECT array_agg(lot) FROM a)::text[])),
       -- Every lot downstream in a relist chain through them: their relist counts follow.
       down (lot) AS (SELECT lot FROM a UNION SELECT lot FROM linked
                      UNION SELECT e.lot_external_id FROM down d JOIN public.lot_events e ON e.related_lot_external_id = d.lot AND e.kind = 'relisted'),
       more AS (SELECT lot, vin FROM kin
                UNION SELECT l.lot_external_id, l.vin FROM down k JOIN public.lots l ON l.lot_external_id = k.lot)
  SELECT a.lot, a.vin, a.vin IN (SELECT vin FROM kin UNION ALL SELECT vin FROM a GROUP BY vin HAVING count(*) > 1) AS shared FROM a
  UNION ALL
  SELECT m.lot, m.vin, true FROM more m WHERE m.lot NOT IN (SELECT lot FROM a)`;

export const DELETE_RELISTS = `DELETE FROM public.lot_events WHERE kind = 'relisted' AND lot_external_id = ANY ((SELECT array_agg(lot) FROM ${T.lots})::text[])`;

/**
 * A lot's first appearance is a relist when another lot of its VIN had left the feed by then (its
 * latest presence event at or before that snapshot is `disappeared`); the most recent such lot is
 * the one it relists.
 */
export const INSERT_RELISTS = `WITH ins AS (
    INSERT INTO public.lot_events (lot_external_id, vin, kind, related_lot_external_id, file_id, snapshot_at, previous_snapshot_at)
    SELECT x.lot, x.vin, 'relisted', y.lot, a.file_id, a.snapshot_at, a.previous_snapshot_at
      FROM ${T.lots} x
      JOIN public.lot_events a ON a.lot_external_id = x.lot AND a.kind = 'appeared' AND x.shared
      CROSS JOIN LATERAL (
        SELECT o.lot_external_id AS lot
          FROM public.lots o
          CROSS JOIN LATERAL (SELECT e.kind, e.snapshot_at FROM public.lot_events e
                               WHERE e.lot_external_id = o.lot_external_id AND e.snapshot_at <= a.snapshot_at
                                 AND e.kind IN ('appeared', 'reappeared', 'disappeared')
                               ORDER BY e.snapshot_at DESC LIMIT 1) s
         WHERE o.vin = x.vin AND o.lot_external_id <> x.lot AND s.kind = 'disappeared'
         ORDER BY s.snapshot_at DESC, o.lot_external_id DESC LIMIT 1) y
     WHERE x.vin IS NOT NULL
    RETURNING 1)
  SELECT count(*)::int AS n FROM ins`;

/**
 * Each lot's presence, relist chain and outcome from its events ($1: AUCTION_GRACE). Lots without
 * events (seen only in partial files) keep what they have. Writes only lots whose values change;
 * returns the outcome each changed lot had and has.
 */
export const REFRESH_LOTS = `WITH RECURSIVE
  links AS (SELECT lot_external_id AS lot, related_lot_external_id AS prev FROM public.lot_events
             WHERE kind = 'relisted' AND lot_external_id = ANY ((SELECT array_agg(lot) FROM ${T.lots})::text[])),
  chain (lot, n) AS (
    SELECT x.lot, CASE WHEN k.prev IS NULL THEN 0
                       ELSE coalesce((SELECT o.relist_count FROM public.lots o WHERE o.lot_external_id = k.prev), 0) + 1 END
      FROM ${T.lots} x LEFT JOIN links k ON k.lot = x.lot
     WHERE k.prev IS NULL OR k.prev NOT IN (SELECT lot FROM ${T.lots})
    UNION ALL
    SELECT k.lot, c.n + 1 FROM chain c JOIN links k ON k.prev = c.lot),
  presence AS (
    SELECT e.lot_external_id AS lot,
           min(e.snapshot_at) FILTER (WHERE e.kind = 'appeared') AS first_seen,
           (array_agg(e.kind ORDER BY e.snapshot_at DESC))[1] AS kind,
           max(e.snapshot_at) AS snapshot_at,
           (array_agg(e.previous_snapshot_at ORDER BY e.snapshot_at DESC))[1] AS previous_snapshot_at
      FROM public.lot_events e
     WHERE e.lot_external_id = ANY ((SELECT array_agg(lot) FROM ${T.lots})::text[]) AND e.kind IN ('appeared', 'reappeared', 'disappeared')
     GROUP BY e.lot_external_id),
  relists AS (
    SELECT n.related_lot_external_id AS lot, array_agg(n.snapshot_at) AS at FROM public.lot_events n
     WHERE n.kind = 'relisted' AND n.related_lot_external_id = ANY ((SELECT array_agg(lot) FROM ${T.lots})::text[])
     GROUP BY n.related_lot_external_id),
  bids AS (
    SELECT DISTINCT ON (t.lot_external_id) t.lot_external_id AS lot, t.high_bid FROM staging.copart_typed t
     WHERE t.lot_external_id = ANY ((SELECT array_agg(lot) FROM ${T.lots})::text[]) AND t.high_bid IS NOT NULL
     ORDER BY t.lot_external_id, coalesce(t.source_updated_at, '-infinity'::timestamptz) DESC, t.payload_hash DESC),
  state AS (
    SELECT x.lot, p.first_seen, p.kind AS presence, p.snapshot_at AS presence_at, p.previous_snapshot_at AS presence_prev,
           k.prev AS previous_lot, c.n AS relist_count,
           (SELECT min(r) FROM unnest(rl.at) r WHERE r >= p.snapshot_at) AS relisted_at, b.high_bid
      FROM ${T.lots} x
      LEFT JOIN links k ON k.lot = x.lot
      LEFT JOIN chain c ON c.lot = x.lot
      LEFT JOIN presence p ON p.lot = x.lot
      LEFT JOIN relists rl ON rl.lot = x.lot
      LEFT JOIN bids b ON b.lot = x.lot),
  judged AS (
    SELECT s.*, l.lot_id,
           CASE WHEN s.presence IS NULL OR s.presence <> 'disappeared' THEN NULL
                WHEN s.relisted_at IS NOT NULL THEN 'relisted'
                WHEN l.auction_at IS NULL THEN 'never_scheduled'
                WHEN s.presence_at < l.auction_at - $1::interval THEN 'left_before_auction'
                WHEN l.sale_status = 'On Approval' THEN 'left_on_approval'
                ELSE 'left_after_auction' END AS method
      FROM state s JOIN public.lots l ON l.lot_external_id = s.lot),
  target AS (
    SELECT j.lot_id, j.presence,
           -- No presence event: a lot seen only in partial files (or in files whose pairs are pending).
           j.first_seen AS first_seen_at,
           CASE WHEN j.presence = 'disappeared' THEN j.presence_prev END AS last_seen_at,
           coalesce(j.presence <> 'disappeared', false) AS listed,
           j.high_bid AS last_high_bid,
           CASE j.method WHEN 'relisted' THEN 'not_sold' WHEN 'never_scheduled' THEN 'withdrawn'
                WHEN 'left_before_auction' THEN 'withdrawn' WHEN 'left_on_approval' THEN 'on_approval' WHEN 'left_after_auction' THEN 'sold' END AS outcome,
           CASE WHEN j.method = 'relisted' THEN j.relisted_at WHEN j.method IS NOT NULL THEN j.presence_at END AS outcome_at,
           j.method AS outcome_method,
           j.previous_lot, coalesce(j.relist_count, 0) AS relist_count, l.outcome AS was
      FROM judged j JOIN public.lots l ON l.lot_id = j.lot_id)
  UPDATE public.lots l SET first_seen_at = t.first_seen_at, last_seen_at = t.last_seen_at, listed = t.listed,
         last_high_bid = t.last_high_bid, outcome = t.outcome, outcome_at = t.outcome_at, outcome_method = t.outcome_method,
         previous_lot_external_id = t.previous_lot, relist_count = t.relist_count, updated_at = now()
    FROM target t
   WHERE l.lot_id = t.lot_id
     AND (l.first_seen_at, l.last_seen_at, l.listed, l.last_high_bid, l.outcome, l.outcome_at, l.outcome_method,
          l.previous_lot_external_id, l.relist_count)
         IS DISTINCT FROM
         (t.first_seen_at, t.last_seen_at, t.listed, t.last_high_bid, t.outcome, t.outcome_at, t.outcome_method,
          t.previous_lot, t.relist_count)
  RETURNING t.was, l.outcome`;

/** Events recorded at the files $1, by kind. */
export const COUNT_FILE_EVENTS = `SELECT kind, count(*)::int AS n FROM public.lot_events WHERE file_id = ANY ($1::uuid[]) GROUP BY kind`;

/**
 * The lots of file $1 from its pair: those of the earlier file ($2) plus the starts ($3) less the
 * departures ($4); counted from its rows when the earlier file's count is unknown.
 */
export const RECORD_LOT_COUNT = `UPDATE raw.csv_files f SET lot_count = coalesce(
    (SELECT p.lot_count + $3 - $4 FROM raw.csv_files p WHERE p.file_id = $2 AND p.lot_count IS NOT NULL),
    CASE WHEN $2::uuid IS NULL THEN $3 END,
    (SELECT count(DISTINCT t.lot_external_id)::int FROM raw.file_contents c CROSS JOIN LATERAL unnest(c.payload_hashes) h
       JOIN staging.copart_typed t ON t.payload_hash = h WHERE c.file_id = $1))
  WHERE f.file_id = $1`;

/** Lots present in the newest full snapshot: its lot count, else counted in public.lots. */
export const COUNT_LISTED = `SELECT coalesce((SELECT lot_count FROM raw.csv_files WHERE NOT partial ORDER BY snapshot_at DESC, sha256 DESC LIMIT 1),
    (SELECT count(*)::int FROM public.lots WHERE listed)) AS n`;
