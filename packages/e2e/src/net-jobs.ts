import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { basename, join } from 'node:path';
import { withAnnounce } from '@swarmdrop/protocol';
import { parseTextLine } from '@swarmdrop/service';
import { type LoopDelay, LoopDelayProbe } from './loop-delay.js';
import { NetnsLab } from './netns.js';
import { busyFraction, ProcSampler, type ProcStats, readMachineCpu } from './proc-stats.js';
import { binPath, ManagedProcess } from './processes.js';
import { CHUNK_SIZE } from './scenario.js';
import { type Launcher, Swarm, sha256File } from './swarm.js';
import { ringTopology, swarmTopology, type Topology } from './topology.js';

/**
 * The jobs of `pnpm bench:net` (and its CI test): one file distributed to N
 * peers, each process on its own host (network namespace) whose upload is
 * limited by `tc tbf`. The owner (or the aria2c seeder) is host `own`, peer
 * i is host `h<i>`.
 */

export const OWNER_HOST = 'own';
export const peerHost = (i: number) => `h${i}`;

/** The default upload rate of every host, bit/s (the rate the first lab was measured at). */
export const DEFAULT_UPLOAD_BITS_PER_SECOND = 40e6;

/**
 * Everything a run started, so that it can be stopped from anywhere (a
 * failure, Ctrl-C, the time bound): processes by PID first, then the labs'
 * namespaces, which a process still inside would keep alive.
 */
export class Resources {
  private readonly processes = new Set<ManagedProcess>();
  private readonly labs = new Set<NetnsLab>();

  addProcess(proc: ManagedProcess): void {
    this.processes.add(proc);
  }

  addLab(lab: NetnsLab): void {
    this.labs.add(lab);
  }

  /** Stops every process and removes every lab; what fails is reported, the rest still goes. */
  async closeAll(): Promise<string[]> {
    const failures: string[] = [];
    const procs = [...this.processes];
    this.processes.clear();
    await Promise.all(procs.map((p) => p.stop().catch((e: Error) => failures.push(e.message))));
    const labs = [...this.labs];
    this.labs.clear();
    for (const lab of labs) await lab.close().catch((e: Error) => failures.push(e.message));
    return failures;
  }
}

/** Builds the owner's host and `peers` peer hosts, each with its upload shaped. */
export async function createShapedLab(
  peers: number,
  uploadBitsPerSecond: number,
  resources: Resources,
): Promise<NetnsLab> {
  const names = [OWNER_HOST, ...Array.from({ length: peers }, (_, i) => peerHost(i + 1))];
  // Registered before it is built, so that Ctrl-C mid-build removes it too.
  const lab = await NetnsLab.create(names, { onCreated: (l) => resources.addLab(l) });
  for (const name of names) await lab.shapeUpload(name, uploadBitsPerSecond);
  return lab;
}

/**
 * The lower bound for F bytes to N peers: D_min = max(F/u_owner,
 * N·F/(u_owner + Σu_peers)), every host uploading at `uploadBitsPerSecond`
 * and downloads unlimited.
 */
export function dMinSeconds(fileBytes: number, peers: number, uploadBitsPerSecond: number): number {
  const u = uploadBitsPerSecond / 8;
  return Math.max(fileBytes / u, (peers * fileBytes) / ((peers + 1) * u));
}

export interface Quantiles {
  readonly p10: number;
  readonly median: number;
  readonly p90: number;
  readonly max: number;
}

/**
 * For every chunk a peer got from another peer, from the peers' own log
 * timestamps: stored by the sender → `have-received` at the receiver
 * (`haveMs`: the have's trip, behind whatever the sender's socket and tbf
 * queue hold), → `request-sent` (`requestWaitMs`: the receiver's pipeline
 * was full), → `chunk-received` (`requestToChunkMs`: the request's trip,
 * the chunk's wait in the sender's queue, its transmission, the SHA-1
 * check). `hopMs` is the whole: stored there → stored here.
 */
export interface HopLatency {
  readonly chunks: number;
  readonly haveMs: Quantiles;
  readonly requestWaitMs: Quantiles;
  readonly requestToChunkMs: Quantiles;
  readonly hopMs: Quantiles;
}

/** One direction of traffic as the receiving peer logged it. */
export interface LinkUse {
  readonly to: string;
  readonly from: string;
  readonly chunks: number;
  readonly bytes: number;
  /** First and last chunk-received on this link, seconds after the first peer's start. */
  readonly firstAtS: number;
  readonly lastAtS: number;
  /** First to last chunk-received on this link, seconds. */
  readonly activeSeconds: number;
  /** bytes / activeSeconds as a fraction of the shaped rate. */
  readonly utilisation: number;
}

export interface JobResult {
  readonly job: string;
  readonly peers: number;
  /** From the first peer's start to the last peer's complete file. */
  readonly seconds: number;
  /** Per peer, in order: its file's SHA-256 equals the source's. */
  readonly identical: boolean[];
  /** CPU and peak RSS of each process this job started. */
  readonly processes: Record<string, ProcStats>;
  /** The whole machine's busy fraction over the job (all cores, everyone's work). */
  readonly machineBusy: number;
  /** Our processes' CPU seconds per wall second, over the cores there are (0..1). */
  readonly ownCpuShare: number;
  /**
   * Of the time our processes wanted a core, the fraction they waited for
   * one: wait / (CPU + wait). Near 0, the network sets the pace; large, the
   * machine's CPU does.
   */
  readonly cpuWaitShare: number;
  readonly notes: string[];
  /** Ring and swarm: each peer's intake per sender. */
  readonly links?: LinkUse[];
  /** Ring and swarm: how long a chunk takes from one peer to the next, and where the time goes. */
  readonly hops?: HopLatency;
  /** Ring and swarm: when the last peer was started, seconds after the first (the seed starts them one at a time). */
  readonly lastStartS?: number;
  /** Ring and swarm: the owner's first and last chunk-sent, seconds after the first peer's start. */
  readonly ownerSendS?: readonly [number, number];
  /**
   * Ring and swarm: each swarmdrop process's event-loop delay from its
   * start to the end of the job (p99 and max, from its /metrics): a loop
   * held up by a blocking call shows here, where the kernel counts sleep.
   */
  readonly loopDelay?: Record<string, LoopDelay>;
}

/**
 * The ring's own lower bound, above D_min. Two things hold it up:
 * - peer N, started last at t_N, gets only its batch (about F/N) from the
 *   owner and everything else through its one download link at rate u: it
 *   cannot finish before t_N + (N−1)·F/(N·u);
 * - the owner's last chunk leaves it no earlier than F/u_owner, to one peer,
 *   and reaches the peer N−1 hops down the ring only after N−1 more
 *   store-and-forward transmissions of c bytes: F/u_owner + (N−1)·c/u.
 * D_ring = max(D_min, both). With the seed's one-at-a-time start, t_N is
 * (N−1) start-ups: the ring's time grows with N even on a perfect network.
 */
export function dRingSeconds(
  fileBytes: number,
  peers: number,
  uploadBitsPerSecond: number,
  lastStartS: number,
  chunkBytes = CHUNK_SIZE,
): number {
  const u = uploadBitsPerSecond / 8;
  return Math.max(
    dMinSeconds(fileBytes, peers, uploadBitsPerSecond),
    lastStartS + ((peers - 1) * fileBytes) / (peers * u),
    fileBytes / u + ((peers - 1) * Math.min(chunkBytes, fileBytes)) / u,
  );
}

export type StartMode = 'auto' | 'one-by-one' | 'together';

export interface JobOptions {
  readonly lab: NetnsLab;
  readonly peers: number;
  /** The source file; its basename is the name every copy gets. */
  readonly file: string;
  readonly sha256: string;
  /** A directory of this job's own (the hosts' directories and logs go here). */
  readonly workDir: string;
  readonly uploadBitsPerSecond: number;
  /** Bounds the wait for every peer to complete. */
  readonly timeoutMs: number;
  readonly resources: Resources;
  /** How peers start: each once the previous is up (the seed's way), all at once, or `auto` (default): the ring one at a time, the swarm at once, as aria2c's leechers. */
  readonly start?: StartMode;
  /** The owner and peer programs (default: the workspace's built bins). */
  readonly bins?: Readonly<Record<'owner' | 'peer', string>>;
  /** Extra arguments for every swarmdrop peer (e.g. `--pipeline`). */
  readonly extraPeerArgs?: readonly string[];
  /** Extra arguments for `node` itself in every swarmdrop process (e.g. `--cpu-prof`). */
  readonly nodeArgs?: readonly string[];
}

/** Samples every spawned process, and the machine, from start to `finish()`. */
class Sampling {
  private readonly samplers = new Map<string, { proc: ManagedProcess; sampler: ProcSampler }>();
  private readonly machineAtStart = readMachineCpu();
  private readonly startedAt = Date.now();

  constructor(private readonly resources: Resources) {}

  add(proc: ManagedProcess): void {
    this.resources.addProcess(proc);
    if (proc.pid !== undefined)
      this.samplers.set(proc.name, { proc, sampler: new ProcSampler(proc.pid, 200) });
  }

  async finish(): Promise<
    Pick<JobResult, 'processes' | 'machineBusy' | 'ownCpuShare' | 'cpuWaitShare'>
  > {
    const processes: Record<string, ProcStats> = {};
    for (const [name, { proc, sampler }] of this.samplers)
      processes[name] = await sampler.stop(proc.pid!);
    const wall = (Date.now() - this.startedAt) / 1000;
    const cpu = Object.values(processes).reduce((a, p) => a + p.cpuSeconds, 0);
    const wait = Object.values(processes).reduce((a, p) => a + p.runQueueWaitSeconds, 0);
    return {
      cpuWaitShare: cpu + wait > 0 ? wait / (cpu + wait) : 0,
      processes,
      machineBusy: busyFraction(await this.machineAtStart, await readMachineCpu()),
      ownCpuShare: wall > 0 ? cpu / wall / cpus().length : 0,
    };
  }
}

/** Runs `command` inside a lab host with this Node (no bundle: the workspace's built bins). */
function nodeIn(
  lab: NetnsLab,
  host: string,
  script: string,
  nodeArgs: readonly string[] = [],
): { file: string; args: string[] } {
  const [file, ...args] = lab.exec(host);
  return { file: file!, args: [...args, process.execPath, ...nodeArgs, script] };
}

/**
 * The seed's ring: the owner on host `own`, peer i on host `h<i>`
 * downloading from peer i+1, started one at a time as the seed does.
 */
export function ringJob(options: JobOptions): Promise<JobResult> {
  return topologyJob('ring', ringTopology(options.peers), options);
}

/**
 * Swarm mode: the same hosts, every peer without a download neighbour, so
 * each takes its peers from the owner's tracker and trades with all of them.
 */
export function swarmJob(options: JobOptions): Promise<JobResult> {
  return topologyJob('swarm', swarmTopology(options.peers), options);
}

/** One owner and a peer per host in `topology`, started as the seed does; measured the same for every mode. */
async function topologyJob(
  job: 'ring' | 'swarm',
  topology: Topology,
  options: JobOptions,
): Promise<JobResult> {
  const { lab, peers } = options;
  const hostOf = (name: string) =>
    name === 'owner' ? OWNER_HOST : peerHost(Number(name.slice(1)));
  const launcher: Launcher = {
    command: (name, service) =>
      nodeIn(lab, hostOf(name), options.bins?.[service] ?? binPath(service), options.nodeArgs),
    host: (name) => lab.host(hostOf(name)).ipv4,
  };
  const sampling = new Sampling(options.resources);
  const [probeFile, ...probeArgs] = lab.exec(OWNER_HOST);
  const probe = new LoopDelayProbe({ file: probeFile!, args: [...probeArgs, process.execPath] });
  /** Each service's /metrics, once it listens (the first scrape starts its monitor). */
  const metricsUrls = new Map<string, Promise<string | undefined>>();
  const watch = (proc: ManagedProcess) => {
    const url = proc
      .waitFor((l) => parseTextLine(l)?.event === 'listening', 'listening', 60_000)
      .then(async (line) => {
        const port = /:(\d+)$/.exec(parseTextLine(line)?.fields.addr ?? '')?.[1];
        if (!port) return undefined;
        const target = `http://${launcher.host!(proc.name)}:${port}/metrics`;
        await probe.scrape(target);
        return target;
      })
      .catch(() => undefined);
    metricsUrls.set(proc.name, url);
  };
  let swarm: Swarm | undefined;
  try {
    swarm = await Swarm.start({
      topology,
      launcher,
      file: options.file,
      workDir: options.workDir,
      // The peer's own default: a fallback to the owner shows in the notes.
      extraPeerArgs: options.extraPeerArgs ?? [],
      onSpawn: (proc) => {
        sampling.add(proc);
        watch(proc);
      },
      startTogether:
        options.start === 'together' || (job === 'swarm' && (options.start ?? 'auto') === 'auto'),
      stepTimeoutMs: 60_000,
    });
    await swarm.waitAllComplete(options.sha256, options.timeoutMs);
    const runs = [...swarm.peers.values()];
    const procs = runs.map((r) => swarm!.processes.get(r.id)!);
    const first = Math.min(...procs.map((p) => p.startedAt));
    const last = Math.max(...procs.map((p) => p.completedAt));
    const identical: boolean[] = [];
    for (const run of runs)
      identical.push((await sha256File(swarm.mergedPath(run.id))) === options.sha256);
    const stats = await sampling.finish();
    const loopDelay: Record<string, LoopDelay> = {};
    for (const [name, url] of metricsUrls) {
      const target = await url;
      const delay = target ? await probe.scrape(target) : undefined;
      if (delay) loopDelay[name] = delay;
    }
    const links = linkUse(swarm, options.uploadBitsPerSecond, first);
    const fallback = runs.reduce(
      (n, r) =>
        n +
        swarm!
          .events(r.id)
          .filter((e) => e.event === 'chunk-received' && e.fields.via === 'fallback').length,
      0,
    );
    const hops = hopLatency(swarm);
    const owner = swarm.processes.get('owner')!;
    const sent = (l: string) => parseTextLine(l)?.event === 'chunk-sent';
    const ownerFirst = owner.timeOf(sent);
    const ownerLast = owner.timeOf(sent, true);
    return {
      job,
      peers,
      seconds: (last - first) / 1000,
      identical,
      ...stats,
      notes: fallback > 0 ? [`${fallback} chunks came by fallback to the owner`] : [],
      links,
      ...(hops ? { hops } : {}),
      loopDelay,
      lastStartS: (Math.max(...procs.map((p) => p.startedAt)) - first) / 1000,
      ...(ownerFirst !== undefined && ownerLast !== undefined
        ? { ownerSendS: [(ownerFirst - first) / 1000, (ownerLast - first) / 1000] as const }
        : {}),
    };
  } finally {
    probe.close();
    await swarm?.stopAll();
  }
}

/** Per receiving peer and sender: chunks, bytes, and the rate over the span it was used. */
function linkUse(swarm: Swarm, uploadBitsPerSecond: number, t0: number): LinkUse[] {
  const names = new Map<string, string>();
  names.set(swarm.address('owner'), 'owner');
  for (const id of swarm.peers.keys()) names.set(swarm.address(id), id);
  const out: LinkUse[] = [];
  for (const id of swarm.peers.keys()) {
    const proc = swarm.processes.get(id)!;
    const perFrom = new Map<
      string,
      { chunks: number; bytes: number; first: number; last: number }
    >();
    proc.lines.forEach((line, i) => {
      const e = parseTextLine(line);
      if (e?.event !== 'chunk-received') return;
      const from = names.get(e.fields.from ?? '') ?? e.fields.from ?? '?';
      const t = proc.lineTimes[i]!;
      const entry = perFrom.get(from) ?? { chunks: 0, bytes: 0, first: t, last: t };
      entry.chunks++;
      entry.bytes += Number(e.fields.bytes ?? 0);
      entry.last = t;
      perFrom.set(from, entry);
    });
    for (const [from, e] of perFrom) {
      const activeSeconds = (e.last - e.first) / 1000;
      out.push({
        to: id,
        from,
        chunks: e.chunks,
        bytes: e.bytes,
        firstAtS: (e.first - t0) / 1000,
        lastAtS: (e.last - t0) / 1000,
        activeSeconds,
        utilisation:
          activeSeconds > 0 ? (e.bytes * 8) / activeSeconds / uploadBitsPerSecond : Number.NaN,
      });
    }
  }
  return out;
}

/** Milliseconds since midnight from a log line's `HH:MM:SS.mmm` (every process here shares one clock). */
function lineMs(line: string): number | undefined {
  const m = /^(\d\d):(\d\d):(\d\d)\.(\d{3}) /.exec(line);
  return m
    ? ((Number(m[1]) * 60 + Number(m[2])) * 60 + Number(m[3])) * 1000 + Number(m[4])
    : undefined;
}

function quantiles(values: number[]): Quantiles {
  const s = [...values].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? Number.NaN;
  return { p10: at(0.1), median: at(0.5), p90: at(0.9), max: s[s.length - 1] ?? Number.NaN };
}

function hopLatency(swarm: Swarm): HopLatency | undefined {
  const nameOf = new Map<string, string>();
  for (const id of swarm.peers.keys()) nameOf.set(swarm.address(id), id);
  type Times = {
    stored: Map<number, { at: number; from?: string }>;
    have: Map<string, number>;
    request: Map<string, number>;
  };
  const times = new Map<string, Times>();
  for (const id of swarm.peers.keys()) {
    const t: Times = { stored: new Map(), have: new Map(), request: new Map() };
    for (const line of swarm.processes.get(id)!.lines) {
      const e = parseTextLine(line);
      const at = lineMs(line);
      if (!e || at === undefined) continue;
      const chunk = Number(e.fields.chunk);
      if (e.event === 'chunk-received') {
        const from = nameOf.get(e.fields.from ?? '');
        t.stored.set(chunk, from ? { at, from } : { at });
      } else if (e.event === 'have-received') {
        const key = `${nameOf.get(e.fields.from ?? '')}/${chunk}`;
        if (!t.have.has(key)) t.have.set(key, at);
      } else if (e.event === 'request-sent') {
        const key = `${nameOf.get(e.fields.to ?? '')}/${chunk}`;
        if (!t.request.has(key)) t.request.set(key, at);
      }
    }
    times.set(id, t);
  }
  const have: number[] = [];
  const wait: number[] = [];
  const fetch: number[] = [];
  const hop: number[] = [];
  for (const t of times.values()) {
    for (const [chunk, got] of t.stored) {
      if (!got.from) continue;
      const there = times.get(got.from)?.stored.get(chunk)?.at;
      const key = `${got.from}/${chunk}`;
      const h = t.have.get(key);
      const r = t.request.get(key);
      // Chunks in the sender's first bitfield have no `have`: only hops seen whole count.
      if (there === undefined || h === undefined || r === undefined) continue;
      have.push(h - there);
      wait.push(r - h);
      fetch.push(got.at - r);
      hop.push(got.at - there);
    }
  }
  if (hop.length === 0) return undefined;
  return {
    chunks: hop.length,
    haveMs: quantiles(have),
    requestWaitMs: quantiles(wait),
    requestToChunkMs: quantiles(fetch),
    hopMs: quantiles(hop),
  };
}

/** A tracker for the aria2c job, run on the owner's host: it knows only the processes announcing to it. */
const TRACKER_SCRIPT = `import { createServer } from 'node:http';
const [host, portText] = process.argv.slice(2);
const peers = new Map();
const bencode = (fields) => {
  const parts = [Buffer.from('d')];
  for (const [k, v] of Object.entries(fields).sort(([a], [b]) => (a < b ? -1 : 1))) {
    parts.push(Buffer.from(k.length + ':' + k));
    if (Buffer.isBuffer(v)) parts.push(Buffer.from(v.length + ':'), v);
    else parts.push(Buffer.from('i' + v + 'e'));
  }
  parts.push(Buffer.from('e'));
  return Buffer.concat(parts);
};
let seeded = false;
const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://tracker.invalid');
  const port = Number(url.searchParams.get('port'));
  const from = (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
  const me = from + ':' + port;
  if (port > 0 && /^\\d+\\.\\d+\\.\\d+\\.\\d+$/.test(from)) {
    const entry = Buffer.alloc(6);
    from.split('.').forEach((o, i) => { entry[i] = Number(o); });
    entry.writeUInt16BE(port, 4);
    peers.set(me, entry);
  }
  if (url.searchParams.get('left') === '0' && !seeded) { seeded = true; console.log('seeded ' + me); }
  const others = [...peers].filter(([k]) => k !== me).map(([, v]) => v);
  res.end(bencode({ interval: 5, 'min interval': 1, peers: Buffer.concat(others) }));
});
process.on('SIGTERM', () => process.exit(0));
server.listen(Number(portText), host, () => console.log('ready'));
`;

const ARIA2_FLAGS = [
  '--enable-dht=false',
  '--enable-dht6=false',
  '--bt-enable-lpd=false',
  '--enable-peer-exchange=false',
  '--summary-interval=0',
  '--console-log-level=warn',
  '--file-allocation=none',
  // Every leecher keeps seeding until the job ends, as every swarmdrop peer keeps serving.
  '--seed-ratio=0.0',
  '--seed-time=600',
];

const COMPLETE_LINE = 'bt-download-complete ';

/**
 * The same job by a stock client: one aria2c seeder on the owner's host
 * seeding the owner's own .torrent (its announce pointed at a tracker on
 * that host), and N aria2c leechers, one per peer host, started together.
 * A leecher is complete when aria2c runs its `--on-bt-download-complete`
 * hook; its file is then checked by SHA-256.
 */
export async function aria2Job(options: JobOptions): Promise<JobResult> {
  const { lab, peers, workDir } = options;
  const name = basename(options.file);
  const sampling = new Sampling(options.resources);
  const procs: ManagedProcess[] = [];
  const spawn = (id: string, host: string, file: string, args: string[]) => {
    const [ipFile, ...ipArgs] = lab.exec(host);
    const proc = new ManagedProcess(id, ipFile!, [...ipArgs, file, ...args], {
      cwd: workDir,
      logPath: join(workDir, 'logs', `${id}.log`),
    });
    procs.push(proc);
    sampling.add(proc);
    return proc;
  };
  try {
    await mkdir(join(workDir, 'logs'), { recursive: true });
    const torrent = await ownerTorrent(options, spawn);
    const trackerScript = join(workDir, 'tracker.mjs');
    await writeFile(trackerScript, TRACKER_SCRIPT);
    const ownerIp = lab.host(OWNER_HOST).ipv4;
    const tracker = spawn('tracker', OWNER_HOST, process.execPath, [
      trackerScript,
      ownerIp,
      '6969',
    ]);
    await tracker.waitFor((l) => l === 'ready', 'tracker ready', 30_000);
    const announced = join(workDir, `${name}.torrent`);
    await writeFile(
      announced,
      withAnnounce(await readFile(torrent), `http://${ownerIp}:6969/announce`),
    );
    const hook = join(workDir, 'complete-hook.sh');
    await writeFile(hook, `#!/bin/sh\necho "${COMPLETE_LINE}$3"\n`, { mode: 0o755 });

    const seedDir = join(workDir, 'seeder');
    await mkdir(seedDir, { recursive: true });
    await writeFile(join(seedDir, name), await readFile(options.file));
    const seeder = spawn('seeder', OWNER_HOST, 'aria2c', [
      ...ARIA2_FLAGS,
      `--dir=${seedDir}`,
      '--listen-port=6881',
      '--check-integrity=true',
      announced,
    ]);
    await Promise.race([
      tracker.waitFor((l) => l.startsWith('seeded '), 'seeder announce', 120_000),
      seeder.exited.then((e) => Promise.reject(new Error(`aria2c seeder exited (${e.code})`))),
    ]);

    const leechers = Array.from({ length: peers }, (_, i) =>
      spawn(`leecher${i + 1}`, peerHost(i + 1), 'aria2c', [
        ...ARIA2_FLAGS,
        `--dir=${join(workDir, `leecher${i + 1}`)}`,
        '--listen-port=6881',
        `--on-bt-download-complete=${hook}`,
        announced,
      ]),
    );
    await Promise.all(
      leechers.map((p) =>
        p.waitFor((l) => l.startsWith(COMPLETE_LINE), 'download complete', options.timeoutMs),
      ),
    );
    const first = Math.min(...leechers.map((p) => p.startedAt));
    const last = Math.max(...leechers.map((p) => p.timeOf((l) => l.startsWith(COMPLETE_LINE))!));
    const identical: boolean[] = [];
    for (let i = 1; i <= peers; i++)
      identical.push((await sha256File(join(workDir, `leecher${i}`, name))) === options.sha256);
    return {
      job: 'aria2c',
      peers,
      seconds: (last - first) / 1000,
      identical,
      ...(await sampling.finish()),
      notes: [],
    };
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
  }
}

/** The .torrent swarmdrop's owner writes for the file: the owner runs on its host until ready. */
async function ownerTorrent(
  options: JobOptions,
  spawn: (id: string, host: string, file: string, args: string[]) => ManagedProcess,
): Promise<string> {
  const dir = join(options.workDir, 'owner');
  const owner = spawn('owner', OWNER_HOST, process.execPath, [
    binPath('owner'),
    `${options.lab.host(OWNER_HOST).ipv4}:7000`,
    options.file,
    '--dir',
    dir,
  ]);
  await owner.waitFor((l) => parseTextLine(l)?.event === 'ready', 'owner ready', 120_000);
  await owner.stop();
  return join(dir, `${basename(options.file)}.torrent`);
}

/** A job of the benchmark: `run` is undefined for one not built yet. */
export interface NetJob {
  readonly name: string;
  readonly run?: (options: JobOptions) => Promise<JobResult>;
  /** Why it does not run yet. */
  readonly missing?: string;
}

export const NET_JOBS: readonly NetJob[] = [
  { name: 'ring', run: ringJob },
  { name: 'swarm', run: swarmJob },
  { name: 'aria2c', run: aria2Job },
];
