import type { Config } from '../config.js';
import type { FetchSource } from './fetchWindow.js';

/** The fetch settings of a Config, or undefined when fetching is off (no fetchUrl). */
export function fetchSourceOf(config: Config): FetchSource | undefined {
  if (config.fetchUrl === undefined) return undefined;
  return { url: config.fetchUrl, headers: config.fetchHeaders, cookie: config.fetchCookie, timeoutMs: config.fetchTimeoutMs };
}
