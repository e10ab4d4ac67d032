import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { openDatabase } from '../../src/db/open.js';
import { createTestDatabase, silentLog, type TestDatabase } from '../helpers/testDatabase.js';

describe('openDatabase', () => {
  let testDb: TestDatabase;
  beforeAll(async () => { testDb = await createTestDatabase(); });
  afterAll(async () => { await testDb.drop(); });

  // pool.end() resolves once it has asked its clients to close, before their connections are gone;
  // the embedded server stopped right then terminates a backend that has not yet read the goodbye,
  // and the pool reports that as a lost connection (seen once at a clean stop of `npm start`).
  it('close() returns only when every pooled connection is closed (the embedded server is stopped after)', async () => {
    const db = await openDatabase(loadConfig({ env: { DATABASE_URL: testDb.url } }), silentLog, { migrate: false });
    const clients: pg.Client[] = [];
    db.pool.on('connect', (c) => clients.push(c as pg.Client));
    await Promise.all(Array.from({ length: 4 }, () => db.pool.query('SELECT pg_sleep(0.05)')));
    expect(db.pool.idleCount).toBe(4);
    await db.close();
    const open = clients.filter((c) => !(c as unknown as { connection: { stream: { destroyed: boolean } } }).connection.stream.destroyed);
    expect(open.length).toBe(0);
  });
});
