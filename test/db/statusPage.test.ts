import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DaemonStatus } from '../../src/observe/health.js';
import { writeFeedFile } from '../../src/sample/feedGenerator.js';
import { ingestFile } from '../../src/ingest/ingestFile.js';
import { listLastDayByHour, type HourFigures, type RecentFile } from '../../src/observe/statusQueries.js';
import { formatNumber, loadStatusPage, plural, renderDayChart, renderStatusPage, type StatusPageData } from '../../src/observe/statusPage.js';
import { createTestDatabase, silentLog, type TestDatabase } from '../helpers/testDatabase.js';
import { parseXml, type XmlElement } from '../helpers/xml.js';

const NOW = new Date('2025-10-23T12:30:00Z');

/** 24 hours ending with the one of NOW; `fill` gives the figures of hour i (0 = 23 hours ago). */
function hours(fill: (i: number) => Partial<HourFigures>): HourFigures[] {
  return Array.from({ length: 24 }, (_, i) => ({
    hour: new Date(Date.UTC(2025, 9, 22, 13 + i)), files: 0, rows: 0, seconds_per_file: null, vin_unknown_pct: null, ...fill(i),
  }));
}

function file(f: Partial<RecentFile>): RecentFile {
  return {
    file_id: '0b7c3f5e-6d3a-4a55-9a52-2f4c8f0c1a11', queue_id: '7', path: '/raw/2025/10/23/1200.csv', state: 'ingested', attempts: 1,
    rows: 154_000, parse_errors: 0, vin_unknown_pct: 1.25, lot_unknown_pct: 0, seconds: 12.5, rows_per_second: 12_320,
    started_at: new Date('2025-10-23T12:00:05Z'), finished_at: new Date('2025-10-23T12:00:17Z'), reason: null, worker: 'h:1:1', ...f,
  };
}

function page(over: Partial<StatusPageData> = {}, hourFigures: HourFigures[] = hours(() => ({}))): StatusPageData {
  return {
    now: NOW,
    readiness: { ready: true, database: true, schema: true, watcher: true },
    database: { up: true, schemaCurrent: true, queue: { pending: 1234, running: 1, failed: 0, ingested: 45_678, duplicate: 2, rejected: 0 },
      lastSuccessAt: new Date('2025-10-23T12:00:17Z'), error: undefined },
    inFlight: [],
    activity: {
      files: [file({})],
      lastError: null,
      lastDay: { files: 1, rows: 154_000, parse_errors: 1, vin_unknown_pct: 1.25, lot_unknown_pct: 0 },
      lifecycle: { file_id: 'f1', path: '/raw/2025/10/23/1145.csv', snapshot_at: new Date('2025-10-23T11:45:00Z'), partial: false, partial_reason: null,
        events: { changed: 1520, appeared: 310, disappeared: 298 }, lots_listed: 153_912, partial_last_day: 0 },
      fetches: [
        { window_start: new Date('2025-10-23T12:00:00Z'), source: 'feed.example/cgi-bin/salesdata.cgi', outcome: 'blocked', http_status: 200, bytes: null,
          path: null, error: 'HTTP 200 with a block page instead of the file', started_at: new Date('2025-10-23T12:00:31Z'), finished_at: new Date('2025-10-23T12:00:32Z') },
        { window_start: new Date('2025-10-23T11:45:00Z'), source: 'feed.example/cgi-bin/salesdata.cgi', outcome: 'downloaded', http_status: 200, bytes: 96_123_456,
          path: '/raw/2025/10/23/1145.csv', error: null, started_at: new Date('2025-10-23T11:45:20Z'), finished_at: new Date('2025-10-23T11:45:29Z') },
      ],
      archives: [{ target: 's3://vinops-archive/<copart>', files: 96, bytes: 9_408_000_000, stored_bytes: 1_100_000_000, last_at: new Date('2025-10-23T11:00:02Z') }],
      hours: hourFigures,
    },
    ...over,
  };
}

/** The chart's SVG, parsed (throws when it is not well-formed XML). */
function chart(html: string): XmlElement[] {
  const svg = /<svg[\s\S]*?<\/svg>/.exec(html)?.[0];
  expect(svg, 'an inline <svg> chart').toBeDefined();
  return parseXml(svg!);
}

function points(svg: XmlElement[], series: string): XmlElement[] {
  let inSeries = false;
  const out: XmlElement[] = [];
  for (const el of svg) {
    if (el.name === 'g') inSeries = el.attrs['data-series'] === series;
    else if (inSeries && el.attrs.class === 'point') out.push(el);
  }
  return out;
}

describe('the status page', () => {
  it('shows the fetcher\'s last attempts, a blocked one in red, and nothing of it when fetching is off', () => {
    const html = renderStatusPage(page());
    const table = /<table id="fetches">[\s\S]*?<\/table>/.exec(html)![0];
    expect(table).toContain('<td class="bad">blocked</td>');
    expect(table).toContain('HTTP 200 with a block page instead of the file');
    expect(table).toContain('<td class="num">96,123,456</td><td>/raw/2025/10/23/1145.csv</td>');
    expect(html).toContain('from feed.example/cgi-bin/salesdata.cgi');
    const base = page();
    expect(renderStatusPage({ ...base, activity: { ...base.activity!, fetches: [] } })).not.toContain('<h2>Fetch</h2>');
  });

  it('shows what the archive holds per target, escaped, and nothing of it without an archive', () => {
    const html = renderStatusPage(page());
    const table = /<table id="archives">[\s\S]*?<\/table>/.exec(html)![0];
    expect(table).toContain('<td>s3://vinops-archive/&lt;copart&gt;</td><td class="num">96</td>');
    expect(table).toContain('2025-10-23 11:00:02');
    const base = page();
    expect(renderStatusPage({ ...base, activity: { ...base.activity!, archives: [] } })).not.toContain('<h2>Archive</h2>');
  });

  it('shows the lots listed and the last file\'s events by kind, and a partial file loudly', () => {
    const html = renderStatusPage(page());
    expect(html).toContain('<p id="lots-listed">153,912 lots listed in the newest full snapshot</p>');
    expect(html).toContain('Events of the last file (/raw/2025/10/23/1145.csv): 310 appeared, 1,520 changed, 298 disappeared</p>');
    expect(html).not.toContain('id="last-partial"');
    const base = page();
    const partial = renderStatusPage({ ...base, activity: { ...base.activity!, lifecycle: { ...base.activity!.lifecycle, partial: true,
      partial_reason: '12 rows, below 80 % of the median 46 of the 8 files before it', partial_last_day: 2 } } });
    expect(partial).toMatch(/<p class="alert" id="last-partial">The last file is not a full snapshot: 12 rows, below 80 % of the median 46/);
    expect(partial).toContain('2 partial files in the last 24 hours');
  });

  it('writes numbers with thousands separators, "1 file" in the singular, rows/s per file and the file_id', () => {
    const html = renderStatusPage(page());
    expect(html).toContain('id="queue-pending">1,234</td>');
    expect(html).toContain('id="queue-ingested">45,678</td>');
    expect(html).toMatch(/<p id="last-day">1 file stored, 154,000 rows, 1 parse error, VIN unknown 1\.25 %/);
    const table = /<table id="recent-files">[\s\S]*?<\/table>/.exec(html)![0];
    expect(table).toContain('<th>rows/s</th>');
    expect(table).toContain('<td class="num">12,320</td>');
    expect(table).toContain('<td class="num">154,000</td>');
    expect(table).toContain('0b7c3f5e-6d3a-4a55-9a52-2f4c8f0c1a11');
    expect(plural(2, 'file')).toBe('2 files');
    expect(plural(0, 'row')).toBe('0 rows');
    expect(formatNumber(1234567.891)).toBe('1,234,567.89');
  });

  it('shows the file in flight with its worker, rows so far and share of bytes read', () => {
    const html = renderStatusPage(page({
      inFlight: [{ worker: 'worker 1 on host-a/4242', path: '/raw/2025/10/23/1215.csv', since: new Date(NOW.getTime() - 8000), bytes: 96_100_000,
        progress: { phase: 'reading', rows: 45_000, bytesRead: 36_518_000 } }],
    }));
    expect(html).toContain('worker 1 on host-a/4242, for 8 s');
    expect(html).toContain('reading: 45,000 rows read, 38 % of 96.1 MB');
    expect(html).toMatch(/<progress max="100" value="38\.0">/);
  });

  it('says loudly that the raw directory is missing', () => {
    const html = renderStatusPage(page({
      readiness: { ready: false, database: true, schema: true, watcher: false, watcher_error: 'raw directory /var/data/vinops/raw/coprat does not exist' },
    }));
    expect(html).toMatch(/<p class="alert" id="watcher-error">raw directory \/var\/data\/vinops\/raw\/coprat does not exist: no file is found/);
    expect(html).toContain('watcher: <span class="bad">not ready</span>');
  });

  it('draws the last 24 hours as well-formed inline SVG with a point per hour of data, and no script or external asset', () => {
    const data = hours((i) => (i % 5 === 0 ? { files: 4, rows: 600_000 + i, seconds_per_file: 10 + i / 10, vin_unknown_pct: 2 + i / 10 } : {}));
    const html = renderStatusPage(page({}, data));
    const svg = chart(html);
    expect(svg[0]!.name).toBe('svg');
    expect(svg[0]!.attrs.xmlns).toBe('http://www.w3.org/2000/svg');
    const withData = data.filter((h) => h.files > 0).length;
    expect(withData).toBe(5);
    for (const series of ['files', 'rows', 'seconds per file', 'VIN unknown %']) expect(points(svg, series), series).toHaveLength(withData);
    // Bars as tall as their value: every hour with files has the same count here, so the same height.
    const bars = points(svg, 'files');
    expect(new Set(bars.map((b) => b.attrs.height)).size).toBe(1);
    expect(Number(bars[0]!.attrs.height)).toBeGreaterThan(10);
    // Lines rise with the values: later hours have more seconds per file, so smaller y.
    const ys = points(svg, 'seconds per file').map((c) => Number(c.attrs.cy));
    expect([...ys].sort((a, b) => b - a)).toEqual(ys);
    expect(svg.filter((e) => e.name === 'title').map((e) => e.text)).toContain('09:00 UTC: 600,020 rows');
    expect(html).not.toMatch(/<script|<link|<img|<iframe|\son\w+=|https?:\/\/(?!www\.w3\.org\/2000\/svg)/i);
  });

  it('draws an empty day as an empty chart', () => {
    const svg = chart(renderDayChart(hours(() => ({}))));
    for (const series of ['files', 'rows', 'seconds per file', 'VIN unknown %']) expect(points(svg, series)).toEqual([]);
  });
});

describe('the chart from the database', () => {
  let db: TestDatabase;
  let dir: string;
  beforeAll(async () => {
    db = await createTestDatabase();
    dir = await mkdtemp(join(tmpdir(), 'vinops-chart-'));
  });
  afterAll(async () => { await db.drop(); });

  it('puts each stored file in its hour and the page draws them', async () => {
    const ids: string[] = [];
    for (const [i, rows] of [[1, 40], [2, 60], [3, 80]] as const) {
      const path = join(dir, `2025/10/23/12${i}0.csv`);
      await writeFeedFile(path, { rows, seed: 70 + i });
      const r = await ingestFile({ pool: db.pool, log: silentLog, maxRecordBytes: 1 << 20 }, path);
      expect(r.outcome).toBe('ingested');
      ids.push(r.fileId!);
    }
    // Two files five hours ago, one now.
    await db.pool.query(`UPDATE raw.csv_files SET ingested_at = now() - interval '5 hours' WHERE file_id = ANY($1)`, [ids.slice(0, 2)]);
    const byHour = await listLastDayByHour(db.pool);
    expect(byHour).toHaveLength(24);
    expect(byHour.map((h) => h.files)).toEqual(Array.from({ length: 24 }, (_, i) => (i === 18 ? 2 : i === 23 ? 1 : 0)));
    expect(byHour[18]!.rows).toBe(100);
    expect(byHour[23]!.rows).toBe(80);
    expect(byHour[23]!.seconds_per_file).toBeGreaterThan(0);
    expect(byHour[0]!.seconds_per_file).toBeNull();

    const status = new DaemonStatus(silentLog);
    status.attach({ pool: db.pool });
    const svg = chart(renderStatusPage(await loadStatusPage(status)));
    expect(points(svg, 'files')).toHaveLength(2);
    expect(points(svg, 'VIN unknown %')).toHaveLength(2);
  });
});
