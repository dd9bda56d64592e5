/**
 * `pnpm bench:log [-- --lines N --runs R]`: what a `chunk-received` JSON line
 * costs the event loop, written the former way (formatJson, then a write on
 * stdout, synchronous for a pipe on Linux) and through pino's asynchronous
 * destination (createLogger, --log-format json). Each run is its own process
 * whose stdout is a pipe this process drains, as under systemd or `| tee`;
 * lines go out 100 per macrotask, like chunks arriving, and only the time
 * inside the log calls is counted. Prints each run and the median per mode.
 */
import { spawn } from 'node:child_process';
import { formatJson } from '@swarmdrop/protocol';
import { createLogger } from '@swarmdrop/protocol/node';

const MODES = ['sync-write', 'pino'] as const;
type Mode = (typeof MODES)[number];

function option(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  const value = at === -1 ? fallback : Number(process.argv[at + 1]);
  if (!Number.isInteger(value) || value <= 0) {
    process.stderr.write(`bench:log: --${name} must be a positive integer\n`);
    process.exit(2);
  }
  return value;
}

/** One run, in a child: writes `lines` lines to stdout, reports µs per line on stderr. */
async function child(mode: Mode, lines: number): Promise<void> {
  const fields = { chunk: 0, from: '127.0.0.1:7002', bytes: 102400, via: 'neighbour' };
  const logger = createLogger({ role: 'peer', port: 7001, format: 'json', limit: false });
  const log =
    mode === 'pino'
      ? (chunk: number) => logger.log('chunk-received', { ...fields, chunk })
      : (chunk: number) =>
          process.stdout.write(
            `${formatJson({ time: new Date(), role: 'peer', port: 7001, event: 'chunk-received', fields: { ...fields, chunk } })}\n`,
          );
  let spent = 0n;
  for (let i = 0; i < lines; i += 100) {
    const t = process.hrtime.bigint();
    for (let j = i; j < Math.min(lines, i + 100); j++) log(j);
    spent += process.hrtime.bigint() - t;
    await new Promise((resolve) => setImmediate(resolve));
  }
  await logger.flush();
  process.stderr.write(`${Number(spent) / 1000 / lines}\n`);
}

function runOne(mode: Mode, lines: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const proc = spawn(
      process.execPath,
      [...process.execArgv, process.argv[1]!, '--child', mode, '--lines', String(lines)],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let received = 0;
    let report = '';
    proc.stdout.on('data', (b: Buffer) => {
      for (const byte of b) if (byte === 10) received++;
    });
    proc.stderr.setEncoding('utf8').on('data', (t: string) => {
      report += t;
    });
    proc.on('error', reject);
    proc.on('close', (code) => {
      if (code !== 0 || received !== lines)
        reject(new Error(`${mode}: exit ${code}, ${received} of ${lines} lines: ${report}`));
      else resolve(Number(report.trim()));
    });
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const childAt = process.argv.indexOf('--child');
if (childAt !== -1) {
  await child(process.argv[childAt + 1] as Mode, option('lines', 100_000));
} else {
  const lines = option('lines', 100_000);
  const runs = option('runs', 7);
  const results = new Map<Mode, number[]>(MODES.map((m) => [m, []]));
  // Alternating, so that a busy spell on a shared machine hits both modes.
  for (let r = 0; r < runs; r++)
    for (const mode of MODES) {
      const us = await runOne(mode, lines);
      results.get(mode)!.push(us);
      console.log(`run ${r + 1} ${mode}: ${us.toFixed(2)} µs per line`);
    }
  for (const [mode, xs] of results)
    console.log(
      `${mode}: median ${median(xs).toFixed(2)} µs per line (min ${Math.min(...xs).toFixed(2)}, max ${Math.max(...xs).toFixed(2)}) over ${runs} runs of ${lines} lines`,
    );
}
