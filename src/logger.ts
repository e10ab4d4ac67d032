import pino, { type Logger } from 'pino';
import type { Config } from './config.js';

/** pino JSON lines on stdout (journald keeps them); `logPretty` for a terminal. */
export function createLogger(config: Pick<Config, 'logLevel' | 'logPretty'>, destination: pino.DestinationStream = pino.destination(1)): Logger {
  return pino(
    {
      level: config.logLevel,
      base: { service: 'vinops-etl', pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    config.logPretty ? prettyStream() : destination,
  );
}

/** A dependency-free human-readable line format: `12:00:01 INFO component: msg key=value`. */
function prettyStream(): pino.DestinationStream {
  return {
    write(line: string) {
      const { time, level, msg, component, service: _s, pid: _p, ...rest } = JSON.parse(line) as Record<string, unknown>;
      const t = typeof time === 'string' ? time.slice(11, 19) : '';
      const extras = Object.entries(rest).map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`).join(' ');
      process.stdout.write(`${t} ${String(level).toUpperCase().padEnd(5)} ${component ? `${String(component)}: ` : ''}${String(msg ?? '')} ${extras}\n`);
    },
  };
}
