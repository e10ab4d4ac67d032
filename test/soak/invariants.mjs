/**
 * What must hold in the database at any moment (`consistency`) and once the daemon is done
 * (`exactlyOnce`). Each returns a list of problems; empty means it holds.
 */

/** Holds after any crash: no registry row without its rows, no row or payload without its owner. */
export async function consistency(db) {
  const problems = [];
  // Statistics first: after a killed load rolled back 300,000 inserts, a table's stale estimate can
  // plan the anti-joins below as nested loops over sequential scans that run for hours.
  await db.query('ANALYZE raw.csv_files, raw.file_contents, raw.payloads, staging.copart_typed');
  const q = async (label, sql) => {
    const { rows } = await db.query(sql);
    if (rows[0].n !== 0) problems.push(`${label}: ${rows[0].n}`);
  };
  await q('registered files without their rows (raw.file_contents)',
    `SELECT count(*)::int AS n FROM raw.csv_files f WHERE NOT EXISTS (SELECT 1 FROM raw.file_contents c WHERE c.file_id = f.file_id)`);
  await q('files whose declared row count differs from the rows stored (audit.v_ingest_count)',
    `SELECT count(*)::int AS n FROM audit.v_ingest_count WHERE declared_rows <> actual_rows`);
  await q('row addresses without their payload',
    `SELECT count(*)::int AS n FROM (SELECT DISTINCT h FROM raw.file_contents c, unnest(c.payload_hashes) h WHERE h IS NOT NULL) r
      WHERE NOT EXISTS (SELECT 1 FROM raw.payloads p WHERE p.hash = r.h)`);
  await q('payloads no file refers to (left by an interrupted load)',
    `SELECT (SELECT count(*) FROM raw.payloads)::int
          - (SELECT count(DISTINCT h) FROM raw.file_contents c, unnest(c.payload_hashes) h WHERE h IS NOT NULL)::int AS n`);
  await q('payloads without their typed staging row',
    `SELECT count(*)::int AS n FROM raw.payloads p WHERE NOT EXISTS (SELECT 1 FROM staging.copart_typed t WHERE t.payload_hash = p.hash)`);
  await q('ingested runs without their file',
    `SELECT count(*)::int AS n FROM audit.etl_runs r WHERE r.outcome = 'ingested' AND NOT EXISTS (SELECT 1 FROM raw.csv_files f WHERE f.file_id = r.file_id)`);
  return problems;
}

/**
 * Holds once the daemon has finished: every file of `files` ({ path, sha256, rows }) stored exactly
 * once with all its rows, one ingested run each, nothing left in the queue, plus consistency().
 * A kill after the file's COMMIT but before the queue entry was updated makes the retry find its own
 * bytes: a `duplicate` run (and queue state) pointing at that same file is allowed and counted.
 */
export async function exactlyOnce(db, files) {
  const problems = await consistency(db);
  let selfDuplicates = 0;
  for (const f of files) {
    const { rows } = await db.query(
      `SELECT f.file_id, f.sha256, f.row_count, f.parse_error_count, v.actual_rows FROM raw.csv_files f JOIN audit.v_ingest_count v USING (file_id)
        WHERE f.path = $1`, [f.path]);
    if (rows.length !== 1) {
      problems.push(`${f.path}: stored ${rows.length} times`);
      continue;
    }
    const r = rows[0];
    if (r.sha256 !== f.sha256) problems.push(`${f.path}: stored sha256 ${r.sha256}, file ${f.sha256}`);
    if (r.row_count !== f.rows || r.actual_rows !== f.rows) problems.push(`${f.path}: ${r.row_count} declared, ${r.actual_rows} stored, file has ${f.rows}`);
    if (r.parse_error_count !== 0) problems.push(`${f.path}: ${r.parse_error_count} parse errors`);
    const runs = await db.query(`SELECT outcome, file_id FROM audit.etl_runs WHERE path = $1 AND outcome IN ('ingested', 'duplicate')`, [f.path]);
    const ingested = runs.rows.filter((x) => x.outcome === 'ingested');
    if (ingested.length !== 1) problems.push(`${f.path}: ${ingested.length} ingested runs`);
    for (const x of runs.rows) if (x.file_id !== r.file_id) problems.push(`${f.path}: a ${x.outcome} run points at file ${x.file_id}`);
    selfDuplicates += runs.rows.length - ingested.length;
    const q = await db.query(`SELECT state, file_id FROM raw.file_queue WHERE path = $1`, [f.path]);
    for (const x of q.rows) {
      if (!['ingested', 'duplicate'].includes(x.state) || x.file_id !== r.file_id) problems.push(`${f.path}: queue entry ${x.state}, file ${x.file_id}`);
    }
  }
  const queue = await db.query(`SELECT state, count(*)::int AS n FROM raw.file_queue WHERE state NOT IN ('ingested', 'duplicate') GROUP BY state`);
  for (const r of queue.rows) problems.push(`queue: ${r.n} file(s) ${r.state}`);
  return Object.assign(problems, { selfDuplicates });
}
