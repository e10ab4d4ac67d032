import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { openDatabase } from '../db/open.js';
import { migrate } from '../db/migrate.js';

/** `vinops-etl migrate`: applies the pending migrations and says what it did. */
export async function migrateCommand(config: Config, log: Logger): Promise<number> {
  const db = await openDatabase(config, log, { migrate: false, poolSize: 1 });
  try {
    const client = await db.pool.connect();
    try {
      const result = await migrate(client, log);
      process.stdout.write(result.applied.length === 0
        ? `schema is current (${result.alreadyApplied} migrations applied)\n`
        : `applied ${result.applied.length} migration(s): ${result.applied.join(', ')}\n`);
    } finally {
      client.release();
    }
  } finally {
    await db.close();
  }
  return 0;
}
