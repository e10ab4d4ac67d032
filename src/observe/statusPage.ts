import type { DaemonStatus, DatabaseCheck, InFlightFile, Readiness, RecentActivity } from './health.js';
import type { FetchSummary, HourFigures, LifecycleSummary, RecentFile } from './statusQueries.js';

/** The lifecycle part: lots listed, the last file's events, partial files. */
function lifecycleSection(l: LifecycleSummary): string {
  const events = Object.entries(l.events).sort(([a], [b]) => a.localeCompare(b)).map(([k, n]) => `${num(n)} ${esc(k)}`).join(', ');
  return [
    `<p id="lots-listed">${esc(plural(l.lots_listed, 'lot'))} listed in the newest full snapshot</p>`,
    l.file_id === null ? '' : `<p id="last-events">Events of the last file (${esc(l.path ?? '')}): ${events === '' ? 'none' : events}</p>`,
    l.partial ? `<p class="alert" id="last-partial">The last file is not a full snapshot: ${esc(l.partial_reason ?? '')}. Its absences are not taken as disappearances.</p>` : '',
    l.partial_last_day > 0 ? `<p class="bad" id="partial-day">${esc(plural(l.partial_last_day, 'partial file'))} in the last 24 hours (raw.csv_files.partial)</p>` : '',
  ].join('');
}

/** The fetcher's last attempts: window, outcome, HTTP status, bytes, the file or the error. */
function fetchTable(fetches: readonly FetchSummary[]): string {
  const rows = fetches.map((f) => `<tr><td>${esc(iso(f.window_start))}</td><td class="${f.outcome === 'blocked' || f.outcome === 'failed' ? 'bad' : 'ok'}">${esc(f.outcome ?? 'in flight')}</td>` +
    `<td class="num">${f.http_status === null ? '' : num(f.http_status)}</td><td class="num">${f.bytes === null ? '' : num(f.bytes)}</td>` +
    `<td>${esc(f.path ?? f.error ?? '')}</td></tr>`).join('');
  return `<table id="fetches"><tr><th>window (UTC)</th><th>outcome</th><th>HTTP</th><th>bytes</th><th>file or error</th></tr>${rows}</table>` +
    `<p class="muted">from ${esc(fetches[0]!.source)}</p>`;
}

/** Files listed on the page. */
const RECENT_FILES = 20;

/** Everything the status page shows, gathered at request time. */
export interface StatusPageData {
  readonly now: Date;
  readonly readiness: Readiness;
  readonly database: DatabaseCheck;
  readonly inFlight: readonly InFlightFile[];
  /** undefined when the database did not answer. */
  readonly activity: RecentActivity | undefined;
}

export async function loadStatusPage(status: DaemonStatus, now = new Date()): Promise<StatusPageData> {
  const [readiness, database, activity] = await Promise.all([status.readiness(), status.checkDatabase(), status.recentActivity(RECENT_FILES)]);
  return { now, readiness, database, inFlight: status.inFlight(), activity };
}

const QUEUE_STATES = ['pending', 'running', 'failed', 'ingested', 'duplicate', 'rejected'] as const;

/**
 * The page at `/`: plain HTML, readable without Grafana, refreshed every 30 s; no script and no
 * external asset (the chart is inline SVG). Every value that comes from the database or the file
 * system is escaped.
 */
export function renderStatusPage(d: StatusPageData): string {
  const q = d.database.queue;
  const a = d.activity;
  const checks = (['database', 'schema', 'watcher'] as const)
    .map((k) => `<li>${k}: ${d.readiness[k] ? '<span class="ok">ok</span>' : '<span class="bad">not ready</span>'}</li>`).join('');
  const parts = [
    `<h1>vinops-etl <span class="${d.readiness.ready ? 'ok' : 'bad'}">${d.readiness.ready ? 'ready' : 'not ready'}</span></h1>`,
    `<p class="muted">${esc(iso(d.now))} UTC · <a href="/metrics">/metrics</a> · <a href="/readyz">/readyz</a> · <a href="/healthz">/healthz</a></p>`,
    d.readiness.watcher_error !== undefined
      ? `<p class="alert" id="watcher-error">${esc(d.readiness.watcher_error)}: no file is found until it exists. Check <code>rawDir</code> / <code>VINOPS_RAW_DIR</code>.</p>` : '',
    `<ul>${checks}</ul>`,
    d.database.error !== undefined ? `<p class="bad">Database: ${esc(d.database.error)}</p>` : '',
    '<h2>Queue</h2>',
    q === undefined
      ? '<p class="muted">unknown (the database did not answer)</p>'
      : `<table><tr>${QUEUE_STATES.map((s) => `<th>${s}</th>`).join('')}</tr><tr>${QUEUE_STATES
        .map((s) => `<td class="num" id="queue-${s}">${num(q[s])}</td>`).join('')}</tr></table>`,
    '<h2>In flight</h2>',
    d.inFlight.length === 0 ? '<p class="muted">idle</p>' : `<ul class="flight">${d.inFlight.map((f) => inFlightItem(f, d.now)).join('')}</ul>`,
    `<p>Last success (a file stored): ${d.database.lastSuccessAt
      ? `<span id="last-success">${esc(iso(d.database.lastSuccessAt))} UTC</span> <span class="muted">(${esc(ago(d.now, d.database.lastSuccessAt))})</span>`
      : '<span class="muted">none recorded</span>'}</p>`,
  ];
  if (a !== undefined) {
    const e = a.lastError;
    const day = a.lastDay;
    parts.push(
      '<h2>Last error</h2>',
      e === null ? '<p class="muted">none standing</p>'
        : `<p id="last-error">${esc(iso(e.at))} UTC · ${esc(e.state)}, attempt ${num(e.attempts)} · ${esc(e.path)}<br><code>${esc(e.last_error)}</code></p>`,
      '<h2>Last 24 hours</h2>',
      `<p id="last-day">${esc(plural(day.files, 'file'))} stored, ${esc(plural(day.rows, 'row'))}, ${esc(plural(day.parse_errors, 'parse error'))}, ` +
        `VIN unknown ${pct(day.vin_unknown_pct)}, lot unknown ${pct(day.lot_unknown_pct)}</p>`,
      renderDayChart(a.hours),
      '<h2>Lots</h2>',
      lifecycleSection(a.lifecycle),
      ...(a.fetches.length === 0 ? [] : ['<h2>Fetch</h2>', fetchTable(a.fetches)]),
      ...(a.archives.length === 0 ? [] : ['<h2>Archive</h2>', `<table id="archives"><tr><th>target</th><th>files</th><th>original</th><th>stored</th><th>last verified (UTC)</th></tr>${a.archives
        .map((x) => `<tr><td>${esc(x.target)}</td><td class="num">${num(x.files)}</td><td class="num">${esc(formatBytes(x.bytes))}</td><td class="num">${esc(formatBytes(x.stored_bytes))}</td><td>${esc(iso(x.last_at))}</td></tr>`).join('')}</table>`]),
      '<h2>Recent files</h2>',
      a.files.length === 0 ? '<p class="muted">no files yet: none queued by the daemon or ingested with <code>vinops-etl ingest</code></p>' : recentTable(a.files),
    );
  } else {
    parts.push('<p class="muted">Recent files and errors are unavailable while the database does not answer.</p>');
  }
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="30">
<title>vinops-etl status</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;max-width:1400px}
h2{margin:1.2em 0 .4em;font-size:1.15em}
table{border-collapse:collapse}th,td{border-bottom:1px solid #ddd;padding:.2em .6em;text-align:left;vertical-align:top}
th{font-weight:600;white-space:nowrap}
.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}.ok{color:#17803d}.bad{color:#b42318}.muted{color:#777}
.alert{color:#fff;background:#b42318;padding:.5em .8em;border-radius:4px;font-weight:600}.alert code{color:#fff}
code{white-space:pre-wrap;overflow-wrap:anywhere}.id{font:12px ui-monospace,monospace;color:#555}
td.path{overflow-wrap:anywhere;min-width:24em}
.flight li{margin-bottom:.3em}progress{vertical-align:middle;width:12em}
.chart{display:block;margin:.4em 0}
</style></head><body>
${parts.filter(Boolean).join('\n')}
</body></html>
`;
}

function inFlightItem(f: InFlightFile, now: Date): string {
  const p = f.progress;
  const share = p !== undefined && f.bytes !== undefined && f.bytes > 0 ? Math.min(100, (100 * p.bytesRead) / f.bytes) : undefined;
  const detail = p === undefined ? 'starting'
    : `${esc(p.phase)}: ${esc(plural(p.rows, 'row'))} read${share !== undefined ? `, ${esc(formatNumber(share, 0))} % of ${esc(formatBytes(f.bytes!))}` : ''}`;
  const bar = share !== undefined ? ` <progress max="100" value="${share.toFixed(1)}">${share.toFixed(0)} %</progress>` : '';
  return `<li>${esc(f.path)}<br><span class="muted">${esc(f.worker)}, for ${esc(duration(now.getTime() - f.since.getTime()))} ·</span> ${detail}${bar}</li>`;
}

function recentTable(files: readonly RecentFile[]): string {
  // The path takes the rest of the width, with the file_id (what `replay --file` asks for) and the
  // reason under it: as columns of their own they pushed the path off a 1200-pixel window.
  const head = ['finished (UTC)', 'state', 'rows', 'rows/s', 'parse errors', 'VIN unknown', 'lot unknown', 'seconds', 'path · file_id'];
  const rows = files.map((f) => `<tr><td class="num">${f.finished_at ? esc(iso(f.finished_at)) : ''}</td>` +
    `<td>${esc(f.state)}${f.attempts > 1 ? ` (${num(f.attempts)})` : ''}</td>` +
    `<td class="num">${num(f.rows)}</td><td class="num">${num(f.rows_per_second)}</td><td class="num">${num(f.parse_errors)}</td>` +
    `<td class="num">${f.vin_unknown_pct === null ? '' : pct(f.vin_unknown_pct)}</td>` +
    `<td class="num">${f.lot_unknown_pct === null ? '' : pct(f.lot_unknown_pct)}</td>` +
    `<td class="num">${num(f.seconds)}</td>` +
    `<td class="path">${esc(f.path)}${f.file_id === null ? '' : `<br><span class="id">file_id ${esc(f.file_id)}</span>`}` +
    `${f.reason ? `<br><code>${esc(f.reason)}</code>` : ''}</td></tr>`);
  return `<table id="recent-files"><tr>${head.map((h) => `<th>${h}</th>`).join('')}</tr>\n${rows.join('\n')}</table>`;
}

/** One panel of the chart: what it plots of an hour, and how. */
interface Series {
  readonly title: string;
  readonly kind: 'bars' | 'line';
  readonly value: (h: HourFigures) => number | null;
  readonly format: (v: number) => string;
}

const SERIES: readonly Series[] = [
  { title: 'files', kind: 'bars', value: (h) => h.files, format: (v) => formatNumber(v) },
  { title: 'rows', kind: 'bars', value: (h) => h.rows, format: (v) => formatNumber(v) },
  { title: 'seconds per file', kind: 'line', value: (h) => h.seconds_per_file, format: (v) => `${formatNumber(v, 1)} s` },
  { title: 'VIN unknown %', kind: 'line', value: (h) => h.vin_unknown_pct, format: (v) => `${formatNumber(v, 1)} %` },
];

/**
 * The last 24 hours as four small panels sharing one time axis (files and rows stored per hour as
 * bars; the hour's mean seconds per file and VIN unknown share as points, joined where hours are
 * adjacent). Inline SVG: no script, no external asset; each mark has a <title> for its tooltip.
 */
export function renderDayChart(hours: readonly HourFigures[]): string {
  const W = 760;
  const left = 130; // panel titles
  const right = 90; // the panel's maximum
  const panelH = 56;
  const gap = 22;
  const top = 8;
  const axisH = 22;
  const H = top + SERIES.length * (panelH + gap) - gap + axisH;
  const n = Math.max(hours.length, 1);
  const step = (W - left - right) / n;
  const x = (i: number): number => left + step * i + step / 2;
  const r2 = (v: number): string => (Math.round(v * 10) / 10).toString();
  const hourLabel = (h: HourFigures): string => `${iso(h.hour).slice(11, 16)} UTC`;
  const out: string[] = [
    `<svg class="chart" id="day-chart" xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" ` +
      `aria-label="Files, rows, seconds per file and VIN unknown share per hour, last 24 hours" font-family="system-ui,sans-serif" font-size="12">`,
    '<title>Last 24 hours by hour (UTC)</title>',
  ];
  SERIES.forEach((s, k) => {
    const y0 = top + k * (panelH + gap);
    const base = y0 + panelH;
    const values = hours.map(s.value);
    const max = Math.max(0, ...values.map((v) => v ?? 0));
    const scale = max > 0 ? panelH / max : 0;
    out.push(`<g class="series" data-series="${esc(s.title)}">`,
      `<text x="0" y="${r2(y0 + panelH / 2 + 4)}" fill="#222">${esc(s.title)}</text>`,
      `<line x1="${left}" y1="${base}" x2="${W - right}" y2="${base}" stroke="#bbb"/>`,
      `<line x1="${left}" y1="${y0}" x2="${W - right}" y2="${y0}" stroke="#eee"/>`,
      max > 0 ? `<text x="${W - right + 6}" y="${y0 + 10}" fill="#777">${esc(s.format(max))}</text>` : '',
      `<text x="${W - right + 6}" y="${base}" fill="#777">0</text>`);
    if (s.kind === 'bars') {
      const bw = Math.max(1, step * 0.7);
      values.forEach((v, i) => {
        if (v === null || v <= 0) return;
        const h = Math.max(1, v * scale);
        out.push(`<rect class="point" x="${r2(x(i) - bw / 2)}" y="${r2(base - h)}" width="${r2(bw)}" height="${r2(h)}" fill="#3b6fb6">` +
          `<title>${esc(`${hourLabel(hours[i]!)}: ${s.format(v)} ${s.title}`)}</title></rect>`);
      });
    } else {
      // Joined only across adjacent hours with a value: a gap is an hour without files.
      let run: string[] = [];
      const flush = (): void => {
        if (run.length > 1) out.push(`<polyline points="${run.join(' ')}" fill="none" stroke="#c2410c" stroke-width="1.5"/>`);
        run = [];
      };
      values.forEach((v, i) => {
        if (v === null) {
          flush();
          return;
        }
        run.push(`${r2(x(i))},${r2(base - v * scale)}`);
      });
      flush();
      values.forEach((v, i) => {
        if (v === null) return;
        out.push(`<circle class="point" cx="${r2(x(i))}" cy="${r2(base - v * scale)}" r="2.5" fill="#c2410c">` +
          `<title>${esc(`${hourLabel(hours[i]!)}: ${s.format(v)}${s.title.startsWith('seconds') ? ' per file' : ' of rows without a VIN'}`)}</title></circle>`);
      });
    }
    out.push('</g>');
  });
  // Time axis: a tick every 6 hours, labelled with the hour (UTC).
  const axisY = top + SERIES.length * (panelH + gap) - gap;
  hours.forEach((h, i) => {
    if (h.hour.getUTCHours() % 6 !== 0) return;
    out.push(`<line x1="${r2(x(i))}" y1="${axisY}" x2="${r2(x(i))}" y2="${axisY + 4}" stroke="#999"/>`,
      `<text x="${r2(x(i))}" y="${axisY + 16}" text-anchor="middle" fill="#777">${esc(iso(h.hour).slice(11, 16))}</text>`);
  });
  out.push('</svg>');
  return out.join('\n');
}

/** HTML-escapes text for element content and quoted attribute values. */
export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const formats = new Map<number, Intl.NumberFormat>();

/** A number with thousands separators (1,234,567.8), at most `digits` decimals. */
export function formatNumber(v: number, digits = 2): string {
  let f = formats.get(digits);
  if (f === undefined) formats.set(digits, (f = new Intl.NumberFormat('en-US', { maximumFractionDigits: digits })));
  return f.format(v);
}

/** "1 file", "2 files", "1,234 rows". */
export function plural(n: number, noun: string): string {
  return `${formatNumber(n)} ${n === 1 ? noun : `${noun}s`}`;
}

/** 96.1 MB (10^6 bytes, as `du --si` and the feed's documentation count them). */
export function formatBytes(bytes: number): string {
  if (bytes < 1e3) return `${bytes} B`;
  if (bytes < 1e6) return `${formatNumber(bytes / 1e3, 1)} kB`;
  if (bytes < 1e9) return `${formatNumber(bytes / 1e6, 1)} MB`;
  return `${formatNumber(bytes / 1e9, 2)} GB`;
}

/** "42 s", "1 min", "3 min 20 s", "2 h 5 min". */
export function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min${s % 60 === 0 ? '' : ` ${s % 60} s`}`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

function ago(now: Date, then: Date): string {
  return `${duration(now.getTime() - then.getTime())} ago`;
}

function iso(d: Date): string {
  return d.toISOString().slice(0, 19).replace('T', ' ');
}

function pct(v: number | null): string {
  return v === null ? '–' : `${esc(formatNumber(v))} %`;
}

/** A number from the database, with thousands separators; empty when absent. */
function num(v: number | null | undefined): string {
  return v === null || v === undefined ? '' : esc(formatNumber(Number(v)));
}
