import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import {
  Bitfield,
  encodeMessage,
  FrameDecoder,
  type Handshake,
  type Message,
  type Metainfo,
  makePeerId,
} from '@swarmdrop/protocol';
import { sha1 } from '@swarmdrop/protocol/node';
import { HANG_MS } from './env.js';

/** A block request as a test peer received it. */
export interface BlockRequest {
  readonly index: number;
  readonly begin: number;
  readonly length: number;
}

export interface TestPeerScript {
  readonly metainfo: Metainfo;
  /** Our peer id: a stock client's by default when connecting, a swarmdrop one when listening. */
  readonly peerId?: Uint8Array;
  /** The info-hash in our handshake (default: the torrent's). */
  readonly infoHash?: Uint8Array;
  /** Send our handshake at all (default true): off to test a remote waiting for it. */
  readonly handshake?: boolean;
  /** Connect from this source address (another loopback address, say 127.0.0.2). */
  readonly localAddress?: string;
  /** Send a bitfield after the handshake claiming these chunks (default: no bitfield). */
  readonly holds?: (index: number) => boolean;
  /**
   * Answers one block request: the bytes to send (correct, corrupt, short…),
   * or undefined to stay silent (a stall). May be async (a drip). Without it
   * requests are recorded and never answered.
   */
  readonly answer?: (
    request: BlockRequest,
    peer: TestPeer,
  ) => Promise<Uint8Array | undefined> | Uint8Array | undefined;
}

/** A stock client's peer id (Azureus style, client "TS"). */
export function stockPeerId(): Buffer {
  return Buffer.concat([Buffer.from('-TS0001-', 'latin1'), randomBytes(12)]);
}

/**
 * One scriptable BitTorrent connection over a raw socket, built on the
 * protocol's encoder and streaming decoder: it records what the remote
 * sends, can send any message or raw bytes, and serves requests as its
 * script says (correct, corrupt, stalled or dripped). `until` waits for a
 * condition re-checked on every message and on close.
 */
export class TestPeer {
  readonly messages: Message[] = [];
  /** Blocks received, by `index:begin`. */
  readonly blocks = new Map<string, Buffer>();
  /** Requests received from the remote. */
  readonly requests: BlockRequest[] = [];
  remoteHandshake: Handshake | undefined;
  remoteBitfield: Bitfield | undefined;
  /** Whether the remote unchoked us. */
  unchoked = false;
  closed = false;
  /** Keep every message and block (off for bulk transfers). */
  record = true;
  /** Called for every message received. */
  onMessage: (message: Message) => void = () => {};
  /** Called for every block request received. */
  onRequest: (request: BlockRequest) => void = () => {};
  /** Set when our decoder refused what the remote sent. */
  decodeError: Error | undefined;
  /** Resolves when the socket has closed, for whatever reason. */
  readonly closedPromise: Promise<void>;
  /** `host:port` of our end: how the remote's log names this connection. */
  label = '';
  private readonly decoder: FrameDecoder;
  private readonly checks = new Set<() => void>();
  private handshakeSent = false;

  constructor(
    readonly socket: Socket,
    readonly script: TestPeerScript,
    private readonly ourPeerId: Uint8Array,
  ) {
    this.decoder = new FrameDecoder({
      geometry: script.metainfo.geometry,
      infoHash: script.metainfo.infoHash,
    });
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

  get metainfo(): Metainfo {
    return this.script.metainfo;
  }

  /** Connects to `port` and sends our handshake (unless the script says not to). */
  static async connect(
    port: number,
    script: TestPeerScript,
    host = '127.0.0.1',
  ): Promise<TestPeer> {
    const socket = connect({
      host,
      port,
      ...(script.localAddress ? { localAddress: script.localAddress } : {}),
    });
    const peer = new TestPeer(socket, script, script.peerId ?? stockPeerId());
    await once(socket, 'connect');
    peer.label = `${socket.localAddress}:${socket.localPort}`;
    peer.sendHandshake();
    return peer;
  }

  send(message: Message): void {
    if (!this.socket.destroyed) this.socket.write(encodeMessage(message));
  }

  /** Arbitrary bytes: a malformed frame, half a message, garbage. */
  sendRaw(bytes: Uint8Array | string): void {
    if (!this.socket.destroyed) this.socket.write(bytes);
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

  /** Waits for the remote's handshake and bitfield. */
  ready(): Promise<void> {
    return this.until(
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
    this.sendRaw(Buffer.concat(frames));
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
      const expected = this.metainfo.pieceHashes.get(index)!;
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

  /** Our handshake, then the scripted bitfield; once. */
  sendHandshake(): void {
    if (this.handshakeSent || this.script.handshake === false) return;
    this.handshakeSent = true;
    this.send({
      type: 'handshake',
      reserved: new Uint8Array(8),
      infoHash: this.script.infoHash ?? this.metainfo.infoHash,
      peerId: this.ourPeerId,
    });
    const { holds } = this.script;
    if (holds) {
      const held = new Bitfield(this.metainfo.geometry.pieceCount);
      for (let i = 0; i < held.size; i++) if (holds(i)) held.set(i);
      this.send({ type: 'bitfield', bytes: held.toBytes() });
    }
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
      this.handle(m);
    }
    this.notify();
  }

  private handle(m: Message): void {
    switch (m.type) {
      case 'handshake':
        this.remoteHandshake = m;
        this.sendHandshake();
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
      case 'interested':
        if (this.script.answer) this.send({ type: 'unchoke' });
        break;
      case 'piece':
        if (this.record) this.blocks.set(`${m.index}:${m.begin}`, Buffer.from(m.block));
        break;
      case 'request': {
        const request = { index: m.index, begin: m.begin, length: m.length };
        this.requests.push(request);
        this.onRequest(request);
        const { answer } = this.script;
        if (answer) {
          void Promise.resolve(answer(request, this)).then((block) => {
            if (block)
              this.send({ type: 'piece', index: request.index, begin: request.begin, block });
          });
        }
        break;
      }
      default:
        break;
    }
  }

  private notify(): void {
    for (const check of [...this.checks]) check();
  }
}

/**
 * A listening test peer: every accepted connection becomes a `TestPeer`
 * following the same script (a scripted download neighbour for a real peer).
 */
export class TestPeerServer {
  readonly peers = new Set<TestPeer>();
  /** Every request received, over all connections. */
  readonly requests: BlockRequest[] = [];
  connections = 0;
  port = 0;
  private readonly server: Server;

  private constructor(private readonly script: TestPeerScript) {
    this.server = createServer((socket) => this.accept(socket));
  }

  static async listen(script: TestPeerScript, host = '127.0.0.1'): Promise<TestPeerServer> {
    const server = new TestPeerServer(script);
    await new Promise<void>((resolve, reject) => {
      server.server.once('error', reject);
      server.server.listen(0, host, () => resolve());
    });
    const address = server.server.address();
    server.port = typeof address === 'object' && address ? address.port : 0;
    return server;
  }

  async close(): Promise<void> {
    for (const peer of this.peers) peer.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private accept(socket: Socket): void {
    // A swarmdrop peer id carrying our port by default, as a real neighbour's would.
    const peer = new TestPeer(socket, this.script, this.script.peerId ?? makePeerId(this.port));
    peer.label = `${socket.remoteAddress}:${socket.remotePort}`;
    this.connections++;
    this.peers.add(peer);
    peer.onRequest = (request) => this.requests.push(request);
    void peer.closedPromise.then(() => this.peers.delete(peer));
  }
}
