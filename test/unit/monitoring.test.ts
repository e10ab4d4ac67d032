import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { FETCH_DURATION_BUCKETS, FILE_DURATION_BUCKETS, FILE_OUTCOMES, LAG_BUCKETS, Metrics, QUEUE_STATES, UNKNOWN_FIELDS, UPSERT_ACTIONS, UPSERT_TABLES } from '../../src/observe/metrics.js';
import { EVENT_KINDS, OUTCOMES } from '../../src/lifecycle/updateLifecycle.js';
import { FETCH_OUTCOMES } from '../../src/fetch/fetchWindow.js';
import { parseYamlSubset } from '../helpers/yamlSubset.js';

const MONITORING = new URL('../../config/monitoring/', import.meta.url);
const down = {
  checkDatabase: async () => ({ up: false, schemaCurrent: false, queue: undefined, lastSuccessAt: undefined, error: 'down' }),
  longestRunningSeconds: () => 0,
};

/** Every series name the registry exposes (histogram and summary parts included) → its type. */
async function exposedNames(): Promise<Map<string, string>> {
  const text = await new Metrics(down).registry.metrics();
  const names = new Map<string, string>();
  for (const [, name, type] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    names.set(name!, type!);
    if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.set(name + s, type);
    if (type === 'summary') for (const s of ['_sum', '_count']) names.set(name + s, type);
  }
  return names;
}

/** Labels a query may use on each of our series (besides the instance and job Prometheus adds), with their values. */
const LABELS: Record<string, Record<string, readonly string[]>> = {
  vinops_etl_files_total: { outcome: FILE_OUTCOMES },
  vinops_etl_queue_files: { state: QUEUE_STATES },
  vinops_etl_unknown_ratio: { field: UNKNOWN_FIELDS },
  vinops_etl_upserts_total: { table: UPSERT_TABLES, action: UPSERT_ACTIONS },
  vinops_etl_file_duration_seconds_bucket: { le: [...FILE_DURATION_BUCKETS.map(String), '+Inf'] },
  vinops_etl_lag_seconds_bucket: { le: [...LAG_BUCKETS.map(String), '+Inf'] },
  vinops_etl_lot_events_total: { kind: EVENT_KINDS },
  vinops_etl_lot_outcomes_total: { outcome: OUTCOMES },
  vinops_etl_fetches_total: { outcome: FETCH_OUTCOMES },
  vinops_etl_fetch_duration_seconds_bucket: { le: [...FETCH_DURATION_BUCKETS.map(String), '+Inf'] },
};

const PROMQL_KEYWORDS = new Set(['and', 'or', 'unless', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'offset', 'inf', 'nan']);

/** The metric names a PromQL expression reads (not functions, keywords, label names, durations or Grafana variables). */
export function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""') // strings (label values, $variables)
    .replace(/\{[^}]*\}/g, ' ') // label matchers
    .replace(/\[[^\]]*\]/g, ' ') // ranges, $__rate_interval
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ') // label lists
    .replace(/(?<![\w:])\d+(?:\.\d+)?(?:e[+-]?\d+)?(?:ms|[smhdwy])?(?![\w:])/gi, ' '); // numbers and durations
  const names = new Set<string>();
  for (const m of bare.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?/g)) {
    if (m[2] !== undefined || PROMQL_KEYWORDS.has(m[1]!.toLowerCase())) continue; // a function or an aggregation
    names.add(m[1]!);
  }
  return [...names];
}

/** `metric{label op "value", ...}` selectors of an expression. */
function selectors(expr: string): { metric: string; label: string; op: string; value: string }[] {
  const out: { metric: string; label: string; op: string; value: string }[] = [];
  for (const [, metric, body] of expr.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}/g)) {
    for (const [, label, op, value] of body!.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"/g)) {
      out.push({ metric: metric!, label: label!, op: op!, value: value! });
    }
  }
  return out;
}

/** Series Prometheus writes itself for every scrape target. */
const PROMETHEUS_SERIES = new Set(['up']);

/** Fails with the expression and the unknown name or label when a query reads what the daemon does not expose. */
function expectKnown(expr: string, names: Map<string, string>): void {
  const used = metricNames(expr);
  expect(used.length, expr).toBeGreaterThan(0);
  for (const name of used) expect(names.has(name) || PROMETHEUS_SERIES.has(name), `${name} in ${expr}`).toBe(true);
  for (const s of selectors(expr)) {
    if (s.label === 'instance' || s.label === 'job') continue;
    const allowed = LABELS[s.metric]?.[s.label];
    expect(allowed, `label ${s.label} on ${s.metric} in ${expr}`).toBeDefined();
    if (s.op === '=') expect(allowed, `${s.metric}{${s.label}="${s.value}"} in ${expr}`).toContain(s.value);
  }
}

describe('metricNames', () => {
  it('finds the metrics of an expression and nothing else', () => {
    expect(metricNames('(time() - max by (job) (vinops_etl_last_success_timestamp_seconds)) > 7200 and on (job) max by (job) (vinops_etl_queue_files{state="pending"}) > 0'))
      .toEqual(['vinops_etl_last_success_timestamp_seconds', 'vinops_etl_queue_files']);
    expect(metricNames('histogram_quantile(0.95, sum by (le) (rate(x_bucket{instance=~"$instance"}[$__rate_interval]))) offset 5m'))
      .toEqual(['x_bucket']);
    expect(metricNames('increase(a[30m]) - ignoring (le) increase(b{le="300"}[30m]) > 0.5 or c > 1e3')).toEqual(['a', 'b', 'c']);
  });
});

describe('Prometheus alert rules (config/monitoring/alerts.yml)', () => {
  const rules = parseYamlSubset(readFileSync(new URL('alerts.yml', MONITORING), 'utf8')) as {
    groups: { name: string; rules: Record<string, unknown>[] }[];
  };

  it('have the structure Prometheus loads', () => {
    expect(Object.keys(rules)).toEqual(['groups']);
    expect(rules.groups.length).toBeGreaterThan(0);
    for (const g of rules.groups) {
      expect(Object.keys(g).sort()).toEqual(['name', 'rules']);
      expect(g.rules.length).toBeGreaterThan(0);
      for (const r of g.rules) {
        for (const k of Object.keys(r)) expect(['alert', 'expr', 'for', 'labels', 'annotations'], `${String(r.alert)}: ${k}`).toContain(k);
        expect(r.alert).toMatch(/^VinopsEtl[A-Za-z]+$/);
        expect(typeof r.expr).toBe('string');
        if (r.for !== undefined) expect(r.for).toMatch(/^\d+[smhdwy]$/);
        expect(['critical', 'warning']).toContain((r.labels as Record<string, string>).severity);
        expect(Object.keys(r.annotations as object).sort()).toEqual(['description', 'summary']);
      }
    }
  });

  it('cover what the issue asks for and read only metrics and labels the daemon exposes', async () => {
    const names = await exposedNames();
    const byName = new Map(rules.groups.flatMap((g) => g.rules).map((r) => [r.alert as string, r.expr as string]));
    for (const expr of byName.values()) expectKnown(expr, names);
    expect(byName.get('VinopsEtlVinUnknownHigh')).toBe('vinops_etl_unknown_ratio{field="vin"} > 0.25');
    expect(byName.get('VinopsEtlParseErrors')).toMatch(/^increase\(vinops_etl_parse_errors_total\[\w+\]\) > 0$/);
    expect(byName.get('VinopsEtlFileSlow')).toMatch(/vinops_etl_file_running_seconds > 300 .*vinops_etl_file_duration_seconds_bucket\{le="300"\}/);
    expect(byName.get('VinopsEtlNoSuccessWhileFilesPending')).toMatch(/vinops_etl_last_success_timestamp_seconds.*> 7200 .*vinops_etl_queue_files\{state="pending"\}/);
    expect(byName.get('VinopsEtlDatabaseDown')).toBe('vinops_etl_db_up == 0');
    expect(byName.get('VinopsEtlDown')).toBe('up{job="vinops-etl"} == 0');
    expect(FILE_DURATION_BUCKETS).toContain(300); // the slow-file alert reads this bucket
    expect(byName.get('VinopsEtlPartialFile')).toBe('increase(vinops_etl_partial_files_total[1h]) > 0');
    expect(byName.get('VinopsEtlFetchBlocked')).toBe('increase(vinops_etl_fetches_total{outcome="blocked"}[30m]) > 0');
    expect(byName.get('VinopsEtlNoFetchSuccess')).toMatch(/vinops_etl_last_fetch_success_timestamp_seconds\) > 3600 and on \(instance\) vinops_etl_fetch_enabled == 1/);
  });
});

describe('Grafana dashboard (config/monitoring/grafana-dashboard.json)', () => {
  const dashboard = JSON.parse(readFileSync(new URL('grafana-dashboard.json', MONITORING), 'utf8')) as {
    title: string; uid: string; schemaVersion: number; templating: { list: { name: string; query?: unknown }[] };
    panels: { id: number; type: string; title: string; gridPos: { x: number; y: number; w: number; h: number }; targets?: { expr: string; refId: string }[] }[];
  };
  const graphs = dashboard.panels.filter((p) => p.type !== 'row');

  it('is a dashboard Grafana imports: ids unique, panels on the 24-column grid without overlap, every panel queried', () => {
    expect(dashboard.title).toBe('vinops-etl');
    expect(dashboard.uid).toMatch(/^[\w-]{1,40}$/);
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(dashboard.templating.list.map((v) => v.name)).toEqual(['datasource', 'instance']);
    expect(new Set(dashboard.panels.map((p) => p.id)).size).toBe(dashboard.panels.length);
    const cells = new Set<string>();
    for (const p of dashboard.panels) {
      expect(p.gridPos.x + p.gridPos.w, p.title).toBeLessThanOrEqual(24);
      for (let x = p.gridPos.x; x < p.gridPos.x + p.gridPos.w; x++) {
        for (let y = p.gridPos.y; y < p.gridPos.y + p.gridPos.h; y++) {
          expect(cells.has(`${x},${y}`), `${p.title} overlaps at ${x},${y}`).toBe(false);
          cells.add(`${x},${y}`);
        }
      }
    }
    for (const p of graphs) {
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
      expect(new Set(p.targets!.map((t) => t.refId)).size, p.title).toBe(p.targets!.length);
    }
  });

  it('shows throughput, outcomes, unknown ratio, parse errors, lag, queue and duration from metrics the daemon exposes', async () => {
    const names = await exposedNames();
    const exprs = graphs.flatMap((p) => p.targets!.map((t) => t.expr));
    for (const expr of exprs) expectKnown(expr, names);
    const used = new Set(exprs.flatMap(metricNames));
    for (const m of ['vinops_etl_rows_total', 'vinops_etl_bytes_total', 'vinops_etl_files_total', 'vinops_etl_unknown_ratio', 'vinops_etl_parse_errors_total',
      'vinops_etl_lag_seconds_bucket', 'vinops_etl_queue_files', 'vinops_etl_file_duration_seconds_bucket', 'vinops_etl_db_up',
      'vinops_etl_last_success_timestamp_seconds']) {
      expect(used, m).toContain(m);
    }
    const variableQuery = JSON.stringify(dashboard.templating.list[1]!.query);
    expect(variableQuery).toContain('label_values(vinops_etl_db_up, instance)');
  });
});
