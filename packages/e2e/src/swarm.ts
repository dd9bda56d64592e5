import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { formatEndpoint } from '@swarmdrop/protocol';
import { parseTextLine } from '@swarmdrop/service';
import { freePorts } from '@swarmdrop/testkit';
import { binPath, ManagedProcess } from './processes.js';
import type { Topology, TopologyPeer } from './topology.js';

/** What runs a process: an executable and its arguments, before the service's own. */
export interface Command {
  readonly file: string;
  readonly args: readonly string[];
  /** Working directory (default: the swarm's workDir). */
  readonly cwd?: string;
}

/**
 * How the swarm's processes are started and reached. The default runs the
 * workspace bins with this Node on 127.0.0.1; the release tests run bundles
 * copied out of the workspace, the multi-host test runs them inside network
 * namespaces.
 */
export interface Launcher {
  /** The command that starts `service` as process `name` ('owner' or a peer id). */
  command(name: string, service: 'owner' | 'peer'): Command;
  /** The address process `name` listens on and is reached at (default 127.0.0.1). */
  host?(name: string): string;
  /**
   * How peer `name` names the owner on its command line (default the owner's
   * `host:port`; a peer also accepts the .torrent URL).
   */
  ownerArg?(name: string, ownerAddress: string, fileName: string): string;
}

/** Runs the workspace bins with the Node running the harness. */
export const WORKSPACE_LAUNCHER: Launcher = {
  command: (_name, service) => ({ file: process.execPath, args: [binPath(service)] }),
};

export interface SwarmOptions {
  readonly topology: Topology;
  /** Default: WORKSPACE_LAUNCHER. */
  readonly launcher?: Launcher;
  /** The file the owner distributes. */
  readonly file: string;
  /** Everything the run writes: owner/, one directory per peer, logs/. */
  readonly workDir: string;
  readonly fallbackAfterMs?: number;
  readonly extraPeerArgs?: readonly string[];
  readonly extraOwnerArgs?: readonly string[];
  /** Extra environment for every owner and peer process (e.g. SWARMDROP_TOKEN). */
  readonly env?: Readonly<Record<string, string>>;
  /** Bounds each wait for a readiness line. */
  readonly stepTimeoutMs?: number;
  /** Every line of every process, as it arrives (the demo prints them). */
  readonly onLine?: (name: string, line: string) => void;
  /**
   * Start every peer at once instead of the seed's one at a time (each once
   * the previous is up); `afterStart` then runs once all are up.
   */
  readonly startTogether?: boolean;
  /** Every process as it is spawned (a benchmark samples its CPU, or stops it on Ctrl-C). */
  readonly onSpawn?: (proc: ManagedProcess) => void;
  /** Called after each peer has started, before the next (fault injection). */
  readonly afterStart?: (swarm: Swarm, id: string) => Promise<void>;
}

export interface PeerRun {
  readonly id: string;
  readonly port: number;
  readonly client: TopologyPeer['client'];
  readonly dir: string;
}

/** SHA-256 of a file, streamed. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * One owner and its peers as real processes, started the seed's way: the
 * owner, then each peer in the topology's start order, one at a time (the
 * next starts once the previous is listening).
 */
export class Swarm {
  readonly options: SwarmOptions;
  readonly ownerPort: number;
  readonly peers: ReadonlyMap<string, PeerRun>;
  readonly processes = new Map<string, ManagedProcess>();
  /** Processes that were replaced (a restart keeps the killed one here for its log). */
  readonly retired: ManagedProcess[] = [];
  readonly name: string;
  /** Peers killed for good by a fault; they are not expected to complete. */
  readonly gone = new Set<string>();
  /**
   * Processes the harness SIGKILLed (kill()): their logs may lack the lines
   * not yet written when they died (checkLogsAgree excuses only those).
   */
  readonly killed = new Set<ManagedProcess>();
  private stopped = false;

  private constructor(options: SwarmOptions, ownerPort: number, peers: Map<string, PeerRun>) {
    this.options = options;
    this.ownerPort = ownerPort;
    this.peers = peers;
    this.name = basename(options.file);
  }

  static async start(options: SwarmOptions): Promise<Swarm> {
    const ports = await freePorts(options.topology.peers.length + 1);
    const peers = new Map<string, PeerRun>();
    options.topology.peers.forEach((p, i) => {
      peers.set(p.id, {
        id: p.id,
        port: p.port ?? ports[i + 1]!,
        client: p.client,
        dir: resolve(options.workDir, p.id),
      });
    });
    await mkdir(join(options.workDir, 'logs'), { recursive: true });
    const swarm = new Swarm(options, ports[0]!, peers);
    try {
      await swarm.startOwner();
      if (options.startTogether) {
        await Promise.all(options.topology.start.map((id) => swarm.startPeer(id)));
        for (const id of options.topology.start) await options.afterStart?.(swarm, id);
      } else {
        for (const id of options.topology.start) {
          await swarm.startPeer(id);
          await options.afterStart?.(swarm, id);
        }
      }
    } catch (err) {
      await swarm.stopAll();
      throw err;
    }
    return swarm;
  }

  get stepTimeoutMs(): number {
    return this.options.stepTimeoutMs ?? 60_000;
  }

  get owner(): ManagedProcess {
    return this.processes.get('owner')!;
  }

  peer(id: string): PeerRun {
    const run = this.peers.get(id);
    if (!run) throw new Error(`no peer "${id}"`);
    return run;
  }

  /** Peers still expected to complete. */
  activePeers(): PeerRun[] {
    return [...this.peers.values()].filter((p) => !this.gone.has(p.id));
  }

  /** SIGKILLs peer `id`; with `forGood`, it is no longer expected to complete. */
  async kill(id: string, forGood: boolean): Promise<void> {
    const proc = this.processes.get(id);
    if (!proc) throw new Error(`no process "${id}"`);
    this.killed.add(proc);
    proc.kill('SIGKILL');
    await proc.exited;
    if (forGood) this.gone.add(id);
  }

  /** Where peer `id`'s merged file lands. */
  mergedPath(id: string): string {
    return join(this.peer(id).dir, this.name);
  }

  /** `host:port` of process `name` as the others reach it (IPv6 bracketed). */
  address(name: string): string {
    const host = this.options.launcher?.host?.(name) ?? '127.0.0.1';
    return formatEndpoint(host, name === 'owner' ? this.ownerPort : this.peer(name).port);
  }

  private launchService(name: string, service: 'owner' | 'peer', args: string[]): ManagedProcess {
    const command = (this.options.launcher ?? WORKSPACE_LAUNCHER).command(name, service);
    return this.launch(name, command.file, [...command.args, ...args], command.cwd);
  }

  private launch(name: string, file: string, args: string[], cwd?: string): ManagedProcess {
    const proc = new ManagedProcess(name, file, args, {
      cwd: cwd ?? this.options.workDir,
      logPath: join(this.options.workDir, 'logs', `${name}.log`),
      onLine: (line) => this.options.onLine?.(name, line),
      ...(this.options.env ? { env: { ...this.options.env } } : {}),
    });
    this.processes.set(name, proc);
    this.options.onSpawn?.(proc);
    return proc;
  }

  private async startOwner(): Promise<void> {
    const owner = this.launchService('owner', 'owner', [
      this.address('owner'),
      resolve(this.options.file),
      '--dir',
      join(this.options.workDir, 'owner'),
      '--expected-peers',
      String(this.options.topology.peers.filter((p) => p.client === 'swarmdrop').length || 1),
      ...(this.options.extraOwnerArgs ?? []),
    ]);
    await owner.waitFor(
      (l) => parseTextLine(l)?.event === 'ready',
      'ready line',
      this.stepTimeoutMs,
    );
  }

  /** Starts (or restarts, keeping its directory) peer `id`; resolves once it is listening. */
  async startPeer(id: string): Promise<ManagedProcess> {
    const run = this.peer(id);
    const previous = this.processes.get(id);
    if (previous) {
      await previous.stop();
      this.retired.push(previous);
    }
    const topo = this.options.topology.peers.find((p) => p.id === id)!;
    if (run.client === 'aria2c') {
      await mkdir(run.dir, { recursive: true });
      const proc = this.launch(id, 'aria2c', [
        `--dir=${run.dir}`,
        `--listen-port=${run.port}`,
        '--enable-dht=false',
        '--enable-dht6=false',
        '--bt-enable-lpd=false',
        '--enable-peer-exchange=false',
        '--seed-ratio=0.0',
        '--seed-time=600',
        '--summary-interval=0',
        '--console-log-level=notice',
        '--file-allocation=none',
        '--follow-torrent=mem',
        // aria2c's own account of every connection, kept with the swarm's logs for a failed run.
        `--log=${join(this.options.workDir, 'logs', `${id}.aria2.log`)}`,
        `--log-level=${process.env.SWARMDROP_ARIA2_LOG_LEVEL ?? 'info'}`,
        `http://${this.address('owner')}/metainfo.torrent`,
      ]);
      await sleep(300);
      return proc;
    }
    const neighbours = topo.neighbours.map((n) => this.address(n)).join(',');
    // A swarm peer without neighbours is started without the argument; with some, with --swarm.
    const modeArgs =
      topo.swarm === true ? (neighbours === '' ? [] : [neighbours, '--swarm']) : [neighbours];
    const ownerArg =
      this.options.launcher?.ownerArg?.(id, this.address('owner'), this.name) ??
      this.address('owner');
    const proc = this.launchService(id, 'peer', [
      ownerArg,
      this.address(id),
      ...modeArgs,
      '--dir',
      run.dir,
      '--fallback-after-ms',
      String(this.options.fallbackAfterMs ?? 10_000),
      ...(this.options.extraPeerArgs ?? []),
    ]);
    await proc.waitFor(
      (l) => parseTextLine(l)?.event === 'metainfo',
      'metainfo line',
      this.stepTimeoutMs,
    );
    return proc;
  }

  /** Waits until every peer holds the whole file: a `merged` line, or for aria2c an identical file. */
  async waitAllComplete(expectedSha256: string, timeoutMs: number): Promise<void> {
    await Promise.all(
      this.activePeers().map((run) => {
        if (run.client === 'aria2c') return this.waitFileMatches(run.id, expectedSha256, timeoutMs);
        const proc = this.processes.get(run.id)!;
        return proc.waitFor((l) => parseTextLine(l)?.event === 'merged', 'merged line', timeoutMs);
      }),
    );
  }

  private async waitFileMatches(id: string, sha256: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const path = this.mergedPath(id);
    const size = (await stat(this.options.file)).size;
    let lastMtime = 0;
    while (Date.now() < deadline) {
      const info = await stat(path).catch(() => undefined);
      // Hash only when the file changed: aria2c writes in place, and keeps seeding once done.
      if (info?.size === size && info.mtimeMs !== lastMtime) {
        lastMtime = info.mtimeMs;
        if ((await sha256File(path)) === sha256) return;
      }
      if (this.processes.get(id)?.hasExited)
        throw new Error(`${id} (aria2c) exited before completing`);
      await sleep(250);
    }
    throw new Error(`${id} (aria2c): file not complete within ${timeoutMs} ms`);
  }

  /** Every parsed log line of process `name` (including earlier runs of it). */
  events(name: string): Array<NonNullable<ReturnType<typeof parseTextLine>>> {
    const procs = [...this.retired.filter((p) => p.name === name), this.processes.get(name)].filter(
      (p): p is ManagedProcess => p !== undefined,
    );
    return procs.flatMap((p) =>
      p.lines.map((l) => parseTextLine(l)).filter((e) => e !== undefined),
    );
  }

  /** Stops every process this swarm started, by PID; safe to call twice. */
  async stopAll(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await Promise.all([...this.processes.values(), ...this.retired].map((p) => p.stop()));
  }
}
