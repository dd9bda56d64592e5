/**
 * Benchmark jobs: a real owner process under a fleet's load on loopback,
 * each bounded in count and time and stopping by itself, with a real
 * swarmdrop peer downloading meanwhile.
 *
 * - `announce`: distinct peers (each from its own loopback address, a fresh
 *   TCP connection per announce) at a fixed rate: announce latency
 *   p50/p99/max, answers per second, the owner's RSS and CPU, and the
 *   tracker's size at the end.
 * - `connections`: stock-client BitTorrent connections held at once, each
 *   downloading as fast as it reads: the owner's RSS and CPU, and how fairly
 *   its upload is shared (Jain's index; min, median and max bytes per
 *   connection over the hold).
 *
 * Two announce generators. `wrk` (Debian's, C, with fleet/announce.lua):
 * every request another peer's announce, paced by the script's delay to
 * about the rate asked for over 16 keep-alive connections (the owner's HTTP
 * budget per address); it cannot vary the source address, so the peers
 * differ by port and the owner runs with --tracker-max-per-address raised.
 * It is cheap enough to leave the owner the bottleneck on two cores.
 * `node` (testkit's fleet.ts, in this process): open-loop at the exact rate,
 * each announce a fresh connection from the peer's own loopback address, as
 * a real fleet of machines, timed from when it was due; but on this machine
 * it tops out near 700 announces a second of its own CPU, below the owner.
 * autocannon was not taken: like wrk it cannot vary the source address,
 * and it costs a Node process's CPU like ours.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseMetainfo } from '@swarmdrop/protocol';
import { parseTextLine } from '@swarmdrop/service';
import { announceLoad, FleetConnections, freePorts, jainIndex } from '@swarmdrop/testkit';
import { ProcSampler, readProcStats } from './proc-stats.js';
import { binPath, ManagedProcess } from './processes.js';
import { makeRandomFile } from './scenario.js';

/** How long the real peer may take before the job gives up on it. */
const PEER_TIMEOUT_MS = 300_000;

const isEvent = (name: string) => (line: string) => parseTextLine(line)?.event === name;
const round = (n: number, digits = 2) => Number(n.toFixed(digits));
const MiB = 1024 * 1024;

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

function fetchStatus(port: number): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/status', agent: false }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (b: Buffer) => parts.push(b));
      res.on('end', () => resolve(JSON.parse(Buffer.concat(parts).toString('utf8'))));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** Resident set size now (VmRSS), bytes; 0 once gone. */
async function rssNow(pid: number): Promise<number> {
  const text = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const m = /VmRSS:\s+(\d+) kB/.exec(text);
  return m ? Number(m[1]) * 1024 : 0;
}

/** The soft limit on open files of this process (what the owner it starts inherits). */
export async function openFileLimit(): Promise<number> {
  const text = await readFile('/proc/self/limits', 'utf8');
  const m = /Max open files\s+(\d+|unlimited)/.exec(text);
  return !m || m[1] === 'unlimited' ? Number.POSITIVE_INFINITY : Number(m[1]);
}

interface Bench {
  work: string;
  file: string;
  owner: ManagedProcess;
  ownerPort: number;
  processes: ManagedProcess[];
  /** Starts the real peer; resolves with its seconds to `merged`, or the error. */
  peer(): Promise<number | string>;
}

/** An owner on a fresh file with `flags`, and a way to run the real peer against it. */
async function startBench(
  name: string,
  fileBytes: number,
  flags: readonly string[],
  processes: ManagedProcess[],
): Promise<Bench> {
  const work = await mkdtemp(join(tmpdir(), `swarmdrop-fleet-${name}-`));
  await mkdir(work, { recursive: true });
  const file = join(work, 'sample.bin');
  await makeRandomFile(file, fileBytes);
  const [ownerPort, peerPort] = (await freePorts(2)) as [number, number];
  const opts = (n: string) => ({ cwd: work, logPath: join(work, `${n}.log`) });
  const owner = new ManagedProcess(
    'owner',
    process.execPath,
    [
      binPath('owner'),
      `127.0.0.1:${ownerPort}`,
      file,
      '--dir',
      join(work, 'owner'),
      '--expected-peers',
      '1',
      '--quiet',
      ...flags,
    ],
    opts('owner'),
  );
  processes.push(owner);
  await owner.waitFor(isEvent('ready'), 'ready', 600_000);
  const peer = async (): Promise<number | string> => {
    const started = Date.now();
    const p = new ManagedProcess(
      'peer',
      process.execPath,
      [
        binPath('peer'),
        `127.0.0.1:${ownerPort}`,
        `127.0.0.1:${peerPort}`,
        '--dir',
        join(work, 'peer'),
        '--transport',
        'tcp',
        '--exit-when-done',
        '--linger-ms',
        '0',
        '--quiet',
      ],
      opts('peer'),
    );
    processes.push(p);
    try {
      await p.waitFor(isEvent('merged'), 'merged', PEER_TIMEOUT_MS);
      return round((p.completedAt - started) / 1000);
    } catch (err) {
      return (err as Error).message.split('\n')[0]!;
    } finally {
      await p.stop();
    }
  };
  return { work, file, owner, ownerPort, processes, peer };
}

const WRK_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'fleet', 'announce.lua');
/** wrk's connections: the owner's HTTP budget per source address (16), all from 127.0.0.1. */
const WRK_CONNECTIONS = 16;

/** `1.45ms`, `171.20us`, `2.01s` as milliseconds. */
function wrkMs(text: string | undefined): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(text ?? '');
  if (!m) return Number.NaN;
  const scale = { us: 0.001, ms: 1, s: 1000, m: 60_000 }[m[2] as 'us' | 'ms' | 's' | 'm'];
  return Number(m[1]) * scale;
}

interface WrkResult {
  requests: number;
  seconds: number;
  p50: number;
  p99: number;
  max: number;
  errors: string | undefined;
}

/** Runs wrk against the owner for `seconds` at about `perSecond`; its figures from its report. */
function runWrk(
  port: number,
  infoHash: string,
  peers: number,
  perSecond: number,
  seconds: number,
): Promise<WrkResult> {
  // Each connection waits `pause` ms after an answer; an answer and wrk's own
  // timer take about 2 ms more (a first try at 7 ms for 2,000/s gave 1,640/s).
  const pause = Math.max(0, Math.floor((WRK_CONNECTIONS * 1000) / perSecond) - 2);
  const args = [
    '-t',
    '2',
    '-c',
    String(WRK_CONNECTIONS),
    '-d',
    `${seconds}s`,
    '--latency',
    '--timeout',
    '10s',
    '-s',
    WRK_SCRIPT,
    `http://127.0.0.1:${port}`,
    '--',
    infoHash,
    String(peers),
    String(pause),
    '50',
    '2',
  ];
  return new Promise((resolve, reject) => {
    execFile('wrk', args, { timeout: (seconds + 60) * 1000 }, (err, stdout) => {
      if (err) return reject(new Error(`wrk: ${err.message.split('\n')[0]}`));
      const requests = /(\d+) requests in ([\d.]+)(ms|s|m)/.exec(stdout);
      const pct = (p: string) => wrkMs(new RegExp(`^\\s*${p}%\\s+(\\S+)`, 'm').exec(stdout)?.[1]);
      const max = /Latency\s+\S+\s+\S+\s+(\S+)/.exec(stdout)?.[1];
      const errors = /Socket errors:.*|Non-2xx.*/.exec(stdout)?.[0];
      if (!requests) return reject(new Error(`wrk: no report in ${stdout.slice(0, 200)}`));
      resolve({
        requests: Number(requests[1]),
        seconds: wrkMs(`${requests[2]}${requests[3]}`) / 1000,
        p50: pct('50'),
        p99: pct('99'),
        max: wrkMs(max),
        errors,
      });
    });
  });
}

export type AnnounceGenerator = 'wrk' | 'node';

export interface AnnounceJobOptions {
  /** wrk (paced, keep-alive, peers by port) or node (open loop, a connection and an address per peer). */
  readonly generator: AnnounceGenerator;
  /** Distinct peers, each from its own address (default 10,000). */
  readonly peers: number;
  /** Announces per second (default 2,000). */
  readonly perSecond: number;
  /** Announces in all (default 40,000: the table fills in the first `peers`, then re-announces). */
  readonly count: number;
  /** The real peer's file (default 16 MiB). */
  readonly fileBytes: number;
}

export async function announceJob(o: AnnounceJobOptions): Promise<Record<string, number | string>> {
  const processes: ManagedProcess[] = [];
  let work: string | undefined;
  try {
    const room = String(o.peers + 100);
    const bench = await startBench(
      'announce',
      o.fileBytes,
      [
        '--tracker-max-peers',
        room,
        ...(o.generator === 'wrk' ? ['--tracker-max-per-address', room] : []),
      ],
      processes,
    );
    work = bench.work;
    const pid = bench.owner.pid!;
    const rssBefore = await rssNow(pid);
    const before = await readProcStats(pid);
    const sampler = new ProcSampler(pid, 200);
    let rssPeak = 0;
    const rssTimer = setInterval(() => {
      void rssNow(pid).then((r) => {
        rssPeak = Math.max(rssPeak, r);
      });
    }, 200);
    const { infoHash: hex } = (await fetchStatus(bench.ownerPort)) as { infoHash: string };
    const infoHash = Buffer.from(hex, 'hex');
    const startedAt = performance.now();
    const seconds = Math.max(1, Math.ceil(o.count / o.perSecond));
    const load =
      o.generator === 'wrk'
        ? runWrk(bench.ownerPort, hex, o.peers, o.perSecond, seconds).then((w) => ({
            sent: w.requests,
            answered: w.requests,
            failed: 0,
            firstFailure: w.errors,
            seconds: w.seconds,
            p50: w.p50,
            p99: w.p99,
            max: w.max,
          }))
        : announceLoad({
            port: bench.ownerPort,
            infoHash,
            peers: o.peers,
            perSecond: o.perSecond,
            count: o.count,
          }).then((r) => ({
            ...r,
            p50: quantile(r.latenciesMs, 0.5),
            p99: quantile(r.latenciesMs, 0.99),
            max: r.latenciesMs.at(-1) ?? Number.NaN,
          }));
    // The real peer joins once the table should be full.
    await new Promise((r) => setTimeout(r, (Math.min(o.peers, o.count) / o.perSecond) * 1000));
    const peerSeconds = bench.peer();
    const result = await load;
    const loadSeconds = (performance.now() - startedAt) / 1000;
    const status = (await fetchStatus(bench.ownerPort)) as { tracker?: { peers: number } };
    const rssAfterLoad = await rssNow(pid);
    const after = await sampler.stop(pid);
    clearInterval(rssTimer);
    const peer = await peerSeconds;
    return {
      generator: o.generator,
      peers: o.peers,
      targetPerSecond: o.perSecond,
      sent: result.sent,
      answered: result.answered,
      failed: result.failed,
      ...(result.firstFailure ? { firstFailure: result.firstFailure } : {}),
      answersPerSecond: round(result.answered / result.seconds, 0),
      latencyP50Ms: round(result.p50),
      latencyP99Ms: round(result.p99),
      latencyMaxMs: round(result.max),
      trackerPeersAtEnd: status.tracker?.peers ?? Number.NaN,
      ownerRssBeforeMiB: round(rssBefore / MiB, 1),
      ownerRssAfterMiB: round(rssAfterLoad / MiB, 1),
      ownerRssPeakMiB: round(Math.max(rssPeak, after.peakRssBytes) / MiB, 1),
      ownerCpuPercent: round(
        ((after.cpuSeconds - (before?.cpuSeconds ?? 0)) / loadSeconds) * 100,
        0,
      ),
      peerSeconds: peer,
    };
  } finally {
    await Promise.all(processes.map((p) => p.stop()));
    if (work) await rm(work, { recursive: true, force: true });
  }
}

export interface ConnectionsJobOptions {
  /** BitTorrent connections held at once (default 1,000). */
  readonly connections: number;
  /** Seconds they are held and measured, once all are open (default 30). */
  readonly holdSeconds: number;
  /** The file (default 4 MiB): the fleet walks it round and round; the real peer fetches it once. */
  readonly fileBytes: number;
}

/** Connections per source address: under the owner's default per-address cap (64). */
const CONNECTIONS_PER_ADDRESS = 50;

export async function connectionsJob(
  o: ConnectionsJobOptions,
): Promise<Record<string, number | string>> {
  const limit = await openFileLimit();
  // This process holds one descriptor per connection and the owner another, plus their own.
  const needed = o.connections + 512;
  if (limit < needed)
    throw new Error(
      `open files limit is ${limit}, below the ${needed} the connections job needs; raise it (ulimit -n ${needed * 2}) and run again`,
    );
  const processes: ManagedProcess[] = [];
  let work: string | undefined;
  let fleet: FleetConnections | undefined;
  try {
    const bench = await startBench(
      'connections',
      o.fileBytes,
      ['--max-connections', String(o.connections + 64)],
      processes,
    );
    work = bench.work;
    const pid = bench.owner.pid!;
    const rssBefore = await rssNow(pid);
    let rssPeak = 0;
    const rssTimer = setInterval(() => {
      void rssNow(pid).then((r) => {
        rssPeak = Math.max(rssPeak, r);
      });
    }, 200);
    const torrent = join(bench.work, 'owner', 'sample.bin.torrent');
    const metainfo = parseMetainfo(await readFile(torrent));
    const openedAt = performance.now();
    fleet = await FleetConnections.open({
      port: bench.ownerPort,
      metainfo,
      connections: o.connections,
      addresses: Math.ceil(o.connections / CONNECTIONS_PER_ADDRESS),
    });
    const openSeconds = (performance.now() - openedAt) / 1000;
    fleet.start();
    // A second for TCP windows and the owner's queues to settle before the measured span.
    await new Promise((r) => setTimeout(r, 1_000));
    const startBytes = fleet.bytesPerMember();
    const before = await readProcStats(pid);
    const holdStart = performance.now();
    const peer = bench.peer();
    await new Promise((r) => setTimeout(r, o.holdSeconds * 1000));
    const holdSeconds = (performance.now() - holdStart) / 1000;
    const after = await readProcStats(pid);
    const status = (await fetchStatus(bench.ownerPort)) as { connections?: number };
    const rssHeld = await rssNow(pid);
    const got = fleet.bytesPerMember().map((b, i) => b - (startBytes[i] ?? 0));
    const held = fleet.held;
    // The fleet stays connected until the real peer is done too.
    const peerSeconds = await peer;
    const heldAtPeerEnd = fleet.held;
    const ended = fleet.members.filter((m) => m.ended !== undefined);
    fleet.close();
    clearInterval(rssTimer);
    const sorted = [...got].sort((a, b) => a - b);
    const total = got.reduce((a, b) => a + b, 0);
    return {
      connections: o.connections,
      openFilesLimit: limit,
      openSeconds: round(openSeconds),
      held,
      heldAtPeerEnd,
      endedEarly: ended.length,
      ...(ended[0] ? { firstEnded: ended[0].ended! } : {}),
      ownerConnections: status.connections ?? Number.NaN,
      holdSeconds: round(holdSeconds),
      ownerUploadMiBps: round(total / holdSeconds / MiB, 1),
      jainIndex: round(jainIndex(got), 3),
      perConnectionMinKiB: round(sorted[0]! / 1024, 0),
      perConnectionMedianKiB: round(quantile(sorted, 0.5) / 1024, 0),
      perConnectionMaxKiB: round(sorted.at(-1)! / 1024, 0),
      ownerRssBeforeMiB: round(rssBefore / MiB, 1),
      ownerRssHeldMiB: round(rssHeld / MiB, 1),
      ownerRssPeakMiB: round(Math.max(rssPeak, after?.peakRssBytes ?? 0) / MiB, 1),
      ownerCpuPercent: round(
        (((after?.cpuSeconds ?? 0) - (before?.cpuSeconds ?? 0)) / holdSeconds) * 100,
        0,
      ),
      peerSeconds,
    };
  } finally {
    fleet?.close();
    await Promise.all(processes.map((p) => p.stop()));
    if (work) await rm(work, { recursive: true, force: true });
  }
}
