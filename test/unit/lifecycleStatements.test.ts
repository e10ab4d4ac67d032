/**
 * The lifecycle's statements as they run (test/unit/__snapshots__/lifecycle.sql), for a reviewer to
 * read; PAIR_LOTS is built from the tracked fields, the rest are fixed texts.
 */
import { expect, it } from 'vitest';
import * as statements from '../../src/lifecycle/lifecycleStatements.js';
import { LIVE_PAIR } from '../../src/ingest/promote/promoteFile.js';

it('the lifecycle statements', async () => {
  const text = Object.entries(statements)
    .filter(([, v]) => typeof v === 'string' && /^\s*(WITH|SELECT|UPDATE|INSERT|DELETE|CREATE|DROP)\b/.test(v))
    .concat([['pairRowsLive', statements.pairRowsLive(LIVE_PAIR.added, LIVE_PAIR.current)]])
    .map(([name, v]) => `-- ${name}\n${v as string};\n`).join('\n');
  await expect(text).toMatchFileSnapshot('./__snapshots__/lifecycle.sql');
  expect(statements.PAIR_LOTS.match(/ARRAY\[/g)).toHaveLength(2);
});
