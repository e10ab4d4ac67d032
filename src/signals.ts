import { constants } from 'node:os';
import type { Logger } from 'pino';
import { forcedExit } from './forcedExit.js';

/**
 * Process signals of the daemon: the first SIGTERM/SIGINT asks
 * for a graceful stop, a second one forces the exit (after stopping the embedded PostgreSQL, which
 * would otherwise outlive the process). SIGHUP asks for an immediate re-scan of the raw tree.
 * Returns a function that removes the handlers.
 */
export function handleSignals(log: Logger, on: { stop: (signal: string) => void; rescan: () => void }): () => void {
  let stopping = false;
  const onStop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting now');
      void forcedExit(1);
      return;
    }
    stopping = true;
    log.info({ signal }, 'stopping: draining the file in flight');
    on.stop(signal);
  };
  const onHup = (): void => {
    log.info('SIGHUP: re-scanning the raw tree');
    on.rescan();
  };
  process.on('SIGTERM', onStop);
  process.on('SIGINT', onStop);
  process.on('SIGHUP', onHup);
  return () => {
    process.off('SIGTERM', onStop);
    process.off('SIGINT', onStop);
    process.off('SIGHUP', onHup);
  };
}

/** Why a one-shot command was asked to stop: a signal, or its stdout reader gone (EPIPE). */
export class Interrupted extends Error {
  override name = 'Interrupted';
  constructor(readonly why: NodeJS.Signals | 'EPIPE') {
    super(why === 'EPIPE' ? 'interrupted: standard output was closed' : `interrupted by ${why}`);
  }

  /** The exit status a shell reports for a process killed by the signal: 128 + its number (SIGPIPE's for EPIPE). */
  get exitCode(): number {
    return 128 + constants.signals[this.why === 'EPIPE' ? 'SIGPIPE' : this.why];
  }
}

/** How long a one-shot command has, after the first signal, to stop by itself before the forced exit. */
export const FORCE_AFTER_MS = 15_000;

/**
 * Signals of a one-shot command (ingest, replay, status, migrate, sample). By default Node dies at
 * once on SIGINT/SIGTERM/SIGHUP, skipping the finally blocks that close the pool and stop the
 * embedded PostgreSQL. Here the first one aborts `controller` (with an Interrupted reason): the
 * command stops at its next step and unwinds. A second signal, or the command still running
 * forceAfterMs later, forces the exit (forcedExit: the embedded server is stopped first).
 */
export function handleCommandSignals(controller: AbortController, say: (line: string) => void,
  options: { forceAfterMs?: number } = {}): () => void {
  let timer: NodeJS.Timeout | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    const reason = new Interrupted(signal);
    if (controller.signal.aborted && controller.signal.reason instanceof Interrupted && controller.signal.reason.why !== 'EPIPE') {
      say(`vinops-etl: ${signal} again: stopping now`);
      void forcedExit(reason.exitCode);
      return;
    }
    say(`vinops-etl: ${signal}: stopping (a file in flight is rolled back; ${signal} again to stop at once)`);
    controller.abort(reason);
    timer = setTimeout(() => {
      say(`vinops-etl: still running ${Math.round((options.forceAfterMs ?? FORCE_AFTER_MS) / 1000)} s after ${signal}: stopping now`);
      void forcedExit(reason.exitCode);
    }, options.forceAfterMs ?? FORCE_AFTER_MS);
    timer.unref(); // never what keeps a finished command alive
  };
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const s of signals) process.on(s, onSignal);
  return () => {
    clearTimeout(timer);
    for (const s of signals) process.off(s, onSignal);
  };
}
