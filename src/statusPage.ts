import type { DaemonStatus, DatabaseCheck, InFlightFile, Readiness, RecentActivity } from './daemonStatus.js';

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

/**
 * The page at `/`: plain HTML, readable without Grafana, refreshed every 30 s. Every value that comes
 * from the database or the file system is escaped.
 */
export function renderStatusPage(d: StatusPageData): string {
  const q = d.database.queue;
  const a = d.activity;
  const checks = (['database', 'schema', 'watcher'] as const)
    .map((k) => `<li>${k}: ${d.readiness[k] ? '<span class="ok">ok</span>' : '<span class="bad">not ready</span>'}</li>`).join('');
  const parts = [
    `<h1>vinops-etl <span class="${d.readiness.ready ? 'ok' : 'bad'}">${d.readiness.ready ? 'ready' : 'not ready'}</span></h1>`,
    `<p class="muted">${esc(iso(d.now))} UTC · <a href="/metrics">/metrics</a> · <a href="/readyz">/readyz</a> · <a href="/healthz">/healthz</a></p>`,
    `<ul>${checks}</ul>`,
    d.database.error !== undefined ? `<p class="bad">Database: ${esc(d.database.error)}</p>` : '',
    '<h2>Queue</h2>',
    q === undefined
      ? '<p class="muted">unknown (the database did not answer)</p>'
      : `<table><tr>${(['pending', 'running', 'failed', 'ingested', 'duplicate', 'rejected'] as const)
        .map((s) => `<th>${s}</th>`).join('')}</tr><tr>${(['pending', 'running', 'failed', 'ingested', 'duplicate', 'rejected'] as const)
        .map((s) => `<td class="num" id="queue-${s}">${t(q[s])}</td>`).join('')}</tr></table>`,
    '<h2>In flight</h2>',
    d.inFlight.length === 0 ? '<p class="muted">idle</p>'
      : `<ul>${d.inFlight.map((f) => `<li>${esc(f.path)} <span class="muted">(${esc(f.worker)}, ${seconds(d.now.getTime() - f.since.getTime())})</span></li>`).join('')}</ul>`,
    `<p>Last success: ${d.database.lastSuccessAt ? `${esc(iso(d.database.lastSuccessAt))} UTC` : '<span class="muted">none recorded</span>'}</p>`,
  ];
  if (a !== undefined) {
    const e = a.lastError;
    parts.push(
      '<h2>Last error</h2>',
      e === null ? '<p class="muted">none standing</p>'
        : `<p id="last-error">${esc(iso(e.at))} UTC · ${esc(e.state)}, attempt ${t(e.attempts)} · ${esc(e.path)}<br><code>${esc(e.last_error)}</code></p>`,
      '<h2>Last 24 hours</h2>',
      `<p>${t(a.lastDay.files)} files stored, ${t(a.lastDay.rows)} rows, ${t(a.lastDay.parse_errors)} parse errors, ` +
        `VIN unknown ${pct(a.lastDay.vin_unknown_pct)}, lot unknown ${pct(a.lastDay.lot_unknown_pct)}</p>`,
      '<h2>Recent files</h2>',
      a.files.length === 0 ? '<p class="muted">no files seen yet</p>' : recentTable(a),
    );
  } else {
    parts.push('<p class="muted">Recent files and errors are unavailable while the database does not answer.</p>');
  }
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="30">
<title>vinops-etl status</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse}th,td{border-bottom:1px solid #ddd;padding:.2em .6em;text-align:left;vertical-align:top}
.num{text-align:right;font-variant-numeric:tabular-nums}.ok{color:#17803d}.bad{color:#b42318}.muted{color:#777}
code{white-space:pre-wrap;word-break:break-all}
</style></head><body>
${parts.filter(Boolean).join('\n')}
</body></html>
`;
}

function recentTable(a: RecentActivity): string {
  const head = ['finished (UTC)', 'state', 'rows', 'parse errors', 'VIN unknown', 'lot unknown', 'seconds', 'path'];
  const rows = a.files.map((f) => `<tr><td>${f.finished_at ? esc(iso(f.finished_at)) : ''}</td>` +
    `<td>${esc(f.state)}${f.attempts > 1 ? ` (${t(f.attempts)})` : ''}</td>` +
    `<td class="num">${t(f.rows)}</td><td class="num">${t(f.parse_errors)}</td>` +
    `<td class="num">${f.vin_unknown_pct === null ? '' : pct(f.vin_unknown_pct)}</td>` +
    `<td class="num">${f.lot_unknown_pct === null ? '' : pct(f.lot_unknown_pct)}</td>` +
    `<td class="num">${t(f.seconds)}</td>` +
    `<td>${esc(f.path)}${f.last_error ? `<br><code>${esc(f.last_error)}</code>` : ''}</td></tr>`);
  return `<table><tr>${head.map((h) => `<th>${h}</th>`).join('')}</tr>\n${rows.join('\n')}</table>`;
}

/** HTML-escapes text for element content and quoted attribute values. */
export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

function iso(d: Date): string {
  return d.toISOString().slice(0, 19).replace('T', ' ');
}

function pct(v: number | null): string {
  return v === null ? '–' : `${t(v)} %`;
}

/** A number or text from the database, escaped; empty when absent. */
function t(v: string | number | null | undefined): string {
  return v === null || v === undefined ? '' : esc(String(v));
}

function seconds(ms: number): string {
  return `${Math.max(0, Math.round(ms / 1000))} s`;
}
