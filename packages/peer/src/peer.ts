import { resolve } from 'node:path';
import { type Endpoint, formatEndpoint, type Metainfo, makePeerId } from '@swarmdrop/protocol';
import { DEFAULT_HANDSHAKE_TIMEOUT_MS } from '@swarmdrop/protocol/node';
import {
  type AcceptIncomingOptions,
  DashboardModel,
  type DomainEvents,
  formatRanges,
  type HostedService,
  type IncomingConnection,
  type Logger,
  requestQuery,
  ServiceHost,
  type ServiceMetrics,
  sendBody,
  sendUnauthorized,
} from '@swarmdrop/service';
import { Bootstrap, type TrackerRequest } from './bootstrap.js';
import { systemClock, type TimerClock } from './clock.js';
import { DashboardReporter } from './dashboard-reporter.js';
import { connectWire, type WireConnection } from './dialers.js';
import { answerMemberAnnounce } from './member-tracker.js';
import { type PeerOptions, type ResolvedPeerOptions, resolvePeerOptions } from './options.js';
import { type AnnounceResult, announce, postReport } from './owner-client.js';
import { PeerAdmission } from './private-swarm.js';
import type { Torrent } from './torrent.js';

export { isOwnFileName } from './bootstrap.js';
export { DASHBOARD_REPORT_MS } from './dashboard-reporter.js';
export {
  DEFAULT_FALLBACK_AFTER_MS,
  DEFAULT_LINGER_MS,
  DEFAULT_OWNER_TIMEOUT_MS,
} from './options.js';
export { MAX_HASH_FAILURES } from './ring/ring-session.js';

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
  readonly clock?: TimerClock;
}

/**
 * A swarmdrop peer: bootstraps from the owner, downloads its initial batch,
 * then uploads to whoever connects on its port while downloading from its
 * download neighbour; falls back to the owner for what the neighbour cannot
 * supply; merges the file when every chunk is held. Its port, log, metrics,
 * dashboard and close order are the service shell's (ServiceHost); the
 * download itself is the Torrent that bootstrap builds (bootstrap.ts).
 */
export class Peer implements HostedService {
  /** What the peer runs with: checked, every default filled in. */
  readonly options: ResolvedPeerOptions;
  readonly port: number;
  /** Resolves with an exit status: 0 once done (with exitWhenDone), 1 on a fatal error. */
  readonly finished: Promise<number>;

  /**
   * Every state change, published once (docs/log-events.md); the console
   * log, metrics and dashboard subscribe. Nothing reacts to a printed line.
   */
  readonly events: DomainEvents;
  /** What `GET /metrics` serves: a subscriber to `events` (docs/metrics.md). */
  readonly metrics: ServiceMetrics;
  /** This peer's view of the swarm, for its own dashboard and its reports to the owner's. */
  readonly dashboard: DashboardModel;
  /** Why the peer failed, when `finished` resolved with 1. */
  fatalMessage: string | undefined;
  private readonly host: ServiceHost;
  private readonly peerId: Buffer;
  private readonly abort = new AbortController();
  private readonly clock: TimerClock;
  /** The download, whole, once bootstrap has built it; nothing of it exists before. */
  #torrent: Torrent | undefined;
  /** Bootstrap under way (or done): close() waits for it, so a torrent built late is closed too. */
  #booting: Promise<Torrent> | undefined;
  /** With a token: hosts the owner's tracker listed (they announced with it). */
  private readonly admission: PeerAdmission;
  private resolveFinished!: (code: number) => void;
  /** Our reports to the owner's dashboard. */
  private readonly reporter: DashboardReporter;

  private constructor(options: ResolvedPeerOptions, host: ServiceHost, clock: TimerClock) {
    this.options = options;
    this.host = host;
    this.events = host.events;
    this.metrics = host.metrics;
    this.clock = clock;
    this.port = host.port;
    this.admission = new PeerAdmission({ clock, reannounce: () => this.#torrent?.announce() });
    // A swarm-mode id tells the owner to seed us piece by piece (its super-seeding).
    this.peerId = makePeerId(host.port, options.swarm ? 'swarm' : 'other');
    this.finished = new Promise((resolve) => {
      this.resolveFinished = resolve;
    });
    this.dashboard = new DashboardModel({
      clock,
      selfId: host.selfId(undefined),
      selfKind: 'swarmdrop',
    });
    this.dashboard.attach(this.events);
    host.serveDashboard(this.dashboard, `peer ${host.selfId(undefined)}`);
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
    const clock = components.clock ?? systemClock;
    let peer: Peer | undefined;
    const host = await ServiceHost.open(
      {
        ...options,
        role: 'peer',
        host: options.listen.host,
        port: options.listen.port,
        startingText: 'the peer is starting; try again shortly\n',
      },
      { logger: components.logger, events: components.events, clock },
      // Subscribed from the start, so refusals while bootstrapping count too.
      { chunksHeld: () => peer?.torrent?.store.held.count() ?? 0 },
    );
    peer = new Peer(options, host, clock);
    // BitTorrent over TCP and µTP alike, once the torrent is whole (refused before, and while stopping).
    host.attach(peer);
    const created = peer;
    try {
      await host.listenUtp();
    } catch (err) {
      await created.close();
      throw err;
    }
    if (components.signal?.aborted) void created.close();
    components.signal?.addEventListener('abort', () => void created.close(), { once: true });
    try {
      await created.bootstrap();
    } catch (err) {
      await created.close();
      throw err;
    }
    return created;
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
    return this.host.close({
      stop: () => {
        this.abort.abort();
        this.reporter.stop();
        this.#torrent?.stop();
      },
      release: async () => {
        // Bootstrap stops on the abort; a torrent it still finished is closed like one that ran.
        const torrent = this.#torrent ?? (await this.#booting?.catch(() => undefined));
        // A chunk being written, or a merge, finishes before the store closes.
        await torrent?.close();
      },
    });
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

  /** The peer's own routes, once it has the torrent: its copy of the metainfo, and its member tracker (`/announce`, member-tracker.ts). */
  route(
    path: string,
    req: Parameters<HostedService['route']>[1],
    res: Parameters<HostedService['route']>[2],
    authorized: boolean,
  ): boolean {
    const torrent = this.#torrent;
    if (!torrent || (path !== '/metainfo.torrent' && path !== '/announce')) return false;
    if (!authorized) sendUnauthorized(res);
    else if (path === '/metainfo.torrent')
      sendBody(req, res, 'application/x-bittorrent', torrent.torrentBytes);
    else {
      answerMemberAnnounce(
        {
          infoHash: torrent.metainfo.infoHash,
          port: this.port,
          seed: torrent.store.isComplete(),
          members: () => torrent.members(),
        },
        req,
        res,
        requestQuery(req.url),
      );
      // Admits nobody: in a private swarm only the owner's tracker does (private-swarm.ts).
    }
    return true;
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
        limits: this.host.limits,
        announce: (request) => this.announce(request),
        connect: (host, port, signal, infoHash) => this.connect(host, port, signal, infoHash),
      },
    );
    this.events.publish('listening', {
      addr: formatEndpoint(this.host.address.address, this.port),
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
      // Without a tracker <owner> is another member of the swarm, which has no dashboard for us.
      if (!this.options.trackerless) this.reporter.start();
    });
    this.#booting = boot.run();
    const torrent = await this.#booting;
    this.#torrent = torrent;
    torrent.on('done', () => this.resolveFinished(0));
    torrent.on('error', (err) => this.fatal(err));
    if (!this.abort.signal.aborted) torrent.start();
  }

  /** One announce to the owner's tracker as this peer; notes the hosts it lists (admission). */
  private async announce(request: TrackerRequest): Promise<AnnounceResult> {
    // No tracker to ask (a magnet link without one): peers come from the link and from peers.
    if (this.options.trackerless) return { batch: undefined, peers: 0, hosts: [], peerList: [] };
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
    if (this.options.token !== undefined) this.admission.admit(result.hosts);
    return result;
  }

  /**
   * How an incoming BitTorrent connection is taken (acceptIncoming, as the
   * owner does): our policies and a private swarm's admission. Until the
   * torrent is whole there is nothing to trade, and once stopping nothing
   * more is taken: undefined closes the connection at once.
   */
  incomingPolicies(): AcceptIncomingOptions | undefined {
    const torrent = this.#torrent;
    if (!torrent || this.abort.signal.aborted) return undefined;
    return {
      infoHash: torrent.metainfo.infoHash,
      encryption: this.options.encryption,
      transport: this.options.transport,
      timeoutMs: DEFAULT_HANDSHAKE_TIMEOUT_MS,
      // In a private swarm only hosts that announced with the token may trade.
      admit: (s) => (this.options.token === undefined ? undefined : this.admission.check(s)),
    };
  }

  /** An accepted connection: an upload link, or in swarm mode a swarm link (unless we stopped meanwhile). */
  acceptWire(connection: IncomingConnection): void {
    const torrent = this.#torrent;
    if (!torrent || this.abort.signal.aborted) connection.socket.destroy();
    else torrent.accept(connection);
  }

  /** A refused incoming connection; one cut short by our own stopping is no refusal. */
  refused(from: string, reason: string): void {
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
      utp: this.host.utp,
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
}
