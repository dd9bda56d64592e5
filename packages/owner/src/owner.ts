import type { Stats } from 'node:fs';
import { mkdir, open, realpath, rename, stat, writeFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import {
  buildMetainfo,
  clientOf,
  escapeUnsafe,
  formatEndpoint,
  isSwarmdropPeer,
  isSwarmModePeer,
  listenPortOf,
  MAX_PIECE_COUNT,
  type Metainfo,
  makePeerId,
  OptionError,
  PROCESS_REORDER_BUDGET,
  type TimerClock,
  torrentFileName,
  UNSAFE_CHARS,
  unmapIPv4,
  type WireEncryption,
  type WireTransport,
  withAnnounce,
} from '@swarmdrop/protocol';
import {
  BlockServer,
  CHUNK_DIR,
  ChunkStore,
  Connection,
  checkChunkDir,
  createWireLimits,
  dateClock,
  PeerWire,
  SUMMARY_FILE,
  splitFile,
  systemClock,
  UtpEndpoint,
  type WireLimits,
  type WireSocket,
} from '@swarmdrop/protocol/node';
import {
  type AcceptIncomingOptions,
  Admission,
  carriesToken,
  createLogger,
  createMetrics,
  DASHBOARD_REPORT_PATH,
  DashboardHttp,
  DashboardModel,
  DomainEvents,
  DualServer,
  formatLink,
  formatRanges,
  HandshakeBudget,
  httpRouter,
  incomingHandlers,
  type Logger,
  requestQuery,
  type ServiceMetrics,
  sendBody,
  sendJson,
  sendMetrics,
  sendText,
  sendUnauthorized,
  subscribeLog,
} from '@swarmdrop/service';
import { BatchAssigner } from './batch-assigner.js';
import { type OwnerOptions, type ResolvedOwnerOptions, resolveOwnerOptions } from './options.js';
import { SuperSeeding } from './super-seeding.js';
import {
  ANNOUNCE_EXPIRY_MS,
  type AnnounceRequest,
  announceFailure,
  announceResponse,
  parseAnnounce,
  type SwarmPeer,
  TrackerRegistry,
} from './tracker.js';

export interface OwnerComponents {
  /** The console log: one subscriber to `events` (created from logFormat by default). */
  readonly logger?: Logger;
  /**
   * Where the owner publishes its domain events (a new one by default);
   * pass one to subscribe before `start()` returns, to see `listening` and `ready`.
   */
  readonly events?: DomainEvents;
  /**
   * Time for everything the owner times: tracker expiry, private-swarm
   * admission, `lastSeen`, rate limits, initial seeding's grace, the
   * dashboard, and the stamps of the logger it makes (not of one passed in).
   * `systemClock` by default; tests pass a ManualClock and move it.
   */
  readonly clock?: TimerClock;
}

export { ANNOUNCE_EXPIRY_MS } from './tracker.js';
/** Peers listed in `/status` at most (connected ones first, then the most recently seen). */
export const STATUS_MAX_PEERS = 100;

interface PeerRecord {
  readonly address: string;
  client: string;
  batch: readonly number[] | undefined;
  connections: number;
  holds: number;
  bytesServed: number;
  /** In the tracker's table: announced recently, and not `stopped`. */
  announced: boolean;
  /** On the owner's clock. */
  lastSeenMs: number;
}

/**
 * The file owner: splits the file into chunk files, writes the `.torrent`,
 * and serves any number of peers over one port that speaks BitTorrent and
 * HTTP (metainfo, tracker announce, JSON status).
 */
export class Owner {
  /** What it runs with: checked, every default filled in (options.ts). */
  readonly options: ResolvedOwnerOptions;
  readonly metainfo: Metainfo;
  readonly torrentPath: string;
  readonly torrent: Buffer;
  readonly port: number;
  private readonly server: DualServer;
  private readonly utp: UtpEndpoint | undefined;
  /** Incoming handshakes in progress, TCP and µTP (handshake-budget.ts). */
  private readonly handshakes: HandshakeBudget;
  private readonly store: ChunkStore;
  /**
   * Every state change, published once (README, "Log events"); the console
   * log, metrics and dashboard subscribe. Nothing reacts to a printed line.
   */
  readonly events: DomainEvents;
  /** What `GET /metrics` serves: a subscriber to `events` (README, "Metrics"). */
  readonly metrics: ServiceMetrics;
  private readonly log: Logger;
  private readonly peerId: Buffer;
  private readonly assigner: BatchAssigner;
  /** Swarm-mode peers are seeded piece by piece (super-seeding.ts). */
  private readonly seeding: SuperSeeding;
  /** Every peer in the tracker's table, and every open connection's remote. */
  private readonly peers = new Map<string, PeerRecord>();
  private readonly tracker: TrackerRegistry;
  /** Each BitTorrent connection; true once it was sent the whole bitfield (it gets a `have` for a restored chunk). */
  private readonly connections = new Map<Connection, boolean>();
  /** One bucket per direction for every connection (--upload-limit, --download-limit). */
  private readonly limits: WireLimits;
  private readonly clock: TimerClock;
  /** A time on the clock as a date, for `lastSeen` in /status. */
  private readonly date: (atMs?: number) => Date;
  /** Chunks being restored from the source file after their chunk file failed its SHA-1. */
  private readonly restoring = new Set<number>();
  /** With a token: the addresses that announced with it recently (admission.ts in protocol). */
  private readonly admission: Admission;
  private bytesServed = 0;
  private chunksServed = 0;
  private closing: Promise<void> | undefined;
  /** The swarm as the dashboard shows it: a subscriber to our events and the peers' reports. */
  readonly dashboard: DashboardModel;
  private readonly dashboardHttp: DashboardHttp;

  private constructor(init: {
    options: ResolvedOwnerOptions;
    metainfo: Metainfo;
    torrent: Buffer;
    torrentPath: string;
    server: DualServer;
    utp: UtpEndpoint | undefined;
    store: ChunkStore;
    events: DomainEvents;
    metrics: ServiceMetrics;
    log: Logger;
    port: number;
    clock: TimerClock;
    handshakes: HandshakeBudget;
  }) {
    this.options = init.options;
    this.metainfo = init.metainfo;
    this.torrent = init.torrent;
    this.torrentPath = init.torrentPath;
    this.server = init.server;
    this.utp = init.utp;
    this.store = init.store;
    this.events = init.events;
    this.metrics = init.metrics;
    this.log = init.log;
    this.port = init.port;
    this.clock = init.clock;
    this.handshakes = init.handshakes;
    this.date = dateClock(init.clock);
    this.tracker = new TrackerRegistry({ clock: init.clock });
    this.admission = new Admission({ clock: init.clock, expiryMs: ANNOUNCE_EXPIRY_MS });
    this.peerId = makePeerId(init.port);
    this.limits = createWireLimits({ ...init.options, clock: init.clock });
    this.seeding = new SuperSeeding(init.store, this.events.publish, { clock: init.clock });
    // What was served, to whom: counted from the chunk-sent events.
    this.events.on('chunk-sent', ({ to, bytes }) => {
      this.chunksServed++;
      this.bytesServed += bytes;
      const record = this.peers.get(to);
      if (record) record.bytesServed += bytes;
    });
    this.assigner = new BatchAssigner(
      init.metainfo.geometry.pieceCount,
      init.options.expectedPeers,
    );
    const publicHost = init.options.publicHost ?? init.options.host ?? '127.0.0.1';
    this.dashboard = new DashboardModel({
      clock: init.clock,
      selfId: formatEndpoint(publicHost, init.port),
      selfKind: 'owner',
    });
    this.dashboard.setFile(
      {
        name: init.metainfo.name,
        size: init.metainfo.length,
        chunks: init.metainfo.geometry.pieceCount,
        chunkSize: init.metainfo.pieceLength,
      },
      () => true,
      'o',
    );
    this.dashboard.attach(this.events);
    this.dashboardHttp = new DashboardHttp({
      model: this.dashboard,
      clock: init.clock,
      token: init.options.token,
      title: `owner of ${init.metainfo.name}`,
      holdOpen: (res) => init.server.holdOpen(res),
      announced: (host, port) => this.isAnnounced(host, port),
    });
  }

  /**
   * Checks the file, binds the port (so a port in use fails before a long
   * split), splits, writes the `.torrent`, then starts serving.
   *
   * Only `file` is required: the options are checked and completed exactly
   * as the command line's are (options.ts), so a bad value is the same
   * OptionError, naming the option, before anything touches the disk.
   */
  static async start(input: OwnerOptions, components: OwnerComponents = {}): Promise<Owner> {
    const options = resolveOwnerOptions(input);
    const clock = components.clock ?? systemClock;
    await checkSourceFile(options.file, options.chunkSize);
    await checkDirKeepsSource(options.file, options.dir);
    const log =
      components.logger ??
      createLogger({
        role: 'owner',
        port: options.port,
        format: options.logFormat,
        clock: dateClock(clock),
      });
    const events = components.events ?? new DomainEvents();
    subscribeLog(events, log);
    let owner: Owner | undefined;
    // Subscribed from the start, so refusals during the split count too.
    const metrics = createMetrics(events, {
      chunksHeld: () => owner?.store.held.count() ?? 0,
      trackerPeers: () => owner?.trackerPeers() ?? 0,
      utpMalformed: () => utp?.malformed ?? 0,
      utpReorderBytes: () => PROCESS_REORDER_BUDGET.held,
    });
    // BitTorrent over TCP and µTP alike, once the file is ready (closed before).
    const handshakes = new HandshakeBudget();
    const incoming = incomingHandlers({
      handshakes,
      policies: () => owner?.incomingPolicies(),
      onAccepted: (c) => owner?.acceptWire(c.socket, c.initial, c.encryption, c.transport),
      onRefused: (from, reason) => events.publish('connection-refused', { from, reason }),
    });
    const server = new DualServer({
      host: options.host,
      port: options.port,
      portField: 'port',
      maxConnections: options.maxConnections,
      maxConnectionsPerAddress: options.maxConnectionsPerAddress,
      firstByteTimeoutMs: options.handshakeTimeoutMs,
      requestTimeoutMs: options.handshakeTimeoutMs,
      onWire: incoming.onWire,
      onEncrypted: incoming.onEncrypted,
      onHttp: (req, res) => {
        if (owner) owner.handleHttp(req, res);
        else sendText(res, 503, 'the owner is still preparing the file; try again shortly\n');
      },
      onRefused: (remote, reason) => events.publish('connection-refused', { from: remote, reason }),
    });
    const address: AddressInfo = await server.listen();
    log.setPort(address.port);
    let utp: UtpEndpoint | undefined;
    try {
      if (options.transport !== 'tcp') {
        utp = new UtpEndpoint({
          host: options.host,
          port: address.port,
          portField: 'port',
          maxConnections: options.maxConnections,
          maxConnectionsPerAddress: options.maxConnectionsPerAddress,
          onConnection: incoming.onConnection,
          onRefused: (remote, reason) =>
            events.publish('connection-refused', { from: remote, reason }),
        });
        await utp.listen();
      }
      const dir = options.dir;
      await mkdir(dir, { recursive: true });
      await checkChunkDir(dir);
      const split = await splitFile({ source: options.file, dir, chunkSize: options.chunkSize });
      const name = basename(options.file);
      const publicHost = options.publicHost ?? options.host ?? '127.0.0.1';
      const { bytes, metainfo } = buildMetainfo({
        name,
        length: split.length,
        pieceLength: options.chunkSize,
        pieceHashes: split.pieceHashes,
        sha256: split.sha256,
        // The token stays out of the file on disk; token holders get it in the URL over HTTP.
        announce: `http://${formatEndpoint(publicHost, address.port)}/announce`,
        private: options.token !== undefined,
      });
      const torrentPath = join(dir, torrentFileName(name));
      await writeFile(`${torrentPath}.tmp`, bytes);
      await rename(`${torrentPath}.tmp`, torrentPath);
      const { store } = await ChunkStore.open({ dir, metainfo, trustExisting: true });
      owner = new Owner({
        options,
        metainfo,
        torrent: bytes,
        torrentPath,
        server,
        utp,
        store,
        events,
        metrics,
        log,
        port: address.port,
        clock,
        handshakes,
      });
      events.publish('listening', {
        addr: formatEndpoint(address.address, address.port),
        file: resolve(options.file),
        size: metainfo.length,
        chunks: metainfo.geometry.pieceCount,
        infohash: metainfo.infoHash.toString('hex'),
        dir,
        written: split.written,
        reused: split.reused,
      });
      events.publish('ready', {
        torrent: torrentPath,
        url: `http://${formatEndpoint(publicHost, address.port)}/${encodeURIComponent(name)}.torrent`,
        link: formatLink(publicHost, address.port, metainfo.infoHash),
        private: metainfo.private,
      });
      return owner;
    } catch (err) {
      metrics.stop();
      await utp?.close();
      await server.close();
      throw err;
    }
  }

  /**
   * What /status shows a request without the token of a private swarm:
   * counts only, no addresses, paths, name or info-hash.
   */
  publicStatus(): Record<string, unknown> {
    return {
      role: 'owner',
      private: true,
      chunks: this.metainfo.geometry.pieceCount,
      connections: this.connections.size,
      peers: this.peers.size,
    };
  }

  /** A JSON-friendly snapshot of the swarm as the owner sees it. */
  status(): Record<string, unknown> {
    for (const gone of this.tracker.expire()) this.forgetAnnounced(gone);
    const listed = [...this.peers.values()]
      .sort(
        (a, b) =>
          Number(b.connections > 0) - Number(a.connections > 0) || b.lastSeenMs - a.lastSeenMs,
      )
      .slice(0, STATUS_MAX_PEERS);
    return {
      role: 'owner',
      name: this.metainfo.name,
      size: this.metainfo.length,
      chunks: this.metainfo.geometry.pieceCount,
      chunkSize: this.metainfo.pieceLength,
      infoHash: this.metainfo.infoHash.toString('hex'),
      private: this.metainfo.private,
      port: this.port,
      connections: this.connections.size,
      refused: { ...this.server.stats },
      handshakes: { ...this.handshakes.stats },
      bytesServed: this.bytesServed,
      chunksServed: this.chunksServed,
      peerCount: this.peers.size,
      peers: listed.map((p) => ({
        address: p.address,
        client: p.client,
        connected: p.connections > 0,
        batch: p.batch ? formatRanges(p.batch) : null,
        holds: p.holds,
        bytesServed: p.bytesServed,
        lastSeen: this.date(p.lastSeenMs).toISOString(),
      })),
    };
  }

  /** True when `host` announced `port` recently and not `stopped` (a report may speak for it). */
  private isAnnounced(host: string, port: number): boolean {
    for (const gone of this.tracker.expire()) this.forgetAnnounced(gone);
    return this.tracker.has(formatEndpoint(host, port));
  }

  /** Peers in the tracker's table now (expired ones dropped first, as `/status` does). */
  private trackerPeers(): number {
    for (const gone of this.tracker.expire()) this.forgetAnnounced(gone);
    return this.tracker.size;
  }

  /** Stops listening, closes every connection, and releases the store. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.events.publish('stopping', {});
      this.dashboardHttp.close();
      for (const connection of this.connections.keys()) connection.close('owner stopping');
      this.limits.upload?.close();
      this.limits.download?.close();
      await this.utp?.close();
      await this.server.close();
      await this.store.close();
      // Last: the log is written asynchronously, and the bin exits right after (the wait is bounded).
      await this.log.flush();
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
        lastSeenMs: this.clock.now(),
      };
      this.peers.set(address, record);
    }
    record.lastSeenMs = this.clock.now();
    return record;
  }

  /** The tracker dropped `address` (expired, stopped, or replaced to make room). */
  private forgetAnnounced(address: string): void {
    const record = this.peers.get(address);
    if (!record) return;
    record.announced = false;
    this.forgetIfUnused(record);
  }

  /**
   * Forgets a peer neither in the tracker's table nor connected, with what
   * it counted for in batches: a stock client's connection is named by its
   * ephemeral port, and announces can come with ever new ports, so keeping
   * such records would grow the map (and /status) for ever and skew later
   * batches. Both sources are bounded (connection caps, the tracker's), so
   * this map is too.
   */
  private forgetIfUnused(record: PeerRecord): void {
    if (record.connections > 0 || record.announced) return;
    this.peers.delete(record.address);
    this.assigner.forget(record.address);
  }

  /**
   * The owner still has the original file: when a chunk file fails its SHA-1
   * (rot, or tampering while running) the store drops it; put it back from
   * the source so the swarm can still complete. Publishes one `chunk-corrupt`
   * event saying whether it was restored.
   */
  private async restoreChunk(index: number): Promise<void> {
    if (this.restoring.has(index)) return;
    this.restoring.add(index);
    let restored = false;
    let why: string | undefined;
    try {
      const size = this.metainfo.geometry.pieceSize(index);
      const data = Buffer.alloc(size);
      const handle = await open(this.options.file, 'r');
      try {
        let done = 0;
        while (done < size) {
          const { bytesRead } = await handle.read(
            data,
            done,
            size - done,
            index * this.metainfo.pieceLength + done,
          );
          if (bytesRead === 0) break;
          done += bytesRead;
        }
      } finally {
        await handle.close();
      }
      if (await this.store.matches(index, data)) {
        await this.store.put(index, data);
        restored = true;
        // Connections that arrived while it was missing got a bitfield without it.
        for (const [connection, whole] of this.connections) {
          if (!whole || connection.state !== 'live') continue;
          connection.sendHave(index);
          this.events.publish('have-sent', { chunk: index, to: connection.label });
        }
      } else {
        why = 'the source file changed too';
      }
    } catch (err) {
      why = (err as Error).message;
    } finally {
      this.restoring.delete(index);
    }
    this.events.publish('chunk-corrupt', {
      chunk: index,
      reason: 'stored file failed SHA-1; dropped',
      restored,
      ...(why ? { why } : {}),
    });
  }

  /** True when `host` announced with the token recently (always, for a public swarm). */
  private isAdmitted(host: string): boolean {
    return this.options.token === undefined || this.admission.isAdmitted(host);
  }

  /** How incoming BitTorrent connections are taken: our policies, and a private swarm's admission. */
  private incomingPolicies(): AcceptIncomingOptions {
    return {
      infoHash: this.metainfo.infoHash,
      encryption: this.options.encryption,
      transport: this.options.transport,
      timeoutMs: this.options.handshakeTimeoutMs,
      // A private swarm: only addresses that announced with the token may trade.
      admit: (s) =>
        this.isAdmitted(s.remoteAddress ?? '') ? undefined : 'not announced with the token',
    };
  }

  private acceptWire(
    socket: WireSocket,
    initial: Buffer,
    encryption: WireEncryption,
    transport: WireTransport,
  ): void {
    const wire = new PeerWire({
      socket,
      initial,
      encryption,
      transport,
      metainfo: this.metainfo,
      peerId: this.peerId,
      handshakeTimeoutMs: this.options.handshakeTimeoutMs,
      limits: this.limits,
      clock: this.clock,
    });
    const connection = new Connection({
      wire,
      pieceCount: this.store.pieceCount,
      localHas: this.store.held,
    });
    const server = new BlockServer({ connection, store: this.store });
    const publish = this.events.publish;
    let record: PeerRecord | undefined;
    /** What the remote holds changed: its record, and (announced swarmdrop peers) later batches. */
    const holds = (indexes: Iterable<number>) => {
      if (!record) return;
      record.holds = connection.remoteHas.count();
      // Only announced swarmdrop peers shape later batches: a stock client's
      // record is gone when it disconnects, so its holds must not linger.
      if (!record.announced) return;
      for (const i of indexes) this.assigner.noteHolds(record.address, i);
    };
    // Every connection alike: the events it publishes, and the owner serves whoever asks
    // (offers, for swarm-mode peers, ration it; not choking).
    connection.on('bitfield', (remote) => {
      publish('idlist-received', { from: wire.label, chunks: remote.count(), of: remote.size });
      holds(remote.heldIds());
    });
    connection.on('have', (index) => {
      publish('have-received', { chunk: index, from: wire.label });
      // A `have` names one chunk; only a bitfield needs the whole scan.
      holds([index]);
    });
    connection.on('interested', () => connection.unchoke());
    server.on('requestReceived', (index) =>
      publish('request-received', { chunk: index, from: wire.label }),
    );
    server.on('chunkSent', (index, bytes) =>
      publish('chunk-sent', { chunk: index, to: wire.label, bytes }),
    );
    server.on('chunkCorrupt', (index) => void this.restoreChunk(index));
    connection.on('ready', (handshake) => {
      record = this.peerRecord(wire.label);
      record.connections++;
      record.client = clientOf(handshake.peerId);
      publish('connected', {
        peer: wire.label,
        client: record.client,
        dir: 'in',
        transport: wire.transport,
        encryption: wire.encryption,
      });
      if (isSwarmModePeer(handshake.peerId)) {
        this.seeding.serve(connection, server);
        return;
      }
      // Ring peers and stock clients: the whole bitfield.
      const held = this.store.held;
      connection.sendBitfield(held);
      this.connections.set(connection, true);
      publish('idlist-sent', { to: wire.label, chunks: held.count(), of: held.size });
    });
    this.connections.set(connection, false);
    connection.on('closed', ({ reason, error }) => {
      this.connections.delete(connection);
      if (record) {
        record.connections--;
        this.forgetIfUnused(record);
      }
      if (error) publish('protocol-error', { peer: wire.label, reason });
      publish('disconnected', { peer: wire.label, reason, sent: server.chunksSent });
    });
  }

  /** HTTP on the owner's port; a bad target or a handler bug costs one request, never the process. */
  private readonly handleHttp = httpRouter(
    (path, req, res) => this.route(path, req, res),
    (err, req) => this.httpError(err, req),
    new Set([DASHBOARD_REPORT_PATH]),
  );

  /** A request that failed in a handler: one `error` line naming it. */
  private httpError(err: Error, req: IncomingMessage): void {
    this.events.publish('error', {
      from: formatEndpoint(req.socket.remoteAddress, req.socket.remotePort ?? 0),
      request: `${req.method} ${(req.url ?? '').slice(0, 200)}`,
      reason: err.message,
    });
  }

  private route(pathname: string, req: IncomingMessage, res: ServerResponse): void {
    const token = this.options.token;
    const authorized = carriesToken(req, token);
    if (pathname === '/metainfo.torrent' || pathname === `/${this.metainfo.name}.torrent`) {
      if (!authorized) {
        sendUnauthorized(res);
        return;
      }
      const host = validHost(req.headers.host);
      // Token holders get the token in the tracker URL, so a stock client announces with it.
      const key = token === undefined ? '' : `?key=${token}`;
      const body = host
        ? withAnnounce(this.torrent, `http://${host}/announce${key}`)
        : this.torrent;
      sendBody(req, res, 'application/x-bittorrent', body, {
        'content-disposition': `attachment; filename="${encodeURIComponent(this.metainfo.name)}.torrent"`,
      });
      return;
    }
    if (pathname === '/announce') {
      if (!authorized) {
        const body = announceFailure('this swarm is private: announce with key=<token>');
        res.writeHead(401, { 'content-type': 'text/plain', 'content-length': body.length });
        res.end(body);
        return;
      }
      this.announce(req, res, requestQuery(req.url));
      return;
    }
    if (pathname === '/status') {
      sendJson(req, res, authorized ? this.status() : this.publicStatus());
      return;
    }
    if (pathname === '/metrics') {
      if (authorized)
        sendMetrics(req, res, this.metrics.registry, (err) => this.httpError(err, req));
      else sendUnauthorized(res);
      return;
    }
    // A browser gets the dashboard at `/`; curl and scripts get the list of endpoints.
    if (pathname === '/' && !acceptsHtml(req)) {
      sendText(
        res,
        200,
        `swarmdrop owner serving ${this.metainfo.name}\n` +
          `  GET /${encodeURIComponent(this.metainfo.name)}.torrent  (also /metainfo.torrent)\n` +
          '  GET /announce                 BitTorrent tracker\n' +
          '  GET /status                   JSON status of the swarm\n' +
          '  GET /metrics                  Prometheus metrics\n' +
          '  GET / (from a browser)        the live dashboard\n' +
          '  GET /dashboard/events         its updates (Server-Sent Events)\n' +
          '  GET /dashboard/state          its whole state as JSON\n' +
          `  POST ${DASHBOARD_REPORT_PATH}        peers' reports\n`,
      );
      return;
    }
    if (this.dashboardHttp.handle(pathname, req, res)) return;
    sendText(res, 404, `no such path: ${pathname.slice(0, 200)}\n`);
  }

  private announce(req: IncomingMessage, res: ServerResponse, query: string): void {
    let request: AnnounceRequest;
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
    const { address, forgotten } = this.tracker.announce(host, request.port, request);
    for (const gone of forgotten) this.forgetAnnounced(gone);
    // A private swarm admits this address to the wire (see incomingPolicies). By
    // address, not port; a `stopped` does not revoke it, since other peers may
    // share the address: it simply expires.
    if (this.options.token !== undefined) this.admission.admit([host]);
    const record = this.peerRecord(address);
    record.announced = this.tracker.has(address);
    const swarmdrop =
      isSwarmdropPeer(request.peerId) && listenPortOf(request.peerId) === request.port;
    if (swarmdrop) record.client = 'swarmdrop';
    let batch: readonly number[] | undefined;
    if (swarmdrop && request.event !== 'stopped') {
      const known = this.assigner.batchOf(address);
      batch = this.assigner.assign(address);
      record.batch = batch;
      if (!known)
        this.events.publish('batch-assigned', {
          peer: address,
          count: batch.length,
          chunks: formatRanges(batch),
        });
    }
    this.events.publish('announce', { peer: address, event: request.event, left: request.left });
    const self: SwarmPeer = {
      host: unmapIPv4(req.socket.localAddress ?? '127.0.0.1'),
      port: this.port,
    };
    // The owner itself first, so a stock client that only knows the .torrent finds it.
    const { peers, seeds, leechers } = this.tracker.peers(address, request.numwant - 1);
    const body = announceResponse({
      peers: request.numwant > 0 ? [self, ...peers] : [],
      complete: 1 + seeds,
      incomplete: leechers,
      batch,
    });
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
    res.end(body);
    if (!record.announced) this.forgetIfUnused(record);
  }
}

/**
 * The owner writes `<dir>/summary.txt`, `<dir>/<name>.torrent` and
 * its own chunk and temp files under `<dir>/chunks/` (refusing to start when
 * anything else is there). Refuse a source file that is one of those, so the file being
 * distributed can never be overwritten or deleted.
 */
async function checkDirKeepsSource(file: string, dir: string): Promise<void> {
  const source = await realpath(file);
  let work = resolve(dir);
  try {
    work = await realpath(work);
  } catch {
    return; // the directory does not exist yet, so the file cannot be in it
  }
  const torrent = torrentFileName(basename(file));
  const owned = [SUMMARY_FILE, `${SUMMARY_FILE}.tmp`, torrent, `${torrent}.tmp`];
  const inChunks = relative(join(work, CHUNK_DIR), source);
  if (
    (dirname(source) === work && owned.includes(basename(source))) ||
    (!inChunks.startsWith('..') && inChunks !== '' && !isAbsolute(inChunks))
  ) {
    throw new OptionError(
      '--dir',
      `${dir} would overwrite the file being distributed (${file}); choose another --dir`,
    );
  }
}

async function checkSourceFile(file: string, chunkSize: number): Promise<void> {
  let info: Stats;
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
  // Peers refuse a metainfo past MAX_PIECE_COUNT; say so before a long split, with the fix.
  if (Math.ceil(info.size / chunkSize) > MAX_PIECE_COUNT) {
    throw new OptionError(
      '--chunk-size',
      `${file} is ${info.size} bytes: ${Math.ceil(info.size / chunkSize)} chunks of ${chunkSize} bytes, more than ${MAX_PIECE_COUNT}; use --chunk-size ${Math.ceil(info.size / MAX_PIECE_COUNT)} or more`,
    );
  }
  // Peers refuse such a name (it becomes their file's name), so refuse it here, before the split.
  if (UNSAFE_CHARS.test(basename(file))) {
    throw new OptionError(
      'file',
      `"${escapeUnsafe(basename(file))}" contains control or bidi characters, which peers refuse in a file name; rename it (or link it under another name)`,
    );
  }
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

/** A browser asking for a page (its Accept names text/html). */
function acceptsHtml(req: IncomingMessage): boolean {
  return /\btext\/html\b/.test(req.headers.accept ?? '');
}

function validHost(header: string | undefined): string | undefined {
  return header && /^[A-Za-z0-9.\-:[\]]+$/.test(header) ? header : undefined;
}
