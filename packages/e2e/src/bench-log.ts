/**
 * `pnpm bench:log [-- --jobs lines,transfer --lines N --runs R --mib M --unread-ms MS]`:
 *
 * `lines`: what a `chunk-received` JSON line costs the event loop, written
 * as a plain write on process.stdout (formatJson, then process.stdout.write)
 * and through the logger (createLogger, --log-format json: the bounded,
 * never-blocking stdout queue). Each run is its own process whose stdout is
 * a pipe this process drains, as under systemd or `| tee`; lines go out 100
 * per macrotask, like chunks arriving, and only the time inside the log
 * calls is counted. Prints each run and the median per mode.
 *
 * `transfer`: owner -> peer, M MiB on loopback (real bins), timed from the
 * peer's start to its `merged` line (by that line's own stamp), with the
 * peer's stdout to a file and to a pipe that nobody reads for MS ms (then
 * drained). The log must not hold up the transfer: the two should match.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { createLogger, formatJson, parseTextLine } from '@swarmdrop/service';
import { freePorts } from '@swarmdrop/testkit';
import { lineStamp } from './checks.js';
import { binPath, ManagedProcess } from './processes.js';
import { makeRandomFile } from './scenario.js';

const MODES = ['stdout-write', 'logger'] as const;
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
  const logger =
    mode === 'logger'
      ? createLogger({ role: 'peer', port: 7001, format: 'json', limit: false })
      : undefined;
  const log = logger
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
  await logger?.flush();
  process.stderr.write(`${Number(spent) / 1000 / lines}\n`);
}

/** µs per line in the log calls, and how many lines the reader got (the logger drops past its bound). */
function runOne(mode: Mode, lines: number): Promise<{ us: number; received: number }> {
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
      // The logger drops lines (and prints one log-dropped line) when this reader falls behind.
      if (code !== 0 || (mode === 'stdout-write' && received !== lines))
        reject(new Error(`${mode}: exit ${code}, ${received} of ${lines} lines: ${report}`));
      else resolve({ us: Number(report.trim()), received });
    });
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function linesJob(lines: number, runs: number): Promise<void> {
  const results = new Map<Mode, number[]>(MODES.map((m) => [m, []]));
  // Alternating, so that a busy spell on a shared machine hits both modes.
  for (let r = 0; r < runs; r++)
    for (const mode of MODES) {
      const { us, received } = await runOne(mode, lines);
      results.get(mode)!.push(us);
      const note = received === lines ? '' : ` (the reader got ${received} lines: it fell behind)`;
      console.log(`run ${r + 1} ${mode}: ${us.toFixed(2)} µs per line${note}`);
    }
  for (const [mode, xs] of results)
    console.log(
      `${mode}: median ${median(xs).toFixed(2)} µs per line (min ${Math.min(...xs).toFixed(2)}, max ${Math.max(...xs).toFixed(2)}) over ${runs} runs of ${lines} lines`,
    );
}

const STDOUTS = ['file', 'unread-pipe'] as const;
type Stdout = (typeof STDOUTS)[number];

/**
 * One owner -> peer transfer of `file` with the peer's stdout to `stdout`;
 * seconds from the peer's start to its `merged` line's own stamp.
 */
async function transferOnce(
  work: string,
  file: string,
  stdout: Stdout,
  unreadMs: number,
): Promise<number> {
  const dir = join(work, `${stdout}-${Date.now()}`);
  await mkdir(dir, { recursive: true });
  const [ownerPort, peerPort] = await freePorts(2);
  // The owner's log is read all the time (it is not what is measured).
  const owner = new ManagedProcess(
    'owner',
    process.execPath,
    [
      binPath('owner'),
      `127.0.0.1:${ownerPort}`,
      file,
      '--dir',
      join(dir, 'owner'),
      '--expected-peers',
      '1',
    ],
    { cwd: dir, logPath: join(dir, 'owner.log') },
  );
  try {
    await owner.waitFor((l) => parseTextLine(l)?.event === 'ready', 'ready', 120_000);
    const logPath = join(dir, 'peer.log');
    const fd = stdout === 'file' ? openSync(logPath, 'w') : undefined;
    const args = [
      binPath('peer'),
      `127.0.0.1:${ownerPort}`,
      `127.0.0.1:${peerPort}`,
      '--dir',
      join(dir, 'peer'),
    ];
    const startedAt = Date.now();
    const peer = spawn(process.execPath, args, {
      stdio: ['ignore', fd ?? 'pipe', 'inherit'],
      env: { ...process.env, CI: '' },
    });
    if (fd !== undefined) closeSync(fd);
    const exited = new Promise<void>((resolve) => peer.once('exit', () => resolve()));
    try {
      await owner.waitFor(
        (l) => {
          const e = parseTextLine(l);
          return e?.event === 'announce' && e.fields.event === 'completed';
        },
        'the peer completed',
        600_000,
      );
      let text = '';
      if (stdout === 'unread-pipe') {
        // Unread until `unreadMs` after the start, then drained, as a reader that resumes.
        await delay(Math.max(0, startedAt + unreadMs - Date.now()));
        peer.stdout!.setEncoding('utf8').on('data', (t: string) => {
          text += t;
        });
      }
      const isMerged = (l: string) => parseTextLine(l)?.event === 'merged';
      let merged: string | undefined;
      for (const deadline = Date.now() + 60_000; !merged && Date.now() < deadline; ) {
        if (stdout === 'file') text = await readFile(logPath, 'utf8');
        merged = text.split('\n').find(isMerged);
        if (!merged) await delay(50);
      }
      if (!merged) throw new Error(`${stdout}: no merged line in the peer's log`);
      return (lineStamp(merged, Date.now())! - startedAt) / 1000;
    } finally {
      peer.kill('SIGTERM');
      await exited;
    }
  } finally {
    await owner.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

async function transferJob(mib: number, runs: number, unreadMs: number): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'swarmdrop-bench-log-'));
  try {
    const file = join(work, 'payload.bin');
    await makeRandomFile(file, mib * 1024 * 1024);
    const results = new Map<Stdout, number[]>(STDOUTS.map((s) => [s, []]));
    for (let r = 0; r < runs; r++)
      for (const stdout of STDOUTS) {
        const seconds = await transferOnce(work, file, stdout, unreadMs);
        results.get(stdout)!.push(seconds);
        console.log(`run ${r + 1} peer stdout ${stdout}: ${seconds.toFixed(2)} s start to merged`);
      }
    const file_ = median(results.get('file')!);
    const pipe = median(results.get('unread-pipe')!);
    for (const [stdout, xs] of results)
      console.log(
        `${stdout}: median ${median(xs).toFixed(2)} s (min ${Math.min(...xs).toFixed(2)}, max ${Math.max(...xs).toFixed(2)}) over ${runs} runs of ${mib} MiB owner -> peer`,
      );
    console.log(
      `unread pipe / file: ${(pipe / file_).toFixed(2)} (pipe unread for ${unreadMs} ms)`,
    );
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

const USAGE = `Usage: pnpm bench:log [-- options]
  --jobs LIST      lines, transfer or both (default lines,transfer)
  --lines N        lines per run of the lines job (default 100000)
  --runs R         runs per mode (default 7 for lines, 3 for transfer)
  --mib M          the transfer job's file size in MiB (default 100)
  --unread-ms MS   how long nobody reads the peer's stdout pipe (default 10000)
  -h, --help       show this help
`;

const childAt = process.argv.indexOf('--child');
if (process.argv.includes('-h') || process.argv.includes('--help')) {
  process.stdout.write(USAGE);
} else if (childAt !== -1) {
  await child(process.argv[childAt + 1] as Mode, option('lines', 100_000));
} else {
  const at = process.argv.indexOf('--jobs');
  const jobs = (at === -1 ? 'lines,transfer' : (process.argv[at + 1] ?? '')).split(',');
  const unknown = jobs.filter((j) => j !== 'lines' && j !== 'transfer');
  if (unknown.length > 0) {
    process.stderr.write(`bench:log: --jobs takes lines and transfer, not ${unknown.join(',')}\n`);
    process.exit(2);
  }
  if (jobs.includes('lines')) await linesJob(option('lines', 100_000), option('runs', 7));
  if (jobs.includes('transfer'))
    await transferJob(option('mib', 100), option('runs', 3), option('unread-ms', 10_000));
}
