import { type ChildProcess, spawn } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Owner, type OwnerComponents, type OwnerOptions } from '@swarmdrop/owner';
import { Peer, type PeerComponents, type PeerOptions } from '@swarmdrop/peer';
import type { Metainfo } from '@swarmdrop/protocol';
import { sha1 } from '@swarmdrop/protocol/node';
import type { Cleanup } from './cleanup.js';
import { CHUNK, randomFile } from './files.js';
import { LogCapture } from './log-capture.js';

export const OWNER_BIN = fileURLToPath(
  new URL('../../owner/bin/swarmdrop-owner.js', import.meta.url),
);
export const PEER_BIN = fileURLToPath(new URL('../../peer/bin/swarmdrop-peer.js', import.meta.url));

/** The owner options a test starts from: loopback, port 0, the seed's chunk size. */
export function ownerOptions(
  file: string,
  dir: string,
  overrides: Partial<OwnerOptions> = {},
): OwnerOptions {
  return {
    file,
    dir,
    host: '127.0.0.1',
    port: 0,
    chunkSize: CHUNK,
    expectedPeers: 5,
    maxConnections: 256,
    handshakeTimeoutMs: 10_000,
    logFormat: 'text',
    ...overrides,
  };
}

export interface OwnerSpec {
  /** The file to share; without it a random file of `size` bytes named `name` is made. */
  readonly file?: string;
  readonly size?: number;
  readonly name?: string;
  /** The owner's `--dir`; a fresh one by default. */
  readonly dir?: string;
  readonly options?: Partial<OwnerOptions>;
  readonly components?: Omit<OwnerComponents, 'logger'>;
  /** Log capture to use (so a test can hook `onLine` before the owner starts). */
  readonly log?: LogCapture;
}

export interface TestOwner {
  readonly owner: Owner;
  readonly log: LogCapture;
  readonly port: number;
  readonly file: string;
  readonly dir: string;
  /** The shared file's bytes. */
  readonly data: Buffer;
  readonly metainfo: Metainfo;
}

/** An owner started in-process on 127.0.0.1 with a captured log; closed by `cleanup`. */
export async function startOwner(cleanup: Cleanup, spec: OwnerSpec = {}): Promise<TestOwner> {
  let file = spec.file;
  let data: Buffer;
  if (file === undefined) {
    const base = await cleanup.tempDir('swarmdrop-owner-test-');
    file = join(base, spec.name ?? 'payload.bin');
    data = await randomFile(file, spec.size ?? 5 * CHUNK);
  } else {
    data = await readFile(file);
  }
  const dir = spec.dir ?? join(await cleanup.tempDir('swarmdrop-owner-work-'), 'work');
  const log = spec.log ?? new LogCapture('owner');
  const owner = await Owner.start(ownerOptions(file, dir, spec.options), {
    ...spec.components,
    logger: log.logger('owner'),
  });
  cleanup.add(() => owner.close());
  return { owner, log, port: owner.port, file, dir, data, metainfo: owner.metainfo };
}

export interface PeerSpec {
  readonly ownerPort: number;
  /** 0 picks a free port (then no neighbour can know it up front). */
  readonly port: number;
  /** The download neighbour; without one the peer runs in swarm mode. */
  readonly neighbourPort?: number;
  readonly dir?: string;
  readonly options?: Partial<PeerOptions>;
  readonly components?: Omit<PeerComponents, 'logger'>;
  /** Log capture to use (so a test can hook `onLine` before the peer starts). */
  readonly log?: LogCapture;
}

export interface TestPeerProcess {
  readonly peer: Peer;
  readonly log: LogCapture;
  readonly dir: string;
}

/** A peer started in-process on 127.0.0.1 with a captured log; closed by `cleanup`. */
export async function startPeer(cleanup: Cleanup, spec: PeerSpec): Promise<TestPeerProcess> {
  const dir = spec.dir ?? (await cleanup.tempDir('swarmdrop-peer-test-'));
  const log = spec.log ?? new LogCapture('peer');
  const peer = await Peer.start(
    {
      owner: { host: '127.0.0.1', port: spec.ownerPort },
      listen: { host: '127.0.0.1', port: spec.port },
      neighbour:
        spec.neighbourPort === undefined
          ? undefined
          : { host: '127.0.0.1', port: spec.neighbourPort },
      dir,
      exitWhenDone: false,
      fallbackAfterMs: 60_000,
      ownerTimeoutMs: 10_000,
      lingerMs: 0,
      logFormat: 'text',
      ...spec.options,
    },
    { ...spec.components, logger: log.logger('peer') },
  );
  cleanup.add(() => peer.close());
  return { peer, log, dir };
}

/** Resolves with the merged file's path once `log` shows a `merged` line. */
export async function merged(log: LogCapture): Promise<string> {
  return (await log.waitFor('merged')).fields.path!;
}

/** The chunk files in `dir/chunks` that verify against `metainfo`, and those that do not. */
export async function scanChunks(
  dir: string,
  metainfo: Metainfo,
): Promise<{ good: number[]; bad: string[] }> {
  const good: number[] = [];
  const bad: string[] = [];
  for (const name of await readdir(join(dir, 'chunks'))) {
    const match = /^(\d+)\.chunk$/.exec(name);
    const index = match ? Number(match[1]) : -1;
    const expected = metainfo.pieceHashes.get(index);
    let ok = false;
    if (expected) {
      const data = await readFile(join(dir, 'chunks', name)).catch(() => undefined);
      ok = data !== undefined && sha1(data).equals(expected);
    }
    if (ok) good.push(index);
    else bad.push(name);
  }
  return { good: good.sort((a, b) => a - b), bad };
}

/** The chunk ids in `dir/summary.txt`, in file order. */
export async function readSummary(dir: string): Promise<number[]> {
  const text = await readFile(join(dir, 'summary.txt'), 'utf8');
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map(Number);
}

export interface Child {
  readonly process: ChildProcess;
  readonly stdout: LogCapture;
  stderr: string;
  /**
   * Resolves with the exit code (or the signal name) once the process has
   * exited and its stdout and stderr are drained, so checks on its output
   * that follow see all of it.
   */
  readonly exited: Promise<number | string>;
}

/** Runs a bin under this Node; the child is SIGKILLed by `cleanup` if still running. */
export function runBin(
  cleanup: Cleanup,
  bin: string,
  args: readonly string[],
  options: {
    cwd?: string;
    env?: NodeJS.ProcessEnv;
    /** A command that runs node, e.g. `setpriv …` to drop a capability. */
    launcher?: readonly string[];
  } = {},
): Child {
  const [command, ...prefix] = [...(options.launcher ?? []), process.execPath];
  const child = spawn(command!, [...prefix, bin, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    cwd: options.cwd,
    env: { ...process.env, SWARMDROP_DEBUG: '', ...options.env },
  });
  const stdout = new LogCapture(bin.replace(/^.*\//, ''));
  const result: Child = {
    process: child,
    stdout,
    stderr: '',
    exited: new Promise((resolve) => {
      // 'close', not 'exit': 'exit' can come before the last output is read.
      child.once('close', (code, signal) => resolve(code ?? signal ?? -1));
    }),
  };
  // Read all the time, as a terminal does: a bin's log drops lines when its reader falls far behind.
  child.stdout?.setEncoding('utf8').on('data', (text: string) => stdout.push(text));
  child.stderr?.setEncoding('utf8').on('data', (text: string) => {
    result.stderr += text;
  });
  cleanup.add(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await result.exited;
    }
  });
  return result;
}
