import {
  type Endpoint,
  formatEndpoint,
  isSwarmdropPeer,
  type Rng,
  requestBytesFor,
  TypedEmitter,
} from '@swarmdrop/protocol';
import {
  type BufferPool,
  type ChunkStore,
  openConnection,
  type WireLimits,
} from '@swarmdrop/protocol/node';
import {
  formatRanges,
  idListAs,
  type Publish,
  publishClosed,
  publishConnected,
  publishTraffic,
} from '@swarmdrop/service';
import type { Timer, TimerClock } from '../clock.js';
import type { WireConnection } from '../dialers.js';
import { ConnectionRegistry } from '../engine/connection-registry.js';
import { MinRatePolicy } from '../engine/min-rate-policy.js';
import { SwarmPicker } from '../engine/picker.js';
import { SwarmScheduler } from '../engine/scheduler.js';
import type { Session } from '../session.js';
import { FallbackPolicy } from './fallback-policy.js';
import type { LinkHost, LinkRole, RingConnection, RingRole } from './link.js';
import { NeighbourLink } from './neighbour-link.js';
import { OwnerLink } from './owner-link.js';

/** Chunks that fail SHA-1 from one source before that connection is cut. */
export const MAX_HASH_FAILURES = 3;
/** How often stalled links are cut and the fallback is considered. */
const RING_TICK_MS = 250;

export interface RingSessionOptions {
  readonly owner: Endpoint;
  readonly neighbours: readonly Endpoint[];
  /** Fetch from the owner what the neighbours have not supplied for this long; also the stall cut. */
  readonly fallbackAfterMs: number;
  /** Bytes asked ahead per link. */
  readonly pipelineBytes: number;
  /** The chunks the owner assigned us, fetched over the owner link. */
  readonly batch: readonly number[];
}

/** The injected parts: everything the session uses but does not own. */
export interface RingSessionComponents {
  readonly store: ChunkStore;
  readonly peerId: Buffer;
  readonly clock: TimerClock;
  readonly signal: AbortSignal;
  readonly publish: Publish;
  /** Dials under the peer's transport and encryption policy. */
  readonly connect: (host: string, port: number, signal: AbortSignal) => Promise<WireConnection>;
  readonly buffers?: BufferPool;
  /** The process's rate limits, shared by every connection (--upload-limit, --download-limit). */
  readonly limits?: WireLimits;
  readonly rng?: Rng;
  /** The torrent's connection registry (RingSession.createRegistry(); a new one by default). */
  readonly registry?: ConnectionRegistry<RingConnection>;
}

/** What the session tells the level above (the peer). */
export type RingSessionEvents = {
  /** An upload neighbour came, went, or gained a chunk: exit-when-done re-checks. */
  remoteProgress: () => void;
  /** Storing failed for another reason than the hash (disk): the peer must stop. */
  error: (error: Error) => void;
};

/** A download link as the scheduler's events name it; kept past its connection while a chunk it sent is stored. */
interface DownloadLink {
  readonly ring: RingConnection;
  readonly label: string;
  readonly role: LinkRole;
  readonly requestBytes: number;
}

/**
 * Ring (neighbour) mode: the seed's fixed links on the same parts as swarm
 * mode. Every connection is a Connection and a BlockServer that serves
 * whoever is interested (no choker); the download links (NeighbourLink,
 * OwnerLink for the batch, OwnerLink for a fallback) share one
 * SwarmScheduler (picker, endgame, min-rate), each link's policy given to it
 * as `allowed`. Stalled links are cut and the fallback is started on the
 * injected clock. It publishes the peer's domain events; nothing here
 * imports the peer.
 */
export class RingSession extends TypedEmitter<RingSessionEvents> implements LinkHost, Session {
  readonly mode = 'ring';
  readonly store: ChunkStore;
  readonly clock: TimerClock;
  readonly signal: AbortSignal;
  readonly publish: Publish;
  private readonly components: RingSessionComponents;
  private readonly options: RingSessionOptions;
  private readonly ownerLabel: string;
  private readonly scheduler: SwarmScheduler;
  private readonly fallback: FallbackPolicy;
  /** Every ring connection, by id: upload neighbours and download links. */
  private readonly registry: ConnectionRegistry<RingConnection>;
  private readonly links = new Map<string, DownloadLink>();
  private nextId = 0;
  /** Chunks an owner link (batch or fallback) is fetching: the neighbours leave them alone. */
  private readonly reserved = new Set<number>();
  /** Chunks each source (by label) sent bad: never asked of it again. */
  private readonly blamed = new Map<string, Set<number>>();
  private readonly hashFailures = new Map<string, number>();
  /**
   * Peer ids (hex) of stock clients that are our download neighbours. aria2c
   * keeps one connection per peer id: when it dialled us first (it dials
   * everyone the tracker lists), it closed our own neighbour connection right
   * after its handshake ("Same Peer ID has been already seen"), so we never
   * downloaded from it and fell back to the owner. We then close its incoming
   * connection and refuse the next ones, and our redial carries both ways.
   */
  private readonly stockNeighbourIds = new Set<string>();
  /** The owner link running now (the batch's, or a fallback's), if any. */
  private ownerLink: OwnerLink | undefined;
  private timer: Timer | undefined;
  private closed = false;

  constructor(components: RingSessionComponents, options: RingSessionOptions) {
    super();
    this.components = components;
    this.options = options;
    this.store = components.store;
    this.clock = components.clock;
    this.signal = components.signal;
    this.publish = components.publish;
    this.registry = components.registry ?? RingSession.createRegistry();
    this.ownerLabel = formatEndpoint(options.owner.host ?? '127.0.0.1', options.owner.port);
    this.fallback = new FallbackPolicy(options.fallbackAfterMs, components.clock);
    const store = components.store;
    const picker = new SwarmPicker({
      geometry: store.metainfo.geometry,
      held: store.held,
      rng: components.rng ?? Math.random,
    });
    this.scheduler = new SwarmScheduler(
      {
        picker,
        policy: new MinRatePolicy({ clock: components.clock }),
        sink: store,
        clock: components.clock,
        ...(components.buffers ? { buffers: components.buffers } : {}),
      },
      // Served from the file, re-checked as read: rot on disk is caught before it is passed on.
      // A ring link is the only one its remote serves us on, never shared by a choker:
      // it keeps the whole pipeline asked ahead, as the ring did before it ran on the
      // scheduler (a pipeline that follows a fresh link's rate starts at 256 KiB and
      // halved the loopback ring of five in `pnpm bench`).
      {
        pipelineBytes: options.pipelineBytes,
        minPipelineBytes: options.pipelineBytes,
        cacheStored: false,
      },
    );
    this.scheduler.on('requested', (index, id) => {
      const link = this.links.get(id);
      if (!link) return;
      const size = store.metainfo.geometry.pieceSize(index);
      this.publish('request-sent', {
        chunk: index,
        to: link.label,
        blocks: Math.ceil(size / link.requestBytes),
      });
    });
    this.scheduler.on('pieceStored', (index, id) => this.onStored(index, id));
    this.scheduler.on('pieceRejected', (index, ids) => this.onRejected(index, ids));
    this.scheduler.on('rejectsMissing', (id, count) => {
      const link = this.links.get(id);
      if (link) this.publish('rejects-missing', { from: link.label, count });
    });
    this.scheduler.on('error', (err) => this.emit('error', err));
    // A throwing subscriber is a bug above us: it becomes an `error` (the peer stops), unless it was one.
    this.onListenerError = (error, event) =>
      queueMicrotask(() => {
        if (event === 'error') throw error;
        this.emit('error', error as Error);
      });
  }

  /**
   * The registry a ring keeps its connections in: no cap, upload neighbours
   * count as peers seen, and exit-when-done waits for them to hold everything.
   */
  static createRegistry(): ConnectionRegistry<RingConnection> {
    return new ConnectionRegistry<RingConnection>({
      countsAsPeer: (r) => r.role === 'in',
      awaitsServed: (r) => r.role === 'in',
    });
  }

  /** Upload neighbours that completed a handshake (exit-when-done's linger). */
  get peersSeen(): number {
    return this.registry.peersSeen;
  }

  /** Fetches the batch from the owner, dials the neighbours, and starts the stall and fallback checks. */
  start(): void {
    const wanted = this.options.batch.filter((i) => !this.store.has(i));
    if (wanted.length > 0) void this.runOwnerLink(new Set(wanted), 'owner');
    for (const neighbour of this.options.neighbours) {
      const link = new NeighbourLink(
        this,
        neighbour,
        this.fallback.neighbour(),
        this.reserved,
        (label, index) => this.blamed.get(label)?.has(index) ?? false,
      );
      void link.run();
    }
    this.timer = this.clock.setInterval(() => this.tick(), RING_TICK_MS);
  }

  /** An admitted incoming connection: an upload neighbour, served only. */
  accept(connection: WireConnection): void {
    if (this.closed) connection.socket.destroy();
    else this.openConnection(connection, 'in', undefined);
  }

  /** Every upload neighbour holds every chunk (or none is connected). */
  allServed(): boolean {
    return this.registry.allServed();
  }

  /** The store dropped chunks it found bad (a merge's re-check): they are wanted again. */
  storeChanged(): void {
    for (let index = 0; index < this.store.pieceCount; index++)
      if (!this.store.has(index)) this.scheduler.pieceLost(index);
  }

  status(): Record<string, unknown>[] {
    return this.registry.values().map((r) => ({
      peer: r.connection.label,
      role: r.role,
      holds: r.connection.remoteHas.count(),
      chunksSent: r.server.chunksSent,
      chunksReceived: r.received,
    }));
  }

  /** Stops asking and closes every connection (`reason` goes in their `disconnected` lines). */
  close(reason = 'peer stopping'): void {
    if (this.closed) return;
    this.closed = true;
    this.timer?.cancel();
    this.scheduler.close();
    this.registry.closeAll(reason);
  }

  /** Resolves once every chunk handed to the store has been stored or rejected. */
  settled(): Promise<void> {
    return this.scheduler.settled();
  }

  /** LinkHost: dials under the peer's policy. */
  connect(host: string, port: number, signal: AbortSignal): Promise<WireConnection> {
    return this.components.connect(host, port, signal);
  }

  /** LinkHost: see LinkHost.yieldToNeighbour. */
  yieldToNeighbour(link: RingConnection): void {
    const remote = link.connection.wire.remoteHandshake;
    if (!remote || isSwarmdropPeer(remote.peerId)) return;
    this.stockNeighbourIds.add(Buffer.from(remote.peerId).toString('hex'));
    for (const r of this.registry.withPeerId(remote.peerId)) {
      if (r.role === 'in')
        r.connection.close('our download neighbour: we trade over our own connection to it');
    }
  }

  /** LinkHost: a download link on a dialled connection. */
  open(
    connection: WireConnection,
    role: LinkRole,
    allowed: (index: number, label: string) => boolean,
  ): RingConnection {
    const ring: RingConnection = this.openConnection(connection, role, (index) =>
      allowed(index, ring.connection.label),
    );
    return ring;
  }

  /**
   * One ring connection: a Connection (the remote's bitfield, flags and
   * requests) and a BlockServer that serves whoever is interested. With
   * `allowed`, it is also a download link of the scheduler.
   */
  private openConnection(
    connection: WireConnection,
    role: RingRole,
    allowed: ((index: number) => boolean) | undefined,
  ): RingConnection {
    const store = this.store;
    const publish = this.publish;
    const {
      wire,
      connection: conn,
      server,
      metadata,
    } = openConnection({
      opened: connection,
      store,
      peerId: this.components.peerId,
      clock: this.clock,
      limits: this.components.limits,
    });
    const ring: RingConnection = {
      id: `${role}#${++this.nextId}`,
      role,
      openedAt: this.clock.now(),
      connection: conn,
      server,
      bitfieldSent: false,
      received: 0,
    };
    this.registry.add(ring.id, ring);
    conn.on('ready', (handshake) => {
      if (
        role === 'in' &&
        this.stockNeighbourIds.has(Buffer.from(handshake.peerId).toString('hex'))
      ) {
        conn.close('our download neighbour: we trade over our own connection to it');
        return;
      }
      const label = conn.label;
      // Only a real handshake counts as an upload neighbour (not a port probe).
      this.registry.markSeen(ring);
      publishConnected(conn, publish, { role, dir: role === 'in' ? 'in' : 'out' });
      // BEP 3 lets a process that holds nothing skip the bitfield; we always send it so the log shows it.
      const form = conn.sendBitfield(store.held);
      ring.bitfieldSent = true;
      publish('idlist-sent', {
        to: label,
        chunks: store.held.count(),
        of: store.held.size,
        ...idListAs(form),
      });
      if (allowed && role !== 'in' && !this.closed) {
        const requestBytes = requestBytesFor(
          wire.remoteHandshake?.peerId,
          store.metainfo.pieceLength,
        );
        this.links.set(ring.id, { ring, label, role, requestBytes });
        this.scheduler.add(ring.id, conn, { requestBytes, allowed });
      }
    });
    publishTraffic(conn, server, publish, metadata);
    // The ring serves whoever asks: no choking rounds.
    conn.on('interested', () => conn.unchoke());
    if (role === 'in') {
      conn.on('bitfield', () => this.emit('remoteProgress'));
      conn.on('have', () => this.emit('remoteProgress'));
    }
    server.on('chunkCorrupt', (index) => {
      publish('chunk-corrupt', { chunk: index, reason: 'stored file failed SHA-1; dropped' });
      // Serving found one of our chunk files rotten and dropped it: it is wanted again.
      this.scheduler.pieceLost(index);
    });
    conn.on('closed', (close) => {
      this.registry.remove(ring.id, ring);
      if (wire.remoteHandshake || close.error) publishClosed(conn, publish, close, { role });
      if (role === 'in') this.emit('remoteProgress');
    });
    return ring;
  }

  private onStored(index: number, id: string): void {
    const link = this.links.get(id);
    const role = link?.role ?? 'neighbour';
    if (link) link.ring.received++;
    if (role === 'neighbour') this.fallback.restart();
    this.publish('chunk-received', {
      chunk: index,
      from: link?.label ?? id,
      bytes: this.store.metainfo.geometry.pieceSize(index),
      via: role,
    });
    for (const r of this.registry.values()) {
      if (!r.bitfieldSent || r.connection.state !== 'live') continue;
      r.connection.sendHave(index);
      this.publish('have-sent', { chunk: index, to: r.connection.label });
    }
  }

  /** A chunk failed SHA-1: every link that sent a block of it is blamed for it. */
  private onRejected(index: number, ids: readonly string[]): void {
    const links = ids.flatMap((id) => this.links.get(id) ?? []);
    this.publish('chunk-rejected', {
      chunk: index,
      from: links.map((l) => l.label).join(','),
      reason: 'sha1-mismatch',
    });
    for (const link of links) {
      let set = this.blamed.get(link.label);
      if (!set) {
        set = new Set();
        this.blamed.set(link.label, set);
      }
      set.add(index);
      const failures = (this.hashFailures.get(link.label) ?? 0) + 1;
      this.hashFailures.set(link.label, failures);
      if (failures >= MAX_HASH_FAILURES) {
        link.ring.connection.close(`sent ${failures} chunks that failed SHA-1`);
      }
    }
    // The chunk is free again; another link (the owner fallback) may be waiting for it.
    this.scheduler.refresh();
  }

  /** Runs one owner link; while it runs its chunks are reserved for it. */
  private async runOwnerLink(wanted: Set<number>, role: 'owner' | 'fallback'): Promise<void> {
    const link = new OwnerLink(this, this.options.owner, role, wanted);
    this.ownerLink = link;
    for (const i of wanted) this.reserved.add(i);
    try {
      await link.run();
    } finally {
      for (const i of wanted) this.reserved.delete(i);
      if (this.ownerLink === link) this.ownerLink = undefined;
      // The neighbours get a full period to supply whatever is still missing.
      this.fallback.restart();
      this.scheduler.refresh();
    }
  }

  private tick(): void {
    if (this.closed || this.store.isComplete() || this.signal.aborted) return;
    this.scheduler.expireChoked();
    // Any link (neighbour or owner) with requests out and no block back for the
    // fallback period is cut, freeing its chunks; an owner link reconnects.
    for (const r of this.registry.values()) {
      if (!this.links.has(r.id)) continue;
      const stalledMs = this.fallback.stalledMs({
        inFlight: r.connection.outgoing.size,
        lastBlockAt: r.connection.lastPieceAtMs ?? 0,
        openedAt: r.openedAt,
      });
      if (stalledMs !== undefined) r.connection.close(`no block in ${stalledMs} ms`);
    }
    if (this.ownerLink || !this.fallback.fallbackDue()) return;
    const idleMs = this.fallback.idleMs();
    // Whatever the store dropped is wanted again, whoever found it (the picker keeps its own "held").
    this.storeChanged();
    const neighbours = this.registry.values().filter((r) => r.role === 'neighbour');
    const inFlight = this.scheduler.inFlight();
    const wanted = this.store.held.missing().filter((i) => !inFlight.has(i));
    if (wanted.length === 0) return;
    const reason =
      neighbours.length === 0
        ? 'neighbour not connected'
        : neighbours.some((n) => this.scheduler.wants(n.id))
          ? `no chunk from neighbour in ${idleMs} ms`
          : 'neighbour has none of the missing chunks';
    this.publish('fallback', {
      from: this.ownerLabel,
      count: wanted.length,
      chunks: formatRanges(wanted),
      reason,
    });
    void this.runOwnerLink(new Set(wanted), 'fallback');
  }
}
