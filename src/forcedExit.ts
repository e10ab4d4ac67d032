/**
 * What must be undone even when the process ends without unwinding its finally blocks (a second
 * signal, a command that does not stop in time, an uncaught exception): the embedded PostgreSQL
 * runs in its own process group, so a process that just exited would leave it running, holding its
 * port and its data directory.
 */
const actions = new Set<() => Promise<void>>();

/** How long forcedExit() waits for the actions before it exits regardless. */
const ACTIONS_TIMEOUT_MS = 10_000;

/** Registers an action for forcedExit(); returns the function that removes it (call it once the thing is stopped). */
export function onForcedExit(action: () => Promise<void>): () => void {
  actions.add(action);
  return () => { actions.delete(action); };
}

let exiting: Promise<never> | undefined;

/** Runs the registered actions (together, for at most ACTIONS_TIMEOUT_MS), then exits with `code`. */
export function forcedExit(code: number): Promise<never> {
  exiting ??= (async () => {
    const pending = [...actions].map((a) => a().catch(() => undefined));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(pending), new Promise((r) => { timer = setTimeout(r, ACTIONS_TIMEOUT_MS); })]);
    clearTimeout(timer);
    process.exit(code);
  })();
  return exiting;
}
