import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import {
  createShapedLab,
  DEFAULT_UPLOAD_BITS_PER_SECOND,
  dMinSeconds,
  dRingSeconds,
  type JobResult,
  NET_JOBS,
  Resources,
} from './net-jobs.js';
import { shapedLabUnavailableReason } from './netns.js';
import { buildBundle } from './release.js';
import { makeRandomFile } from './scenario.js';
import { sha256File } from './swarm.js';
import {
  DEFAULT_BULK_TCP_CC,
  DEFAULT_UTP_LINK_PLACE,
  DEFAULT_UTP_TBF_LATENCY_MS,
  formatUtpResult,
  UTP_JOB_NAMES,
  UTP_JOBS,
  type UtpJobName,
  type UtpJobResult,
  utpVerdict,
} from './utp-jobs.js';

const USAGE = `Usage: pnpm bench:net [-- options]      (needs root: network namespaces and tc)

Distributes one file to N peers, each process on its own host (a network
namespace on a bridge) whose upload is limited by tc tbf, and prints per N
and per job the wall time from the first peer's start to the last peer's
complete file (SHA-256 checked) and its ratio to
D_min = max(F/u_owner, N*F/(u_owner + sum of u_peers)).

Jobs: ring (the seed's ring of swarmdrop peers), swarm (the same hosts, every peer in swarm mode),
aria2c (one seeder on the owner's host, N leechers; DHT, LPD, PEX off);
run once, not per N: utp-vs-tcp (owner -> one peer over one shaped link,
--transport tcp then utp; throughput and the ratio) and utp-yield (the µTP
transfer while a bulk TCP flow shares that link; the TCP flow's share).

Options:
  --peers LIST       peer counts, comma-separated (default 5,10,20)
  --size-mb N        file size in MB, 10^6 bytes (default 25)
  --rate-mbit N      every host's upload, Mbit/s (default 40)
  --jobs LIST        jobs to run, comma-separated (default ring,swarm,aria2c,utp-vs-tcp,utp-yield)
  --utp-latency-ms N the µTP jobs' link: tbf queue length as time (default ${DEFAULT_UTP_TBF_LATENCY_MS})
  --utp-link PLACE   where that link is shaped: download (the switch's port
                     towards the peer's host; default) or upload (the owner's eth0)
  --tcp-cc NAME      congestion control of TCP from the owner's host in the
                     µTP jobs (default ${DEFAULT_BULK_TCP_CC})
  --start MODE       how peers start: one-by-one (the seed's way, each once
                     the previous is up), together, or auto (default: the
                     ring one-by-one, the swarm together as aria2c's leechers)
  --bins KIND        the programs run: bundle (default: the single-file
                     release bundles, built first; what is deployed) or
                     workspace (the packages' bins over dist/)
  --pipeline N       swarmdrop peers' --pipeline (default: the peer's own)
  --max-minutes N    bound on the whole run; past it everything is stopped (default 30)
  --cpu-prof DIR     write a V8 CPU profile of every swarmdrop process to DIR
                     (node --cpu-prof; open in Chrome DevTools)
  --keep             keep every process's log (the work directory is printed)
  --links            print each ring peer's intake per sender (chunks, Mbit/s)
                     and how long a chunk takes per hop (have, request, chunk)
  --out DIR          where the JSON goes (default bench-results/)
  -h, --help         show this help
`;

function fail(message: string): never {
  process.stderr.write(`bench:net: ${message}\n`);
  process.exit(1);
}

function positiveList(text: string, what: string): number[] {
  const list = text.split(',').map((s) => Number(s.trim()));
  if (list.length === 0 || list.some((n) => !Number.isInteger(n) || n < 1 || n > 100))
    fail(`--${what} must be a comma-separated list of integers 1..100, got "${text}"`);
  return list;
}

function positive(text: string, what: string): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0) fail(`--${what} must be a positive number, got "${text}"`);
  return n;
}

const fmt = (n: number, digits = 2) => (Number.isFinite(n) ? n.toFixed(digits) : '—');
const pct = (n: number) => `${Math.round(n * 100)}%`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      peers: { type: 'string', default: '5,10,20' },
      'size-mb': { type: 'string', default: '25' },
      'rate-mbit': { type: 'string', default: String(DEFAULT_UPLOAD_BITS_PER_SECOND / 1e6) },
      jobs: {
        type: 'string',
        default: [...NET_JOBS.map((j) => j.name), ...UTP_JOB_NAMES].join(','),
      },
      'utp-latency-ms': { type: 'string', default: String(DEFAULT_UTP_TBF_LATENCY_MS) },
      'utp-link': { type: 'string', default: DEFAULT_UTP_LINK_PLACE },
      'tcp-cc': { type: 'string', default: DEFAULT_BULK_TCP_CC },
      pipeline: { type: 'string' },
      start: { type: 'string', default: 'auto' },
      bins: { type: 'string', default: 'bundle' },
      'max-minutes': { type: 'string', default: '30' },
      links: { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false },
      'cpu-prof': { type: 'string' },
      out: { type: 'string', default: 'bench-results' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    // `pnpm bench:net -- --links` arrives with pnpm's `--` separators in front.
    args: process.argv.slice(2).filter((a) => a !== '--'),
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  const unavailable = shapedLabUnavailableReason();
  if (unavailable) fail(`${unavailable}; run it as root (sudo pnpm bench:net)`);
  const peerCounts = positiveList(values.peers, 'peers');
  const size = Math.round(positive(values['size-mb'], 'size-mb') * 1e6);
  const rate = positive(values['rate-mbit'], 'rate-mbit') * 1e6;
  const maxMs = positive(values['max-minutes'], 'max-minutes') * 60_000;
  const wanted = values.jobs.split(',').map((s) => s.trim());
  const allJobs = [...NET_JOBS.map((j) => j.name), ...UTP_JOB_NAMES];
  for (const name of wanted)
    if (!allJobs.includes(name))
      fail(`--jobs: unknown job "${name}" (jobs: ${allJobs.join(', ')})`);
  const utpJobs = UTP_JOB_NAMES.filter((name) => wanted.includes(name));
  const utpLatencyMs = positive(values['utp-latency-ms'], 'utp-latency-ms');
  const utpLink = values['utp-link'];
  if (utpLink !== 'download' && utpLink !== 'upload')
    fail(`--utp-link must be download or upload, got "${utpLink}"`);
  if (!/^[a-z0-9_]{1,16}$/.test(values['tcp-cc']))
    fail(
      `--tcp-cc must be a congestion control's name (cubic, reno, bbr), got "${values['tcp-cc']}"`,
    );
  const start = values.start;
  if (start !== 'auto' && start !== 'one-by-one' && start !== 'together')
    fail(`--start must be auto, one-by-one or together, got "${start}"`);
  if (values.bins !== 'bundle' && values.bins !== 'workspace')
    fail(`--bins must be bundle or workspace, got "${values.bins}"`);
  const jobs = NET_JOBS.filter((j) => wanted.includes(j.name));
  const extraPeerArgs =
    values.pipeline !== undefined
      ? ['--pipeline', String(positive(values.pipeline, 'pipeline'))]
      : [];

  const cpuProf = values['cpu-prof'];
  if (cpuProf !== undefined) await mkdir(cpuProf, { recursive: true });
  // Each profile is named by node with its pid; an absolute dir, since the processes run in other cwds.
  const nodeArgs =
    cpuProf === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${resolve(cpuProf)}`];

  const resources = new Resources();
  const work = await mkdtemp(join(tmpdir(), 'swarmdrop-bench-net-'));
  let cleaning: Promise<void> | undefined;
  const cleanup = () => {
    cleaning ??= resources.closeAll().then(async (failures) => {
      for (const f of failures) process.stderr.write(`bench:net: cleanup: ${f}\n`);
      if (values.keep) process.stderr.write(`bench:net: logs kept in ${work}\n`);
      else await rm(work, { recursive: true, force: true });
    });
    return cleaning;
  };
  let stopping = false;
  const stopOn = (why: string, code: number) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`bench:net: ${why}; stopping everything\n`);
    void cleanup().finally(() => process.exit(code));
  };
  // `on`, not `once`: execa's exit hook (signal-exit) re-raises a signal
  // that no other listener is left to handle, which would kill this process
  // mid-cleanup and leave the namespaces behind. A second Ctrl-C waits too.
  process.on('SIGINT', () => stopOn('interrupted', 130));
  process.on('SIGTERM', () => stopOn('terminated', 143));
  const bound = setTimeout(
    () => stopOn(`time bound of ${values['max-minutes']} min reached`, 1),
    maxMs,
  );
  bound.unref();

  // Built from the current source here, so a run never measures a stale bundle.
  const bins =
    values.bins === 'bundle'
      ? { owner: await buildBundle('owner'), peer: await buildBundle('peer') }
      : undefined;
  const results: JobResult[] = [];
  const utpResults: UtpJobResult[] = [];
  try {
    const file = join(work, 'sample.bin');
    await makeRandomFile(file, size);
    const sha256 = await sha256File(file);
    console.log(
      `swarmdrop bench:net: ${fmt(size / 1e6, 1)} MB, 100 KiB chunks, every host's upload ${fmt(rate / 1e6, 0)} Mbit/s (tc tbf), peers ${peerCounts.join(',')} (peers started ${start === 'auto' ? 'ring one-by-one, swarm together' : start}; ${values.bins} bins), jobs ${[...jobs.map((j) => j.name), ...utpJobs].join(',')}; ${cpus().length} cores`,
    );
    for (const n of jobs.length > 0 ? peerCounts : []) {
      const dMin = dMinSeconds(size, n, rate);
      console.log(`\nN=${n}: D_min = ${fmt(dMin)} s`);
      for (const job of jobs) {
        if (!job.run) {
          console.log(`  ${job.name.padEnd(7)} —  (${job.missing})`);
          continue;
        }
        const lab = await createShapedLab(n, rate, resources);
        const workDir = join(work, `${job.name}-${n}`);
        await mkdir(workDir, { recursive: true });
        try {
          const result = await job.run({
            lab,
            peers: n,
            file,
            sha256,
            workDir,
            uploadBitsPerSecond: rate,
            // Bounds a hang only: generous against the slowest job measured (~5x D_min).
            timeoutMs: Math.max(120_000, 30 * dMin * 1000),
            resources,
            extraPeerArgs,
            nodeArgs,
            start,
            ...(bins ? { bins } : {}),
          });
          results.push(result);
          const ok = result.identical.every(Boolean);
          console.log(
            `  ${job.name.padEnd(7)} ${fmt(result.seconds).padStart(7)} s = ${fmt(result.seconds / dMin)}x D_min  files ${ok ? 'identical' : `DIFFER (${result.identical.filter((x) => !x).length})`}  CPU: machine ${pct(result.machineBusy)} busy, ours ${pct(result.ownCpuShare)}, waiting for a core ${pct(result.cpuWaitShare)} of the time they wanted one${result.notes.length ? `  (${result.notes.join('; ')})` : ''}`,
          );
          console.log(`          ${cpuLine(result)}`);
          if (result.lastStartS !== undefined) {
            const dRing = dRingSeconds(size, n, rate, result.lastStartS);
            const owner = result.ownerSendS;
            console.log(
              `          last peer started at ${fmt(result.lastStartS)} s; D_ring = ${fmt(dRing)} s, wall = ${fmt(result.seconds / dRing)}x D_ring${owner ? `; owner sent chunks from ${fmt(owner[0])} to ${fmt(owner[1])} s` : ''}`,
            );
          }
          if (!ok) throw new Error(`${job.name} N=${n}: a peer's file differs from the source`);
          if (values.links && result.links) printLinks(result, n);
        } finally {
          await lab.close();
        }
        if (!values.keep) await rm(workDir, { recursive: true, force: true });
      }
    }
    if (results.length > 0) printTable(results, size, rate);
    if (utpJobs.length > 0) {
      console.log(
        `\nµTP and TCP, owner -> one peer over one link: ${fmt(rate / 1e6, 0)} Mbit/s, tbf burst 32768 latency ${utpLatencyMs} ms on ${utpLink === 'download' ? "the switch's port towards the peer's host" : "the owner's eth0"}; TCP from the owner's host: ${values['tcp-cc']}`,
      );
      for (const name of utpJobs) {
        const result = await UTP_JOBS[name as UtpJobName]({
          workDir: work,
          file,
          sha256,
          rateBitsPerSecond: rate,
          latencyMs: utpLatencyMs,
          place: utpLink,
          tcpCongestionControl: values['tcp-cc'],
          resources,
          timeoutMs: Math.max(120_000, 30 * ((size * 8) / rate) * 1000),
        });
        utpResults.push(result);
        for (const line of formatUtpResult(result)) console.log(line);
        console.log(
          `    the bar (${result.job === 'utp-vs-tcp' ? 'µTP ≥ 90% of TCP' : 'TCP ≥ 70% of the link beside µTP'}): ${utpVerdict(result) ? 'met' : 'NOT met'}`,
        );
      }
    }
    await mkdir(values.out, { recursive: true });
    const outFile = join(
      values.out,
      `bench-net-${new Date().toISOString().replace(/[:.]/g, '-')}.json`,
    );
    await writeFile(
      outFile,
      `${JSON.stringify({ date: new Date().toISOString(), size, uploadBitsPerSecond: rate, results, utp: utpResults }, null, 2)}\n`,
    );
    console.log(`\nJSON: ${outFile}`);
  } finally {
    clearTimeout(bound);
    await cleanup();
  }
}

/**
 * Where the CPU went: the seed's and the peers' CPU seconds, and all of them
 * over the machine's cores, which no schedule can beat: a job whose CPU
 * seconds per core exceed D_min cannot reach D_min on this machine, however
 * well it uses the network (and the other engineers' work comes on top).
 */
function cpuLine(result: JobResult): string {
  const entries = Object.entries(result.processes);
  const seed = entries.find(([name]) => name === 'owner' || name === 'seeder')?.[1];
  const peers = entries
    .filter(([name]) => /^(p|s|leecher)\d+$/.test(name))
    .map(([, p]) => p.cpuSeconds)
    .sort((a, b) => a - b);
  const all = entries.reduce((a, [, p]) => a + p.cpuSeconds, 0);
  const median = peers.length ? peers[Math.floor(peers.length / 2)]! : Number.NaN;
  const rss = entries
    .filter(([name]) => /^(p|s|leecher)\d+$/.test(name))
    .map(([, p]) => p.peakRssBytes / 2 ** 20);
  const delays = Object.entries(result.loopDelay ?? {});
  const peerDelays = delays.filter(([name]) => name !== 'owner').map(([, d]) => d);
  const ownerDelay = result.loopDelay?.owner;
  const mid = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length ? s[Math.floor(s.length / 2)]! : Number.NaN;
  };
  const loop =
    delays.length === 0
      ? ''
      : `. Event-loop delay p99/max: owner ${fmt(ownerDelay?.p99Ms ?? Number.NaN, 0)}/${fmt(ownerDelay?.maxMs ?? Number.NaN, 0)} ms, peers median ${fmt(mid(peerDelays.map((d) => d.p99Ms)), 0)}/${fmt(mid(peerDelays.map((d) => d.maxMs)), 0)} ms (worst max ${fmt(Math.max(...peerDelays.map((d) => d.maxMs)), 0)} ms)`;
  return `CPU seconds: seed ${fmt(seed?.cpuSeconds ?? Number.NaN)}, peers median ${fmt(median)} (max ${fmt(peers.at(-1) ?? Number.NaN)}); all ${fmt(all, 1)} s = ${fmt(all / cpus().length)} s of all ${cpus().length} cores. Peer peak RSS ${fmt(Math.min(...rss), 0)}-${fmt(Math.max(...rss), 0)} MiB${loop}`;
}

/** The ring's links: what each peer took from its download neighbour and from the owner. */
function printLinks(result: JobResult, n: number): void {
  const links = result.links ?? [];
  const ring = links.filter((l) => l.from !== 'owner');
  const owner = links.filter((l) => l.from === 'owner');
  const median = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length ? s[Math.floor(s.length / 2)]! : Number.NaN;
  };
  console.log(
    `    ring links (N=${n}): median ${pct(median(ring.map((l) => l.utilisation)))} of the shaped rate while in use; owner links: ${owner.length} peers, ${owner.reduce((a, l) => a + l.chunks, 0)} chunks`,
  );
  const h = result.hops;
  if (h) {
    const q = (x: { p10: number; median: number; p90: number; max: number }) =>
      `median ${fmt(x.median, 0)}, p10 ${fmt(x.p10, 0)}, p90 ${fmt(x.p90, 0)}, max ${fmt(x.max, 0)} ms`;
    console.log(`    one hop, peer to peer (${h.chunks} chunks): ${q(h.hopMs)}`);
    console.log(`      stored there -> have here:   ${q(h.haveMs)}`);
    console.log(`      have -> request sent:        ${q(h.requestWaitMs)}`);
    console.log(`      request -> chunk stored:     ${q(h.requestToChunkMs)}`);
  }
  for (const l of links)
    console.log(
      `    ${l.from.padStart(5)} -> ${l.to.padEnd(4)} ${String(l.chunks).padStart(4)} chunks in ${fmt(l.activeSeconds)} s (${fmt(l.firstAtS)}..${fmt(l.lastAtS)}) = ${fmt((l.bytes * 8) / l.activeSeconds / 1e6, 1)} Mbit/s (${pct(l.utilisation)})`,
    );
}

function printTable(results: JobResult[], size: number, rate: number): void {
  const counts = [...new Set(results.map((r) => r.peers))];
  const names = NET_JOBS.map((j) => j.name);
  console.log(`\n| N | D_min | ${names.join(' | ')} |`);
  console.log(`|---|---|${names.map(() => '---').join('|')}|`);
  for (const n of counts) {
    const dMin = dMinSeconds(size, n, rate);
    const cells = names.map((name) => {
      const r = results.find((x) => x.peers === n && x.job === name);
      return r ? `${fmt(r.seconds)} s = ${fmt(r.seconds / dMin)}×` : '—';
    });
    console.log(`| ${n} | ${fmt(dMin)} s | ${cells.join(' | ')} |`);
  }
  // A peer's cost next to an aria2c leecher's in the same run: the median peer of each job.
  console.log(`\n| N | ${names.map((n) => `${n} peer CPU-s`).join(' | ')} | swarm / aria2c |`);
  console.log(`|---|${names.map(() => '---').join('|')}|---|`);
  const peerCpu = (r: JobResult | undefined) => {
    if (!r) return Number.NaN;
    const xs = Object.entries(r.processes)
      .filter(([name]) => /^(p|s|leecher)\d+$/.test(name))
      .map(([, p]) => p.cpuSeconds)
      .sort((a, b) => a - b);
    return xs.length ? xs[Math.floor(xs.length / 2)]! : Number.NaN;
  };
  for (const n of counts) {
    const of = (name: string) => peerCpu(results.find((x) => x.peers === n && x.job === name));
    const cells = names.map((name) => fmt(of(name)));
    console.log(`| ${n} | ${cells.join(' | ')} | ${fmt(of('swarm') / of('aria2c'))}× |`);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:net: error: ${(err as Error).message}\n`);
  process.exitCode = 1;
});
