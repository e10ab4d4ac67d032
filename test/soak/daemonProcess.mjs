/**
 * `vinops-etl run` as a child process, started as the systemd unit starts it
 * (`node --max-semi-space-size=4 dist/cli/main.js run`), with its memory sampled from /proc while it lives.
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';

const CLI = new URL('../../dist/cli/main.js', import.meta.url).pathname;
const running = new Set();

/** The daemons started here that have not exited yet. */
export function daemons() {
  return [...running];
}

/**
 * Starts the daemon with `env` on top of the current environment. The returned object exposes the
 * pid, the exit (a promise of the code or signal), the peak RSS seen (VmHWM, in MB) and the RSS
 * samples (`{ t, rssMb }`, t in ms since start), and the log output kept for post-mortems.
 */
export function startDaemon(env, { sampleMs = 200 } = {}) {
  const t0 = performance.now();
  const child = spawn(process.execPath, ['--max-semi-space-size=4', CLI, 'run'], {
    env: { ...process.env, VINOPS_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  const keep = (d) => { log = (log + d).slice(-200_000); };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const d = {
    pid: child.pid,
    startedAt: new Date(),
    peakRssMb: 0,
    samples: [],
    exited: new Promise((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal))),
    log: () => log,
    kill: (signal) => child.kill(signal),
  };
  const timer = setInterval(async () => {
    const status = await readFile(`/proc/${child.pid}/status`, 'utf8').catch(() => '');
    const hwm = /VmHWM:\s+(\d+) kB/.exec(status);
    const rss = /VmRSS:\s+(\d+) kB/.exec(status);
    if (hwm) d.peakRssMb = Math.max(d.peakRssMb, Number(hwm[1]) / 1024);
    if (rss) d.samples.push({ t: performance.now() - t0, rssMb: Number(rss[1]) / 1024 });
  }, sampleMs);
  running.add(d);
  d.exited.then(() => { clearInterval(timer); running.delete(d); });
  return d;
}
