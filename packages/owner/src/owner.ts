import { mkdir, open, rename, stat, writeFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { basename, join, resolve } from 'node:path';
import {
  buildMetainfo,
  formatEndpoint,
  formatRanges,
  isSwarmdropPeer,
  type LogFormat,
  listenPortOf,
  type Metainfo,
  makePeerId,
  OptionError,
  unmapIPv4,
  withAnnounce,
} from '@swarmdrop/protocol';
import {
  ChunkStore,
  createLogger,
  DualServer,
  type Logger,
  PeerWire,
  splitFile,
  Uploader,
} from '@swarmdrop/protocol/node';
import { BatchAssigner } from './batch-assigner.js';
import {
  AnnounceError,
  announceFailure,
  announceResponse,
  parseAnnounce,
  type SwarmPeer,
} from './tracker.js';

export const DEFAULT_EXPECTED_PEERS = 5;
export const DEFAULT_MAX_CONNECTIONS = 256;
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;

export interface OwnerOptions {
  /** The file to distribute; only ever read. */
  readonly file: string;
  /** Working directory for chunk files, summary and `.torrent`. */
  readonly dir: string;
  /** Interface to bind; all interfaces when undefined. */
  readonly host?: string | undefined;
  /** 0 picks a free port. */
  readonly port: number;
  readonly chunkSize: number;
  readonly expectedPeers: number;
  readonly maxConnections: number;
  readonly handshakeTimeoutMs: number;
  /** Host written into the `.torrent` on disk's announce URL (HTTP downloads use the request's Host). */
  readonly publicHost?: string | undefined;
  readonly logFormat: LogFormat;
}

export interface OwnerComponents {
  readonly logger?: Logger;
}

interface PeerRecord {
  readonly address: string;
  client: string;
  batch: readonly number[] | undefined;
  connections: number;
  holds: number;
  bytesServed: number;
  announced: boolean;
  lastSeen: Date;
}

/**
 * The file owner: splits the file into chunk files, writes the `.torrent`,
 * and serves any number of peers over one port that speaks BitTorrent and
 * HTTP (metainfo, tracker announce, JSON status).
 */
export class Owner {
  readonly options: OwnerOptions;
  readonly metainfo: Metainfo;
  readonly torrentPath: string;
  readonly torrent: Buffer;
  readonly port: number;
  private readonly server: DualServer;
  private readonly store: ChunkStore;
  private readonly log: Logger;
  private readonly peerId: Buffer;
  private readonly assigner: BatchAssigner;
  private readonly peers = new Map<string, PeerRecord>();
  private readonly wires = new Set<PeerWire>();
  private bytesServed = 0;
  private chunksServed = 0;
  private closing: Promise<void> | undefined;

  private constructor(init: {
    options: OwnerOptions;
    metainfo: Metainfo;
    torrent: Buffer;
    torrentPath: string;
    server: DualServer;
    store: ChunkStore;
    log: Logger;
    port: number;
  }) {
    this.options = init.options;
    this.metainfo = init.metainfo;
    this.torrent = init.torrent;
    this.torrentPath = init.torrentPath;
    this.server = init.server;
    this.store = init.store;
    this.log = init.log;
    this.port = init.port;
    this.peerId = makePeerId(init.port);
    this.assigner = new BatchAssigner(
      init.metainfo.geometry.pieceCount,
      init.options.expectedPeers,
    );
  }

  /**
   * Checks the file, binds the port (so a port in use fails before a long
   * split), splits, writes the `.torrent`, then starts serving.
   */
  static async start(options: OwnerOptions, components: OwnerComponents = {}): Promise<Owner> {
    await checkSourceFile(options.file);
    const log =
      components.logger ??
      createLogger({ role: 'owner', port: options.port, format: options.logFormat });
    let owner: Owner | undefined;
    const server = new DualServer({
      host: options.host,
      port: options.port,
      maxConnections: options.maxConnections,
      firstByteTimeoutMs: options.handshakeTimeoutMs,
      onWire: (socket, initial) => {
        if (owner) owner.acceptWire(socket, initial);
        else socket.destroy();
      },
      onHttp: (req, res) => {
        if (owner) owner.handleHttp(req, res);
        else sendText(res, 503, 'the owner is still preparing the file; try again shortly\n');
      },
      onRefused: (remote, reason) => log.log('connection-refused', { from: remote, reason }),
    });
    let address;
    try {
      address = await server.listen();
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      const where = formatEndpoint(options.host ?? '0.0.0.0', options.port);
      if (e.code === 'EADDRINUSE') throw new OptionError('port', `${where} is already in use`);
      if (e.code === 'EACCES') throw new OptionError('port', `no permission to listen on ${where}`);
      if (e.code === 'EADDRNOTAVAIL')
        throw new OptionError('port', `${options.host} is not an address of this machine`);
      throw err;
    }
    log.setPort(address.port);
    try {
      const dir = resolve(options.dir);
      await mkdir(dir, { recursive: true });
      const split = await splitFile({ source: options.file, dir, chunkSize: options.chunkSize });
      const name = basename(options.file);
      const publicHost = options.publicHost ?? options.host ?? '127.0.0.1';
      const { bytes, metainfo } = buildMetainfo({
        name,
        length: split.length,
        pieceLength: options.chunkSize,
        pieceHashes: split.pieceHashes,
        sha256: split.sha256,
        announce: `http://${formatEndpoint(publicHost, address.port)}/announce`,
      });
      const torrentPath = join(dir, `${name}.torrent`);
      await writeFile(`${torrentPath}.tmp`, bytes);
      await rename(`${torrentPath}.tmp`, torrentPath);
      const { store } = await ChunkStore.open({ dir, metainfo, trustExisting: true });
      owner = new Owner({
        options,
        metainfo,
        torrent: bytes,
        torrentPath,
        server,
        store,
        log,
        port: address.port,
      });
      log.log('listening', {
        addr: formatEndpoint(address.address, address.port),
        file: resolve(options.file),
        size: metainfo.length,
        chunks: metainfo.geometry.pieceCount,
        infohash: metainfo.infoHash.toString('hex'),
        dir,
        written: split.written,
        reused: split.reused,
      });
      log.log('ready', {
        torrent: torrentPath,
        url: `http://${formatEndpoint(publicHost, address.port)}/${encodeURIComponent(name)}.torrent`,
      });
      return owner;
    } catch (err) {
      await server.close();
      throw err;
    }
  }

  /** A JSON-friendly snapshot of the swarm as the owner sees it. */
  status(): Record<string, unknown> {
    return {
      role: 'owner',
      name: this.metainfo.name,
      size: this.metainfo.length,
      chunks: this.metainfo.geometry.pieceCount,
      chunkSize: this.metainfo.pieceLength,
      infoHash: this.metainfo.infoHash.toString('hex'),
      port: this.port,
      connections: this.wires.size,
      bytesServed: this.bytesServed,
      chunksServed: this.chunksServed,
      peers: [...this.peers.values()].map((p) => ({
        address: p.address,
        client: p.client,
        connected: p.connections > 0,
        batch: p.batch ? formatRanges(p.batch) : null,
        holds: p.holds,
        bytesServed: p.bytesServed,
        lastSeen: p.lastSeen.toISOString(),
      })),
    };
  }

  /** Stops listening, closes every connection, and releases the store. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.log.log('stopping', {});
      for (const wire of this.wires) wire.close('owner stopping');
      await this.server.close();
      await this.store.close();
    })();
    return this.closing;
  }

  private peerRecord(address: string): PeerRecord {
    let record = this.peers.get(address);
    if (!record) {
      record = {
        address,
        client: 'unknown',
        batch: undefined,
        connections: 0,
        holds: 0,
        bytesServed: 0,
        announced: false,
        lastSeen: new Date(),
      };
      this.peers.set(address, record);
    }
    record.lastSeen = new Date();
    return record;
  }

  private acceptWire(socket: Socket, initial: Buffer): void {
    const wire = new PeerWire({
      socket,
      initial,
      metainfo: this.metainfo,
      peerId: this.peerId,
      handshakeTimeoutMs: this.options.handshakeTimeoutMs,
    });
    this.wires.add(wire);
    let record: PeerRecord | undefined;
    const uploader = new Uploader({
      wire,
      store: this.store,
      log: (event, fields) => {
        if (event === 'chunk-sent') {
          this.chunksServed++;
          this.bytesServed += Number(fields.bytes ?? 0);
          if (record) record.bytesServed += Number(fields.bytes ?? 0);
        }
        this.log.log(event, fields);
      },
      onRemoteHas: (remote) => {
        if (!record) return;
        record.holds = remote.count();
        for (const index of remote.heldIds()) this.assigner.noteHolds(record.address, index);
      },
    });
    wire.onHandshake = (handshake) => {
      record = this.peerRecord(wire.label);
      record.connections++;
      record.client = isSwarmdropPeer(handshake.peerId)
        ? 'swarmdrop'
        : clientName(handshake.peerId);
      this.log.log('connected', { peer: wire.label, client: record.client, dir: 'in' });
      uploader.start();
    };
    wire.onMessage = (message) => {
      uploader.handle(message);
    };
    void wire.closed.then(({ reason, error }) => {
      this.wires.delete(wire);
      if (record) record.connections--;
      if (error) this.log.log('protocol-error', { peer: wire.label, reason });
      this.log.log('disconnected', { peer: wire.label, reason, sent: uploader.chunksSent });
    });
  }

  private handleHttp(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://owner.invalid');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendText(res, 405, `method ${req.method} not allowed\n`, { allow: 'GET, HEAD' });
      return;
    }
    const torrentPaths = new Set([
      '/metainfo.torrent',
      `/${encodeURIComponent(this.metainfo.name)}.torrent`,
    ]);
    if (torrentPaths.has(url.pathname)) {
      const host = validHost(req.headers.host);
      const body = host ? withAnnounce(this.torrent, `http://${host}/announce`) : this.torrent;
      res.writeHead(200, {
        'content-type': 'application/x-bittorrent',
        'content-length': body.length,
        'content-disposition': `attachment; filename="${encodeURIComponent(this.metainfo.name)}.torrent"`,
      });
      res.end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    if (url.pathname === '/announce') {
      this.announce(req, res, (req.url ?? '').split('?')[1] ?? '');
      return;
    }
    if (url.pathname === '/status') {
      const body = `${JSON.stringify(this.status(), null, 2)}\n`;
      res.writeHead(200, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
      });
      res.end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    if (url.pathname === '/') {
      sendText(
        res,
        200,
        `swarmdrop owner serving ${this.metainfo.name}\n` +
          `  GET /${encodeURIComponent(this.metainfo.name)}.torrent  (also /metainfo.torrent)\n` +
          '  GET /announce                 BitTorrent tracker\n' +
          '  GET /status                   JSON status of the swarm\n',
      );
      return;
    }
    sendText(res, 404, `no such path: ${url.pathname}\n`);
  }

  private announce(req: IncomingMessage, res: ServerResponse, query: string): void {
    let request;
    try {
      request = parseAnnounce(query);
    } catch (err) {
      const body = announceFailure((err as Error).message);
      res.writeHead(400, { 'content-type': 'text/plain', 'content-length': body.length });
      res.end(body);
      return;
    }
    if (!request.infoHash.equals(this.metainfo.infoHash)) {
      const body = announceFailure('unknown info_hash: this owner serves one torrent');
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
      res.end(body);
      return;
    }
    const host = unmapIPv4(req.socket.remoteAddress ?? '127.0.0.1');
    const address = formatEndpoint(host, request.port);
    const record = this.peerRecord(address);
    record.announced = request.event !== 'stopped';
    const swarmdrop =
      isSwarmdropPeer(request.peerId) && listenPortOf(request.peerId) === request.port;
    if (swarmdrop) record.client = 'swarmdrop';
    let batch: readonly number[] | undefined;
    if (swarmdrop && request.event !== 'stopped') {
      const known = this.assigner.batchOf(address);
      batch = this.assigner.assign(address);
      record.batch = batch;
      if (!known)
        this.log.log('batch-assigned', {
          peer: address,
          count: batch.length,
          chunks: formatRanges(batch),
        });
    }
    this.log.log('announce', { peer: address, event: request.event, left: request.left });
    const self: SwarmPeer = {
      host: unmapIPv4(req.socket.localAddress ?? '127.0.0.1'),
      port: this.port,
    };
    const others = [...this.peers.values()]
      .filter((p) => p.announced && p.address !== address)
      .map((p) => splitAddress(p.address))
      .filter((p): p is SwarmPeer => p !== undefined);
    const body = announceResponse({
      peers: [self, ...others],
      complete: 1,
      incomplete: others.length + (record.announced ? 1 : 0),
      batch,
    });
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
    res.end(body);
  }
}

async function checkSourceFile(file: string): Promise<void> {
  let info;
  try {
    info = await stat(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new OptionError('file', `${file} does not exist`);
    if (code === 'EACCES') throw new OptionError('file', `${file}: permission denied`);
    throw new OptionError('file', `${file}: ${(err as Error).message}`);
  }
  if (info.isDirectory()) throw new OptionError('file', `${file} is a directory, not a file`);
  if (!info.isFile()) throw new OptionError('file', `${file} is not a regular file`);
  if (info.size === 0)
    throw new OptionError('file', `${file} is empty; there is nothing to distribute`);
  try {
    const handle = await open(file, 'r');
    try {
      await handle.read(Buffer.alloc(1), 0, 1, 0);
    } finally {
      await handle.close();
    }
  } catch (err) {
    throw new OptionError('file', `${file} cannot be read: ${(err as Error).message}`);
  }
}

function validHost(header: string | undefined): string | undefined {
  return header && /^[A-Za-z0-9.\-:[\]]+$/.test(header) ? header : undefined;
}

function splitAddress(address: string): SwarmPeer | undefined {
  const at = address.lastIndexOf(':');
  const port = Number(address.slice(at + 1));
  return at > 0 && port > 0
    ? { host: address.slice(0, at).replace(/^\[|\]$/g, ''), port }
    : undefined;
}

/** An Azureus-style client tag (`-TR3000-` -> `TR3000`), else `other`. */
function clientName(peerId: Uint8Array): string {
  const match = /^-([A-Za-z0-9]{2}\d{4})-/.exec(Buffer.from(peerId).toString('latin1'));
  return match ? match[1]! : 'other';
}

function sendText(
  res: ServerResponse,
  status: number,
  text: string,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}
