import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { basename, join } from 'node:path';
import { parseTextLine } from '@swarmdrop/service';
import { execa } from 'execa';
import { OWNER_HOST, peerHost, type Resources } from './net-jobs.js';
import { LAB_IPV4_PREFIX, NetnsLab } from './netns.js';
import { ProcSampler } from './proc-stats.js';
import { binPath, ManagedProcess } from './processes.js';
import { sha256File } from './swarm.js';

/**
 * The µTP jobs of `pnpm bench:net`: one owner → one peer over a
 * single shaped link, once over TCP and once over µTP (`utp-vs-tcp`), and the
 * µTP transfer again while a bulk TCP flow shares that link (`utp-yield`).
 *
 * Hosts: the owner and the bulk TCP sender on `own`, the peer and the bulk
 * TCP receiver on `h1`, so both flows cross the one shaped link; `h2` only
 * gives the peer a download neighbour where nothing listens (the owner's
 * batch for one expected peer is the whole file).
 */

export const UTP_JOB_NAMES = ['utp-vs-tcp', 'utp-yield'] as const;
export type UtpJobName = (typeof UTP_JOB_NAMES)[number];

/** Queue of the shaped link, as time at its rate: long enough for TCP to build more than LEDBAT's 100 ms target. */
export const DEFAULT_UTP_TBF_LATENCY_MS = 300;
/** Where the link is shaped: `download` = the switch's port towards h1; `upload` = own's eth0. */
export type UtpLinkPlace = 'download' | 'upload';
export const DEFAULT_UTP_LINK_PLACE: UtpLinkPlace = 'download';
/**
 * The bulk TCP flow's congestion control. CUBIC is Linux's, Windows' and
 * macOS's default and fills a queue until it drops, which is the traffic
 * LEDBAT is built to give way to. (This machine's kernel defaults to BBR.)
 */
export const DEFAULT_BULK_TCP_CC = 'cubic';
/** utp-yield's second share leaves out the TCP flow's first seconds. */
export const SETTLED_AFTER_SECONDS = 3;
/** µTP alone on the link before the bulk TCP flow starts, seconds. */
export const YIELD_SOLO_SECONDS = 2;
/** How long the bulk TCP flow sends, seconds. */
export const YIELD_TCP_SECONDS = 10;

export interface UtpJobOptions {
  readonly workDir: string;
  /** The source file of utp-vs-tcp; utp-yield makes one twice its size. */
  readonly file: string;
  readonly sha256: string;
  readonly rateBitsPerSecond: number;
  readonly latencyMs: number;
  readonly place: UtpLinkPlace;
  readonly tcpCongestionControl: string;
  readonly resources: Resources;
  readonly timeoutMs: number;
  /** utp-yield: µTP alone before the TCP flow, seconds (default YIELD_SOLO_SECONDS). */
  readonly soloSeconds?: number;
  /** utp-yield: how long the TCP flow sends, seconds (default YIELD_TCP_SECONDS). */
  readonly tcpSeconds?: number;
}

export interface TransferResult {
  readonly transport: 'tcp' | 'utp';
  /** Owner link connected → last chunk received, seconds. */
  readonly seconds: number;
  readonly mbitPerSecond: number;
  readonly identical: boolean;
  readonly ownerCpuSeconds: number;
  readonly peerCpuSeconds: number;
}

export interface UtpVsTcpResult {
  readonly job: 'utp-vs-tcp';
  /** The lab's id (its namespaces are named after it). */
  readonly labId: string;
  readonly tcp: TransferResult;
  readonly utp: TransferResult;
  /** µTP's throughput over TCP's. */
  readonly ratio: number;
  readonly loadAverage: readonly [number, number];
}

export interface UtpYieldResult {
  readonly job: 'utp-yield';
  readonly labId: string;
  /** Everything the bulk TCP receiver got. */
  readonly tcpBytesTotal: number;
  /** µTP alone before the TCP flow started, Mbit/s. */
  readonly utpSoloMbit: number;
  /** Both flows running, seconds. */
  readonly overlapSeconds: number;
  readonly tcpMbit: number;
  readonly utpMbit: number;
  /** The TCP flow's rate during the overlap over the link's rate. */
  readonly tcpShareOfLink: number;
  /** µTP after the TCP flow ended, Mbit/s (undefined if it finished during the overlap). */
  readonly utpAfterMbit: number | undefined;
  /**
   * The TCP flow's share from its SETTLED_AFTER_SECONDS-th second on: without
   * its own start (slow start, then CUBIC's growth per round trip).
   */
  readonly tcpShareSettled: number;
  /** Per second of the overlap: [TCP, µTP] Mbit/s. */
  readonly timeline: ReadonlyArray<readonly [number, number]>;
  readonly identical: boolean;
  readonly loadAverage: readonly [number, number];
}

export type UtpJobResult = UtpVsTcpResult | UtpYieldResult;

/** A bulk TCP receiver: prints `ready`, then its byte count every 100 ms while bytes come. */
const BULK_RECEIVER = `import { createServer } from 'node:net';
const [host, port] = process.argv.slice(2);
let total = 0;
let printed = -1;
setInterval(() => { if (total !== printed) { printed = total; console.log('bytes ' + total); } }, 100);
createServer((s) => { s.on('data', (b) => { total += b.length; }); s.on('error', () => {}); })
  .listen(Number(port), host, () => console.log('ready'));
process.on('SIGTERM', () => process.exit(0));
`;

/** A bulk TCP sender: writes as fast as the socket takes for N seconds, then ends. */
const BULK_SENDER = `import { connect } from 'node:net';
const [host, port, seconds] = process.argv.slice(2);
const block = Buffer.alloc(256 * 1024, 0x5a);
const s = connect(Number(port), host);
let end = 0;
const pump = () => {
  while (Date.now() < end) if (!s.write(block)) return void s.once('drain', pump);
  s.end(() => { console.log('done'); process.exit(0); });
};
s.on('connect', () => { console.log('connected'); end = Date.now() + Number(seconds) * 1000; pump(); });
s.on('error', (e) => { console.error(e.message); process.exit(1); });
`;

const BULK_PORT = 5001;

/** Builds the lab: own, h1, h2; the one link shaped; the bulk flow's congestion control set on own. */
async function utpLab(options: UtpJobOptions): Promise<NetnsLab> {
  const lab = await NetnsLab.create([OWNER_HOST, peerHost(1), peerHost(2)], {
    onCreated: (l) => options.resources.addLab(l),
  });
  const shape = { latencyMs: options.latencyMs };
  if (options.place === 'upload')
    await lab.shapeUpload(OWNER_HOST, options.rateBitsPerSecond, shape);
  else await lab.shapeDownload(peerHost(1), options.rateBitsPerSecond, shape);
  // Per route, so it needs no change to the namespace's default (restricted outside the root namespace).
  const own = lab.host(OWNER_HOST);
  const route = await execa(
    'ip',
    [
      '-n',
      own.ns,
      'route',
      'replace',
      `${LAB_IPV4_PREFIX}0/24`,
      'dev',
      'eth0',
      'congctl',
      options.tcpCongestionControl,
    ],
    { reject: false },
  );
  if (route.exitCode !== 0)
    throw new Error(`congestion control ${options.tcpCongestionControl}: ${route.stderr.trim()}`);
  return lab;
}

class Spawner {
  readonly procs: ManagedProcess[] = [];
  private readonly samplers = new Map<ManagedProcess, ProcSampler>();

  constructor(
    private readonly lab: NetnsLab,
    private readonly workDir: string,
    private readonly resources: Resources,
  ) {}

  spawn(id: string, host: string, args: string[]): ManagedProcess {
    const [ipFile, ...ipArgs] = this.lab.exec(host);
    const proc = new ManagedProcess(id, ipFile!, [...ipArgs, process.execPath, ...args], {
      cwd: this.workDir,
      logPath: join(this.workDir, 'logs', `${id}.log`),
    });
    this.procs.push(proc);
    this.resources.addProcess(proc);
    if (proc.pid !== undefined) this.samplers.set(proc, new ProcSampler(proc.pid, 200));
    return proc;
  }

  async cpuSeconds(proc: ManagedProcess): Promise<number> {
    const sampler = this.samplers.get(proc);
    this.samplers.delete(proc);
    return sampler && proc.pid !== undefined ? (await sampler.stop(proc.pid)).cpuSeconds : 0;
  }

  /** Stops every sampler (their timers would keep bench:net alive) and every process. */
  async stopAll(): Promise<void> {
    for (const proc of [...this.samplers.keys()]) await this.cpuSeconds(proc);
    await Promise.all(this.procs.map((p) => p.stop()));
  }
}

const isEvent = (line: string, event: string) => parseTextLine(line)?.event === event;

interface ChunkTimes {
  /** The peer's `connected role=owner` line. */
  readonly connectedAt: number;
  readonly transport: string | undefined;
  /** Arrival time and bytes of each chunk-received line. */
  readonly chunks: Array<{ at: number; bytes: number }>;
}

function chunkTimes(peer: ManagedProcess): ChunkTimes {
  let connectedAt = Number.NaN;
  let transport: string | undefined;
  const chunks: Array<{ at: number; bytes: number }> = [];
  peer.lines.forEach((line, i) => {
    const e = parseTextLine(line);
    if (!e) return;
    if (e.event === 'connected' && e.fields.role === 'owner' && Number.isNaN(connectedAt)) {
      connectedAt = peer.lineTimes[i]!;
      transport = e.fields.transport;
    } else if (e.event === 'chunk-received') {
      chunks.push({ at: peer.lineTimes[i]!, bytes: Number(e.fields.bytes ?? 0) });
    }
  });
  return { connectedAt, transport, chunks };
}

/** Starts the owner on own and one peer on h1 with `--transport`; resolves with both once the owner is ready. */
async function startPair(
  spawner: Spawner,
  lab: NetnsLab,
  options: { file: string; dir: string; transport: 'tcp' | 'utp'; port: number; timeoutMs: number },
): Promise<{ owner: ManagedProcess; peer: ManagedProcess; peerDir: string }> {
  const ownIp = lab.host(OWNER_HOST).ipv4;
  const owner = spawner.spawn(`owner-${options.transport}`, OWNER_HOST, [
    binPath('owner'),
    `${ownIp}:${options.port}`,
    options.file,
    '--dir',
    join(options.dir, `owner-${options.transport}`),
    '--expected-peers',
    '1',
    '--transport',
    options.transport,
  ]);
  await owner.waitFor((l) => isEvent(l, 'ready'), 'ready line', 120_000);
  const peerDir = join(options.dir, `peer-${options.transport}`);
  const peer = spawner.spawn(`peer-${options.transport}`, peerHost(1), [
    binPath('peer'),
    `${ownIp}:${options.port}`,
    `${lab.host(peerHost(1)).ipv4}:${options.port + 1}`,
    // Nobody listens there: the whole file is the owner's batch.
    `${lab.host(peerHost(2)).ipv4}:${options.port + 2}`,
    '--dir',
    peerDir,
    '--transport',
    options.transport,
    '--fallback-after-ms',
    String(options.timeoutMs),
  ]);
  return { owner, peer, peerDir };
}

const mbit = (bytes: number, ms: number) => (ms > 0 ? (bytes * 8) / (ms / 1000) / 1e6 : Number.NaN);
const load = (): readonly [number, number] => [loadavg()[0]!, loadavg()[1]!];

/** utp-vs-tcp: the same file owner → peer over the shaped link, TCP then µTP. */
export async function utpVsTcpJob(options: UtpJobOptions): Promise<UtpVsTcpResult> {
  const lab = await utpLab(options);
  const workDir = join(options.workDir, 'utp-vs-tcp');
  await mkdir(join(workDir, 'logs'), { recursive: true });
  const before = load();
  try {
    const results: TransferResult[] = [];
    for (const [i, transport] of (['tcp', 'utp'] as const).entries()) {
      const spawner = new Spawner(lab, workDir, options.resources);
      try {
        const { owner, peer, peerDir } = await startPair(spawner, lab, {
          file: options.file,
          dir: workDir,
          transport,
          port: 7000 + 10 * i,
          timeoutMs: options.timeoutMs,
        });
        await peer.waitFor((l) => isEvent(l, 'merged'), 'merged line', options.timeoutMs);
        const times = chunkTimes(peer);
        if (times.transport !== transport)
          throw new Error(`${transport} transfer ran over ${times.transport ?? 'nothing'}`);
        const bytes = times.chunks.reduce((a, c) => a + c.bytes, 0);
        const ms = times.chunks.at(-1)!.at - times.connectedAt;
        results.push({
          transport,
          seconds: ms / 1000,
          mbitPerSecond: mbit(bytes, ms),
          identical: (await sha256File(join(peerDir, basename(options.file)))) === options.sha256,
          ownerCpuSeconds: await spawner.cpuSeconds(owner),
          peerCpuSeconds: await spawner.cpuSeconds(peer),
        });
      } finally {
        await spawner.stopAll();
      }
    }
    const [tcp, utp] = results as [TransferResult, TransferResult];
    return {
      job: 'utp-vs-tcp',
      labId: lab.id,
      tcp,
      utp,
      ratio: utp.mbitPerSecond / tcp.mbitPerSecond,
      loadAverage: [before[0], load()[0]],
    };
  } finally {
    await lab.close();
  }
}

/**
 * utp-yield: µTP owner → peer alone for `soloSeconds`, then a bulk TCP
 * flow own → h1 for `tcpSeconds` on the same link, then µTP alone until
 * the file is complete. The file is twice the source, so that µTP is still
 * sending when the TCP flow ends even if it does not yield at all.
 */
export async function utpYieldJob(options: UtpJobOptions): Promise<UtpYieldResult> {
  const lab = await utpLab(options);
  const workDir = join(options.workDir, 'utp-yield');
  await mkdir(join(workDir, 'logs'), { recursive: true });
  const file = join(workDir, `double-${basename(options.file)}`);
  const source = await readFile(options.file);
  await writeFile(file, Buffer.concat([source, source]));
  const sha256 = await sha256File(file);
  const receiverScript = join(workDir, 'bulk-receiver.mjs');
  const senderScript = join(workDir, 'bulk-sender.mjs');
  await writeFile(receiverScript, BULK_RECEIVER);
  await writeFile(senderScript, BULK_SENDER);
  const before = load();
  const spawner = new Spawner(lab, workDir, options.resources);
  try {
    const h1 = lab.host(peerHost(1)).ipv4;
    const receiver = spawner.spawn('bulk-receiver', peerHost(1), [
      receiverScript,
      h1,
      String(BULK_PORT),
    ]);
    await receiver.waitFor((l) => l === 'ready', 'bulk receiver ready', 30_000);
    const { peer, peerDir } = await startPair(spawner, lab, {
      file,
      dir: workDir,
      transport: 'utp',
      port: 7100,
      timeoutMs: options.timeoutMs,
    });
    await peer.waitFor((l) => isEvent(l, 'chunk-received'), 'first chunk', 60_000);
    await new Promise((r) => setTimeout(r, (options.soloSeconds ?? YIELD_SOLO_SECONDS) * 1000));
    const tcpSeconds = options.tcpSeconds ?? YIELD_TCP_SECONDS;
    const sender = spawner.spawn('bulk-sender', OWNER_HOST, [
      senderScript,
      h1,
      String(BULK_PORT),
      String(tcpSeconds),
    ]);
    await sender.waitFor((l) => l === 'done', 'bulk sender done', (tcpSeconds + 60) * 1000);
    await peer.waitFor((l) => isEvent(l, 'merged'), 'merged line', options.timeoutMs);
    const times = chunkTimes(peer);
    if (times.transport !== 'utp') throw new Error(`the µTP transfer ran over ${times.transport}`);
    const tcpStart = sender.timeOf((l) => l === 'connected')!;
    const tcpEnd = sender.timeOf((l) => l === 'done')!;
    const lastChunk = times.chunks.at(-1)!.at;
    const from = Math.max(tcpStart, times.connectedAt);
    const to = Math.min(tcpEnd, lastChunk);
    // The receiver's cumulative count, as last printed at or before `t`.
    const rx = receiver.lines
      .map((l, i) => ({ at: receiver.lineTimes[i]!, bytes: Number(/^bytes (\d+)$/.exec(l)?.[1]) }))
      .filter((x) => Number.isFinite(x.bytes));
    const tcpAt = (t: number) => rx.filter((x) => x.at <= t).at(-1)?.bytes ?? 0;
    const utpBetween = (a: number, b: number) =>
      times.chunks.filter((c) => c.at > a && c.at <= b).reduce((s, c) => s + c.bytes, 0);
    // Negative when µTP finished before the TCP flow began (a tiny file): no overlap.
    const overlapMs = Math.max(0, to - from);
    const tcpBytes = tcpAt(to) - tcpAt(from);
    const timeline: Array<readonly [number, number]> = [];
    for (let t = from; t + 1000 <= to; t += 1000)
      timeline.push([mbit(tcpAt(t + 1000) - tcpAt(t), 1000), mbit(utpBetween(t, t + 1000), 1000)]);
    const firstChunk = times.chunks[0]!.at;
    return {
      job: 'utp-yield',
      labId: lab.id,
      tcpBytesTotal: rx.at(-1)?.bytes ?? 0,
      utpSoloMbit: mbit(utpBetween(firstChunk, tcpStart), tcpStart - firstChunk),
      overlapSeconds: overlapMs / 1000,
      tcpMbit: mbit(tcpBytes, overlapMs),
      utpMbit: mbit(utpBetween(from, to), overlapMs),
      tcpShareOfLink: mbit(tcpBytes, overlapMs) / (options.rateBitsPerSecond / 1e6),
      tcpShareSettled:
        mbit(
          tcpAt(to) - tcpAt(from + SETTLED_AFTER_SECONDS * 1000),
          to - from - SETTLED_AFTER_SECONDS * 1000,
        ) /
        (options.rateBitsPerSecond / 1e6),
      utpAfterMbit:
        lastChunk > tcpEnd ? mbit(utpBetween(tcpEnd, lastChunk), lastChunk - tcpEnd) : undefined,
      timeline,
      identical: (await sha256File(join(peerDir, basename(file)))) === sha256,
      loadAverage: [before[0], load()[0]],
    };
  } finally {
    await spawner.stopAll();
    await lab.close();
  }
}

export const UTP_JOBS: Record<UtpJobName, (options: UtpJobOptions) => Promise<UtpJobResult>> = {
  'utp-vs-tcp': utpVsTcpJob,
  'utp-yield': utpYieldJob,
};

const f = (n: number | undefined, digits = 1) =>
  n !== undefined && Number.isFinite(n) ? n.toFixed(digits) : '—';
const pct = (n: number) => (Number.isFinite(n) ? `${Math.round(n * 100)}%` : '—');

/** One result as the lines bench:net prints. */
export function formatUtpResult(r: UtpJobResult): string[] {
  const loadText = `load average ${f(r.loadAverage[0], 2)} → ${f(r.loadAverage[1], 2)}`;
  if (r.job === 'utp-vs-tcp') {
    const one = (t: TransferResult) =>
      `${t.transport.padEnd(3)} ${f(t.mbitPerSecond)} Mbit/s (${f(t.seconds, 2)} s; CPU owner ${f(t.ownerCpuSeconds, 2)} s, peer ${f(t.peerCpuSeconds, 2)} s; files ${t.identical ? 'identical' : 'DIFFER'})`;
    return [
      `  utp-vs-tcp  µTP/TCP = ${pct(r.ratio)}  (${loadText})`,
      `    ${one(r.tcp)}`,
      `    ${one(r.utp)}`,
    ];
  }
  return [
    `  utp-yield   TCP got ${pct(r.tcpShareOfLink)} of the link while both ran (${f(r.overlapSeconds, 2)} s): TCP ${f(r.tcpMbit)} Mbit/s, µTP ${f(r.utpMbit)} Mbit/s  (${loadText})`,
    `    TCP's share from its ${SETTLED_AFTER_SECONDS + 1}th second on: ${pct(r.tcpShareSettled)}; µTP alone before: ${f(r.utpSoloMbit)} Mbit/s; after the TCP flow ended: ${f(r.utpAfterMbit)} Mbit/s; files ${r.identical ? 'identical' : 'DIFFER'}`,
    `    per second of the overlap, TCP/µTP Mbit/s: ${r.timeline.map(([t, u]) => `${f(t, 0)}/${f(u, 0)}`).join(' ')}`,
  ];
}

/** Whether a result meets the bar µTP was built to: µTP ≥ 90% of TCP; TCP ≥ 70% of the link beside µTP. */
export function utpVerdict(r: UtpJobResult): boolean {
  return r.job === 'utp-vs-tcp'
    ? r.ratio >= 0.9 && r.tcp.identical && r.utp.identical
    : r.tcpShareOfLink >= 0.7 && r.identical;
}
