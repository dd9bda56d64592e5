/**
 * Test helpers: temp dirs, a log capture that tests can wait on, an owner
 * started in-process on port 0, a raw BitTorrent client built on the
 * protocol's codec, and plain HTTP over node:http or a raw socket. Every
 * helper that opens something returns a handle the caller closes in
 * afterEach; nothing waits on a sleep.
 */
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import {
  Bitfield,
  BLOCK_SIZE,
  encodeMessage,
  FrameDecoder,
  type Handshake,
  type Message,
  type Metainfo,
  parseTextLine,
} from '@swarmdrop/protocol';
import { createLogger, type Logger } from '@swarmdrop/protocol/node';
import { Owner, type OwnerComponents, type OwnerOptions } from '../src/index.js';

/** Bounds a wait that should end promptly; only a hang ever reaches it. */
export const HANG_MS = 20_000;

/** Temp directories made by a test, removed by `cleanup()` in afterEach. */
export class TempDirs {
  private readonly dirs: string[] = [];

  async make(prefix = 'swarmdrop-owner-test-'): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), prefix));
    this.dirs.push(dir);
    return dir;
  }

  async cleanup(): Promise<void> {
    const dirs = this.dirs.splice(0);
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  }
}

/** Writes `size` random bytes to `dir/name` and returns the path and the bytes. */
export async function randomFile(
  dir: string,
  name: string,
  size: number,
): Promise<{ path: string; data: Buffer }> {
  const data = randomBytes(size);
  const path = join(dir, name);
  await writeFile(path, data);
  return { path, data };
}

export function sha1(data: Uint8Array): Buffer {
  return createHash('sha1').update(data).digest();
}

export interface LogLine {
  readonly event: string;
  readonly port: number;
  readonly fields: Record<string, string>;
  readonly line: string;
}

/** Collects the owner's text log lines; `waitFor` resolves on the first matching one (past or future). */
export class LogCapture {
  readonly lines: LogLine[] = [];
  readonly logger: Logger;
  private waiters: Array<{ match: (l: LogLine) => boolean; resolve: (l: LogLine) => void }> = [];
  private partial = '';

  constructor() {
    const stream = new Writable({
      write: (chunk: Buffer, _encoding, callback) => {
        this.receive(chunk.toString('utf8'));
        callback();
      },
    });
    this.logger = createLogger({ role: 'owner', port: 0, format: 'text', stream });
  }

  events(event: string, match: (fields: Record<string, string>) => boolean = () => true) {
    return this.lines.filter((l) => l.event === event && match(l.fields));
  }

  waitFor(
    event: string,
    match: (fields: Record<string, string>) => boolean = () => true,
    timeoutMs = HANG_MS,
  ): Promise<LogLine> {
    const test = (l: LogLine) => l.event === event && match(l.fields);
    const found = this.lines.find(test);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(
          new Error(
            `no "${event}" log line matched within ${timeoutMs} ms; log:\n${this.text().slice(-4000)}`,
          ),
        );
      }, timeoutMs);
      const waiter = {
        match: test,
        resolve: (l: LogLine) => {
          clearTimeout(timer);
          resolve(l);
        },
      };
      this.waiters.push(waiter);
    });
  }

  text(): string {
    return this.lines.map((l) => l.line).join('\n');
  }

  private receive(text: string): void {
    const parts = (this.partial + text).split('\n');
    this.partial = parts.pop() ?? '';
    for (const line of parts) {
      const parsed = parseTextLine(line);
      if (!parsed) throw new Error(`log line does not parse: ${line}`);
      const entry: LogLine = {
        event: parsed.event,
        port: parsed.port,
        fields: parsed.fields,
        line,
      };
      this.lines.push(entry);
      const ready = this.waiters.filter((w) => w.match(entry));
      this.waiters = this.waiters.filter((w) => !w.match(entry));
      for (const w of ready) w.resolve(entry);
    }
  }
}

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
    chunkSize: 102_400,
    expectedPeers: 5,
    maxConnections: 256,
    handshakeTimeoutMs: 10_000,
    logFormat: 'text',
    ...overrides,
  };
}

/** Starts an owner in-process with a captured log. */
export async function startOwner(
  file: string,
  dir: string,
  overrides: Partial<OwnerOptions> = {},
  components: Omit<OwnerComponents, 'logger'> = {},
): Promise<{ owner: Owner; log: LogCapture }> {
  const log = new LogCapture();
  const owner = await Owner.start(ownerOptions(file, dir, overrides), {
    ...components,
    logger: log.logger,
  });
  return { owner, log };
}

/** A peer id of a stock client (Azureus style, client "TS"). */
export function stockPeerId(): Buffer {
  return Buffer.concat([Buffer.from('-TS0001-', 'latin1'), randomBytes(12)]);
}

export interface BtClientOptions {
  readonly peerId?: Uint8Array;
  /** The info-hash sent in our handshake (default: the torrent's). */
  readonly infoHash?: Uint8Array;
  /** Send our handshake on connect (default true). */
  readonly handshake?: boolean;
}

/**
 * A minimal BitTorrent client over a raw socket, using the protocol's
 * encoder and streaming decoder. Records every message; `until` waits for a
 * condition re-checked on each message and on close.
 */
export class BtClient {
  readonly socket: Socket;
  readonly metainfo: Metainfo;
  readonly messages: Message[] = [];
  /** Blocks received, by `index:begin`. */
  readonly blocks = new Map<string, Buffer>();
  remoteHandshake: Handshake | undefined;
  remoteBitfield: Bitfield | undefined;
  unchoked = false;
  closed = false;
  /** Keep every message in `messages` and every block in `blocks` (off for bulk transfers). */
  record = true;
  /** Called for every message received. */
  onMessage: (message: Message) => void = () => {};
  /** Set when our decoder refused what the owner sent. */
  decodeError: Error | undefined;
  /** Resolves when the socket has closed, for whatever reason. */
  readonly closedPromise: Promise<void>;
  private readonly decoder: FrameDecoder;
  private checks = new Set<() => void>();

  private constructor(socket: Socket, metainfo: Metainfo) {
    this.socket = socket;
    this.metainfo = metainfo;
    this.decoder = new FrameDecoder({ geometry: metainfo.geometry, infoHash: metainfo.infoHash });
    this.closedPromise = new Promise((resolve) => {
      socket.on('close', () => {
        this.closed = true;
        this.notify();
        resolve();
      });
    });
    socket.on('error', () => {});
    socket.on('data', (bytes: Buffer) => this.receive(bytes));
  }

  static async connect(
    port: number,
    metainfo: Metainfo,
    options: BtClientOptions = {},
  ): Promise<BtClient> {
    const socket = connect({ host: '127.0.0.1', port });
    const client = new BtClient(socket, metainfo);
    await once(socket, 'connect');
    client.label = `127.0.0.1:${socket.localPort}`;
    if (options.handshake !== false) {
      socket.write(
        encodeMessage({
          type: 'handshake',
          reserved: new Uint8Array(8),
          infoHash: options.infoHash ?? metainfo.infoHash,
          peerId: options.peerId ?? stockPeerId(),
        }),
      );
    }
    return client;
  }

  /** `127.0.0.1:<our local port>`: how the owner's log names this connection (stock peer id). */
  label = '';

  send(message: Message): void {
    this.socket.write(encodeMessage(message));
  }

  /** Waits until `condition()` holds; rejects if the connection closes first or on a hang. */
  until(condition: () => boolean, what: string, timeoutMs = HANG_MS): Promise<void> {
    if (condition()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = () => {
        if (condition()) finish();
        else if (this.closed) finish(new Error(`connection closed while waiting for ${what}`));
      };
      const finish = (err?: Error) => {
        clearTimeout(timer);
        this.checks.delete(check);
        if (err) reject(err);
        else resolve();
      };
      const timer = setTimeout(
        () => finish(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)),
        timeoutMs,
      );
      this.checks.add(check);
      check();
    });
  }

  /** Waits for the owner's handshake and bitfield. */
  async ready(): Promise<void> {
    await this.until(
      () => this.remoteHandshake !== undefined && this.remoteBitfield !== undefined,
      'handshake and bitfield',
    );
  }

  /** Sends interested and waits for unchoke. */
  async interested(): Promise<void> {
    this.send({ type: 'interested' });
    await this.until(() => this.unchoked, 'unchoke');
  }

  /** Requests every block of `indices` (all pipelined at once). */
  requestChunks(indices: readonly number[]): void {
    const frames: Buffer[] = [];
    for (const index of indices) {
      for (const block of this.metainfo.geometry.blocks(index)) {
        frames.push(encodeMessage({ type: 'request', index, ...block }));
      }
    }
    this.socket.write(Buffer.concat(frames));
  }

  hasChunk(index: number): boolean {
    return this.metainfo.geometry
      .blocks(index)
      .every((b) => this.blocks.has(`${index}:${b.begin}`));
  }

  /** Chunk `index` from its received blocks. */
  chunk(index: number): Buffer {
    return Buffer.concat(
      this.metainfo.geometry.blocks(index).map((b) => {
        const block = this.blocks.get(`${index}:${b.begin}`);
        if (!block) throw new Error(`chunk ${index} block ${b.begin} missing`);
        return block;
      }),
    );
  }

  /** Requests `indices`, waits for them, and checks each against its SHA-1 in the metainfo. */
  async fetchChunks(indices: readonly number[], timeoutMs = HANG_MS): Promise<void> {
    this.requestChunks(indices);
    await this.until(() => indices.every((i) => this.hasChunk(i)), 'chunks', timeoutMs);
    for (const index of indices) {
      const expected = this.metainfo.pieceHashes[index]!;
      if (!sha1(this.chunk(index)).equals(expected))
        throw new Error(`chunk ${index} does not match its SHA-1`);
    }
  }

  /** The whole file from received blocks. */
  file(): Buffer {
    const chunks: Buffer[] = [];
    for (let i = 0; i < this.metainfo.geometry.pieceCount; i++) chunks.push(this.chunk(i));
    return Buffer.concat(chunks);
  }

  destroy(): void {
    this.socket.destroy();
  }

  private receive(bytes: Buffer): void {
    let messages: Message[];
    try {
      messages = this.decoder.push(bytes);
    } catch (err) {
      this.decodeError = err as Error;
      this.socket.destroy();
      return;
    }
    for (const m of messages) {
      this.onMessage(m);
      if (this.record) this.messages.push(m);
      switch (m.type) {
        case 'handshake':
          this.remoteHandshake = m;
          break;
        case 'bitfield':
          this.remoteBitfield = Bitfield.fromBytes(m.bytes, this.metainfo.geometry.pieceCount);
          break;
        case 'unchoke':
          this.unchoked = true;
          break;
        case 'choke':
          this.unchoked = false;
          break;
        case 'piece':
          if (this.record) this.blocks.set(`${m.index}:${m.begin}`, Buffer.from(m.block));
          break;
        default:
          break;
      }
    }
    this.notify();
  }

  private notify(): void {
    for (const check of [...this.checks]) check();
  }
}

export interface HttpResult {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Buffer;
}

/** One HTTP request on its own connection (no keep-alive pool left behind). */
export function httpGet(
  port: number,
  path: string,
  options: { method?: string; headers?: Record<string, string>; host?: string } = {},
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: options.host ?? '127.0.0.1',
        port,
        path,
        method: options.method ?? 'GET',
        headers: { connection: 'close', ...options.headers },
        agent: false,
        timeout: HANG_MS,
      },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (d: Buffer) => parts.push(d));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(parts),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`HTTP ${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/** Writes `bytes` on a fresh socket and collects everything until the owner closes it. */
export async function rawExchange(port: number, bytes: Uint8Array | string): Promise<string> {
  const socket = connect({ host: '127.0.0.1', port });
  socket.on('error', () => {});
  const parts: Buffer[] = [];
  socket.on('data', (d: Buffer) => parts.push(d));
  await once(socket, 'connect');
  socket.write(bytes);
  const timer = setTimeout(() => socket.destroy(), HANG_MS);
  await once(socket, 'close');
  clearTimeout(timer);
  return Buffer.concat(parts).toString('latin1');
}

/** Every byte as %XX: how a tracker client sends info_hash and peer_id. */
export function percentEncode(bytes: Uint8Array): string {
  return [...bytes].map((b) => `%${b.toString(16).padStart(2, '0').toUpperCase()}`).join('');
}

export function announcePath(fields: {
  infoHash: Uint8Array;
  peerId: Uint8Array;
  port: number;
  left?: number;
  event?: string;
}): string {
  const query = [
    `info_hash=${percentEncode(fields.infoHash)}`,
    `peer_id=${percentEncode(fields.peerId)}`,
    `port=${fields.port}`,
    'uploaded=0',
    'downloaded=0',
    `left=${fields.left ?? 0}`,
    'compact=1',
    ...(fields.event ? [`event=${fields.event}`] : []),
  ];
  return `/announce?${query.join('&')}`;
}

/** `host:port` strings from a compact (BEP 23) peer list. */
export function decodeCompactPeers(bytes: Uint8Array): string[] {
  const out: string[] = [];
  for (let i = 0; i + 6 <= bytes.length; i += 6) {
    out.push(
      `${bytes[i]}.${bytes[i + 1]}.${bytes[i + 2]}.${bytes[i + 3]}:${(bytes[i + 4]! << 8) | bytes[i + 5]!}`,
    );
  }
  return out;
}

export { BLOCK_SIZE };
