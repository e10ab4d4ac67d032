import client from 'prom-client';
import type { DatabaseCheck } from './health.js';
import type { FileOutcome } from '../queue/worker.js';
import { EVENT_KINDS, OUTCOMES } from '../lifecycle/updateLifecycle.js';
import { FETCH_OUTCOMES, type FetchResult } from '../fetch/fetchWindow.js';

/** What the scrape-time gauges read: the daemon's own state and one bounded look at the database. */
export interface MetricsSource {
  checkDatabase(): Promise<DatabaseCheck>;
  /** Seconds the oldest attempt in flight has been running; 0 when idle. */
  longestRunningSeconds(): number;
}

/** Whole-file ingest time: 0.1 s … 10 min (a 96 MB file takes 5–20 s). */
export const FILE_DURATION_BUCKETS: readonly number[] = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600];
/** One window's download: 0.1 s (a 304) … 10 min (a slow 96 MB body, retries). */
export const FETCH_DURATION_BUCKETS: readonly number[] = [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];
/** File modified → committed: seconds (settle time) to a day (a backlog after an outage). */
export const LAG_BUCKETS: readonly number[] = [5, 10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 43200, 86400];

export const FILE_OUTCOMES = ['ingested', 'duplicate', 'failed', 'rejected'] as const;
export const QUEUE_STATES = ['pending', 'running', 'failed'] as const;
export const UNKNOWN_FIELDS = ['vin', 'lot'] as const;
export const UPSERT_TABLES = ['lots', 'vehicles'] as const;
/** prom-client defaults that are gauges with a counter's `_total` suffix. */
export const LINT_FAILING_DEFAULTS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'] as const;
export const UPSERT_ACTIONS = ['inserted', 'updated', 'unchanged', 'stale'] as const;

/**
 * The Prometheus metrics of one daemon, in their own Registry (the default process and Node.js
 * metrics included, under their standard names). Events (a file outcome) are counted by
 * recordOutcome(); state (queue depth, database up, the file in flight) is read in collect() at
 * scrape time. Labels take only the fixed values above; never a path.
 */
export class Metrics {
  readonly registry = new client.Registry();
  private readonly files: client.Counter<'outcome'>;
  private readonly rows: client.Counter;
  private readonly bytes: client.Counter;
  private readonly parseErrors: client.Counter;
  private readonly duration: client.Histogram;
  private readonly rowsPerSecond: client.Gauge;
  private readonly unknownRatio: client.Gauge<'field'>;
  private readonly lag: client.Histogram;
  private readonly upserts: client.Counter<'table' | 'action'>;
  private readonly vinConflicts: client.Counter;
  private readonly unknownSaleStatus: client.Counter;
  private readonly lotEvents: client.Counter<'kind'>;
  private readonly lotOutcomes: client.Counter<'outcome'>;
  private readonly partialFiles: client.Counter;
  private readonly lotsListed: client.Gauge;
  private readonly fetches: client.Counter<'outcome'>;
  private readonly fetchDuration: client.Histogram;
  private readonly lastFetchSuccess: client.Gauge;
  private readonly fetchEnabled: client.Gauge;
  private readonly archived: client.Counter;
  private readonly archivedBytes: client.Counter;
  private readonly pruned: client.Counter<'where'>;
  private readonly prunedBytes: client.Counter<'where'>;
  private readonly pruneErrors: client.Counter;
  private readonly lastPrune: client.Gauge;
  private readonly lastPruneSuccess: client.Gauge;
  private readonly retentionEnabled: client.Gauge;
  /** Epoch seconds of the last success seen here or in the database; kept while the database is down. */
  private lastSuccess = 0;

  constructor(source: MetricsSource, options: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    this.files = new client.Counter({
      name: 'vinops_etl_files_total', registers, labelNames: ['outcome'],
      help: 'File attempts by outcome: ingested, duplicate (same bytes already stored), rejected (not a loadable feed file), failed (an error; retried until maxAttempts).',
    });
    for (const outcome of FILE_OUTCOMES) this.files.inc({ outcome }, 0);
    this.rows = new client.Counter({ name: 'vinops_etl_rows_total', registers, help: 'Data rows stored (ingested files).' });
    this.bytes = new client.Counter({ name: 'vinops_etl_bytes_total', registers, help: 'Bytes of the files ingested.' });
    this.parseErrors = new client.Counter({
      name: 'vinops_etl_parse_errors_total', registers, help: 'Records that could not be parsed, stored in audit.parse_errors.',
    });
    this.duration = new client.Histogram({
      name: 'vinops_etl_file_duration_seconds', registers, buckets: [...FILE_DURATION_BUCKETS],
      help: 'Time to ingest one file, from open to commit (ingested, duplicate and rejected files).',
    });
    this.rowsPerSecond = new client.Gauge({ name: 'vinops_etl_rows_per_second', registers, help: 'Rows per second of the last ingested file.' });
    this.unknownRatio = new client.Gauge({
      name: 'vinops_etl_unknown_ratio', registers, labelNames: ['field'],
      help: 'Share (0..1) of the rows of the last ingested file without a VIN (field="vin") or lot number (field="lot").',
    });
    this.lag = new client.Histogram({
      name: 'vinops_etl_lag_seconds', registers, buckets: [...LAG_BUCKETS],
      help: 'From the file\'s modification time to the commit of its rows (ingested files).',
    });

    this.upserts = new client.Counter({
      name: 'vinops_etl_upserts_total', registers, labelNames: ['table', 'action'],
      help: 'Core upsert of ingested files, per lot or vehicle whose content was new in the file: inserted, updated, unchanged (an empty value never erases), stale (older by Last Updated Time than what is stored, or than another row of the lot in the same file; in audit.upsert_conflicts).',
    });
    for (const table of UPSERT_TABLES) for (const action of UPSERT_ACTIONS) this.upserts.inc({ table, action }, 0);
    this.vinConflicts = new client.Counter({
      name: 'vinops_etl_vin_conflicts_total', registers,
      help: 'VIN conflicts recorded in audit.vin_conflicts: a lot whose VIN changed, a VIN seen in another raw form.',
    });

    this.unknownSaleStatus = new client.Counter({
      name: 'vinops_etl_unknown_sale_status_total', registers,
      help: 'Lots applied to public.lots whose Sale Status is not Pure Sale, On Minimum Bid or On Approval (kept as in the file; audit.v_sale_status).',
    });

    this.lotEvents = new client.Counter({
      name: 'vinops_etl_lot_events_total', registers, labelNames: ['kind'],
      help: 'Lot events written to public.lot_events by kind (a pair computed again counts its events again).',
    });
    for (const kind of EVENT_KINDS) this.lotEvents.inc({ kind }, 0);
    this.lotOutcomes = new client.Counter({
      name: 'vinops_etl_lot_outcomes_total', registers, labelNames: ['outcome'],
      help: 'Lots that took an outcome (sold, not_sold, on_approval, withdrawn), a correction included.',
    });
    for (const outcome of OUTCOMES) this.lotOutcomes.inc({ outcome }, 0);
    this.partialFiles = new client.Counter({
      name: 'vinops_etl_partial_files_total', registers,
      help: 'Ingested files flagged as not a full snapshot (too few rows): stored, their absences not taken as disappearances.',
    });
    this.lotsListed = new client.Gauge({ name: 'vinops_etl_lots_listed', registers, help: 'Lots present in the newest full snapshot, as of the last file ingested here.' });

    this.fetches = new client.Counter({
      name: 'vinops_etl_fetches_total', registers, labelNames: ['outcome'],
      help: 'Downloads of the feed by outcome (downloaded, unchanged, not_modified, blocked, failed); one per window fetched here.',
    });
    for (const outcome of FETCH_OUTCOMES) this.fetches.inc({ outcome }, 0);
    this.fetchDuration = new client.Histogram({
      name: 'vinops_etl_fetch_duration_seconds', registers, buckets: [...FETCH_DURATION_BUCKETS],
      help: 'One window\'s download, retries within the window included.',
    });
    this.lastFetchSuccess = new client.Gauge({
      name: 'vinops_etl_last_fetch_success_timestamp_seconds', registers,
      help: 'Unix time of the last fetch that downloaded the feed or found it unchanged here; 0 when none yet.',
    });
    this.fetchEnabled = new client.Gauge({ name: 'vinops_etl_fetch_enabled', registers, help: '1 when this daemon fetches the feed (fetchUrl set), else 0.' });
    this.archived = new client.Counter({ name: 'vinops_etl_archived_files_total', registers, help: 'Stored files written to the archive target and verified by reading them back.' });
    this.archivedBytes = new client.Counter({ name: 'vinops_etl_archived_bytes_total', registers, help: 'Compressed bytes written to the archive target (verified objects).' });
    this.pruned = new client.Counter({ name: 'vinops_etl_pruned_files_total', registers, labelNames: ['where'], help: 'Files removed by retention, by where from (raw_tree, database).' });
    this.prunedBytes = new client.Counter({ name: 'vinops_etl_pruned_bytes_total', registers, labelNames: ['where'], help: 'Bytes of the files removed by retention, by where from (raw_tree; database: the original files\' sizes).' });
    for (const where of ['raw_tree', 'database']) {
      this.pruned.inc({ where }, 0);
      this.prunedBytes.inc({ where }, 0);
    }
    this.pruneErrors = new client.Counter({ name: 'vinops_etl_prune_errors_total', registers, help: 'Files retention had to keep because archiving or deleting them failed, and runs that failed as a whole.' });
    this.lastPrune = new client.Gauge({ name: 'vinops_etl_last_prune_timestamp_seconds', registers, help: 'Unix time the last retention run ended; 0 when none yet.' });
    this.lastPruneSuccess = new client.Gauge({ name: 'vinops_etl_last_prune_success_timestamp_seconds', registers, help: 'Unix time of the last retention run without an error; 0 when none yet.' });
    this.retentionEnabled = new client.Gauge({ name: 'vinops_etl_retention_enabled', registers, help: '1 when this daemon runs retention (rawRetentionDays or dbRetentionDays set), else 0.' });

    // State, read at scrape time. The three database gauges share the look in flight (DaemonStatus).
    new client.Gauge({
      name: 'vinops_etl_queue_files', registers, labelNames: ['state'],
      help: 'Files in the queue by state (all daemons on this database); absent while the database does not answer.',
      async collect() {
        const check = await source.checkDatabase();
        this.reset();
        if (check.queue === undefined) return;
        for (const state of QUEUE_STATES) this.set({ state }, check.queue[state]);
      },
    });
    new client.Gauge({
      name: 'vinops_etl_db_up', registers, help: '1 when the database answered the scrape\'s check in time, else 0.',
      async collect() {
        this.set((await source.checkDatabase()).up ? 1 : 0);
      },
    });
    const seen = (epochSeconds: number): number => (this.lastSuccess = Math.max(this.lastSuccess, epochSeconds));
    new client.Gauge({
      name: 'vinops_etl_last_success_timestamp_seconds', registers,
      help: 'Unix time of the last file ingested (a duplicate stores nothing and does not count), by this process or recorded in the database by anyone; 0 when none yet.',
      async collect() {
        const at = (await source.checkDatabase()).lastSuccessAt;
        this.set(seen(at ? at.getTime() / 1000 : 0));
      },
    });
    new client.Gauge({
      name: 'vinops_etl_file_running_seconds', registers,
      help: 'How long the oldest file attempt in flight in this process has been running; 0 when idle.',
      collect() {
        this.set(source.longestRunningSeconds());
      },
    });

    if (options.defaultMetrics !== false) {
      client.collectDefaultMetrics({ register: this.registry });
      // Gauges named like counters fail `promtool check metrics`; sum() of their per-type siblings
      // (nodejs_active_handles{type}, …) gives the same totals.
      for (const name of LINT_FAILING_DEFAULTS) this.registry.removeSingleMetric(name);
    }
  }

  /** Counts one finished attempt (Worker.onOutcome). Never throws: metrics must not fail a file. */
  recordOutcome(o: FileOutcome, now = Date.now()): void {
    try {
      if (o.kind === 'failed') {
        if (!o.aborted) this.files.inc({ outcome: 'failed' }); // a drain roll-back is no failure; the attempt is not counted
        return;
      }
      const r = o.result;
      this.files.inc({ outcome: r.outcome });
      this.parseErrors.inc(r.parseErrors);
      this.duration.observe(r.seconds);
      if (r.outcome !== 'ingested') return;
      this.lastSuccess = Math.max(this.lastSuccess, now / 1000);
      this.rows.inc(r.dataRows);
      this.bytes.inc(r.bytes);
      this.rowsPerSecond.set(r.rowsPerSecond);
      this.unknownRatio.set({ field: 'vin' }, (r.vinUnknownPct ?? 0) / 100);
      this.unknownRatio.set({ field: 'lot' }, (r.lotUnknownPct ?? 0) / 100);
      this.lag.observe(Math.max(0, (now - o.file.mtime.getTime()) / 1000));
      if (r.upserts !== undefined) {
        for (const table of UPSERT_TABLES) for (const action of UPSERT_ACTIONS) this.upserts.inc({ table, action }, r.upserts[table][action]);
        this.vinConflicts.inc(r.upserts.vinConflicts);
        this.unknownSaleStatus.inc(r.upserts.unknownSaleStatus);
      }
      if (r.lifecycle !== undefined) {
        for (const kind of EVENT_KINDS) this.lotEvents.inc({ kind }, r.lifecycle.events[kind]);
        for (const outcome of OUTCOMES) this.lotOutcomes.inc({ outcome }, r.lifecycle.outcomes[outcome]);
        if (r.lifecycle.partial) this.partialFiles.inc();
        this.lotsListed.set(r.lifecycle.listed);
      }
    } catch {
      // A metric cannot take a value (a bug): the outcome is in the log and the database anyway.
    }
  }

  /** Counts one window's fetch (Fetcher.onResult). */
  recordFetch(r: FetchResult, now = Date.now()): void {
    if (r.outcome === 'skipped') return;
    this.fetches.inc({ outcome: r.outcome });
    this.fetchDuration.observe(r.seconds);
    if (r.outcome === 'downloaded' || r.outcome === 'unchanged' || r.outcome === 'not_modified') this.lastFetchSuccess.set(now / 1000);
  }

  /** A fetch that could not run at all (its ledger unreachable). */
  recordFetchError(): void {
    this.fetches.inc({ outcome: 'failed' });
  }

  /** Fetching on or off; on, the last success recorded in the database, so a restart does not look like an hour without one. */
  setFetchEnabled(on: boolean, lastSuccessAt: Date | null = null): void {
    this.fetchEnabled.set(on ? 1 : 0);
    if (lastSuccessAt !== null) this.lastFetchSuccess.set(lastSuccessAt.getTime() / 1000);
  }

  /** One retention run's figures (Pruner.onReport); a run that failed as a whole is one error. */
  recordPrune(r: { archivedFiles: number; archivedBytes: number; deletedFiles: number; deletedBytes: number; errors: number;
    database?: { files: number; bytes: number; archivedFiles: number; archivedBytes: number } } | Error, now = Date.now()): void {
    this.lastPrune.set(now / 1000);
    if (r instanceof Error) { this.pruneErrors.inc(); return; }
    this.archived.inc(r.archivedFiles);
    this.archivedBytes.inc(r.archivedBytes);
    this.pruned.inc({ where: 'raw_tree' }, r.deletedFiles);
    this.prunedBytes.inc({ where: 'raw_tree' }, r.deletedBytes);
    if (r.database !== undefined) {
      this.archived.inc(r.database.archivedFiles);
      this.archivedBytes.inc(r.database.archivedBytes);
      this.pruned.inc({ where: 'database' }, r.database.files);
      this.prunedBytes.inc({ where: 'database' }, r.database.bytes);
    }
    this.pruneErrors.inc(r.errors);
    if (r.errors === 0) this.lastPruneSuccess.set(now / 1000);
  }

  setRetentionEnabled(on: boolean): void {
    this.retentionEnabled.set(on ? 1 : 0);
  }

  /** The exposition text and its content type, for /metrics. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
