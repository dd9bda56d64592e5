/**
 * Stock BitTorrent clients as the interop tests run them: aria2c,
 * transmission-cli and qbittorrent-nox with DHT, LPD/LSD, PEX (unless a test
 * turns it on) and port mapping off, since there is no outside network.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type Cleanup, IN_CI, type LogCapture, toolAvailable } from '@swarmdrop/testkit';
import { labUnavailableReason, type NetnsLab } from './netns.js';

/** Generous: Transmission asks for pieces only at its 10 s rechoke, and the machine is shared. */
export const CLIENT_HANG_MS = 90_000;
/**
 * Only bounds a hang (a download takes seconds). It outlasts the owner's 7
 * µTP timeouts (about 64 s) and libtorrent's 60 s reconnect delay, so a
 * stall ends in the test's own assertion, with the owner's log, not in a
 * bare timeout.
 */
export const QB_HANG_MS = 240_000;

export const ARIA2_QUIET = [
  '--no-conf=true',
  '--enable-dht=false',
  '--enable-dht6=false',
  '--bt-enable-lpd=false',
  '--enable-peer-exchange=false',
  '--summary-interval=0',
  '--console-log-level=notice',
  '--file-allocation=none',
];

export interface Spawned {
  readonly child: ChildProcess;
  output(): string;
  /** Resolves when the output (stdout and stderr) matches; rejects with it on a hang or an early exit. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<void>;
  /** Resolves with the exit code (or signal); rejects with the output on a hang. */
  exit(timeoutMs?: number): Promise<number | string>;
}

/** Spawns a command whose output is kept; SIGKILLed by `cleanup` (by its PID) if still running. */
export function spawnLogged(
  cleanup: Cleanup,
  command: string,
  args: readonly string[],
  log?: LogCapture,
  /** Added to this process's environment (`ip netns exec` passes it on). */
  env?: Record<string, string>,
): Spawned {
  const child = spawn(command, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(env ? { env: { ...process.env, ...env } } : {}),
  });
  let text = '';
  const waiters: Array<() => void> = [];
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const onText = (t: string) => {
    text += t;
    log?.push(t);
    for (const wake of waiters.splice(0)) wake();
  };
  child.stdout!.setEncoding('utf8').on('data', onText);
  child.stderr!.setEncoding('utf8').on('data', onText);
  child.once('exit', () => {
    for (const wake of waiters.splice(0)) wake();
  });
  cleanup.add(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  return {
    child,
    output: () => text,
    async exit(timeoutMs = CLIENT_HANG_MS) {
      let timer: NodeJS.Timeout | undefined;
      const hang = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new Error(`${command} still running after ${timeoutMs} ms:\n${text.slice(-4000)}`),
            ),
          timeoutMs,
        );
      });
      await Promise.race([exited, hang]).finally(() => clearTimeout(timer));
      return child.exitCode ?? child.signalCode ?? -1;
    },
    async waitFor(pattern, timeoutMs = CLIENT_HANG_MS) {
      const deadline = Date.now() + timeoutMs;
      while (!pattern.test(text)) {
        if (child.exitCode !== null || child.signalCode !== null) {
          throw new Error(
            `${command} exited (${child.exitCode ?? child.signalCode}) before ${pattern}:\n${text}`,
          );
        }
        const left = deadline - Date.now();
        if (left <= 0)
          throw new Error(
            `${command}: no ${pattern} within ${timeoutMs} ms:\n${text.slice(-4000)}`,
          );
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left);
          waiters.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
    },
  };
}

/** Where a stock client runs: a host of a namespace lab, a folder of its own under `base`. */
export interface ClientSite {
  readonly cleanup: Cleanup;
  readonly lab: NetnsLab;
  readonly host: string;
  readonly base: string;
}

/**
 * transmission-cli on `site.host`: a config folder with `settings` over
 * quiet defaults (no DHT, LPD, PEX, port mapping or RPC), downloading
 * `source` (a .torrent URL or path, or a magnet link) into `download`.
 */
export async function startTransmission(
  site: ClientSite,
  source: string,
  download: string,
  settings: Record<string, unknown> = {},
  args: readonly string[] = [],
): Promise<Spawned> {
  const config = join(site.base, `transmission-${site.host}`);
  await mkdir(config, { recursive: true });
  await writeFile(
    join(config, 'settings.json'),
    JSON.stringify({
      'dht-enabled': false,
      'lpd-enabled': false,
      'pex-enabled': false,
      'port-forwarding-enabled': false,
      'rpc-enabled': false,
      ...settings,
    }),
  );
  return spawnLogged(site.cleanup, 'ip', [
    ...site.lab.exec(site.host).slice(1),
    'transmission-cli',
    ...args,
    '--no-portmap',
    '-g',
    config,
    '-w',
    download,
    source,
  ]);
}

/**
 * qbittorrent-nox on `site.host` with its default settings (µTP and TCP,
 * encryption allowed) but DHT, LSD, PeX (unless `pex`) and UPnP off. Its
 * profile is its own folder: the configuration, and the key qBittorrent
 * uses to find a running instance (a second qbittorrent-nox with the same
 * profile hands its torrent to the first and exits). The legal notice is
 * accepted in the configuration, so a first start does not depend on how
 * qbittorrent-nox treats a missing terminal.
 */
export async function startQbittorrent(
  site: ClientSite,
  source: string,
  download: string,
  options: { readonly pex?: boolean } = {},
): Promise<Spawned> {
  const profile = qbittorrentProfile(site);
  const config = join(profile, 'qBittorrent', 'config');
  await mkdir(config, { recursive: true });
  await writeFile(
    join(config, 'qBittorrent.conf'),
    [
      '[LegalNotice]',
      'Accepted=true',
      '',
      '[BitTorrent]',
      'Session\\DHTEnabled=false',
      'Session\\LSDEnabled=false',
      `Session\\PeXEnabled=${options.pex === true}`,
      '',
      '[Preferences]',
      'Connection\\UPnP=false',
      '',
    ].join('\n'),
  );
  return spawnLogged(site.cleanup, 'ip', [
    ...site.lab.exec(site.host).slice(1),
    'qbittorrent-nox',
    `--profile=${profile}`,
    `--save-path=${download}`,
    '--skip-dialog=true',
    source,
  ]);
}

function qbittorrentProfile(site: ClientSite): string {
  return join(site.base, `qbittorrent-${site.host}`);
}

/** The end of qBittorrent's own log, for a failure message. */
export async function qbittorrentLogTail(site: ClientSite, chars = 3000): Promise<string> {
  const text = await readFile(
    join(qbittorrentProfile(site), 'qBittorrent', 'data', 'logs', 'qbittorrent.log'),
    'utf8',
  ).catch((e: Error) => e.message);
  return text.slice(-chars);
}

/** Resolves once `path` holds exactly `data` (qBittorrent writes in place and prints no progress). */
export async function fileBecomes(
  path: string,
  data: Buffer,
  client: Spawned,
  timeoutMs = QB_HANG_MS,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const now = await readFile(path).catch(() => undefined);
    if (now?.equals(data)) return;
    if (client.child.exitCode !== null || client.child.signalCode !== null)
      throw new Error(`the client exited before the file was complete:\n${client.output()}`);
    if (Date.now() > deadline)
      throw new Error(`${path} not complete within ${timeoutMs} ms:\n${client.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/**
 * Whether a test that runs `tool` in a namespace lab is skipped here, and the
 * title's note saying why. In CI all of it must be there (CI runs as root and
 * installs the clients): the test runs, and fails if it is not.
 */
export function labToolGate(tool: string): { readonly skip: boolean; readonly why: string } {
  if (IN_CI) return { skip: false, why: '' };
  const why = !toolAvailable(tool) ? `${tool} is not installed` : labUnavailableReason();
  return { skip: why !== undefined, why: why ? ` (skipped: ${why}; required in CI)` : '' };
}

/**
 * aria2c seeding `torrent` from `dir` (which holds the file) on `port`,
 * checking the file first; resolves once it listens. `prefix` runs it
 * elsewhere (`lab.exec(host)`), `args` adds options (encryption, say).
 */
export async function startAria2Seeder(
  cleanup: Cleanup,
  seed: {
    readonly torrent: string;
    readonly dir: string;
    readonly port: number;
    readonly args?: readonly string[];
    readonly prefix?: readonly string[];
    readonly seedTimeS?: number;
  },
): Promise<Spawned> {
  const [command, ...prefixArgs] = [...(seed.prefix ?? []), 'aria2c'];
  const seeder = spawnLogged(cleanup, command!, [
    ...prefixArgs,
    ...ARIA2_QUIET,
    `--dir=${seed.dir}`,
    ...(seed.args ?? []),
    '--seed-ratio=0.0',
    `--seed-time=${seed.seedTimeS ?? 60}`,
    `--listen-port=${seed.port}`,
    '--check-integrity=true',
    '--bt-hash-check-seed=true',
    seed.torrent,
  ]);
  await seeder.waitFor(/listening on TCP port/);
  return seeder;
}
