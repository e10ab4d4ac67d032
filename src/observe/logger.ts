import pino, { type Logger } from 'pino';
import type { Config } from '../config.js';

/**
 * pino JSON lines on stderr (fd 2), for every command: stdout carries only a command's results
 * (`status --json | jq` works), and journald keeps stderr as it keeps stdout. `logPretty` for a terminal.
 */
export function createLogger(config: Pick<Config, 'logLevel' | 'logPretty'>, destination: pino.DestinationStream = stderrDestination()): Logger {
  return pino(
    {
      level: config.logLevel,
      base: { service: 'vinops-etl', pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }), log: omitLiveObjects },
      serializers: { err: errorField, error: errorField },
    },
    config.logPretty ? prettyStream(destination) : destination,
  );
}

/** An error under `err` or `error` as serializeError keeps it; a string or number there stays as it is. */
function errorField(value: unknown): unknown {
  return typeof value === 'object' && value !== null ? serializeError(value) : value;
}

/** Synchronous writes to fd 2 that never crash the process when stderr is gone (a closed pipe: EPIPE). */
function stderrDestination(): pino.DestinationStream {
  const dest = pino.destination({ dest: 2, sync: true });
  // Without a listener an EPIPE here would be an unhandled 'error' event; the log has no reader left.
  dest.on('error', () => undefined);
  return dest;
}

/** What a log line keeps of an error: never its other properties (pg-pool puts the client, with its cancel secretKey, on err.client). */
export interface SerializedError {
  type: string;
  message: string;
  code?: string;
  stack?: string;
  cause?: SerializedError;
  errors?: SerializedError[];
  [field: string]: unknown;
}

/**
 * Fields worth keeping besides message, code and stack: a system error's (errno, syscall, path,
 * address, port) and a PostgreSQL error's (severity, detail, hint, position, where, schema, table,
 * column, constraint, routine). Only string and number values are kept.
 */
const ERROR_FIELDS = ['errno', 'syscall', 'path', 'address', 'port', 'severity', 'detail', 'hint', 'position', 'where',
  'schema', 'table', 'column', 'dataType', 'constraint', 'routine'] as const;
const MAX_CAUSE_DEPTH = 5;
const MAX_AGGREGATED = 10;

/**
 * The `err` / `error` serializer: type, message, code, the fields above, stack, and the cause chain
 * and an AggregateError's errors (a refused connection to localhost is one, with an empty message:
 * the reasons are in its errors), each serialised the same way.
 */
export function serializeError(err: unknown, depth = 0): SerializedError {
  if (typeof err !== 'object' || err === null) return { type: typeof err, message: String(err) };
  const e = err as Record<string, unknown>;
  const out: SerializedError = {
    // pg's DatabaseError is named 'error'; a DOMException's class says less than its name (AbortError).
    type: typeof e.name === 'string' && e.name !== 'Error' && e.name !== 'error' ? e.name : (err.constructor?.name ?? 'Error'),
    message: typeof e.message === 'string' ? e.message : String(e.message ?? ''),
  };
  if (typeof e.code === 'string' || typeof e.code === 'number') out.code = String(e.code);
  for (const field of ERROR_FIELDS) {
    const v = e[field];
    if (typeof v === 'string' || typeof v === 'number') out[field] = v;
  }
  if (typeof e.stack === 'string') out.stack = e.stack;
  if (depth < MAX_CAUSE_DEPTH) {
    if (e.cause !== undefined) out.cause = serializeError(e.cause, depth + 1);
    if (Array.isArray(e.errors)) out.errors = e.errors.slice(0, MAX_AGGREGATED).map((x: unknown) => serializeError(x, depth + 1));
  }
  return out;
}

/**
 * A top-level field holding a connection, a pool, a stream or any other event emitter is logged as
 * its class name: serialised, a pg client carries its password and cancel key. An error under any
 * key is serialised as `err` is; a configuration object (it has `databaseUrl`) loses the URL.
 */
function omitLiveObjects(object: Record<string, unknown>): Record<string, unknown> {
  let out: Record<string, unknown> | undefined;
  for (const [key, value] of Object.entries(object)) {
    if (typeof value !== 'object' || value === null || key === 'err' || key === 'error') continue;
    let replacement: unknown;
    if (value instanceof Error) {
      replacement = serializeError(value); // under another key pino would keep all its properties
    } else if (typeof (value as { on?: unknown }).on === 'function' && typeof (value as { emit?: unknown }).emit === 'function') {
      replacement = `[${value.constructor?.name ?? 'object'} omitted]`;
    } else if ('databaseUrl' in value) {
      const { databaseUrl: _omitted, ...rest } = value as Record<string, unknown>;
      replacement = rest;
    } else {
      continue;
    }
    out ??= { ...object };
    out[key] = replacement;
  }
  return out ?? object;
}

/** pino's own fields, not repeated as key=value. */
const OWN_FIELDS = new Set(['time', 'level', 'msg', 'component', 'service', 'pid', 'hostname']);

/**
 * A dependency-free human-readable format: `12:00:01 INFO  component: msg key=value key={a=1 b=2}`,
 * then any error on its own lines: `  err: Type: message (CODE)`, its stack indented below, then its
 * causes. Values with spaces are quoted.
 */
export function formatPrettyLine(line: string): string {
  const entry = JSON.parse(line) as Record<string, unknown>;
  const { time, level, msg, component } = entry;
  const t = typeof time === 'string' ? time.slice(11, 19) : '';
  const extras: string[] = [];
  const blocks: string[] = [];
  for (const [key, value] of Object.entries(entry)) {
    if (OWN_FIELDS.has(key)) continue;
    if (isSerializedError(value)) blocks.push(...formatError(key, value, '  '));
    else extras.push(`${key}=${formatValue(value)}`);
  }
  const head = [t, String(level).toUpperCase().padEnd(5), `${component ? `${String(component)}: ` : ''}${String(msg ?? '')}`, ...extras]
    .filter((part) => part !== '').join(' ');
  return `${[head, ...blocks].join('\n')}\n`;
}

function prettyStream(destination: pino.DestinationStream): pino.DestinationStream {
  return {
    write(line: string) {
      destination.write(formatPrettyLine(line));
    },
  };
}

function isSerializedError(v: unknown): v is SerializedError {
  return typeof v === 'object' && v !== null && typeof (v as SerializedError).message === 'string' && typeof (v as SerializedError).type === 'string';
}

function formatValue(v: unknown): string {
  if (v === null || v === undefined) return String(v);
  if (typeof v === 'string') return v === '' || /[\s"={}]/.test(v) ? JSON.stringify(v) : v;
  if (typeof v !== 'object') return String(v);
  if (Array.isArray(v)) return `[${v.map(formatValue).join(', ')}]`;
  return `{${Object.entries(v).map(([k, x]) => `${k}=${formatValue(x)}`).join(' ')}}`;
}

function formatError(key: string, e: SerializedError, indent: string): string[] {
  const fields = Object.entries(e)
    .filter(([k]) => !['type', 'message', 'code', 'stack', 'cause', 'errors'].includes(k))
    .map(([k, v]) => `${k}=${formatValue(v)}`);
  const title = `${e.type}: ${e.message}${e.code === undefined ? '' : ` (${e.code})`}${fields.length ? ` ${fields.join(' ')}` : ''}`;
  const out = [`${indent}${key}: ${title}`];
  // The stack's first line repeats type and message; its frames follow, indented under the title.
  const frames = (e.stack ?? '').split('\n').filter((l) => /^\s+at /.test(l));
  for (const frame of frames) out.push(`${indent}    ${frame.trim()}`);
  e.errors?.forEach((x, i) => out.push(...formatError(`errors[${i}]`, x, `${indent}  `)));
  if (e.cause) out.push(...formatError('caused by', e.cause, `${indent}  `));
  return out;
}
