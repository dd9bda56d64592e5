import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { bencodeEncode, withAnnounce } from '@swarmdrop/protocol';
import { parseTextLine } from '@swarmdrop/service';
import { freePorts, MiB } from '@swarmdrop/testkit';
import {
  type CpuClient,
  type CpuJobResult,
  hasCommand,
  hasLibtorrent,
  mountFreshExt4,
  type ProcessCost,
  runCpuJob,
} from './cpu-job.js';
import { fromCaller } from './paths.js';
import { ProcSampler, type ProcStats } from './proc-stats.js';
import { binPath, ManagedProcess } from './processes.js';
import { buildBundle, type Service } from './release.js';
import { makeRandomFile, runScenario } from './scenario.js';
import { sha256File } from './swarm.js';
import { ringTopology } from './topology.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

const USAGE = `Usage: pnpm bench [-- options]

Measures, in one run and side by side: the CPU job (CPU seconds per GiB and
peak RSS of seeder and downloader, swarmdrop ring and swarm peer against
aria2c and libtorrent where installed, on the temp folder and a fresh ext4),
owner -> one peer over loopback, a plain Node TCP transfer of the same bytes
(the ceiling), a ring of five, and the same jobs by aria2c when it is
installed. Prints tables and writes JSON to bench-results/.

Options:
  --cpu-mib N     the CPU job's file, owner -> one peer (default 256)
  --cpu-runs N    runs of the CPU job, each client once per run (default 3)
  --cpu-fs LIST   tmp,ext4: the machine's temp folder and/or a fresh,
                  journaled ext4 on a loop device (root only; default both
                  as root, else tmp)
  --rss-gib N     a ring peer's peak RSS for an N GiB file (default 4; 0 skips)
  --cpu-only      only the CPU job (and the RSS job)
  --no-cpu        skip the CPU job and the RSS job
  --big-mib N     file for owner -> peer (default 256)
  --small-mib N   smaller file, to check memory stays flat (default 16)
  --ring-mib N    file for the ring of five (default 64)
  --no-aria2      skip the aria2c jobs
  --startup-runs N  start-up time runs per service and form (default 3)
  --startup-only  measure only start-up time (bundle vs workspace bin)
  --out DIR       where the JSON goes (default: bench-results/)
  -h, --help      show this help
`;

const ARIA2_COMMON = [
  '--enable-dht=false',
  '--enable-dht6=false',
  '--bt-enable-lpd=false',
  '--enable-peer-exchange=false',
  '--summary-interval=0',
  '--console-log-level=warn',
  '--file-allocation=none',
  '--bt-request-peer-speed-limit=0',
];

interface Measured {
  readonly seconds: number;
  readonly bytes: number;
  readonly processes: Record<string, ProcStats>;
  readonly note?: string;
}

const mbps = (m: Measured) => m.bytes / 1e6 / m.seconds;
const event = (name: string) => (line: string) => parseTextLine(line)?.event === name;

function log(text: string): void {
  process.stdout.write(`${text}\n`);
}

/** The ceiling: Node streams the file over one loopback socket into a file, in two processes. */
async function plainTcp(work: string, file: string, size: number): Promise<Measured> {
  const receiver = join(work, 'tcp-receiver.mjs');
  const sender = join(work, 'tcp-sender.mjs');
  await writeFile(
    receiver,
    `import net from 'node:net'; import fs from 'node:fs';
const server = net.createServer((socket) => {
  const t0 = performance.now(); const out = fs.createWriteStream(process.argv[2]);
  socket.pipe(out); out.on('finish', () => { console.log('done ' + (performance.now() - t0)); server.close(); });
});
server.listen(0, '127.0.0.1', () => console.log('port ' + server.address().port));\n`,
  );
  await writeFile(
    sender,
    `import net from 'node:net'; import fs from 'node:fs';
const socket = net.connect(Number(process.argv[2]), '127.0.0.1', () => fs.createReadStream(process.argv[3], { highWaterMark: 1 << 20 }).pipe(socket));\n`,
  );
  const opts = (name: string) => ({ cwd: work, logPath: join(work, `${name}.log`) });
  const rx = new ManagedProcess(
    'tcp-receiver',
    process.execPath,
    [receiver, join(work, 'tcp-copy.bin')],
    opts('tcp-receiver'),
  );
  const rxStats = new ProcSampler(rx.pid!);
  const port = (await rx.waitFor((l) => l.startsWith('port '), 'port', 10_000)).slice(5);
  const tx = new ManagedProcess(
    'tcp-sender',
    process.execPath,
    [sender, port, file],
    opts('tcp-sender'),
  );
  const txStats = new ProcSampler(tx.pid!);
  const done = await rx.waitFor((l) => l.startsWith('done '), 'done', 600_000);
  const processes = { receiver: await rxStats.stop(rx.pid!), sender: await txStats.stop(tx.pid!) };
  await Promise.all([rx.stop(), tx.stop()]);
  await rm(join(work, 'tcp-copy.bin'), { force: true });
  return { seconds: Number(done.slice(5)) / 1000, bytes: size, processes };
}

/**
 * A process whose output goes straight to a file, as when a user redirects
 * it: the benchmark then does not spend CPU reading every log line while it
 * measures (swarmdrop prints a few lines per chunk; aria2c next to nothing).
 */
class FileLoggedProcess {
  readonly exited: Promise<{ code: number | null; signal: string | null }>;
  private readonly child: ChildProcess;
  private readonly logPath: string;

  constructor(file: string, args: string[], cwd: string, logPath: string) {
    this.logPath = logPath;
    const fd = openSync(logPath, 'a');
    this.child = spawn(file, args, { cwd, stdio: ['ignore', fd, fd] });
    closeSync(fd);
    this.exited = new Promise((resolve) =>
      this.child.once('exit', (code, signal) => resolve({ code, signal })),
    );
  }

  get pid(): number {
    return this.child.pid!;
  }

  async lines(): Promise<string[]> {
    return (await readFile(this.logPath, 'utf8')).split('\n');
  }

  /** Polls the log for a line; rejects if the process exits first or `timeoutMs` passes. */
  async waitFor(test: (line: string) => boolean, what: string, timeoutMs: number): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    let gone = false;
    void this.exited.then(() => {
      gone = true;
    });
    while (Date.now() < deadline) {
      const found = (await this.lines()).find(test);
      if (found !== undefined) return found;
      if (gone) throw new Error(`exited before ${what} (see ${this.logPath})`);
      await sleep(50);
    }
    throw new Error(`no ${what} within ${timeoutMs} ms (see ${this.logPath})`);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 5_000);
      await this.exited;
      clearTimeout(timer);
    }
  }
}

/** Epoch ms of a text log line, from its own `HH:MM:SS.mmm` (UTC) stamp. */
function lineTime(line: string): number {
  return Date.parse(`${new Date().toISOString().slice(0, 10)}T${line.slice(0, 12)}Z`);
}

/** swarmdrop: an owner and one peer that gets every chunk from it (expected peers 1). */
async function ownerToPeer(
  work: string,
  file: string,
  size: number,
  tag: string,
): Promise<Measured & { endToEnd: number }> {
  const dir = join(work, `o2p-${tag}`);
  await mkdir(dir, { recursive: true });
  const [ownerPort, peerPort, nobody] = await freePorts(3);
  const owner = new FileLoggedProcess(
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
    dir,
    join(dir, 'owner.log'),
  );
  const ownerStats = new ProcSampler(owner.pid);
  await owner.waitFor(event('ready'), 'ready', 600_000);
  const started = Date.now();
  const peer = new FileLoggedProcess(
    process.execPath,
    [
      binPath('peer'),
      `127.0.0.1:${ownerPort}`,
      `127.0.0.1:${peerPort}`,
      `127.0.0.1:${nobody}`,
      '--dir',
      join(dir, 'peer'),
      '--fallback-after-ms',
      '600000',
    ],
    dir,
    join(dir, 'peer.log'),
  );
  const peerStats = new ProcSampler(peer.pid);
  const mergedLine = await peer.waitFor(event('merged'), 'merged', 600_000);
  const processes = {
    owner: await ownerStats.stop(owner.pid),
    peer: await peerStats.stop(peer.pid),
  };
  const lines = await peer.lines();
  const first = lineTime(lines.find(event('request-sent'))!);
  const last = lineTime(lines.findLast(event('chunk-received'))!);
  await Promise.all([owner.stop(), peer.stop()]);
  const ok = (await sha256File(join(dir, 'peer', 'sample.bin'))) === (await sha256File(file));
  if (!ok) throw new Error(`owner -> peer (${tag}): merged file differs from the original`);
  await rm(dir, { recursive: true, force: true });
  return {
    seconds: (last - first) / 1000,
    endToEnd: (lineTime(mergedLine) - started) / 1000,
    bytes: size,
    processes,
  };
}

/** A tracker that knows only the processes the benchmark starts. */
async function miniTracker(): Promise<{ url: string; seeded: Promise<void>; close: () => void }> {
  const peers = new Map<string, Buffer>();
  let markSeeded!: () => void;
  const seeded = new Promise<void>((r) => {
    markSeeded = r;
  });
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://tracker.invalid');
    const port = Number(url.searchParams.get('port'));
    const host = (req.socket.remoteAddress ?? '127.0.0.1').replace(/^::ffff:/, '');
    const me = `${host}:${port}`;
    if (port > 0 && /^\d+\.\d+\.\d+\.\d+$/.test(host)) {
      const entry = Buffer.alloc(6);
      host.split('.').forEach((o, i) => {
        entry[i] = Number(o);
      });
      entry.writeUInt16BE(port, 4);
      peers.set(me, entry);
    }
    if (url.searchParams.get('left') === '0') markSeeded();
    const others = [...peers].filter(([k]) => k !== me).map(([, v]) => v);
    res.end(bencodeEncode({ interval: 5, 'min interval': 1, peers: Buffer.concat(others) }));
  });
  const [port] = await freePorts(1);
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
  return { url: `http://127.0.0.1:${port}/announce`, seeded, close: () => server.close() };
}

/** The same job by aria2c: one seeder, `leechers` leechers, a tracker of our own; until every leecher has the file. */
async function aria2Job(
  work: string,
  file: string,
  size: number,
  torrentFrom: string,
  leechers: number,
  tag: string,
): Promise<Measured> {
  const dir = join(work, `aria2-${tag}`);
  const seedDir = join(dir, 'seed');
  await mkdir(seedDir, { recursive: true });
  await copyFile(file, join(seedDir, 'sample.bin'));
  const tracker = await miniTracker();
  const torrent = join(dir, 'sample.torrent');
  await writeFile(torrent, withAnnounce(await readFile(torrentFrom), tracker.url));
  const ports = await freePorts(leechers + 1);
  const opts = (name: string) => ({ cwd: dir, logPath: join(dir, `${name}.log`) });
  const seeder = new ManagedProcess(
    'seeder',
    'aria2c',
    [
      ...ARIA2_COMMON,
      `--dir=${seedDir}`,
      `--listen-port=${ports[0]}`,
      '--check-integrity=true',
      '--seed-ratio=0.0',
      '--seed-time=600',
      torrent,
    ],
    opts('seeder'),
  );
  const seederStats = new ProcSampler(seeder.pid!);
  await Promise.race([
    tracker.seeded,
    seeder.exited.then(() => Promise.reject(new Error('aria2c seeder exited'))),
  ]);
  const started = Date.now();
  const procs = Array.from({ length: leechers }, (_, i) => {
    const p = new ManagedProcess(
      `leecher${i + 1}`,
      'aria2c',
      [
        ...ARIA2_COMMON,
        `--dir=${join(dir, `leech${i + 1}`)}`,
        `--listen-port=${ports[i + 1]}`,
        '--seed-time=0',
        torrent,
      ],
      opts(`leecher${i + 1}`),
    );
    return { p, stats: new ProcSampler(p.pid!) };
  });
  const exits = await Promise.all(procs.map(({ p }) => p.exited));
  const seconds = (Date.now() - started) / 1000;
  const processes: Record<string, ProcStats> = { seeder: await seederStats.stop(seeder.pid!) };
  for (const [i, { p, stats }] of procs.entries())
    processes[`leecher${i + 1}`] = await stats.stop(p.pid!);
  await seeder.stop();
  tracker.close();
  if (exits.some((e) => e.code !== 0))
    throw new Error(`aria2c ${tag}: a leecher failed (${JSON.stringify(exits)})`);
  const expected = await sha256File(file);
  for (let i = 1; i <= leechers; i++) {
    if ((await sha256File(join(dir, `leech${i}`, 'sample.bin'))) !== expected)
      throw new Error(`aria2c ${tag}: leecher ${i} has a different file`);
  }
  await rm(dir, { recursive: true, force: true });
  return { seconds, bytes: size * leechers, processes };
}

/** swarmdrop's ring of five, from the owner being ready to the last peer's merge. */
async function ring(work: string, file: string, size: number): Promise<Measured> {
  const processes: Record<string, ProcStats> = {};
  let seconds = 0;
  const result = await runScenario(
    {
      name: 'bench-ring',
      topology: ringTopology(5),
      file,
      workDir: join(work, 'ring'),
      fallbackAfterMs: 600_000,
    },
    async ({ swarm }) => {
      const ready = swarm.owner.timeOf(event('ready'))!;
      const done = Math.max(...[...swarm.processes.values()].map((p) => p.completedAt));
      seconds = (done - ready) / 1000;
      for (const [name, p] of swarm.processes) {
        const s = await new ProcSampler(p.pid!).stop(p.pid!);
        processes[name] = s;
      }
    },
  );
  // Checked once the processes are stopped: the log checks read complete logs.
  if (result.problems.length > 0) throw new Error(`ring: ${result.problems.join('; ')}`);
  await rm(join(work, 'ring'), { recursive: true, force: true });
  return { seconds, bytes: size * 5, processes };
}

function hasAria2(): boolean {
  try {
    execFileSync('aria2c', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

interface StartupTimes {
  /** Milliseconds from spawning `node <entry>` to its `listening` line, one per run. */
  readonly bin: Record<Service, number[]>;
  readonly bundle: Record<Service, number[]>;
}

/**
 * Start-up time of each service, as the workspace bin (bin/ -> dist/, many
 * modules) and as the single-file bundle: from spawning node to the
 * `listening` line reaching us. The owner serves a 1 KiB file so its split
 * costs nothing; the peers join a running owner. Runs alternate forms, so
 * drift in the machine's load hits both alike.
 */
async function startupTimes(work: string, runs: number): Promise<StartupTimes> {
  const dir = join(work, 'startup');
  const file = join(dir, 'tiny.bin');
  await makeRandomFile(file, 1024);
  const entries = {
    bin: { owner: binPath('owner'), peer: binPath('peer') },
    bundle: { owner: await buildBundle('owner'), peer: await buildBundle('peer') },
  };
  const out: StartupTimes = {
    bin: { owner: [], peer: [] },
    bundle: { owner: [], peer: [] },
  };
  const [ownerPort] = await freePorts(1);
  const host = new ManagedProcess(
    'owner',
    process.execPath,
    [binPath('owner'), `127.0.0.1:${ownerPort}`, file, '--dir', join(dir, 'host')],
    { cwd: dir, logPath: join(dir, 'host.log') },
  );
  try {
    await host.waitFor(event('ready'), 'ready', 60_000);
    let n = 0;
    for (let run = 0; run < runs; run++) {
      for (const form of ['bin', 'bundle'] as const) {
        for (const service of ['owner', 'peer'] as const) {
          n++;
          const [port, nobody] = await freePorts(2);
          const args =
            service === 'owner'
              ? [`127.0.0.1:${port}`, file, '--dir', join(dir, `o${n}`)]
              : [
                  `127.0.0.1:${ownerPort}`,
                  `127.0.0.1:${port}`,
                  `127.0.0.1:${nobody}`,
                  '--dir',
                  join(dir, `p${n}`),
                ];
          const proc = new ManagedProcess(
            `${service}-${form}`,
            process.execPath,
            [entries[form][service], ...args],
            { cwd: dir, logPath: join(dir, `${service}-${form}.log`) },
          );
          try {
            await proc.waitFor(event('listening'), 'listening', 60_000);
            out[form][service].push(proc.timeOf(event('listening'))! - proc.startedAt);
          } finally {
            await proc.stop();
          }
        }
      }
    }
  } finally {
    await host.stop();
  }
  return out;
}

const fmt = (n: number, digits = 1) => n.toFixed(digits);
const mb = (bytes: number) => `${fmt(bytes / MiB, 0)} MiB`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2).filter((a) => a !== '--'),
    options: {
      'big-mib': { type: 'string', default: '256' },
      'small-mib': { type: 'string', default: '16' },
      'ring-mib': { type: 'string', default: '64' },
      'no-aria2': { type: 'boolean' },
      'startup-runs': { type: 'string', default: '3' },
      'startup-only': { type: 'boolean' },
      'cpu-mib': { type: 'string', default: '256' },
      'cpu-runs': { type: 'string', default: '3' },
      'cpu-fs': { type: 'string' },
      'rss-gib': { type: 'string', default: '4' },
      'cpu-only': { type: 'boolean' },
      'no-cpu': { type: 'boolean' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  const big = Number(values['big-mib']) * MiB;
  const small = Number(values['small-mib']) * MiB;
  const ringSize = Number(values['ring-mib']) * MiB;
  const aria2 = !values['no-aria2'] && hasAria2();
  const startupRuns = Number(values['startup-runs']);
  if (!Number.isInteger(startupRuns) || startupRuns < 1 || startupRuns > 50) {
    process.stderr.write('bench: --startup-runs must be an integer from 1 to 50\n');
    process.exitCode = 2;
    return;
  }
  const work = join(tmpdir(), `swarmdrop-bench-${Date.now()}`);
  await mkdir(work, { recursive: true });
  const outDir = values.out ? fromCaller(values.out) : join(REPO, 'bench-results');
  try {
    if (!values['no-cpu']) {
      const cpu = await cpuBench(work, {
        mib: Number(values['cpu-mib']),
        runs: Number(values['cpu-runs']),
        fs: values['cpu-fs'],
        rssGib: Number(values['rss-gib']),
        aria2,
      });
      await mkdir(outDir, { recursive: true });
      const outFile = join(
        outDir,
        `bench-cpu-${new Date().toISOString().replace(/[:.]/g, '-')}.json`,
      );
      await writeFile(
        outFile,
        `${JSON.stringify({ date: new Date().toISOString(), ...cpu }, null, 2)}\n`,
      );
      log(`\nJSON: ${outFile}`);
      if (values['cpu-only']) return;
    }
    log(`- start-up time, workspace bin vs bundle, ${startupRuns} runs each ...`);
    const startup = await startupTimes(work, startupRuns);
    const startupLines = (['owner', 'peer'] as const).map((service) => {
      const bin = median(startup.bin[service]);
      const bundle = median(startup.bundle[service]);
      return `  ${service}: workspace bin ${fmt(bin, 0)} ms, bundle ${fmt(bundle, 0)} ms (medians of ${startupRuns}; bin ${startup.bin[service].map((x) => fmt(x, 0)).join('/')}, bundle ${startup.bundle[service].map((x) => fmt(x, 0)).join('/')}); bundle / bin ${fmt(bundle / bin, 2)}`;
    });
    log('\nStart-up, process start to `listening`:');
    for (const line of startupLines) log(line);
    if (values['startup-only']) {
      await mkdir(outDir, { recursive: true });
      const outFile = join(
        outDir,
        `bench-startup-${new Date().toISOString().replace(/[:.]/g, '-')}.json`,
      );
      await writeFile(
        outFile,
        `${JSON.stringify({ date: new Date().toISOString(), startup }, null, 2)}\n`,
      );
      log(`\nJSON: ${outFile}`);
      return;
    }
    log(
      `swarmdrop bench: ${mb(big)} owner -> peer, ${mb(small)} for memory, ${mb(ringSize)} ring of five; aria2c ${aria2 ? 'yes' : 'not run'}`,
    );
    const files = {
      big: join(work, 'big', 'sample.bin'),
      small: join(work, 'small', 'sample.bin'),
      ring: join(work, 'ring-src', 'sample.bin'),
    };
    await makeRandomFile(files.big, big);
    await makeRandomFile(files.small, small);
    await makeRandomFile(files.ring, ringSize);

    log('- plain TCP ceiling ...');
    const tcp = await plainTcp(work, files.big, big);
    log('- swarmdrop owner -> peer ...');
    const ours = await ownerToPeer(work, files.big, big, 'big');
    const oursSmall = await ownerToPeer(work, files.small, small, 'small');
    log('- swarmdrop ring of five ...');
    const oursRing = await ring(work, files.ring, ringSize);
    let a2: Measured | undefined;
    let a2Ring: Measured | undefined;
    if (aria2) {
      // aria2c gets the same metainfo (piece length, hashes), with our tracker in place of the owner.
      const ownerTorrent = await makeTorrent(work, files.big, 'big');
      log('- aria2c seeder -> leecher ...');
      a2 = await aria2Job(work, files.big, big, ownerTorrent, 1, 'one');
      const ringTorrent = await makeTorrent(work, files.ring, 'ring');
      log('- aria2c seeder -> five leechers ...');
      a2Ring = await aria2Job(work, files.ring, ringSize, ringTorrent, 5, 'five');
    }

    const rows: string[][] = [
      ['job', 'swarmdrop', 'aria2c', 'plain TCP', 'swarmdrop / aria2c', 'swarmdrop / TCP'],
    ];
    rows.push([
      `owner -> peer ${mb(big)}, transfer (MB/s)`,
      fmt(mbps(ours)),
      a2 ? fmt(mbps(a2)) : '-',
      fmt(mbps(tcp)),
      a2 ? `${fmt(mbps(ours) / mbps(a2), 2)}x` : '-',
      `${fmt((100 * mbps(ours)) / mbps(tcp), 0)}%`,
    ]);
    const e2e = { seconds: ours.endToEnd, bytes: big, processes: ours.processes };
    rows.push([
      `owner -> peer ${mb(big)}, start to merged (MB/s)`,
      fmt(mbps(e2e)),
      a2 ? fmt(mbps(a2)) : '-',
      fmt(mbps(tcp)),
      a2 ? `${fmt(mbps(e2e) / mbps(a2), 2)}x` : '-',
      `${fmt((100 * mbps(e2e)) / mbps(tcp), 0)}%`,
    ]);
    rows.push([
      `five peers all hold ${mb(ringSize)} (s)`,
      fmt(oursRing.seconds, 2),
      a2Ring ? fmt(a2Ring.seconds, 2) : '-',
      '-',
      a2Ring ? `${fmt(a2Ring.seconds / oursRing.seconds, 2)}x faster` : '-',
      '-',
    ]);
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
    log('');
    for (const [i, row] of rows.entries()) {
      log(`  ${row.map((c, j) => c.padEnd(widths[j]!)).join('  ')}`);
      if (i === 0) log(`  ${widths.map((w) => '-'.repeat(w)).join('  ')}`);
    }
    log('\nCPU seconds and peak RSS per process:');
    const procRows: Array<[string, Record<string, ProcStats>]> = [
      ['plain TCP', tcp.processes],
      [`swarmdrop owner -> peer ${mb(big)}`, ours.processes],
      [`swarmdrop owner -> peer ${mb(small)}`, oursSmall.processes],
      ['swarmdrop ring of five', oursRing.processes],
      ...(a2
        ? [
            [`aria2c seeder -> leecher ${mb(big)}`, a2.processes] as [
              string,
              Record<string, ProcStats>,
            ],
          ]
        : []),
      ...(a2Ring
        ? [
            ['aria2c seeder -> five leechers', a2Ring.processes] as [
              string,
              Record<string, ProcStats>,
            ],
          ]
        : []),
    ];
    for (const [job, procs] of procRows) {
      log(
        `  ${job}: ${Object.entries(procs)
          .map(([n, s]) => `${n} ${fmt(s.cpuSeconds, 2)} s / ${fmt(s.peakRssBytes / MiB, 0)} MiB`)
          .join(', ')}`,
      );
    }
    const rssRatio = ours.processes.peer!.peakRssBytes / oursSmall.processes.peer!.peakRssBytes;
    log('\nTargets (ratios within this run):');
    if (a2)
      log(
        `  owner -> peer >= 3x aria2c: ${fmt(mbps(ours) / mbps(a2), 2)}x ${mbps(ours) / mbps(a2) >= 3 ? 'met' : 'NOT met'}`,
      );
    log(
      `  owner -> peer >= 30% of plain TCP: ${fmt((100 * mbps(ours)) / mbps(tcp), 0)}% ${mbps(ours) / mbps(tcp) >= 0.3 ? 'met' : 'NOT met'}`,
    );
    log(
      `  peer peak RSS ${mb(big)} / ${mb(small)} <= 1.5: ${fmt(rssRatio, 2)} ${rssRatio <= 1.5 ? 'met' : 'NOT met'}`,
    );

    log('\nStart-up, process start to `listening`:');
    for (const line of startupLines) log(line);
    await mkdir(outDir, { recursive: true });
    const outFile = join(outDir, `bench-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    await writeFile(
      outFile,
      `${JSON.stringify({ date: new Date().toISOString(), sizes: { big, small, ring: ringSize }, plainTcp: tcp, ownerToPeer: ours, ownerToPeerSmall: oursSmall, ring: oursRing, startup, aria2OwnerToPeer: a2 ?? null, aria2Ring: a2Ring ?? null }, null, 2)}\n`,
    );
    log(`\nJSON: ${outFile}`);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

interface CpuBenchOptions {
  readonly mib: number;
  readonly runs: number;
  readonly fs: string | undefined;
  readonly rssGib: number;
  readonly aria2: boolean;
}

const GiB = 1024 * MiB;

/**
 * The CPU job (cpu-job.ts): every client once per run, runs interleaved so
 * that the machine's drift hits all alike; medians and spreads per file
 * system. Then a ring peer's peak RSS for a file of rssGib.
 */
async function cpuBench(work: string, o: CpuBenchOptions) {
  if (!Number.isInteger(o.runs) || o.runs < 1 || o.runs > 20)
    throw new Error('--cpu-runs must be an integer from 1 to 20');
  if (!hasCommand('/usr/bin/time', ['true']))
    throw new Error('the CPU job needs GNU time (/usr/bin/time; Debian package "time")');
  const root = process.getuid?.() === 0;
  const systems = (o.fs ?? (root ? 'tmp,ext4' : 'tmp')).split(',');
  for (const fs of systems) {
    if (fs !== 'tmp' && fs !== 'ext4') throw new Error(`--cpu-fs: unknown file system "${fs}"`);
    if (fs === 'ext4' && !root) throw new Error('--cpu-fs ext4 needs root (a loop mount)');
  }
  const bytes = o.mib * MiB;
  const file = join(work, 'cpu-src', 'sample.bin');
  await makeRandomFile(file, bytes);
  const torrent = await makeTorrent(work, file, 'cpu');
  const bins = { owner: await buildBundle('owner'), peer: await buildBundle('peer') };
  const clients: CpuClient[] = [
    'ring',
    'swarm',
    ...(o.aria2 ? (['aria2c'] as const) : []),
    ...(hasLibtorrent() ? (['libtorrent'] as const) : []),
  ];
  log(
    `- CPU job: ${mb(bytes)} owner -> one peer on loopback, ${clients.join(', ')}; ${o.runs} runs on ${systems.join(' and ')} (page cache dropped before each job${root ? '' : ': not as non-root'})`,
  );
  const results: Record<string, CpuJobResult[]> = {};
  for (const fs of systems) {
    const mount =
      fs === 'ext4'
        ? // Every job's folders stay until the end (see cpu-job.ts): room for all of them.
          await mountFreshExt4(join(work, 'ext4'), o.runs * clients.length * 4 * bytes + 2 * GiB)
        : { path: join(work, 'cpu-tmp'), unmount: async () => {} };
    try {
      for (let run = 1; run <= o.runs; run++) {
        for (const client of clients) {
          const result = await runCpuJob({
            client,
            file,
            bytes,
            torrent,
            bins,
            workDir: join(mount.path, `run${run}-${client}`),
            timeoutMs: 600_000,
          });
          const key = `${fs} ${client}`;
          results[key] = [...(results[key] ?? []), result];
          log(`  ${fs} run ${run} ${client}: ${describeCpu(result)}`);
        }
      }
    } finally {
      await mount.unmount();
    }
  }
  log(
    `\nCPU job, ${mb(bytes)}: CPU seconds per GiB moved and peak RSS, median [min-max] of ${o.runs}:`,
  );
  const rows: string[][] = [
    [
      'fs',
      'client',
      'downloader CPU-s/GiB',
      'seeder CPU-s/GiB',
      'owner split CPU-s',
      'downloader RSS MiB',
      'start to done s',
      'downloader / aria2c',
    ],
  ];
  for (const fs of systems) {
    const aria = results[`${fs} aria2c`];
    const ariaPerGiB = aria ? median(aria.map((r) => perGiB(r.downloader, r.bytes))) : undefined;
    for (const client of clients) {
      const list = results[`${fs} ${client}`] ?? [];
      const down = list.map((r) => perGiB(r.downloader, r.bytes));
      rows.push([
        fs,
        client,
        spread(down, 1),
        spread(
          list.map((r) =>
            perGiB(
              { ...r.seeder, cpuSeconds: r.seeder.cpuSeconds - (r.seederSplitSeconds ?? 0) },
              r.bytes,
            ),
          ),
          1,
        ),
        list[0]?.seederSplitSeconds === undefined
          ? '-'
          : spread(
              list.map((r) => r.seederSplitSeconds!),
              2,
            ),
        spread(
          list.map((r) => r.downloader.peakRssBytes / MiB),
          0,
        ),
        spread(
          list.map((r) => r.seconds),
          2,
        ),
        ariaPerGiB ? `${fmt(median(down) / ariaPerGiB, 2)}x` : '-',
      ]);
    }
  }
  printTable(rows);
  log(
    '  (seeder: serving only for swarmdrop, its split apart; aria2c and libtorrent include their recheck of the file)',
  );
  let rss: CpuJobResult | undefined;
  if (o.rssGib > 0) {
    const big = join(work, 'rss-src', 'sample.bin');
    log(`\n- peak RSS: ${o.rssGib} GiB owner -> ring peer ...`);
    await makeRandomFile(big, o.rssGib * GiB);
    rss = await runCpuJob({
      client: 'ring',
      file: big,
      bytes: o.rssGib * GiB,
      bins,
      workDir: join(work, 'rss-job'),
      timeoutMs: 3_600_000,
    });
    log(`  ${describeCpu(rss)}`);
    await rm(join(work, 'rss-job'), { recursive: true, force: true });
    await rm(big, { force: true });
  }
  return { cpuJob: { bytes, runs: o.runs, results }, rssJob: rss ?? null };
}

function perGiB(cost: ProcessCost, bytes: number): number {
  return cost.cpuSeconds / (bytes / GiB);
}

/** `12.3 [11.0-14.1]` */
function spread(xs: readonly number[], digits: number): string {
  if (xs.length === 0) return '-';
  return `${fmt(median(xs), digits)} [${fmt(Math.min(...xs), digits)}-${fmt(Math.max(...xs), digits)}]`;
}

function describeCpu(r: CpuJobResult): string {
  return `${fmt(r.seconds, 2)} s; downloader ${fmt(r.downloader.cpuSeconds, 2)} CPU-s, ${fmt(r.downloader.peakRssBytes / MiB, 0)} MiB; seeder ${fmt(r.seeder.cpuSeconds, 2)} CPU-s${r.seederSplitSeconds === undefined ? '' : ` (split ${fmt(r.seederSplitSeconds, 2)})`}`;
}

function printTable(rows: string[][]): void {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const [i, row] of rows.entries()) {
    log(`  ${row.map((c, j) => c.padEnd(widths[j]!)).join('  ')}`);
    if (i === 0) log(`  ${widths.map((w) => '-'.repeat(w)).join('  ')}`);
  }
}

/** The metainfo swarmdrop's owner writes for `file` (run briefly just to split and hash). */
async function makeTorrent(work: string, file: string, tag: string): Promise<string> {
  const dir = join(work, `torrent-${tag}`);
  const [port] = await freePorts(1);
  const owner = new ManagedProcess(
    'owner',
    process.execPath,
    [binPath('owner'), `127.0.0.1:${port}`, file, '--dir', dir],
    { cwd: work, logPath: join(work, `torrent-${tag}.log`) },
  );
  await owner.waitFor(event('ready'), 'ready', 600_000);
  await owner.stop();
  return join(dir, 'sample.bin.torrent');
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: error: ${(err as Error).message}\n`);
  process.exit(1);
});
