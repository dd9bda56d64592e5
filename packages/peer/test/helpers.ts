/**
 * Test helpers for the peer suite: temp dirs, files, free ports, an in-process
 * owner, peers whose log lines are captured and can be awaited, and fake
 * neighbours built from the protocol package. Everything a helper starts is
 * registered with a `Cleanup`, which the test file runs in `afterEach`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { Owner } from '@swarmdrop/owner';
import {
  Bitfield,
  type Message,
  type Metainfo,
  makePeerId,
  parseTextLine,
} from '@swarmdrop/protocol';
import { createLogger, DualServer, type Logger, PeerWire, sha1 } from '@swarmdrop/protocol/node';
import { Peer, type PeerOptions } from '../src/index.js';

export const CHUNK = 102_400;
export const PEER_BIN = fileURLToPath(new URL('../bin/swarmdrop-peer.js', import.meta.url));

/** Runs registered teardown steps in reverse order; one failing step does not skip the others. */
export class Cleanup {
  private steps: Array<() => Promise<void> | void> = [];

  add(step: () => Promise<void> | void): void {
    this.steps.push(step);
  }

  async run(): Promise<void> {
    const steps = this.steps.reverse();
    this.steps = [];
    const errors: unknown[] = [];
    for (const step of steps) {
      try {
        await step();
      } catch (err) {
        errors.push(err);
      }
    }
    if (errors.length > 0) throw errors[0];
  }
}

export async function tempDir(cleanup: Cleanup, prefix = 'swarmdrop-peer-test-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  cleanup.add(() => rm(dir, { recursive: true, force: true, maxRetries: 3 }));
  return dir;
}

/** Writes `size` random bytes to `path` and returns them. */
export async function randomFile(path: string, size: number): Promise<Buffer> {
  const data = randomBytes(size);
  await writeFile(path, data);
  return data;
}

/** A port that was free a moment ago (bind to 0, read, close). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface ParsedLine {
  readonly line: string;
  readonly event: string;
  readonly port: number;
  readonly fields: Record<string, string>;
}

type Match = (line: ParsedLine) => boolean;

/** Collects text log lines and lets a test wait for one that matches. */
export class LogCapture {
  readonly lines: ParsedLine[] = [];
  readonly stream: Writable;
  /** Called synchronously for every line as it is logged. */
  onLine: (line: ParsedLine) => void = () => {};
  private waiters: Array<{ match: Match; count: number; resolve: () => void }> = [];
  private partial = '';

  constructor() {
    this.stream = new Writable({
      write: (chunk: Buffer | string, _encoding, callback) => {
        this.push(chunk.toString());
        callback();
      },
    });
  }

  /** Feeds raw text (e.g. a child's stdout). */
  push(text: string): void {
    this.partial += text;
    const parts = this.partial.split('\n');
    this.partial = parts.pop() ?? '';
    for (const raw of parts) {
      if (raw === '') continue;
      const parsed = parseTextLine(raw);
      const line: ParsedLine = parsed
        ? { line: raw, event: parsed.event, port: parsed.port, fields: parsed.fields }
        : { line: raw, event: '', port: 0, fields: {} };
      this.lines.push(line);
      this.onLine(line);
      this.waiters = this.waiters.filter((w) => {
        if (this.count(w.match) < w.count) return true;
        w.resolve();
        return false;
      });
    }
  }

  filter(event: string, fields: Record<string, string> = {}): ParsedLine[] {
    return this.lines.filter((l) => matches(l, event, fields));
  }

  count(match: Match): number {
    let n = 0;
    for (const line of this.lines) if (match(line)) n++;
    return n;
  }

  /** Resolves once `count` lines of `event` with these field values have been logged. */
  waitFor(event: string, fields: Record<string, string> = {}, count = 1): Promise<void> {
    return this.waitUntil((l) => matches(l, event, fields), count);
  }

  waitUntil(match: Match, count = 1): Promise<void> {
    if (this.count(match) >= count) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ match, count, resolve }));
  }

  /** Chunk ids of lines of `event` (with these fields). */
  chunks(event: string, fields: Record<string, string> = {}): number[] {
    return this.filter(event, fields).map((l) => Number(l.fields.chunk));
  }

  text(): string {
    return this.lines.map((l) => l.line).join('\n');
  }
}

function matches(line: ParsedLine, event: string, fields: Record<string, string>): boolean {
  if (line.event !== event) return false;
  for (const [key, value] of Object.entries(fields)) if (line.fields[key] !== value) return false;
  return true;
}

export function captureLogger(role: string): { logger: Logger; capture: LogCapture } {
  const capture = new LogCapture();
  const logger = createLogger({ role, port: 0, format: 'text', stream: capture.stream });
  return { logger, capture };
}

export interface TestOwner {
  readonly owner: Owner;
  readonly capture: LogCapture;
  readonly data: Buffer;
  readonly file: string;
  readonly dir: string;
}

/** An in-process owner on 127.0.0.1 with a random file of `size` bytes. */
export async function startOwner(
  cleanup: Cleanup,
  options: { size: number; expectedPeers: number; name?: string },
): Promise<TestOwner> {
  const base = await tempDir(cleanup, 'swarmdrop-owner-test-');
  const file = join(base, options.name ?? 'payload.bin');
  const data = await randomFile(file, options.size);
  const dir = join(base, 'work');
  const { logger, capture } = captureLogger('owner');
  const owner = await Owner.start(
    {
      file,
      dir,
      host: '127.0.0.1',
      port: 0,
      chunkSize: CHUNK,
      expectedPeers: options.expectedPeers,
      maxConnections: 256,
      handshakeTimeoutMs: 10_000,
      logFormat: 'text',
    },
    { logger },
  );
  cleanup.add(() => owner.close());
  return { owner, capture, data, file, dir };
}

export interface TestPeer {
  readonly peer: Peer;
  readonly capture: LogCapture;
  readonly dir: string;
}

export interface PeerSpec {
  readonly ownerPort: number;
  /** 0 picks a free port (then no neighbour can know it up front). */
  readonly port: number;
  readonly neighbourPort: number;
  readonly dir?: string;
  readonly options?: Partial<PeerOptions>;
  /** Log capture to use (so a test can hook `onLine` before the peer starts). */
  readonly capture?: LogCapture;
}

/** Starts an in-process peer on 127.0.0.1 whose log lines are captured. */
export async function startPeer(cleanup: Cleanup, spec: PeerSpec): Promise<TestPeer> {
  const dir = spec.dir ?? (await tempDir(cleanup));
  const capture = spec.capture ?? new LogCapture();
  const logger = createLogger({ role: 'peer', port: 0, format: 'text', stream: capture.stream });
  const peer = await Peer.start(
    {
      owner: { host: '127.0.0.1', port: spec.ownerPort },
      listen: { host: '127.0.0.1', port: spec.port },
      neighbour: { host: '127.0.0.1', port: spec.neighbourPort },
      dir,
      exitWhenDone: false,
      fallbackAfterMs: 60_000,
      ownerTimeoutMs: 10_000,
      lingerMs: 0,
      logFormat: 'text',
      ...spec.options,
    },
    { logger },
  );
  cleanup.add(() => peer.close());
  return { peer, capture, dir };
}

/** Resolves with the merged file's path once `capture` shows a `merged` line. */
export async function merged(capture: LogCapture): Promise<string> {
  await capture.waitFor('merged');
  return capture.filter('merged')[0]!.fields.path!;
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
    const expected = metainfo.pieceHashes[index];
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

export interface FakeNeighbourOptions {
  readonly metainfo: Metainfo;
  /** Its peer id; a swarmdrop one (carrying its port) by default. */
  readonly peerId?: Uint8Array;
  /** Which chunks it claims to hold; every chunk by default. */
  readonly holds?: (index: number) => boolean;
  /**
   * Answers one block request: the bytes to send, or undefined to stay
   * silent. May be async.
   */
  readonly answer: (
    request: { index: number; begin: number; length: number },
    wire: PeerWire,
  ) => Promise<Uint8Array | undefined> | Uint8Array | undefined;
}

/**
 * A hand-built BitTorrent peer (DualServer + PeerWire) that serves whatever
 * `answer` says: the tool for corrupting, stalling or otherwise scripted
 * neighbours.
 */
export class FakeNeighbour {
  readonly wires = new Set<PeerWire>();
  readonly requests: Array<{ index: number; begin: number; length: number }> = [];
  connections = 0;
  port = 0;
  private readonly server: DualServer;
  private readonly options: FakeNeighbourOptions;

  constructor(options: FakeNeighbourOptions) {
    this.options = options;
    this.server = new DualServer({
      host: '127.0.0.1',
      port: 0,
      onWire: (socket, initial) => this.accept(socket, initial),
      onHttp: (_req, res) => {
        res.writeHead(404);
        res.end();
      },
    });
  }

  async listen(): Promise<number> {
    this.port = (await this.server.listen()).port;
    return this.port;
  }

  async close(): Promise<void> {
    for (const wire of this.wires) wire.close('fake neighbour stopping');
    await this.server.close();
  }

  private accept(socket: Socket, initial: Buffer): void {
    const { metainfo } = this.options;
    const peerId = this.options.peerId ?? makePeerId(this.port);
    const wire = new PeerWire({ socket, initial, metainfo, peerId });
    this.wires.add(wire);
    this.connections++;
    void wire.closed.then(() => this.wires.delete(wire));
    wire.onHandshake = () => {
      const held = new Bitfield(metainfo.geometry.pieceCount);
      for (let i = 0; i < held.size; i++) if (this.options.holds?.(i) ?? true) held.set(i);
      wire.send({ type: 'bitfield', bytes: held.toBytes() });
    };
    wire.onMessage = (message: Message) => {
      if (message.type === 'interested') wire.send({ type: 'unchoke' });
      if (message.type === 'request') {
        const request = { index: message.index, begin: message.begin, length: message.length };
        this.requests.push(request);
        void Promise.resolve(this.options.answer(request, wire)).then((block) => {
          if (block) wire.sendPiece(request.index, request.begin, block);
        });
      }
    };
  }
}

export async function startFakeNeighbour(
  cleanup: Cleanup,
  options: FakeNeighbourOptions,
): Promise<FakeNeighbour> {
  const fake = new FakeNeighbour(options);
  await fake.listen();
  cleanup.add(() => fake.close());
  return fake;
}

export interface Child {
  readonly process: ChildProcess;
  readonly stdout: LogCapture;
  stderr: string;
  /** Resolves with the exit code (or the signal name) once the process has exited. */
  readonly exited: Promise<number | string>;
}

/** Runs the real `swarmdrop-peer` bin; the child is SIGKILLed at cleanup if still running. */
export function runPeerBin(cleanup: Cleanup, args: string[]): Child {
  const child = spawn(process.execPath, [PEER_BIN, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, SWARMDROP_DEBUG: '' },
  });
  const stdout = new LogCapture();
  const result: Child = {
    process: child,
    stdout,
    stderr: '',
    exited: new Promise((resolve) => {
      child.once('exit', (code, signal) => resolve(code ?? signal ?? -1));
    }),
  };
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

/**
 * A TCP proxy in front of `targetPort` that forwards at most `budgetBytes`
 * from the target back to clients, then holds the rest: a transfer that
 * cannot finish, whatever the machine's speed.
 */
export async function startGatedProxy(
  cleanup: Cleanup,
  targetPort: number,
  budgetBytes: number,
): Promise<number> {
  let budget = budgetBytes;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect({ host: '127.0.0.1', port: targetPort });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => {
        sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.on('data', (bytes: Buffer) => {
      const pass = Math.min(bytes.length, budget);
      budget -= pass;
      if (pass > 0) client.write(bytes.subarray(0, pass));
      if (pass < bytes.length) upstream.pause();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanup.add(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  );
  const address = server.address();
  return typeof address === 'object' && address ? address.port : 0;
}

/** Bounds a hang: rejects after `ms` with `explain()` in the message (for diagnostics, not speed). */
export async function within<T>(
  promise: Promise<T>,
  ms: number,
  explain: () => string,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no result within ${ms} ms; ${explain()}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
