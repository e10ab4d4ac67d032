import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config } from '../config.js';
import { writeFeedFile } from '../sample/feedGenerator.js';

const SLOT_MS = 15 * 60_000;
const SEED = 1;

/** One series of sample files: generation n is the feed 15·n minutes after `baseTime`. */
interface SampleState {
  readonly rows: number;
  readonly seed: number;
  readonly turnover: number;
  /** ISO time of generation 0: a slot start. */
  readonly baseTime: string;
  readonly generation: number;
  /** ISO start of the slot the last file was named after. */
  readonly slot: string;
  readonly path: string;
}

export interface SampleWritten {
  readonly path: string;
  readonly rows: number;
  readonly bytes: number;
  /** 0 for the first file of a series; each later file is the snapshot that many 15-minute slots after it. */
  readonly generation: number;
}

/**
 * `vinops-etl sample [--rows N]`: writes a generated feed file into the raw tree, for a first look at
 * the daemon. Each call writes the next snapshot of one feed (the state is kept in
 * `<dataDir>/sample-state.json`), as a real download 15 minutes or more later would be: most lots
 * repeated, about 1 % of them changed (Last Updated Time moved forward, a new bid, a sale scheduled),
 * a few sold and gone, as many new ones. So a second call is a new file to ingest, not a duplicate.
 */
export async function sampleCommand(config: Config, options: { rows: number }): Promise<number> {
  const written = await writeSample(config, options);
  process.stdout.write(`wrote ${written.path} (${written.rows} rows, ${written.bytes} bytes, ` +
    `${written.generation === 0 ? 'first file of a new sample feed' : `snapshot ${written.generation} of the sample feed`})\n`);
  return 0;
}

/**
 * Writes the next sample file. Its name is the current 15-minute slot (`YYYY/MM/DD/HHmm.csv`, UTC),
 * or, when that slot already has the last sample or any file, the next free slot after it: paths
 * stay those of the real feed, and no file is ever overwritten. The snapshot matches its name, so
 * a file named ahead of the clock (several calls in one slot) holds updates up to its slot.
 */
export async function writeSample(config: Config, options: { rows: number; now?: Date }): Promise<SampleWritten> {
  const now = options.now ?? new Date();
  const statePath = join(config.dataDir, 'sample-state.json');
  const currentSlot = Math.floor(now.getTime() / SLOT_MS) * SLOT_MS;
  const previous = await readState(statePath, options.rows);
  let slot = previous === undefined ? currentSlot : Math.max(currentSlot, Date.parse(previous.slot) + SLOT_MS);
  while (await exists(pathFor(config.rawDir, slot))) slot += SLOT_MS;
  // A new series starts with this file; with another row count the generations would not be successors.
  const series = previous ?? { rows: options.rows, seed: SEED, turnover: Math.max(1, Math.round(options.rows / 2000)), baseTime: new Date(slot).toISOString() };
  const base = Date.parse(series.baseTime);
  const generation = Math.round((slot - base) / SLOT_MS);
  const path = pathFor(config.rawDir, slot);

  const tmp = `${path}.part`; // the daemon never takes a *.part file
  const { bytes, rows } = await writeFeedFile(tmp, {
    rows: series.rows, seed: series.seed, turnover: series.turnover, baseTime: new Date(base), generation,
  });
  await rename(tmp, path); // renamed into place: the daemon never sees it half-written
  const state: SampleState = { ...series, generation, slot: new Date(slot).toISOString(), path };
  await mkdir(config.dataDir, { recursive: true });
  await writeFile(statePath, `${JSON.stringify(state, null, 2)}\n`);
  return { path, rows, bytes, generation };
}

function pathFor(rawDir: string, slot: number): string {
  const t = new Date(slot);
  const p2 = (n: number): string => String(n).padStart(2, '0');
  return join(rawDir, String(t.getUTCFullYear()), p2(t.getUTCMonth() + 1), p2(t.getUTCDate()), `${p2(t.getUTCHours())}${p2(t.getUTCMinutes())}.csv`);
}

/** The series to continue: undefined when there is none, it is unreadable, or it has another row count. */
async function readState(path: string, rows: number): Promise<SampleState | undefined> {
  let s: Partial<SampleState>;
  try {
    s = JSON.parse(await readFile(path, 'utf8')) as Partial<SampleState>;
  } catch {
    return undefined;
  }
  const valid = s.rows === rows && typeof s.seed === 'number' && Number.isSafeInteger(s.turnover) && (s.turnover ?? 0) >= 1
    && typeof s.generation === 'number' && typeof s.path === 'string'
    && typeof s.baseTime === 'string' && Number.isFinite(Date.parse(s.baseTime))
    && typeof s.slot === 'string' && Number.isFinite(Date.parse(s.slot));
  return valid ? s as SampleState : undefined;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false);
}
