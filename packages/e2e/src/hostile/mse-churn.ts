/**
 * Benchmark job: MSE handshake churn against a real owner process. Openings
 * arrive at a fixed rate, each a fresh TCP connection from one of a few
 * loopback sources (127.0.0.2, …) that sends a 96-byte "public key" of
 * junk and then nothing, so the owner computes a Diffie-Hellman reply and
 * holds a half-open handshake. Meanwhile a real peer downloads, and /status
 * is asked for every 250 ms.
 *
 * It reports the owner's CPU over the churn, /status latency, and the
 * peer's completion time next to the same peer's time without churn (a
 * ratio within one run, since the machine is shared). A probe of main
 * found 64 openings a second kept the owner at 94% CPU, /status took 12 s
 * and a peer needed 17.95 s instead of 0.9 s: each handshake built its own
 * DH group (23.6 ms).
 *
 * @example
 * import { run } from './hostile/mse-churn.js';
 * console.log(await run({ openingsPerSecond: 64, durationSeconds: 20 }));
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseTextLine } from '@swarmdrop/service';
import { freePorts } from '@swarmdrop/testkit';
import { readProcStats } from '../proc-stats.js';
import { binPath, ManagedProcess } from '../processes.js';
import { makeRandomFile } from '../scenario.js';

export const DEFAULT_MSE_CHURN_OPENINGS_PER_SECOND = 64;
export const DEFAULT_MSE_CHURN_DURATION_SECONDS = 20;
export const DEFAULT_MSE_CHURN_FILE_BYTES = 32 * 1024 * 1024;
export const DEFAULT_MSE_CHURN_SOURCES = 8;
/** How often /status is asked for during the churn. */
const STATUS_EVERY_MS = 250;
/** A /status request slower than this counts as failed. */
const STATUS_TIMEOUT_MS = 15_000;
/** How long a peer may take, churn or not, before the job gives up on it. */
const PEER_TIMEOUT_MS = 180_000;
/** Openings are scheduled in ticks of this length (several per tick at high rates). */
const TICK_MS = 10;

export interface MseChurnOptions {
  /** MSE openings per second (default DEFAULT_MSE_CHURN_OPENINGS_PER_SECOND, the probe's rate). */
  readonly openingsPerSecond?: number;
  /** How long the churn lasts (default DEFAULT_MSE_CHURN_DURATION_SECONDS). */
  readonly durationSeconds?: number;
  /** Size of the file the peer downloads (default DEFAULT_MSE_CHURN_FILE_BYTES). */
  readonly fileBytes?: number;
  /** Loopback sources the openings come from: 127.0.0.2 on (default DEFAULT_MSE_CHURN_SOURCES). */
  readonly sources?: number;
  /** The real peer's --encryption: `require` makes its own handshake compete with the churn (default). */
  readonly peerEncryption?: 'require' | 'prefer';
  /** Where to work (a new temporary directory by default, removed after). */
  readonly workDir?: string;
}

const isEvent = (name: string) => (line: string) => parseTextLine(line)?.event === name;

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

const round = (n: number, digits = 2) => Number(n.toFixed(digits));

/** GET /status once; resolves with the milliseconds it took, or undefined if it failed. */
function timeStatus(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const started = performance.now();
    const req = request(
      { host: '127.0.0.1', port, path: '/status', agent: false, timeout: STATUS_TIMEOUT_MS },
      (res) => {
        res.resume();
        res.on('end', () =>
          resolve(res.statusCode === 200 ? performance.now() - started : undefined),
        );
        res.on('error', () => resolve(undefined));
      },
    );
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
    req.end();
  });
}

async function fetchStatus(port: number): Promise<Record<string, unknown>> {
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

/** Openings at a fixed rate until stopped; counts what became of them. */
class Churn {
  opened = 0;
  /** The owner answered with its own public key: it did the Diffie-Hellman work. */
  answered = 0;
  /** The owner closed the connection (refused, cut for a newer one, or timed out). */
  closedByOwner = 0;
  /** The connection never came up (refused by the kernel, or reset before it connected). */
  failed = 0;
  /** Each open socket, with how to end it ourselves without counting it as the owner's doing. */
  private readonly sockets = new Map<Socket, () => void>();
  private readonly timer: NodeJS.Timeout;
  private readonly startedAt = performance.now();

  constructor(
    private readonly port: number,
    private readonly perSecond: number,
    private readonly sources: number,
  ) {
    this.timer = setInterval(() => {
      const due = Math.floor(((performance.now() - this.startedAt) / 1000) * this.perSecond);
      while (this.opened < due) this.open();
    }, TICK_MS);
  }

  get held(): number {
    return this.sockets.size;
  }

  stop(): void {
    clearInterval(this.timer);
    for (const end of [...this.sockets.values()]) end();
  }

  private open(): void {
    const n = this.opened++;
    const socket = connect({
      host: '127.0.0.1',
      port: this.port,
      localAddress: `127.0.0.${2 + (n % this.sources)}`,
    });
    let connected = false;
    let endedByUs = false;
    let received = 0;
    this.sockets.set(socket, () => {
      endedByUs = true;
      socket.destroy();
    });
    socket.on('connect', () => {
      connected = true;
      const junk = randomBytes(96);
      junk[0] = 0x80 | junk[0]!; // neither a plaintext handshake nor HTTP: the sniffer says MSE
      socket.write(junk);
    });
    socket.on('data', (b: Buffer) => {
      if (received < 96 && received + b.length >= 96) this.answered++;
      received += b.length;
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      this.sockets.delete(socket);
      if (endedByUs) return;
      if (connected) this.closedByOwner++;
      else this.failed++;
    });
  }
}

/**
 * Runs the job: an owner, a baseline peer without churn, then the churn
 * with a second peer; returns the figures (seconds, percent, milliseconds
 * and counts, named with their units).
 */
export async function run(options: MseChurnOptions = {}): Promise<Record<string, number | string>> {
  const perSecond = options.openingsPerSecond ?? DEFAULT_MSE_CHURN_OPENINGS_PER_SECOND;
  const durationSeconds = options.durationSeconds ?? DEFAULT_MSE_CHURN_DURATION_SECONDS;
  const fileBytes = options.fileBytes ?? DEFAULT_MSE_CHURN_FILE_BYTES;
  const sources = options.sources ?? DEFAULT_MSE_CHURN_SOURCES;
  const encryption = options.peerEncryption ?? 'require';
  const ownWork = options.workDir === undefined;
  const work = options.workDir ?? (await mkdtemp(join(tmpdir(), 'swarmdrop-mse-churn-')));
  await mkdir(work, { recursive: true });
  const file = join(work, 'sample.bin');
  await makeRandomFile(file, fileBytes);
  const [ownerPort, peerPort1, peerPort2] = (await freePorts(3)) as [number, number, number];
  const opts = (name: string) => ({ cwd: work, logPath: join(work, `${name}.log`) });
  const processes: ManagedProcess[] = [];
  let churn: Churn | undefined;
  try {
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
      ],
      opts('owner'),
    );
    processes.push(owner);
    await owner.waitFor(isEvent('ready'), 'ready', 600_000);

    /** One peer that downloads from the owner alone (swarm mode) and exits when done; resolves with its seconds. */
    const download = async (name: string, port: number): Promise<number> => {
      const started = Date.now();
      const peer = new ManagedProcess(
        name,
        process.execPath,
        [
          binPath('peer'),
          `127.0.0.1:${ownerPort}`,
          `127.0.0.1:${port}`,
          '--dir',
          join(work, name),
          '--encryption',
          encryption,
          '--transport',
          'tcp',
          '--exit-when-done',
          '--linger-ms',
          '0',
        ],
        opts(name),
      );
      processes.push(peer);
      await peer.waitFor(isEvent('merged'), 'merged', PEER_TIMEOUT_MS);
      const seconds = (peer.completedAt - started) / 1000;
      await peer.stop();
      return seconds;
    };

    const baselineSeconds = await download('peer-baseline', peerPort1);

    const ownerPid = owner.pid!;
    const cpuBefore = await readProcStats(ownerPid);
    const churnStarted = performance.now();
    churn = new Churn(ownerPort, perSecond, sources);
    const latencies: number[] = [];
    let statusFailures = 0;
    const statusProbe = setInterval(() => {
      void timeStatus(ownerPort).then((ms) => {
        if (ms === undefined) statusFailures++;
        else latencies.push(ms);
      });
    }, STATUS_EVERY_MS);
    // The peer starts a second into the churn, when half-open handshakes are already held.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const peerDone = download('peer-churn', peerPort2).then(
      (seconds) => seconds,
      (err: Error) => err.message,
    );
    await new Promise((resolve) =>
      setTimeout(resolve, Math.max(0, durationSeconds * 1000 - 1_000)),
    );
    const heldAtEnd = churn.held;
    const status = await fetchStatus(ownerPort).catch(() => ({}) as Record<string, unknown>);
    churn.stop();
    clearInterval(statusProbe);
    const churnSeconds = (performance.now() - churnStarted) / 1000;
    const cpuAfter = await readProcStats(ownerPid);
    const peerResult = await peerDone;
    const handshakes = (status.handshakes ?? {}) as Record<string, number>;
    const refused = (status.refused ?? {}) as Record<string, number>;
    latencies.sort((a, b) => a - b);
    const ownerCpuSeconds =
      cpuBefore && cpuAfter ? cpuAfter.cpuSeconds - cpuBefore.cpuSeconds : Number.NaN;
    return {
      openingsPerSecond: perSecond,
      churnSeconds: round(churnSeconds),
      sources,
      peerEncryption: encryption,
      fileBytes,
      openings: churn.opened,
      openingsAnsweredByOwner: churn.answered,
      openingsClosedByOwner: churn.closedByOwner,
      openingsFailedToConnect: churn.failed,
      openingsHeldAtEnd: heldAtEnd,
      ownerCpuPercent: round((ownerCpuSeconds / churnSeconds) * 100, 1),
      statusFailures,
      statusP50Ms: round(quantile(latencies, 0.5), 1),
      statusP95Ms: round(quantile(latencies, 0.95), 1),
      statusMaxMs: round(latencies.at(-1) ?? Number.NaN, 1),
      peerBaselineSeconds: round(baselineSeconds),
      peerUnderChurnSeconds: typeof peerResult === 'number' ? round(peerResult) : peerResult,
      peerSlowdown:
        typeof peerResult === 'number' ? round(peerResult / baselineSeconds) : Number.NaN,
      ownerHandshakesHeld: handshakes.held ?? Number.NaN,
      ownerHandshakesPeak: handshakes.peak ?? Number.NaN,
      ownerHandshakesEvicted: handshakes.evicted ?? Number.NaN,
      ownerHandshakesRefusedPerAddress: handshakes.refusedAddressCap ?? Number.NaN,
      ownerConnectionsEvicted: refused.evicted ?? Number.NaN,
      ownerConnectionsTimedOut: refused.timedOut ?? Number.NaN,
    };
  } finally {
    churn?.stop();
    await Promise.all(processes.map((p) => p.stop()));
    if (ownWork) await rm(work, { recursive: true, force: true });
  }
}
