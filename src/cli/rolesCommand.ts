import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { openDatabase } from '../db/open.js';
import { READER_ROLE, setUpRoles, WRITER_ROLE, type RolesResult } from '../db/roles.js';
import { withClient } from '../db/pool.js';
import { jsonLine } from './jsonOutput.js';

/** `vinops-etl roles`: creates the group roles when missing and grants them the schema's objects. */
export async function rolesCommand(config: Config, log: Logger, options: { json: boolean }): Promise<number> {
  const db = await openDatabase(config, log, { migrate: false, poolSize: 1 });
  try {
    const result = await withClient(db.pool, log, (client) => setUpRoles(client));
    process.stdout.write(options.json ? jsonLine(result) : formatRoles(result));
    return 0;
  } finally {
    await db.close();
  }
}

export function formatRoles(r: RolesResult): string {
  const lines = [
    r.created.length === 0 ? `group roles exist: ${r.existing.join(', ')}` : `created group roles: ${r.created.join(', ')}`,
    r.schemaMigrated ? `granted: ${r.grants} statements (the writer ${WRITER_ROLE}, the reader ${READER_ROLE})`
      : 'the schema is not migrated yet: `vinops-etl migrate` grants the roles its objects',
    'next: a login role in each group, e.g.',
    `  CREATE ROLE vinops_etl LOGIN PASSWORD '…' IN ROLE ${WRITER_ROLE};`,
    `  CREATE ROLE vinops_app LOGIN PASSWORD '…' IN ROLE ${READER_ROLE};`,
    '(docs/security.md, Roles)',
  ];
  return `${lines.join('\n')}\n`;
}
