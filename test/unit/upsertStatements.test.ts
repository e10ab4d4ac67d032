/**
 * The core upsert's statements as they run, one file per mode, for a reviewer to read
 * (test/unit/__snapshots__/upsert-*.sql). A change to the generated SQL shows up here as a diff.
 */
import { describe, expect, it } from 'vitest';
import { upsertStatements } from '../../src/core/upsertStatements.js';
import { HEADER_V1, HEADER_V4 } from '../../src/feed/headers.js';
import { buildLayout } from '../../src/feed/layout.js';
import { LIVE_SOURCE } from '../../src/ingest/promote/promoteFile.js';

const layout = (names: readonly string[]) => buildLayout(names, { hasBom: false, eol: 'LF', dataOffset: 0 });
const render = (s: Record<string, unknown>): string => Object.entries(s)
  .filter(([, v]) => typeof v === 'string')
  .map(([name, v]) => `-- ${name}\n${v as string};\n`).join('\n');

describe('the core upsert statements', () => {
  it('live ingest, the 59-column header', async () => {
    await expect(render({ ...upsertStatements(layout(HEADER_V4), LIVE_SOURCE, false) })).toMatchFileSnapshot('./__snapshots__/upsert-live.sql');
  });

  it('replay, the 59-column header', async () => {
    await expect(render({ ...upsertStatements(layout(HEADER_V4), { rows: 'vinops_replay_rows' }, true) }))
      .toMatchFileSnapshot('./__snapshots__/upsert-replay.sql');
  });

  it('reads the descriptive values a header lacks as NULL, and builds each text once', () => {
    const v1 = upsertStatements(layout(HEADER_V1), { rows: 'vinops_replay_rows' }, true);
    expect(v1.candidates).toContain('NULL::text AS seller_name');
    expect(upsertStatements(layout(HEADER_V1), { rows: 'vinops_replay_rows' }, true)).toBe(v1);
  });
});
