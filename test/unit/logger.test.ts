import pg from 'pg';
import type pino from 'pino';
import { describe, expect, it } from 'vitest';
import { createLogger, formatPrettyLine, serializeError } from '../../src/observe/logger.js';

/** A logger whose lines are kept in memory. */
function capture(pretty = false): { log: pino.Logger; lines: string[] } {
  const lines: string[] = [];
  const log = createLogger({ logLevel: 'debug', logPretty: pretty }, { write: (s: string) => { lines.push(s); } });
  return { log, lines };
}

/** What pg-pool emits when an idle connection drops: the error with its client on err.client. */
function idleConnectionLost(): Error {
  const client = new pg.Client({ connectionString: 'postgresql://vinops:hunter2-password@127.0.0.1:5432/vinops' });
  Object.assign(client, { processID: 4242, secretKey: 987654321 });
  const err = Object.assign(new Error('Connection terminated unexpectedly'), { client });
  return err;
}

describe('log lines never carry a client, a pool or a configuration', () => {
  it('the err serializer keeps message, code, the PostgreSQL fields, stack and causes, and drops every other property', () => {
    const { log, lines } = capture();
    log.warn({ err: idleConnectionLost() }, 'idle PostgreSQL connection lost');
    const dbError = Object.assign(new Error('permission denied for schema public'), {
      code: '42501', severity: 'ERROR', routine: 'aclcheck_error', client: new pg.Client(), query: { text: 'SELECT 1' },
    });
    log.error({ err: new Error('migration failed', { cause: dbError }) }, 'cannot start');
    log.warn({ error: 'connect ECONNREFUSED 127.0.0.1:1' }, 'retrying'); // a string there stays a string
    const text = lines.join('');
    expect(text).not.toMatch(/secretKey|987654321|hunter2|processID|connectionParameters|"query"/);
    expect(lines[0]!.length).toBeLessThan(1500); // it was 3.9 KB with the client
    const [first, second, third] = lines.map((l) => JSON.parse(l) as { err: Record<string, unknown>; error?: unknown });
    expect(third!.error).toBe('connect ECONNREFUSED 127.0.0.1:1');
    expect(first!.err).toEqual({ type: 'Error', message: 'Connection terminated unexpectedly', stack: expect.stringContaining('at ') });
    expect(second!.err.cause).toEqual({
      type: 'Error', message: 'permission denied for schema public', code: '42501', severity: 'ERROR', routine: 'aclcheck_error',
      stack: expect.any(String),
    });
  });

  it('a client or pool in any field is named, not serialised; an error under another key is serialised as err; a config loses its URL', async () => {
    const { log, lines } = capture();
    const pool = new pg.Pool({ connectionString: 'postgresql://u:hunter2@127.0.0.1:1/db' });
    log.info({ pool, client: new pg.Client({ password: 'hunter2' }), e: idleConnectionLost(),
      config: { databaseUrl: 'postgresql://u:hunter2@h/db', workers: 2 } }, 'objects');
    await pool.end();
    const line = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(lines[0]).not.toMatch(/hunter2|secretKey/);
    expect(line).toMatchObject({ pool: '[BoundPool omitted]', client: '[Client omitted]', config: { workers: 2 },
      e: { type: 'Error', message: 'Connection terminated unexpectedly' } });
  });

  it('an AggregateError keeps its errors (a refused connection to localhost has an empty message)', () => {
    const s = serializeError(new AggregateError([Object.assign(new Error('connect ECONNREFUSED ::1:5432'), { code: 'ECONNREFUSED' })], ''));
    expect(s.errors).toEqual([expect.objectContaining({ message: 'connect ECONNREFUSED ::1:5432', code: 'ECONNREFUSED' })]);
  });
});

describe('pretty logs', () => {
  it('print an error as a title line with its code and its stack indented below, and nested objects as key=value', () => {
    const { log, lines } = capture(true);
    const err = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432', { cause: new Error('socket closed') }), { code: 'ECONNREFUSED' });
    log.child({ component: 'worker' }).error({ err, path: '/raw/2025/01/31/1215.csv', lots: { inserted: 1, updated: 2 }, reason: 'two words' }, 'file failed; will retry');
    const out = lines.join('');
    const [head, title, ...rest] = out.trimEnd().split('\n');
    expect(head).toMatch(/^\d\d:\d\d:\d\d ERROR worker: file failed; will retry path=\/raw\/2025\/01\/31\/1215\.csv lots=\{inserted=1 updated=2\} reason="two words"$/);
    expect(title).toBe('  err: Error: connect ECONNREFUSED 127.0.0.1:5432 (ECONNREFUSED)');
    expect(rest[0]).toMatch(/^ {6}at /);
    expect(rest.find((l) => l.includes('caused by'))).toBe('    caused by: Error: socket closed');
    expect(out).not.toMatch(/\\n|\{"type"/); // no escaped JSON blob
  });

  it('a line without an error is one line', () => {
    expect(formatPrettyLine(JSON.stringify({ time: '2025-01-31T12:15:00.000Z', level: 'info', msg: 'vinops-etl running', service: 'vinops-etl', pid: 1, workers: 1 })))
      .toBe('12:15:00 INFO  vinops-etl running workers=1\n');
  });
});
