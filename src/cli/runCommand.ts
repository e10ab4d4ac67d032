import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { runDaemon } from '../daemon.js';

/** `vinops-etl run`: the daemon in the foreground until SIGTERM / SIGINT. */
export async function runCommand(config: Config, log: Logger): Promise<number> {
  await runDaemon(config, log);
  return 0;
}
