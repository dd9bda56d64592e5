import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { bencodeEncode, withAnnounce } from '@swarmdrop/protocol';
import { parseTextLine } from '@swarmdrop/service';
import { freePorts } from '@swarmdrop/testkit';
import { readProcStats } from './proc-stats.js';
import { sha256File } from './swarm.js';

/**
 * `pnpm bench`'s CPU job: one file from a seeder to one downloader over
 * loopback, by swarmdrop (a ring peer and a swarm peer), aria2c and, where
 * its Python bindings are installed, libtorrent. For each process: CPU
 * seconds (user + system, from the kernel's rusage) per GiB moved and peak
 * RSS; for swarmdrop's owner the split is told apart from the serving.
 *
 * Each job starts from the same state: a fresh work folder, the page cache
 * written back and dropped (as root), so no job inherits another's dirty
 * pages. ext4 without a journal checks recently deleted inodes when it
 * allocates one, so the folders of earlier jobs are deleted only at the end
 * of a run, never between the jobs it compares.
 */

export type CpuClient = 'ring' | 'swarm' | 'aria2c' | 'libtorrent';

export interface ProcessCost {
  /** User + system CPU seconds. */
  readonly cpuSeconds: number;
  readonly peakRssBytes: number;
}

export interface CpuJobResult {
  readonly client: CpuClient;
  readonly bytes: number;
  /** From starting the downloader to its file being complete (swarmdrop: `merged`, fsync included). */
  readonly seconds: number;
  readonly downloader: ProcessCost;
  /** The seeder over the whole job (aria2c and libtorrent: their recheck of the file included). */
  readonly seeder: ProcessCost;
  /** swarmdrop's owner: its split and hashing before `ready`, apart. */
  readonly seederSplitSeconds?: number;
}

export interface CpuJobOptions {
  readonly client: CpuClient;
  /** The file to move (its copy in `workDir` is what the seeder serves). */
  readonly file: string;
  readonly bytes: number;
  /** A folder of this job's own, on the file system under test. */
  readonly workDir: string;
  /** The owner's and peer's programs (bundles or bins), run with this Node. */
  readonly bins: Readonly<Record<'owner' | 'peer', string>>;
  /** The swarmdrop metainfo of `file`, for the stock clients (same pieces). */
  readonly torrent?: string;
  readonly timeoutMs: number;
}

const ARIA2_FLAGS = [
  '--enable-dht=false',
  '--enable-dht6=false',
  '--bt-enable-lpd=false',
  '--enable-peer-exchange=false',
  '--summary-interval=0',
  '--console-log-level=warn',
  '--file-allocation=none',
  '--bt-request-peer-speed-limit=0',
];

/** Writes dirty pages back and drops the page cache (root only; elsewhere nothing). */
export function levelPageCache(): void {
  if (process.getuid?.() !== 0) return;
  execFileSync('sync');
  execFileSync('sh', ['-c', 'echo 3 > /proc/sys/vm/drop_caches']);
}

export function hasCommand(command: string, args: readonly string[] = ['--version']): boolean {
  try {
    execFileSync(command, args, { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * A Python that can import libtorrent's bindings: `python3` on the PATH, or
 * the system's (Debian's python3-libtorrent installs for /usr/bin/python3,
 * which a pyenv python3 first on the PATH does not see).
 */
export function libtorrentPython(): string | undefined {
  for (const python of ['python3', '/usr/bin/python3'])
    if (hasCommand(python, ['-c', 'import libtorrent'])) return python;
  return undefined;
}

export function hasLibtorrent(): boolean {
  return libtorrentPython() !== undefined;
}

/**
 * A process run under `/usr/bin/time`, so its CPU time and peak RSS come from
 * the kernel's rusage when it ends, whether it exits by itself or is stopped
 * (`stop` signals the program, not `time`, which then reports).
 */
class TimedProcess {
  readonly exited: Promise<{ code: number | null; cost: ProcessCost }>;
  private readonly child: ChildProcess;

  constructor(
    readonly name: string,
    file: string,
    args: readonly string[],
    private readonly dir: string,
  ) {
    const log = openSync(join(dir, `${name}.log`), 'a');
    const statsPath = join(dir, `${name}.time`);
    this.child = spawn('/usr/bin/time', ['-f', '%U %S %M', '-o', statsPath, file, ...args], {
      cwd: dir,
      stdio: ['ignore', log, log],
    });
    closeSync(log);
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code) => {
        void readFile(statsPath, 'utf8').then((text) => {
          // The last line: GNU time puts "Command exited with non-zero status" before it.
          const [user, system, rssKiB] = text.trim().split('\n').at(-1)!.split(' ').map(Number);
          resolve({
            code,
            cost: { cpuSeconds: user! + system!, peakRssBytes: rssKiB! * 1024 },
          });
        });
      });
    });
  }

  /** The program's own pid (the child of `time`), once it exists. */
  async programPid(): Promise<number | undefined> {
    const pid = this.child.pid!;
    const text = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '');
    const child = Number(text.trim().split(' ')[0]);
    return child > 0 ? child : undefined;
  }

  async lines(): Promise<string[]> {
    return (await readFile(join(this.dir, `${this.name}.log`), 'utf8')).split('\n');
  }

  /** Polls the log for a line; rejects if the process exits first or `timeoutMs` passes. */
  async waitFor(test: (line: string) => boolean, what: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let gone = false;
    void this.exited.then(() => {
      gone = true;
    });
    for (;;) {
      if ((await this.lines()).some(test)) return;
      if (gone) throw new Error(`${this.name} exited before ${what} (see ${this.dir})`);
      if (Date.now() > deadline) throw new Error(`${this.name}: no ${what} within ${timeoutMs} ms`);
      await sleep(20);
    }
  }

  async stop(): Promise<ProcessCost> {
    const pid = await this.programPid();
    if (pid !== undefined) process.kill(pid, 'SIGTERM');
    const timer = setTimeout(() => {
      if (pid !== undefined) process.kill(pid, 'SIGKILL');
    }, 10_000);
    const { cost } = await this.exited;
    clearTimeout(timer);
    return cost;
  }
}

const isEvent = (name: string) => (line: string) => parseTextLine(line)?.event === name;

/** Runs one job; the caller deletes `workDir` when the whole run is over. */
export async function runCpuJob(options: CpuJobOptions): Promise<CpuJobResult> {
  await mkdir(options.workDir, { recursive: true });
  const source = join(options.workDir, 'seed', 'sample.bin');
  await mkdir(join(options.workDir, 'seed'), { recursive: true });
  await copyFile(options.file, source);
  levelPageCache();
  switch (options.client) {
    case 'ring':
    case 'swarm':
      return swarmdropJob(options, source);
    case 'aria2c':
      return aria2Job(options);
    case 'libtorrent':
      return libtorrentJob(options, source);
  }
}

async function swarmdropJob(options: CpuJobOptions, source: string): Promise<CpuJobResult> {
  const dir = options.workDir;
  const [ownerPort, peerPort, nobody] = await freePorts(3);
  const owner = new TimedProcess(
    'owner',
    process.execPath,
    [
      options.bins.owner,
      `127.0.0.1:${ownerPort}`,
      source,
      '--dir',
      join(dir, 'owner'),
      '--expected-peers',
      '1',
      '--quiet',
    ],
    dir,
  );
  let ownerStopped = false;
  try {
    await owner.waitFor(isEvent('ready'), 'ready', options.timeoutMs);
    const ownerPid = await owner.programPid();
    const split = ownerPid === undefined ? undefined : await readProcStats(ownerPid);
    const started = Date.now();
    const peer = new TimedProcess(
      'peer',
      process.execPath,
      [
        options.bins.peer,
        `127.0.0.1:${ownerPort}`,
        `127.0.0.1:${peerPort}`,
        ...(options.client === 'ring' ? [`127.0.0.1:${nobody}`] : []),
        '--dir',
        join(dir, 'peer'),
        '--fallback-after-ms',
        '600000',
        '--exit-when-done',
        '--linger-ms',
        '0',
        '--quiet',
      ],
      dir,
    );
    const done = await Promise.race([peer.exited, sleep(options.timeoutMs).then(() => undefined)]);
    if (!done) {
      await peer.stop();
      throw new Error(`${options.client}: the peer did not finish in ${options.timeoutMs} ms`);
    }
    if (done.code !== 0) throw new Error(`${options.client}: the peer exited ${done.code}`);
    const seconds = (Date.now() - started) / 1000;
    const seeder = await owner.stop();
    ownerStopped = true;
    await checkSame(options.file, join(dir, 'peer', 'sample.bin'), options.client);
    return {
      client: options.client,
      bytes: options.bytes,
      seconds,
      downloader: done.cost,
      seeder,
      ...(split ? { seederSplitSeconds: split.cpuSeconds } : {}),
    };
  } finally {
    if (!ownerStopped) await owner.stop().catch(() => {});
  }
}

/** A tracker that knows only the two processes of a job. */
async function pairTracker(): Promise<{ url: string; seeded: Promise<void>; close: () => void }> {
  const peers = new Map<string, Buffer>();
  let markSeeded!: () => void;
  const seeded = new Promise<void>((resolve) => {
    markSeeded = resolve;
  });
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://tracker.invalid');
    const port = Number(url.searchParams.get('port'));
    if (port > 0) {
      const entry = Buffer.from([127, 0, 0, 1, port >> 8, port & 0xff]);
      peers.set(String(port), entry);
    }
    if (url.searchParams.get('left') === '0') markSeeded();
    const others = [...peers].filter(([k]) => k !== String(port)).map(([, v]) => v);
    res.end(bencodeEncode({ interval: 5, 'min interval': 1, peers: Buffer.concat(others) }));
  });
  const [port] = await freePorts(1);
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', () => resolve()));
  return { url: `http://127.0.0.1:${port}/announce`, seeded, close: () => server.close() };
}

async function stockTorrent(options: CpuJobOptions, trackerUrl: string): Promise<string> {
  if (!options.torrent) throw new Error(`${options.client}: needs the metainfo of the file`);
  const path = join(options.workDir, 'sample.torrent');
  await writeFile(path, withAnnounce(await readFile(options.torrent), trackerUrl));
  return path;
}

async function aria2Job(options: CpuJobOptions): Promise<CpuJobResult> {
  const dir = options.workDir;
  const tracker = await pairTracker();
  const torrent = await stockTorrent(options, tracker.url);
  const [seedPort, leechPort] = await freePorts(2);
  const seeder = new TimedProcess(
    'seeder',
    'aria2c',
    [
      ...ARIA2_FLAGS,
      `--dir=${join(dir, 'seed')}`,
      `--listen-port=${seedPort}`,
      '--check-integrity=true',
      '--seed-ratio=0.0',
      '--seed-time=600',
      torrent,
    ],
    dir,
  );
  try {
    await Promise.race([
      tracker.seeded,
      seeder.exited.then(() => Promise.reject(new Error('the aria2c seeder exited'))),
      sleep(options.timeoutMs).then(() => Promise.reject(new Error('aria2c never seeded'))),
    ]);
    const started = Date.now();
    const leecher = new TimedProcess(
      'leecher',
      'aria2c',
      [
        ...ARIA2_FLAGS,
        `--dir=${join(dir, 'leech')}`,
        `--listen-port=${leechPort}`,
        '--seed-time=0',
        torrent,
      ],
      dir,
    );
    const done = await leecher.exited;
    const seconds = (Date.now() - started) / 1000;
    if (done.code !== 0) throw new Error(`aria2c: the leecher exited ${done.code}`);
    await checkSame(options.file, join(dir, 'leech', 'sample.bin'), 'aria2c');
    return {
      client: 'aria2c',
      bytes: options.bytes,
      seconds,
      downloader: done.cost,
      seeder: await seeder.stop(),
    };
  } finally {
    await seeder.stop().catch(() => {});
    tracker.close();
  }
}

/** libtorrent 2 through its Python bindings: a seeder and a downloader, each its own process. */
const LIBTORRENT_SCRIPT = `
import sys, time, libtorrent as lt
role, torrent, save, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
s = lt.session({'listen_interfaces': '127.0.0.1:%d' % port, 'enable_dht': False, 'enable_lsd': False,
  'enable_upnp': False, 'enable_natpmp': False, 'alert_mask': 0})
p = lt.add_torrent_params(); p.ti = lt.torrent_info(torrent); p.save_path = save
h = s.add_torrent(p)
if role == 'seed':
  while not h.status().is_seeding: time.sleep(0.05)
  print('seeding', flush=True)
  while True: time.sleep(1)
else:
  while not h.status().is_seeding: time.sleep(0.05)
  print('done', flush=True)
`;

async function libtorrentJob(options: CpuJobOptions, source: string): Promise<CpuJobResult> {
  const dir = options.workDir;
  const tracker = await pairTracker();
  const torrent = await stockTorrent(options, tracker.url);
  const script = join(dir, 'lt.py');
  await writeFile(script, LIBTORRENT_SCRIPT);
  const [seedPort, leechPort] = await freePorts(2);
  const python = libtorrentPython() ?? 'python3';
  const seeder = new TimedProcess(
    'seeder',
    python,
    [script, 'seed', torrent, join(dir, 'seed'), String(seedPort)],
    dir,
  );
  try {
    await seeder.waitFor((l) => l === 'seeding', 'seeding', options.timeoutMs);
    const started = Date.now();
    const leecher = new TimedProcess(
      'leecher',
      python,
      [script, 'leech', torrent, join(dir, 'leech'), String(leechPort)],
      dir,
    );
    const done = await leecher.exited;
    const seconds = (Date.now() - started) / 1000;
    if (done.code !== 0) throw new Error(`libtorrent: the downloader exited ${done.code}`);
    await checkSame(source, join(dir, 'leech', 'sample.bin'), 'libtorrent');
    return {
      client: 'libtorrent',
      bytes: options.bytes,
      seconds,
      downloader: done.cost,
      seeder: await seeder.stop(),
    };
  } finally {
    await seeder.stop().catch(() => {});
    tracker.close();
  }
}

async function checkSame(expected: string, actual: string, who: string): Promise<void> {
  if ((await sha256File(actual)) !== (await sha256File(expected)))
    throw new Error(`${who}: the downloaded file differs from the source`);
}

/** A fresh, journaled ext4 of `sizeBytes` mounted from a sparse file in `imageDir` (root only). */
export async function mountFreshExt4(
  imageDir: string,
  sizeBytes: number,
): Promise<{ path: string; unmount: () => Promise<void> }> {
  await mkdir(imageDir, { recursive: true });
  const image = join(imageDir, 'ext4.img');
  const path = join(imageDir, 'mnt');
  await mkdir(path, { recursive: true });
  execFileSync('truncate', ['-s', String(sizeBytes), image]);
  execFileSync('mkfs.ext4', ['-q', '-F', image]);
  execFileSync('mount', ['-o', 'loop', image, path]);
  return {
    path,
    unmount: async () => {
      execFileSync('umount', [path]);
      await rm(imageDir, { recursive: true, force: true });
    },
  };
}
