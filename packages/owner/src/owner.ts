import { mkdir, rename, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import {
  buildMetainfo,
  formatEndpoint,
  formatMagnet,
  type Metainfo,
  makePeerId,
  type TimerClock,
  torrentFileName,
} from '@swarmdrop/protocol';
import {
  ChunkStore,
  checkChunkDir,
  dateClock,
  splitFile,
  systemClock,
} from '@swarmdrop/protocol/node';
import {
  type AcceptIncomingOptions,
  Admission,
  DashboardModel,
  type DomainEvents,
  formatLink,
  type HostedService,
  type Logger,
  ServiceHost,
  type ServiceMetrics,
} from '@swarmdrop/service';
import { type OwnerOptions, type ResolvedOwnerOptions, resolveOwnerOptions } from './options.js';
import { PeerTable } from './peers.js';
import { checkDirKeepsSource, checkSourceFile } from './preflight.js';
import { ownerRoutes } from './routes.js';
import { Serving } from './serving.js';
import { SuperSeeding } from './super-seeding.js';
import { ANNOUNCE_EXPIRY_MS } from './tracker.js';

export { STATUS_MAX_PEERS } from './peers.js';
export { ANNOUNCE_EXPIRY_MS } from './tracker.js';

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

/** What the owner has once the file is split: built whole, before it takes a connection. */
interface Prepared {
  readonly options: ResolvedOwnerOptions;
  readonly host: ServiceHost;
  readonly metainfo: Metainfo;
  readonly torrent: Buffer;
  readonly torrentPath: string;
  readonly store: ChunkStore;
  /** Chunk files the split wrote, and reused from an earlier run. */
  readonly split: { readonly written: number; readonly reused: number };
}

/**
 * The file owner: splits the file into chunk files, writes the `.torrent`,
 * and serves any number of peers over one port that speaks BitTorrent and
 * HTTP (metainfo, tracker announce, JSON status). Its port, log, metrics,
 * dashboard and close order are the service shell's (ServiceHost); what is
 * the owner's own is the split, the peer table and tracker (peers.ts,
 * tracker.ts), serving (serving.ts) and its routes (routes.ts).
 */
export class Owner implements HostedService {
  /** What it runs with: checked, every default filled in (options.ts). */
  readonly options: ResolvedOwnerOptions;
  readonly metainfo: Metainfo;
  readonly torrentPath: string;
  readonly torrent: Buffer;
  readonly port: number;
  /**
   * Every state change, published once (docs/log-events.md); the console
   * log, metrics and dashboard subscribe. Nothing reacts to a printed line.
   */
  readonly events: DomainEvents;
  /** What `GET /metrics` serves: a subscriber to `events` (docs/metrics.md). */
  readonly metrics: ServiceMetrics;
  /** The swarm as the dashboard shows it: a subscriber to our events and the peers' reports. */
  readonly dashboard: DashboardModel;
  private readonly host: ServiceHost;
  private readonly store: ChunkStore;
  private readonly table: PeerTable;
  private readonly serving: Serving;
  /** With a token: the addresses that announced with it recently. */
  private readonly admission: Admission | undefined;
  /** A time on the clock as a date, for `lastSeen` in /status. */
  private readonly date: (atMs?: number) => Date;
  private bytesServed = 0;
  private chunksServed = 0;
  /** The owner's own HTTP routes (routes.ts), tried before the shell's. */
  readonly route: HostedService['route'];

  private constructor(init: Prepared) {
    const { options, host, metainfo, store } = init;
    this.options = options;
    this.metainfo = metainfo;
    this.torrent = init.torrent;
    this.torrentPath = init.torrentPath;
    this.host = host;
    this.store = store;
    this.events = host.events;
    this.metrics = host.metrics;
    this.port = host.port;
    this.date = dateClock(host.clock);
    this.table = new PeerTable({
      clock: host.clock,
      pieceCount: metainfo.geometry.pieceCount,
      expectedPeers: options.expectedPeers,
      trackerMaxPeers: options.trackerMaxPeers,
      trackerMaxPerAddress: options.trackerMaxPerAddress,
    });
    this.admission =
      options.token === undefined
        ? undefined
        : new Admission({ clock: host.clock, expiryMs: ANNOUNCE_EXPIRY_MS });
    this.serving = new Serving({
      store,
      file: options.file,
      peerId: makePeerId(host.port),
      clock: host.clock,
      limits: host.limits,
      handshakeTimeoutMs: options.handshakeTimeoutMs,
      publish: this.events.publish,
      table: this.table,
      seeding: new SuperSeeding(store, this.events.publish, { clock: host.clock }),
    });
    // What was served, to whom: counted from the chunk-sent events.
    this.events.on('chunk-sent', ({ to, bytes }) => {
      this.chunksServed++;
      this.bytesServed += bytes;
      const record = this.table.get(to);
      if (record) record.bytesServed += bytes;
    });
    this.route = ownerRoutes({
      metainfo,
      torrent: init.torrent,
      token: options.token,
      announce: {
        infoHash: metainfo.infoHash,
        port: host.port,
        table: this.table,
        admission: this.admission,
        publish: this.events.publish,
      },
      peersPage: (page) => {
        const answer = this.table.page(page, this.date);
        return page < answer.pages
          ? answer
          : `page: ${page} is out of range (0-${answer.pages - 1})`;
      },
    });
    this.dashboard = new DashboardModel({
      clock: host.clock,
      selfId: host.selfId(options.publicHost),
      selfKind: 'owner',
      swarm: () => this.table.summary(metainfo.geometry.pieceCount),
    });
    const file = {
      name: metainfo.name,
      size: metainfo.length,
      chunks: metainfo.geometry.pieceCount,
      chunkSize: metainfo.pieceLength,
    };
    this.dashboard.setFile(file, () => true, 'o');
    this.dashboard.attach(this.events);
    host.serveDashboard(this.dashboard, `owner of ${metainfo.name}`, (h, p) =>
      this.table.isAnnounced(h, p),
    );
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
    let owner: Owner | undefined;
    const host = await ServiceHost.open(
      {
        ...options,
        role: 'owner',
        portField: 'port',
        requestTimeoutMs: options.handshakeTimeoutMs,
        startingText: 'the owner is still preparing the file; try again shortly\n',
      },
      { logger: components.logger, events: components.events, clock },
      // Subscribed from the start, so refusals during the split count too.
      {
        chunksHeld: () => owner?.store.held.count() ?? 0,
        trackerPeers: () => owner?.table.trackerPeers() ?? 0,
      },
    );
    try {
      await host.listenUtp();
      const prepared = await Owner.prepare(options, host);
      owner = new Owner(prepared);
      host.attach(owner);
      owner.announceReady(prepared);
      return owner;
    } catch (err) {
      await host.abandon();
      throw err;
    }
  }

  /** Splits the file into `--dir`, writes the `.torrent` and opens the chunk store. */
  private static async prepare(
    options: ResolvedOwnerOptions,
    host: ServiceHost,
  ): Promise<Prepared> {
    const dir = options.dir;
    await mkdir(dir, { recursive: true });
    await checkChunkDir(dir);
    const split = await splitFile({ source: options.file, dir, chunkSize: options.chunkSize });
    const name = basename(options.file);
    const { bytes, metainfo } = buildMetainfo({
      name,
      length: split.length,
      pieceLength: options.chunkSize,
      pieceHashes: split.pieceHashes,
      sha256: split.sha256,
      // The token stays out of the file on disk; token holders get it in the URL over HTTP.
      announce: `http://${host.selfId(options.publicHost)}/announce`,
      private: options.token !== undefined,
    });
    const torrentPath = join(dir, torrentFileName(name));
    await writeFile(`${torrentPath}.tmp`, bytes);
    await rename(`${torrentPath}.tmp`, torrentPath);
    const { store } = await ChunkStore.open({ dir, metainfo, trustExisting: true });
    return { options, host, metainfo, torrent: bytes, torrentPath, store, split };
  }

  /** `listening` and `ready`: the lines a script waits for. */
  private announceReady(prepared: Prepared): void {
    const { options, host, metainfo, split } = prepared;
    const address = host.address;
    const publicHost = options.publicHost ?? options.host ?? '127.0.0.1';
    this.events.publish('listening', {
      addr: formatEndpoint(address.address, address.port),
      file: resolve(options.file),
      size: metainfo.length,
      chunks: metainfo.geometry.pieceCount,
      infohash: metainfo.infoHash.toString('hex'),
      dir: options.dir,
      written: split.written,
      reused: split.reused,
    });
    const self = formatEndpoint(publicHost, address.port);
    this.events.publish('ready', {
      torrent: prepared.torrentPath,
      url: `http://${self}/${encodeURIComponent(metainfo.name)}.torrent`,
      link: formatLink(publicHost, address.port, metainfo.infoHash),
      // For stock clients and for peers that may outlive us: the tracker while we run, our
      // address as a first peer to fetch the metadata from. A private swarm's tracker URL
      // carries no token here (the log is no place for it): token holders add their own.
      magnet: formatMagnet({
        infoHash: metainfo.infoHash,
        name: metainfo.name,
        trackers: [`http://${self}/announce`],
        peers: [{ host: publicHost, port: address.port }],
      }),
      private: metainfo.private,
    });
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
      connections: this.serving.connections.size,
      peers: this.table.size,
    };
  }

  /** A JSON-friendly snapshot of the swarm as the owner sees it. */
  status(): Record<string, unknown> {
    const peers = this.table.listed(this.date);
    return {
      role: 'owner',
      name: this.metainfo.name,
      size: this.metainfo.length,
      chunks: this.metainfo.geometry.pieceCount,
      chunkSize: this.metainfo.pieceLength,
      infoHash: this.metainfo.infoHash.toString('hex'),
      private: this.metainfo.private,
      port: this.port,
      connections: this.serving.connections.size,
      refused: { ...this.host.server.stats },
      handshakes: { ...this.host.handshakes.stats },
      bytesServed: this.bytesServed,
      chunksServed: this.chunksServed,
      peerCount: this.table.size,
      tracker: { peers: this.table.trackerPeers(), ...this.table.tracker.bounds },
      swarm: this.table.summary(this.metainfo.geometry.pieceCount),
      peers,
    };
  }

  /** Stops listening, closes every connection, and releases the store. */
  close(): Promise<void> {
    return this.host.close({
      stop: () => this.serving.closeAll('owner stopping'),
      release: () => this.store.close(),
    });
  }

  /** How incoming BitTorrent connections are taken: our policies, and a private swarm's admission. */
  incomingPolicies(): AcceptIncomingOptions {
    const admission = this.admission;
    return {
      infoHash: this.metainfo.infoHash,
      encryption: this.options.encryption,
      transport: this.options.transport,
      timeoutMs: this.options.handshakeTimeoutMs,
      // A private swarm: only addresses that announced with the token may trade.
      admit: (s) =>
        !admission || admission.isAdmitted(s.remoteAddress ?? '')
          ? undefined
          : 'not announced with the token',
    };
  }

  acceptWire(connection: Parameters<HostedService['acceptWire']>[0]): void {
    this.serving.accept(connection);
  }
}
