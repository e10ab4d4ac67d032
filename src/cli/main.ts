#!/usr/bin/env -S node --max-semi-space-size=4
/**
 * `vinops-etl <command>`: parses arguments, imports the command's module only when it runs, and sees
 * to it that every way a command ends stops what it started. The shebang's --max-semi-space-size=4
 * keeps a load's peak RSS low (docs/performance.md).
 *
 * Exit status: 0 done; 1 a file failed or was rejected, or a runtime failure; 2 a usage or
 * configuration error; 128 + N after signal N (141 when the reader of stdout went away).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { Logger } from 'pino';

import { ConfigError, loadConfig, type Config } from '../config.js';
import { forcedExit } from '../forcedExit.js';
import { createLogger, serializeError } from '../observe/logger.js';
import { handleCommandSignals, Interrupted } from '../signals.js';
import { UsageError } from './usageError.js';

type OptionName = 'config' | 'help' | 'version' | 'json' | 'limit' | 'rows' | 'file' | 'all' | 'once' | 'out' | 'dry-run';

const OPTIONS = {
  config: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
  json: { type: 'boolean' },
  limit: { type: 'string' },
  rows: { type: 'string' },
  file: { type: 'string', multiple: true },
  all: { type: 'boolean' },
  once: { type: 'boolean' },
  out: { type: 'string' },
  'dry-run': { type: 'boolean' },
} as const satisfies Record<OptionName, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }>;

interface CommandSpec {
  /** Options besides --config and --help. */
  readonly options: readonly OptionName[];
  /** Whether the command takes positional arguments (ingest's files). */
  readonly positionals: boolean;
  readonly summary: string;
  readonly help: string;
}

const COMMON_HELP = `
  --config FILE   JSON config file (see config/vinops-etl.example.json); the environment overrides it
  -h, --help      this text`;

const CONNECTION_HELP = `Connection: DATABASE_URL, or an embedded PostgreSQL under <dataDir>/pg when it is not set.`;

const COMMANDS: Readonly<Record<string, CommandSpec>> = {
  run: {
    options: [],
    positionals: false,
    summary: 'the daemon: watch the raw tree, queue and ingest new files (until SIGTERM)',
    help: `Usage: vinops-etl run [--config FILE]

The daemon: applies pending migrations, watches the raw tree, queues new files and ingests them,
serves /metrics, /healthz, /readyz and the status page on metricsAddr. Logs go to stderr.

Signals: SIGTERM/SIGINT drain and stop (a second one forces the exit); SIGHUP re-scans the raw tree.
Exit status: 0 after a clean stop, 1 a fatal start-up error or a forced stop, 2 a bad configuration.

Options:${COMMON_HELP}

${CONNECTION_HELP}
`,
  },
  status: {
    options: ['json', 'limit'],
    positionals: false,
    summary: 'queue depth, the files in flight and the recent files with their file_id (--json, --limit N)',
    help: `Usage: vinops-etl status [--json] [--limit N] [--config FILE]

Queue depth, the files in flight and the most recent files (ingested by the daemon or with
\`vinops-etl ingest\`) with their file_id. Read-only: it never migrates.

Options:
  --json          one JSON object on stdout (snake_case keys: queue, in_flight, files)
  --limit N       how many recent files (default 20)${COMMON_HELP}

Exit status: 0 done, 1 the database cannot be read or its schema is missing or behind, 2 a usage or
configuration error.

${CONNECTION_HELP}
`,
  },
  ingest: {
    options: ['json'],
    positionals: true,
    summary: 'ingest files now, in order, and print a summary per file (--json)',
    help: `Usage: vinops-etl ingest [--json] [--config FILE] <file>...

Ingests the files now, in order, each in one transaction (the same load as the daemon's, outside its
queue), and prints one summary per file. Migrates the schema first when needed.

Options:
  --json          one JSON object per file on stdout (snake_case keys; see the README)${COMMON_HELP}

Exit status: 0 every file ingested or already stored, 1 a file rejected or failed, 2 a usage or
configuration error; 130/143 interrupted (the file in flight rolled back).

${CONNECTION_HELP}
`,
  },
  replay: {
    options: ['json', 'file', 'all'],
    positionals: false,
    summary: 'rebuild staging and public.lots / public.vehicles from raw (--file ID... | --all, --json)',
    help: `Usage: vinops-etl replay (--file FILE_ID [--file FILE_ID ...] | --all) [--json] [--config FILE]

Rebuilds staging and public.lots / public.vehicles from the raw store alone (the CSV may be gone),
one transaction per file: the files given (file_id as \`vinops-etl status\` shows it), or every
stored file in ingestion order with --all. Idempotent.

Options:
  --file FILE_ID  a file to replay (repeat for more)
  --all           every stored file, in ingestion order
  --json          one JSON object per file on stdout (snake_case keys; see the README)${COMMON_HELP}

Exit status: 0 every file replayed, 1 a file failed (the others are still replayed), 2 a usage or
configuration error; 130/143 interrupted (the file in flight rolled back).

${CONNECTION_HELP}
`,
  },
  fetch: {
    options: ['once', 'json'],
    positionals: false,
    summary: 'download the feed for the current window now (--once, --json)',
    help: `Usage: vinops-etl fetch --once [--json] [--config FILE]

Downloads the feed (fetchUrl / VINOPS_FETCH_URL) for the current 15-minute window into the raw tree
as YYYY/MM/DD/HHmm.csv, as the daemon's fetcher does: conditional on the last download, streamed to a
hidden .part file, checked, then renamed; recorded in raw.fetches. A window the daemon (or another
fetch) already has is left alone. The daemon ingests the file; so does vinops-etl ingest PATH.

Options:
  --once          one download now (required)
  --json          the result as one JSON object (snake_case keys)${COMMON_HELP}

Exit status: 0 downloaded, unchanged or not modified; 1 failed; 2 a usage or configuration error
(fetching off); 3 blocked (a block page, 401/403: see the error); 4 the window is another fetch's.

${CONNECTION_HELP}
`,
  },
  export: {
    options: ['out', 'json'],
    positionals: true,
    summary: 'write a stored file\'s original bytes from the database alone (FILE_ID [--out PATH])',
    help: `Usage: vinops-etl export FILE_ID [--out PATH [--json]] [--config FILE]

Writes the file's original bytes (the file_id as \`vinops-etl status\` shows it) from the database
alone, to PATH or stdout: the same sha256 as when it was ingested, checked as it is written. With
--out the bytes go to PATH.part, renamed to PATH only once they match; nothing is left otherwise.
Memory stays flat whatever the file's size. Read-only: it never migrates.

Options:
  --out PATH      the file to write (default: stdout)
  --json          with --out: the result as one JSON object (snake_case keys)${COMMON_HELP}

Exit status: 0 written and verified, 1 the file is not stored or cannot be given back exactly (the
message says why), 2 a usage or configuration error.

${CONNECTION_HELP}
`,
  },
  prune: {
    options: ['dry-run', 'json'],
    positionals: false,
    summary: 'archive and delete old raw files now, as the daemon\'s retention does (--dry-run, --json)',
    help: `Usage: vinops-etl prune [--dry-run] [--json] [--config FILE]

One retention run now (the daemon runs it every pruneIntervalMs): each file of the raw tree older than
rawRetentionDays (VINOPS_RAW_RETENTION_DAYS; by its window, else its mtime) whose bytes the database
holds is written to archiveUrl (VINOPS_ARCHIVE_URL: file:///path or s3://bucket/prefix) as gzip, read
back and verified, then deleted from the tree. A file the database does not hold, or cannot give back
exactly, is kept. With dbRetentionDays (VINOPS_DB_RETENTION_DAYS) the files ingested before then leave
raw, staging and audit (archived first), public.lots / vehicles / lot_events stay. docs/retention.md.

Options:
  --dry-run       say what would be archived and deleted, change nothing
  --json          the report as one JSON object (snake_case keys)${COMMON_HELP}

Exit status: 0 done, 1 a file could not be archived or deleted (kept; the rest done), 2 a usage or
configuration error (retention off), 4 another process is pruning now.

${CONNECTION_HELP}
`,
  },
  migrate: {
    options: [],
    positionals: false,
    summary: 'apply pending schema migrations',
    help: `Usage: vinops-etl migrate [--config FILE]

Applies the pending schema migrations (migrations/*.sql), each in its own transaction; a second run
changes nothing.

Options:${COMMON_HELP}

Exit status: 0 done, 1 a migration failed or an applied one was changed, 2 a configuration error.

${CONNECTION_HELP}
`,
  },
  roles: {
    options: ['json'],
    positionals: false,
    summary: 'create the database group roles vinops_etl_rw / vinops_app_ro and grant them the schema',
    help: `Usage: vinops-etl roles [--json] [--config FILE]

Creates the NOLOGIN group roles, when missing, and grants them what they need on the schema's objects:
  vinops_etl_rw  the daemon, ingest and replay: read and write the tables, temp tables, sequences;
                 owns nothing and runs no DDL
  vinops_app_ro  the application: public.lots, public.vehicles, public.lot_events, public.vin_history
                 and the audit views; nothing in raw or staging
Run it as the role that owns the schema (the one that runs \`vinops-etl migrate\`), with CREATEROLE
to create the roles; every later \`migrate\` grants them the new objects. Idempotent. Then make login
roles members of the groups (docs/security.md).

Options:
  --json          the result as one JSON object (snake_case keys)${COMMON_HELP}

Exit status: 0 done, 1 a database failure, 2 a configuration error (no CREATEROLE, not the owner).

${CONNECTION_HELP}
`,
  },
  sample: {
    options: ['rows'],
    positionals: false,
    summary: 'write the next snapshot of a generated feed into the raw tree (--rows N)',
    help: `Usage: vinops-etl sample [--rows N] [--config FILE]

Writes the next snapshot of a generated feed into the raw tree (rawDir): the current 15-minute slot,
or the next free one (the series is kept in <dataDir>/sample-state.json; another --rows starts a new
feed). For a first look at the daemon; for development, not for a production host.

Options:
  --rows N        data rows (default 154000)${COMMON_HELP}
`,
  },
  help: {
    options: [],
    positionals: true,
    summary: 'this text (help <command>: that command\'s)',
    help: '',
  },
};

const HELP = `vinops-etl — loads Copart Sales Data CSV files into PostgreSQL

Usage: vinops-etl <command> [options]        vinops-etl <command> --help: that command's options

Commands:
${Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(10)}${c.summary}`).join('\n')}

Options (every command):${COMMON_HELP}
  --version       the version

Results go to stdout, logs to stderr. Exit status: 0 done, 1 a file failed or was rejected (or a
runtime failure), 2 a usage or configuration error, 128 + N after signal N.

${CONNECTION_HELP}
`;

/** What the command line asks for. */
export interface Invocation {
  readonly command: string;
  readonly args: readonly string[];
  readonly values: { readonly [K in OptionName]?: K extends 'file' ? string[] : K extends 'help' | 'version' | 'json' | 'all' | 'once' | 'dry-run' ? boolean : string };
}

/** Parses and checks the command line; throws UsageError with a message naming the option. */
export function parseCommandLine(argv: readonly string[]): Invocation {
  // Not strict: node's own messages for unknown options have an unbalanced quote and name no command.
  const { values, positionals, tokens } = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: false, tokens: true });
  const command = positionals[0] ?? 'help';
  const spec = COMMANDS[command];
  if (spec === undefined) throw new UsageError(`unknown command ${JSON.stringify(command)} (commands: ${Object.keys(COMMANDS).join(', ')})`);
  const allowed = new Set<string>(['config', 'help', 'version', ...spec.options]);
  for (const token of tokens) {
    if (token.kind !== 'option') continue;
    const definition = (OPTIONS as Record<string, { type: string }>)[token.name];
    if (definition === undefined) throw new UsageError(`unknown option ${token.rawName}`);
    if (!allowed.has(token.name)) throw new UsageError(`${token.rawName} is not an option of ${command}`);
    if (definition.type === 'boolean' && token.value !== undefined) throw new UsageError(`${token.rawName} takes no value (got ${JSON.stringify(token.value)})`);
    if (definition.type === 'string' && (token.value === undefined || (!token.inlineValue && token.value.startsWith('-')))) {
      throw new UsageError(`${token.rawName}: expected a value${token.value === undefined ? '' : ` (got the option ${token.value}; for a value that starts with "-", write ${token.rawName}=${token.value})`}`);
    }
  }
  const args = positionals.slice(1);
  if (!spec.positionals && args.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(args[0])}`);
  return { command, args, values: values as Invocation['values'] };
}

function helpText(command: string, args: readonly string[]): string {
  if (command === 'help' && args.length > 0) {
    const spec = COMMANDS[args[0]!];
    if (spec === undefined || args[0] === 'help') throw new UsageError(`no help for ${JSON.stringify(args[0])}: not a command`);
    return spec.help;
  }
  return command === 'help' ? HELP : COMMANDS[command]!.help;
}

function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return `vinops-etl ${pkg.version ?? 'unknown'}\n`;
  } catch {
    return 'vinops-etl (version unknown: package.json not found beside dist/)\n';
  }
}

/** A positive whole number option, or its default; the error names the option. */
function positiveInt(option: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new UsageError(`--${option}: expected a positive whole number, got ${JSON.stringify(value)}`);
  return Number(value);
}

/** How a run of the CLI ends: stdout's reader gone, a signal, or the command's own status. */
interface Session {
  readonly controller: AbortController;
  log?: Logger;
}

async function dispatch(inv: Invocation, session: Session): Promise<number> {
  const { command, args, values } = inv;
  if (values.version) {
    process.stdout.write(version());
    return 0;
  }
  if (values.help || command === 'help') {
    process.stdout.write(helpText(command, args));
    return 0;
  }
  // Checked before the database starts, so a typo costs nothing.
  const limit = positiveInt('limit', values.limit, 20);
  const rows = positiveInt('rows', values.rows, 154_000);
  const config: Config = loadConfig(values.config === undefined ? {} : { file: values.config });
  const log = createLogger(config);
  session.log = log;
  const signal = session.controller.signal;
  switch (command) {
    case 'run':
      return (await import('./runCommand.js')).runCommand(config, log);
    case 'migrate':
      return (await import('./migrateCommand.js')).migrateCommand(config, log);
    case 'status':
      return (await import('./statusCommand.js')).statusCommand(config, log, { json: values.json === true, limit });
    case 'export':
      return (await import('./exportCommand.js')).exportCommand(config, log, args, { ...(values.out === undefined ? {} : { out: values.out }), json: values.json === true, signal });
    case 'prune':
      return (await import('./pruneCommand.js')).pruneCommand(config, log, { dryRun: values['dry-run'] === true, json: values.json === true, signal });
    case 'roles':
      return (await import('./rolesCommand.js')).rolesCommand(config, log, { json: values.json === true });
    case 'sample':
      return (await import('./sampleCommand.js')).sampleCommand(config, { rows });
    case 'replay':
      return (await import('./replayCommand.js')).replayCommand(config, log, { files: values.file ?? [], all: values.all === true }, { json: values.json === true, signal });
    case 'fetch':
      return (await import('./fetchCommand.js')).fetchCommand(config, log, { once: values.once === true, json: values.json === true, signal });
    case 'ingest':
      return (await import('./ingestCommand.js')).ingestCommand(config, log, args, { json: values.json === true, signal });
    default:
      throw new UsageError(`unknown command ${JSON.stringify(command)}`);
  }
}

async function main(argv: string[]): Promise<number> {
  const controller = new AbortController();
  const session: Session = { controller };
  const say = (line: string): void => { process.stderr.write(`${line}\n`); };

  // stdout's reader gone (`vinops-etl status | head -1`): stop writing, stop the command, unwind
  // (pool closed, embedded server stopped) and exit 141, as a process killed by SIGPIPE would.
  // Without a listener the EPIPE is an uncaught exception that skips every finally block.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (!controller.signal.aborted) controller.abort(new Interrupted('EPIPE'));
    if (err.code !== 'EPIPE' && err.code !== 'ERR_STREAM_DESTROYED') session.log?.warn({ err }, 'cannot write to stdout');
  });
  process.stderr.on('error', () => undefined); // nowhere left to say anything
  // A bug's exception: say it, stop the embedded server this process started, exit 1.
  process.on('uncaughtException', (err) => {
    if (session.log) session.log.fatal({ err }, 'unexpected error: stopping');
    else say(`vinops-etl: unexpected error: ${serializeError(err).stack ?? String(err)}`);
    void forcedExit(1);
  });

  let inv: Invocation;
  try {
    inv = parseCommandLine(argv);
  } catch (err) {
    return reportFailure(err, argv);
  }
  const removeSignals = inv.command === 'run' ? () => undefined : handleCommandSignals(controller, say);
  try {
    const code = await dispatch(inv, session);
    const reason: unknown = controller.signal.reason;
    return reason instanceof Interrupted ? reason.exitCode : code;
  } catch (err) {
    const reason: unknown = controller.signal.reason;
    if (reason instanceof Interrupted) {
      if (reason.why !== 'EPIPE') say(`vinops-etl ${inv.command}: ${reason.message}`);
      return reason.exitCode;
    }
    return reportFailure(err, argv, inv.command);
  } finally {
    removeSignals();
  }
}

/** One line on stderr; the stack only with VINOPS_DEBUG. Returns the exit status. */
function reportFailure(err: unknown, argv: readonly string[], command?: string): number {
  if (err instanceof UsageError) {
    const cmd = command ?? argv.find((a) => COMMANDS[a] !== undefined);
    process.stderr.write(`vinops-etl${cmd && cmd !== 'help' ? ` ${cmd}` : ''}: ${err.message}\nSee: vinops-etl ${cmd && cmd !== 'help' ? `${cmd} ` : ''}--help\n`);
    return 2;
  }
  if (err instanceof ConfigError) {
    process.stderr.write(`${err.message}\n`);
    return 2;
  }
  process.stderr.write(`vinops-etl${command ? ` ${command}` : ''}: ${err instanceof Error ? err.message : String(err)}\n`);
  if (process.env.VINOPS_DEBUG) console.error(err);
  return 1;
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err: unknown) => { process.exitCode = reportFailure(err, []); },
);
