import type { Logger } from 'pino';

/**
 * Process signals (graphile-worker's signals.ts habit): the first SIGTERM/SIGINT asks for a graceful
 * stop, a second one forces the exit. SIGHUP asks for an immediate re-scan of the raw tree.
 * Returns a function that removes the handlers.
 */
export function handleSignals(log: Logger, on: { stop: (signal: string) => void; rescan: () => void }): () => void {
  let stopping = false;
  const onStop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
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
