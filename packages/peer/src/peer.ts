import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import {
  type Endpoint,
  formatEndpoint,
  type Metainfo,
  makePeerId,
  PROCESS_REORDER_BUDGET,
} from '@swarmdrop/protocol';
import {
  createWireLimits,
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
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
  DashboardHttp,
  DashboardModel,
  DomainEvents,
  DualServer,
  formatRanges,
  httpRouter,
  type IncomingConnection,
  incomingHandlers,
  type Logger,
  type ServiceMetrics,
  sendBody,
  sendJson,
  sendMetrics,
  sendText,
  sendUnauthorized,
  subscribeLog,
} from '@swarmdrop/service';
import { connectWire, type WireConnection } from './backoff.js';
import { Bootstrap, type TrackerRequest } from './bootstrap.js';
import { type Clock, systemClock } from './clock.js';
import { DashboardReporter } from './dashboard-reporter.js';
import { type PeerOptions, type ResolvedPeerOptions, resolvePeerOptions } from './options.js';
import { type AnnounceResult, announce, postReport } from './owner-client.js';
import type { Torrent } from './torrent.js';

export { DASHBOARD_REPORT_MS } from './dashboard-reporter.js';
export {
  DEFAULT_FALLBACK_AFTER_MS,
  DEFAULT_LINGER_MS,
  DEFAULT_OWNER_TIMEOUT_MS,
} from './options.js';

/** At most one extra announce this often to admit a host we have not seen (the tracker's min interval). */
const ADMIT_REFRESH_MS = 5_000;

export { isOwnFileName } from './bootstrap.js';
export { MAX_HASH_FAILURES } from './links/ring-session.js';

/** Error codes that mean the disk (not the network or the input) failed us. */
const DISK_ERROR_CODES = new Set([
  'ENOSPC',
  'EDQUOT',
  'EACCES',
  'EPERM',
  'EROFS',
  'EIO',
  'EFBIG',
  'ENOTDIR',
  'EISDIR',
  'EMFILE',
  'ENFILE',
]);

export interface PeerComponents {
  /** The console log: one subscriber to `events` (created from logFormat by default). */
  readonly logger?: Logger;
  /**
   * Where the peer publishes its domain events (a new one by default); pass
   * one to subscribe before `start()` returns, to see `listening` and `metainfo`.
   */
  readonly events?: DomainEvents;
  /** Aborting it stops the peer, also while it is still starting (waiting for the owner). */
  readonly signal?: AbortSignal;
  /** Time for every timing decision (fallback, stall cut, re-announce, backoff); the system clock by default. */
  readonly clock?: Clock;
}

/**
 * A swarmdrop peer: bootstraps from the owner, downloads its initial batch,
 * then uploads to whoever connects on its port while downloading from its
 * download neighbour; falls back to the owner for what the neighbour cannot
 * supply; merges the file when every chunk is held.
 */
export class Peer {
  /** What the peer runs with: checked, every default filled in. */
  readonly options: ResolvedPeerOptions;
  readonly port: number;
  /** Resolves with an exit status: 0 once done (with exitWhenDone), 1 on a fatal error. */
  readonly finished: Promise<number>;

  /**
   * Every state change, published once (README, "Log events"); the console
   * log, metrics and dashboard subscribe. Nothing reacts to a printed line.
   */
  readonly events: DomainEvents;
  /** What `GET /metrics` serves: a subscriber to `events` (README, "Metrics"). */
  readonly metrics: ServiceMetrics;
  /** This peer's view of the swarm, for its own dashboard and its reports to the owner's. */
  readonly dashboard: DashboardModel;
  /** Why the peer failed, when `finished` resolved with 1. */
  fatalMessage: string | undefined;
  private readonly log: Logger;
  private readonly server: DualServer;
  private utp: UtpEndpoint | undefined;
  private readonly peerId: Buffer;
  private readonly abort = new AbortController();
  private readonly clock: Clock;
  /** One bucket per direction for every connection (--upload-limit, --download-limit). */
  private readonly limits: WireLimits;
  /** The download, whole, once bootstrap has built it; nothing of it exists before. */
  #torrent: Torrent | undefined;
  /** Bootstrap under way (or done): close() waits for it, so a torrent built late is closed too. */
  #booting: Promise<Torrent> | undefined;
  /** With a token: hosts the owner's tracker listed (they announced with it), for the tracker's expiry. */
  private readonly admitted: Admission;
  /** The tracker query under way to admit a new host, and when the last one ran. */
  private admitting: Promise<void> | undefined;
  private lastAdmitRefresh = 0;
  private resolveFinished!: (code: number) => void;
  private closing: Promise<void> | undefined;
  private readonly dashboardHttp: DashboardHttp;
  /** Our reports to the owner's dashboard. */
  private readonly reporter: DashboardReporter;

  private constructor(
    options: ResolvedPeerOptions,
    events: DomainEvents,
    metrics: ServiceMetrics,
    log: Logger,
    server: DualServer,
    port: number,
    clock: Clock,
  ) {
    this.options = options;
    this.events = events;
    this.metrics = metrics;
    this.log = log;
    this.clock = clock;
    this.admitted = new Admission({ clock });
    this.limits = createWireLimits({ ...options, clock });
    this.server = server;
    this.port = port;
    // A swarm-mode id tells the owner to seed us piece by piece (its super-seeding).
    this.peerId = makePeerId(port, options.swarm ? 'swarm' : 'other');
    this.finished = new Promise((resolve) => {
      this.resolveFinished = resolve;
    });
    this.dashboard = new DashboardModel({
      clock,
      selfId: formatEndpoint(options.listen.host, port),
      selfKind: 'swarmdrop',
    });
    this.dashboard.attach(this.events);
    this.dashboardHttp = new DashboardHttp({
      model: this.dashboard,
      clock,
      token: options.token,
      title: `peer ${formatEndpoint(options.listen.host, port)}`,
      holdOpen: (res) => server.holdOpen(res),
    });
    this.reporter = new DashboardReporter({
      clock,
      report: () => this.dashboard.report(this.port, this.mergedPath !== undefined),
      post: (report) => postReport(options.owner, report, this.abort.signal, options.token),
      accepted: () => this.dashboard.reportAccepted(),
      signal: this.abort.signal,
    });
  }

  /**
   * Checks `input` as the command line's flags are checked (options.ts: an
   * OptionError naming the field; only `owner` is required, the rest takes
   * the command line's defaults), then binds the port, fetches the
   * metainfo, opens the store and starts trading.
   */
  static async start(input: PeerOptions, components: PeerComponents = {}): Promise<Peer> {
    const options = resolvePeerOptions(input);
    const log =
      components.logger ??
      createLogger({ role: 'peer', port: options.listen.port, format: options.logFormat });
    const events = components.events ?? new DomainEvents();
    subscribeLog(events, log);
    let peer: Peer | undefined;
    // Subscribed from the start, so refusals while bootstrapping count too.
    const metrics = createMetrics(events, {
      chunksHeld: () => peer?.torrent?.store.held.count() ?? 0,
      utpMalformed: () => peer?.utp?.malformed ?? 0,
      utpReorderBytes: () => PROCESS_REORDER_BUDGET.held,
    });
    // BitTorrent over TCP and µTP alike, once the torrent is whole (closed before, and while stopping).
    const incoming = incomingHandlers({
      policies: () => peer?.incomingPolicies(),
      onAccepted: (connection) => peer?.acceptWire(connection),
      onRefused: (from, reason) => peer?.refused(from, reason),
    });
    const server = new DualServer({
      host: options.listen.host,
      port: options.listen.port,
      maxConnections: options.maxConnections,
      maxConnectionsPerAddress: options.maxConnectionsPerAddress,
      onWire: incoming.onWire,
      onEncrypted: incoming.onEncrypted,
      onHttp: (req, res) => {
        if (peer) peer.handleHttp(req, res);
        else sendText(res, 503, 'the peer is starting; try again shortly\n');
      },
      onRefused: (remote, reason) => events.publish('connection-refused', { from: remote, reason }),
    });
    const address: AddressInfo = await server.listen();
    log.setPort(address.port);
    peer = new Peer(
      options,
      events,
      metrics,
      log,
      server,
      address.port,
      components.clock ?? systemClock,
    );
    if (options.transport !== 'tcp') {
      const utp = new UtpEndpoint({
        host: options.listen.host,
        port: address.port,
        maxConnections: options.maxConnections,
        maxConnectionsPerAddress: options.maxConnectionsPerAddress,
        onConnection: incoming.onConnection,
        onRefused: (remote, reason) =>
          events.publish('connection-refused', { from: remote, reason }),
      });
      peer.utp = utp;
      try {
        await utp.listen();
      } catch (err) {
        await peer.close();
        throw err;
      }
    }
    const created = peer;
    if (components.signal?.aborted) void created.close();
    components.signal?.addEventListener('abort', () => void created.close(), { once: true });
    try {
      await peer.bootstrap();
    } catch (err) {
      await peer.close();
      throw err;
    }
    return peer;
  }

  /** The download, once bootstrap has built it whole. */
  get torrent(): Torrent | undefined {
    return this.#torrent;
  }

  /** The owner's metainfo, once the torrent exists. */
  get metainfo(): Metainfo | undefined {
    return this.#torrent?.metainfo;
  }

  /** Where the merged file went, once merged. */
  get mergedPath(): string | undefined {
    return this.#torrent?.mergedPath;
  }

  /** Stops every loop and connection and releases the store. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.events.publish('stopping', {});
      this.abort.abort();
      this.reporter.stop();
      this.dashboardHttp.close();
      this.#torrent?.stop();
      this.limits.upload?.close();
      this.limits.download?.close();
      await this.utp?.close();
      await this.server.close();
      // Bootstrap stops on the abort; a torrent it still finished is closed like one that ran.
      const torrent = this.#torrent ?? (await this.#booting?.catch(() => undefined));
      // A chunk being written, or a merge, finishes before the store closes.
      await torrent?.close();
      // Last: the log is written asynchronously, and the bin exits right after (the wait is bounded).
      await this.log.flush();
    })();
    return this.closing;
  }

  /** What /status shows a request without the token of a private swarm: no addresses, paths or name. */
  publicStatus(): Record<string, unknown> {
    const held = this.#torrent?.store.held;
    return {
      role: 'peer',
      private: true,
      chunks: held?.size ?? null,
      held: held?.count() ?? 0,
      complete: held?.isComplete() ?? false,
    };
  }

  status(): Record<string, unknown> {
    const torrent = this.#torrent;
    return {
      role: 'peer',
      port: this.port,
      ...(torrent?.status() ?? {
        name: null,
        chunks: null,
        held: 0,
        complete: false,
        merged: null,
        batch: formatRanges([]),
      }),
      // The chunk map by source (run-length, as the dashboard shows it) and bytes per link.
      ...this.dashboard.selfStatus(),
      ...(torrent?.sessionStatus() ?? { received: null, connections: [] }),
    };
  }

  private get ownerLabel(): string {
    return formatEndpoint(this.options.owner.host, this.options.owner.port);
  }

  /** Every download neighbour: the first and the chord's. */
  private get neighbours(): Endpoint[] {
    const first = this.options.neighbour;
    return [...(first ? [first] : []), ...this.options.moreNeighbours];
  }

  /** Runs bootstrap (bootstrap.ts) to a whole Torrent, then starts it. */
  private async bootstrap(): Promise<void> {
    const boot = new Bootstrap(
      { ...this.options, neighbours: this.neighbours },
      {
        events: this.events,
        clock: this.clock,
        signal: this.abort.signal,
        peerId: this.peerId,
        limits: this.limits,
        announce: (request) => this.announce(request),
        connect: (host, port, signal, infoHash) => this.connect(host, port, signal, infoHash),
      },
    );
    this.events.publish('listening', {
      addr: formatEndpoint(this.server.address.address, this.port),
      dir: resolve(this.options.dir),
      owner: this.ownerLabel,
      neighbour: this.neighbours.map((n) => formatEndpoint(n.host, n.port)).join(','),
      mode: boot.swarmMode ? 'swarm' : 'ring',
    });
    boot.on('storeOpened', (store) => {
      const { metainfo } = store;
      this.dashboard.setFile(
        {
          name: metainfo.name,
          size: metainfo.length,
          chunks: metainfo.geometry.pieceCount,
          chunkSize: metainfo.pieceLength,
        },
        (i) => store.has(i),
        'd',
      );
      this.reporter.start();
    });
    this.#booting = boot.run();
    const torrent = await this.#booting;
    this.#torrent = torrent;
    torrent.on('done', () => this.resolveFinished(0));
    torrent.on('error', (err) => this.fatal(err));
    if (!this.abort.signal.aborted) torrent.start();
  }

  /**
   * Why `socket`'s host may not trade with us, or undefined (always, in a
   * public swarm). In a private swarm only hosts that announced with the
   * token may; a host we have not seen yet may have just joined, so the
   * tracker is asked first.
   */
  private async admission(socket: WireSocket): Promise<string | undefined> {
    if (this.options.token === undefined) return undefined;
    const host = socket.remoteAddress ?? '';
    if (!this.admitted.isAdmitted(host)) await this.refreshAdmitted();
    return this.admitted.isAdmitted(host) ? undefined : 'not announced with the token';
  }

  /** Re-announces to learn newly admitted hosts; at most once per ADMIT_REFRESH_MS, shared by callers. */
  private refreshAdmitted(): Promise<void> {
    if (this.admitting) return this.admitting;
    const torrent = this.#torrent;
    if (this.clock.now() - this.lastAdmitRefresh < ADMIT_REFRESH_MS || !torrent)
      return Promise.resolve();
    this.lastAdmitRefresh = this.clock.now();
    this.admitting = torrent
      .announce()
      .then(
        () => {},
        () => {},
      )
      .finally(() => {
        this.admitting = undefined;
      });
    return this.admitting;
  }

  /** One announce to the owner's tracker as this peer; notes the hosts it lists (admission). */
  private async announce(request: TrackerRequest): Promise<AnnounceResult> {
    const result = await announce(
      this.options.owner,
      {
        infoHash: request.infoHash,
        peerId: this.peerId,
        port: this.port,
        left: request.left,
        ...(request.event ? { event: request.event } : {}),
        ...(request.numwant !== undefined ? { numwant: request.numwant } : {}),
      },
      this.abort.signal,
      this.options.token,
    );
    if (this.options.token !== undefined) this.admitted.admit(result.hosts);
    return result;
  }

  /**
   * How an incoming BitTorrent connection is taken (protocol/node's
   * acceptIncoming, as the owner does): our policies and a private swarm's
   * admission. Until the torrent is whole there is nothing to trade, and
   * once stopping nothing more is taken: undefined closes the connection at once.
   */
  private incomingPolicies(): AcceptIncomingOptions | undefined {
    const torrent = this.#torrent;
    if (!torrent || this.abort.signal.aborted) return undefined;
    return {
      infoHash: torrent.metainfo.infoHash,
      encryption: this.options.encryption,
      transport: this.options.transport,
      timeoutMs: DEFAULT_HANDSHAKE_TIMEOUT_MS,
      admit: (s) => this.admission(s),
    };
  }

  /** An accepted connection: an upload link, or in swarm mode a swarm link (unless we stopped meanwhile). */
  private acceptWire(connection: IncomingConnection): void {
    const torrent = this.#torrent;
    if (!torrent || this.abort.signal.aborted) connection.socket.destroy();
    else torrent.accept(connection);
  }

  /** A refused incoming connection; one cut short by our own stopping is no refusal. */
  private refused(from: string, reason: string): void {
    if (!this.abort.signal.aborted) this.events.publish('connection-refused', { from, reason });
  }

  private connect(
    host: string,
    port: number,
    signal: AbortSignal,
    infoHash: Buffer,
  ): Promise<WireConnection> {
    return connectWire(host, port, signal, {
      policy: this.options.encryption,
      transport: this.options.transport,
      utp: this.utp,
      infoHash,
    });
  }

  /**
   * Stops the peer after an error it cannot work around (a disk error while
   * storing or merging): logs one `error` line, stops fetching at once so
   * nothing more is written, and resolves `finished` with 1. The verified
   * chunk files stay for a restart; `close()` releases the rest.
   */
  private fatal(err: Error): void {
    if (this.fatalMessage !== undefined) return;
    const errno = err as NodeJS.ErrnoException;
    const disk = typeof errno.path === 'string' || DISK_ERROR_CODES.has(errno.code ?? '');
    const reason = disk
      ? `disk error: ${err.message}; the verified chunks in ${this.#torrent?.store.dir} are kept: restart with the same --dir to resume`
      : err.message;
    this.events.publish('error', { reason });
    this.fatalMessage = reason;
    this.abort.abort();
    this.#torrent?.stop('peer stopping after an error');
    this.resolveFinished(1);
  }

  /** `/status`, `/metrics`, `/metainfo.torrent` and the dashboard on the peer's port; a bad request costs that request only. */
  private readonly handleHttp = httpRouter(
    (path, req, res) => {
      const authorized = carriesToken(req, this.options.token);
      const torrentBytes = this.#torrent?.torrentBytes;
      if (this.dashboardHttp.handle(path, req, res)) return;
      if (path === '/status') sendJson(req, res, authorized ? this.status() : this.publicStatus());
      else if (path === '/metrics') {
        if (!authorized) sendUnauthorized(res);
        else
          sendMetrics(req, res, this.metrics.registry, (err) =>
            this.events.publish('error', {
              request: `${req.method} ${(req.url ?? '').slice(0, 200)}`,
              reason: err.message,
            }),
          );
      } else if (path === '/metainfo.torrent' && torrentBytes) {
        if (authorized) sendBody(req, res, 'application/x-bittorrent', torrentBytes);
        else sendUnauthorized(res);
      } else sendText(res, 404, `no such path: ${path.slice(0, 200)}\n`);
    },
    (err, req) =>
      this.events.publish('error', {
        request: `${req.method} ${(req.url ?? '').slice(0, 200)}`,
        reason: err.message,
      }),
  );
}
