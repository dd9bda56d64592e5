import {
  canonicalHost,
  type Endpoint,
  formatEndpoint,
  isSwarmdropPeer,
  listenPortOf,
  PEX_FLAG,
  type PexPeer,
  type RemoteExtensions,
  type Rng,
  requestBytesFor,
  sourceKey,
  TypedEmitter,
} from '@swarmdrop/protocol';
import {
  type BlockServer,
  type BufferPool,
  type ChunkStore,
  type Connection,
  type IdListForm,
  type MessageWire,
  type MetadataServer,
  openConnection,
  type PeerWire,
  type WireLimits,
} from '@swarmdrop/protocol/node';
import type { Timer, TimerClock } from '../clock.js';
import { connectTcp, type WireConnection } from '../dialers.js';
import { Choker } from '../engine/choker.js';
import { ConnectionRegistry, keepsDialledBySmallerId } from '../engine/connection-registry.js';
import { MinRatePolicy } from '../engine/min-rate-policy.js';
import { SwarmPicker } from '../engine/picker.js';
import { SwarmScheduler } from '../engine/scheduler.js';
import type { AnnounceResult } from '../owner-client.js';
import { REANNOUNCE_MS, Reannouncer } from '../reannouncer.js';
import type { PexDialBudgetOptions } from './pex-policy.js';
import { Redialer, type RedialerOptions } from './redialer.js';
import { type PexRemote, SwarmPex } from './swarm-pex.js';

/**
 * Connections a swarm peer dials and accepts at most. Four regular unchoke
 * slots and one optimistic need a field to choose from, and rarest-first
 * needs a fair sample of who holds what; aria2c (55) and Transmission (50)
 * allow more, but every connection costs a pipeline of requests in flight
 * (DEFAULT_PIPELINE_BYTES), so 30 keeps the worst case near 60 MiB asked
 * ahead while leaving every peer of a 20-peer swarm (plus the owner) room
 * to reach every other.
 */
export const DEFAULT_MAX_PEERS = 30;
/** Chunks failing SHA-1 from one link before it is cut (the ring's MAX_HASH_FAILURES). */
export const MAX_HASH_FAILURES_PER_LINK = 3;
/** How often the min-rate review runs and the choker is asked whether a round is due. */
export const SWARM_TICK_MS = 1_000;

/** Why a connection whose remote has our own peer id was closed: we dialled ourselves. */
export const SELF_REASON = 'connected to ourselves';
/** Addresses found to be ourselves that are remembered, so they are not dialled again. */
const MAX_SELF_ADDRESSES = 16;

/** Why the second of two connections between the same two peers was closed (not an error). */
export const DUPLICATE_REASON = 'duplicate connection';

/** What a connection is to us: the owner (which seeds), or any other member of the swarm. */
export type SwarmRole = 'owner' | 'swarm';

export interface SwarmSessionOptions {
  /** The owner (its connection has the role `owner`); none when we know of no owner (a magnet link's peers only). */
  readonly owner?: Endpoint | undefined;
  /** Connections held at once, dialled and accepted together (default DEFAULT_MAX_PEERS). */
  readonly maxPeers?: number;
  /** Bytes asked ahead per link (the scheduler's pipeline). */
  readonly pipelineBytes?: number;
  /** Besides the tracker's peers, whom to dial (the download neighbours given next to `--swarm`). */
  readonly extraPeers?: readonly Endpoint[];
  readonly reannounceMs?: number;
  /** Retries of a failed dial (default: DEFAULT_REDIAL_ATTEMPTS per address, for up to maxPeers addresses). */
  readonly redial?: Partial<RedialerOptions>;
  /**
   * Peer exchange (BEP 11) with the remotes that offer it (default true).
   * Never in a private swarm (the metainfo's `private` flag, BEP 27),
   * whatever this says.
   */
  readonly pex?: boolean;
  /** The bounds on dials of addresses learnt from PEX (default: pex-policy.ts's). */
  readonly pexBudget?: PexDialBudgetOptions;
}

/**
 * What the session reads and writes of the peer's store: its metainfo and
 * holdings, `put` for the scheduler, verified reads for serving. `ChunkStore`
 * is one; the simulator's data-less store is another.
 */
export type SwarmStore = Pick<
  ChunkStore,
  'metainfo' | 'held' | 'has' | 'pieceCount' | 'isComplete' | 'put' | 'readVerified' | 'cached'
>;

/** A connection's stack as the session trades on it: the remote's state and the server of its requests. */
export interface SwarmConnection<W extends MessageWire = PeerWire> {
  readonly connection: Connection<W>;
  readonly server: BlockServer;
  /** Serves the metainfo (BEP 9) where the swarm is public; none in the simulator. */
  readonly metadata?: MetadataServer | undefined;
}

/**
 * The injected parts: everything the session uses but does not own. `O` is
 * what a dial or an accept hands over: a socket for the product
 * (`WireConnection`), a modelled link for the simulator, which then gives
 * `openLink` and `discard` too.
 */
export interface SwarmSessionComponents<O = WireConnection, W extends MessageWire = PeerWire> {
  readonly store: SwarmStore;
  /** Our peer id: carries our listening port, so a remote names us by it. */
  readonly peerId: Buffer;
  readonly clock: TimerClock;
  /** Announces to the owner's tracker asking for `numwant` peers. */
  readonly announce: (numwant: number) => Promise<AnnounceResult>;
  readonly signal: AbortSignal;
  readonly buffers?: BufferPool;
  readonly rng?: Rng;
  /** The peer's rate limits, shared with its other connections. */
  readonly limits?: WireLimits;
  /**
   * Opens a BitTorrent connection to a member of the swarm under the peer's
   * --encryption and --transport, as ring mode does (default: plain TCP).
   */
  readonly connect?: (host: string, port: number, signal: AbortSignal) => Promise<O>;
  /** Builds the stack over a dialled or accepted connection (default: `openConnection` over its socket). */
  readonly openLink?: (opened: O) => SwarmConnection<W>;
  /** Drops a dialled or accepted connection the session will not use (default: destroys its socket). */
  readonly discard?: (opened: O) => void;
  /** The torrent's connection registry (SwarmSession.createRegistry(maxPeers); a new one by default). */
  readonly registry?: ConnectionRegistry<SwarmLink<W>>;
}

/** One live member of the swarm as the session keeps it. */
export interface SwarmLink<W extends MessageWire = PeerWire> {
  readonly connection: Connection<W>;
  readonly server: BlockServer;
  /** BEP 9: serves the info dictionary to it. */
  readonly metadata?: MetadataServer | undefined;
  readonly role: SwarmRole;
  readonly dir: 'in' | 'out';
}

/**
 * What the session tells the level above (the peer) and the log; the log is
 * one subscriber among others, and nothing here reacts to a log line.
 */
export type SwarmSessionEvents<W extends MessageWire = PeerWire> = {
  /** A connection handshook and was kept (a duplicate of a live one is closed before this). */
  connected: (link: SwarmLink<W>) => void;
  disconnected: (link: SwarmLink<W>, reason: string, error: boolean) => void;
  /** We sent our chunk ID list (bitfield) to `to`. */
  idlistSent: (link: SwarmLink<W>, chunks: number, of: number, form: IdListForm) => void;
  /** BEP 6: a link that choked us left `count` requests unanswered past the grace; they went to the others. */
  rejectsMissing: (link: SwarmLink<W>, count: number) => void;
  haveSent: (index: number, link: SwarmLink<W>) => void;
  /** A chunk was first asked of a link; `blocks` requests cover it. */
  requested: (index: number, link: SwarmLink<W>, blocks: number) => void;
  /** A chunk passed its hash and is stored; `from` (a label) sent its last block. */
  pieceStored: (index: number, from: string, role: SwarmRole, bytes: number) => void;
  pieceRejected: (index: number, from: readonly string[]) => void;
  /** A stored chunk failed its re-check while being served, and was dropped. */
  chunkCorrupt: (index: number) => void;
  /** A connected remote gained a piece, or one left: exit-when-done re-checks. */
  remoteProgress: () => void;
  /** Storing failed for another reason than the hash (disk): the peer must stop. */
  error: (error: Error) => void;
  /** A peer exchange message went to `to`. */
  pexSent: (to: string, added: number, dropped: number) => void;
  /** A peer exchange message from `from`; `kept` of its added peers wait for a dial. */
  pexReceived: (from: string, added: number, dropped: number, kept: number) => void;
};

/**
 * Swarm mode: the peer takes peers from the owner's tracker, dials up to
 * `maxPeers` of them (the owner, which seeds, among them), accepts the ones
 * that dial it, and trades with every one: the SwarmScheduler downloads
 * (rarest-first, endgame with cancels, min-rate stealing), a BlockServer per
 * connection uploads, and the Choker decides who is served (regular slots by
 * rate, a rotating optimistic slot, by upload rate once we seed).
 *
 * A remote that speaks swarmdrop is asked for whole chunks; anyone else
 * (aria2c, libtorrent) for 16 KiB blocks, the size stock clients accept.
 * Between two swarmdrop peers that dial each other at once, the connection
 * dialled by the peer with the smaller peer id is kept, so both ends agree
 * (keepsDialledBySmallerId); the other is closed as `duplicate connection`.
 */
// A `Session` for the product's sockets (bootstrap assigns it to one); generic for the simulator's links.
export class SwarmSession<
  O = WireConnection,
  W extends MessageWire = PeerWire,
> extends TypedEmitter<SwarmSessionEvents<W>> {
  readonly mode = 'swarm';
  readonly maxPeers: number;
  readonly ownerLabel: string;
  private readonly components: SwarmSessionComponents<O, W>;
  private readonly options: SwarmSessionOptions;
  private readonly scheduler: SwarmScheduler;
  private readonly choker: Choker;
  /**
   * Live connections, by label (a swarmdrop remote's label is its listening
   * address); connections not yet handshaken hold slots against maxPeers, and
   * addresses being dialled are marked so one announce does not dial a peer twice.
   */
  private readonly links: ConnectionRegistry<SwarmLink<W>>;
  private readonly reannouncer: Reannouncer;
  private readonly redialer: Redialer;
  /** The review and choking clock: runs while anything moves or is wanted (`wake`, `tick`). */
  private timer: Timer | undefined;
  private readonly hashFailures = new Map<string, number>();
  /** Peer exchange, unless turned off or the swarm is private. */
  private readonly pex: SwarmPex | undefined;
  /** Addresses that turned out to be ourselves (a tracker or PEX listed us). */
  private readonly selfLabels = new Set<string>();
  /** Dials under way (the owner's included; dialledOut leaves a live owner link out). */
  private dialling = 0;
  /** Members of the swarm we dial at most: half of maxPeers, the rest wait for dials to us. */
  private readonly maxDialled: number;
  private closed = false;

  constructor(components: SwarmSessionComponents<O, W>, options: SwarmSessionOptions) {
    super();
    this.components = components;
    this.options = options;
    this.maxPeers = options.maxPeers ?? DEFAULT_MAX_PEERS;
    this.maxDialled = Math.max(1, Math.ceil(this.maxPeers / 2));
    this.ownerLabel = options.owner
      ? formatEndpoint(options.owner.host ?? '127.0.0.1', options.owner.port)
      : '';
    this.links = components.registry ?? SwarmSession.createRegistry<W>(this.maxPeers);
    const rng = components.rng ?? Math.random;
    const store = components.store;
    const picker = new SwarmPicker({ geometry: store.metainfo.geometry, held: store.held, rng });
    this.scheduler = new SwarmScheduler(
      {
        picker,
        policy: new MinRatePolicy({ clock: components.clock }),
        sink: store,
        clock: components.clock,
        ...(components.buffers ? { buffers: components.buffers } : {}),
      },
      {
        ...(options.pipelineBytes === undefined ? {} : { pipelineBytes: options.pipelineBytes }),
        // A copy for serving only while someone may ask for it: with nobody interested in
        // us (a lone download from the owner) it was a 100 KiB copy and garbage per chunk.
        cacheStored: () => this.links.values().some((l) => l.connection.peerInterested),
      },
    );
    this.choker = new Choker({ clock: components.clock, rng });
    // A throwing subscriber is a bug above us: it becomes an `error` (the peer stops), unless it was one.
    this.onListenerError = (error, event) =>
      queueMicrotask(() => {
        if (event === 'error') throw error;
        this.emit('error', error as Error);
      });
    this.scheduler.on('requested', (index, id) => {
      const link = this.links.get(id);
      if (!link) return;
      const requestBytes = requestBytesFor(
        link.connection.wire.remoteHandshake?.peerId,
        this.components.store.metainfo.pieceLength,
      );
      const size = store.metainfo.geometry.pieceSize(index);
      this.emit('requested', index, link, Math.ceil(size / requestBytes));
    });
    this.scheduler.on('pieceStored', (index, from) => this.onStored(index, from));
    this.scheduler.on('pieceRejected', (index, from) => this.onRejected(index, from));
    this.scheduler.on('rejectsMissing', (id, count) => {
      const link = this.links.get(id);
      if (link) this.emit('rejectsMissing', link, count);
    });
    this.scheduler.on('error', (err) => this.emit('error', err));
    this.scheduler.on('asked', () => this.wake());
    this.reannouncer = new Reannouncer(
      components.clock,
      options.reannounceMs ?? REANNOUNCE_MS,
      () => this.announce(),
    );
    this.redialer = new Redialer(
      { clock: components.clock, rng },
      { maxAddresses: this.maxPeers, ...options.redial },
    );
    this.pex =
      options.pex === false || store.metainfo.private
        ? undefined
        : this.createPex(options.pexBudget);
    this.wake();
  }

  /** Whether this session exchanges peers (BEP 11): not when turned off, never in a private swarm. */
  get exchangesPeers(): boolean {
    return this.pex !== undefined;
  }

  private createPex(budget: PexDialBudgetOptions | undefined): SwarmPex {
    const pex = new SwarmPex(
      {
        clock: this.components.clock,
        listed: () => this.listed(),
        known: (label) =>
          this.links.has(label) || this.links.isDialling(label) || this.selfLabels.has(label),
        freeSlots: () => this.maxPeers - this.links.size - this.links.pending,
        dial: (host, port) => {
          this.dial({ host, port }, false, false);
        },
      },
      budget,
    );
    pex.on('sent', (to, message) =>
      this.emit('pexSent', to, message.added.length, message.dropped.length),
    );
    pex.on('received', (from, message, kept) =>
      this.emit('pexReceived', from, message.added.length, message.dropped.length, kept),
    );
    return pex;
  }

  /**
   * Whom we would tell a remote of: live links another peer can dial, by
   * their listening address. A swarmdrop remote's is in its peer id; a
   * stock client we dialled listens where we dialled it; one that dialled us
   * listens on the `p` of its extended handshake, or is left out.
   */
  private listed(): Map<string, PexPeer> {
    const out = new Map<string, PexPeer>();
    for (const link of this.links.values()) {
      const { connection } = link;
      // PEX runs over sockets only: the simulator turns it off (options.pex false).
      const wire = connection.wire as unknown as PeerWire;
      if (connection.state !== 'live' || !wire.remoteHandshake) continue;
      const peerId = wire.remoteHandshake.peerId;
      const port = isSwarmdropPeer(peerId)
        ? listenPortOf(peerId)
        : link.dir === 'out'
          ? wire.remotePort
          : connection.remoteExtensions?.listenPort;
      if (port === undefined) continue;
      const host = canonicalHost(wire.remoteHost);
      const flags =
        (connection.remoteHas.isComplete() ? PEX_FLAG.seed : 0) |
        (wire.transport === 'utp' ? PEX_FLAG.utp : 0) |
        (wire.encryption === 'plaintext' ? 0 : PEX_FLAG.encryption) |
        (link.dir === 'out' ? PEX_FLAG.reachable : 0);
      out.set(formatEndpoint(host, port), { host, port, flags });
    }
    return out;
  }

  /**
   * The registry a swarm keeps its links in: at most `maxPeers` (pending ones
   * included); members of the swarm, not the owner, count as peers seen, and
   * exit-when-done waits for them (the owner seeds) to hold everything.
   */
  static createRegistry<W extends MessageWire = PeerWire>(
    maxPeers = DEFAULT_MAX_PEERS,
  ): ConnectionRegistry<SwarmLink<W>> {
    return new ConnectionRegistry<SwarmLink<W>>({
      maxConnections: maxPeers,
      countsAsPeer: (l) => l.role === 'swarm',
      awaitsServed: (l) => l.role !== 'owner',
    });
  }

  /** Members of the swarm (not the owner) we have been connected to, either way (exit-when-done's linger). */
  get peersSeen(): number {
    return this.links.peersSeen;
  }

  /** Announces, dials what the tracker lists (and the extra peers), and re-announces on the clock. */
  start(): void {
    for (const peer of this.options.extraPeers ?? []) this.dial(peer);
    void this.announce().catch(() => {});
    this.reannouncer.start();
  }

  /**
   * A remote dialled our port (its transport and encryption settled by the
   * peer's acceptIncoming); refused (closed) when maxPeers connections are held.
   */
  accept(connection: O): void {
    if (this.closed || this.links.isFull()) {
      this.discard(connection);
      return;
    }
    this.open(connection, 'in');
  }

  /** Every connected member of the swarm holds every chunk (the owner, which seeds, is not waited for). */
  allServed(): boolean {
    return this.links.allServed();
  }

  /**
   * The store dropped chunks it found bad (a merge's re-check): whatever the
   * scheduler counts as held and the store no longer has is wanted again.
   */
  storeChanged(): void {
    for (let index = 0; index < this.components.store.pieceCount; index++)
      if (!this.components.store.has(index)) this.scheduler.pieceLost(index);
    this.wake();
  }

  get size(): number {
    return this.links.size;
  }

  status(): Record<string, unknown>[] {
    return this.links.values().map((l) => ({
      peer: l.connection.label,
      role: l.role,
      dir: l.dir,
      holds: l.connection.remoteHas.count(),
      amChoking: l.connection.amChoking,
      peerChoking: l.connection.peerChoking,
      chunksSent: l.server.chunksSent,
    }));
  }

  /** Stops dialling, announcing and trading, and closes every connection. */
  close(reason = 'peer stopping'): void {
    if (this.closed) return;
    this.closed = true;
    this.timer?.cancel();
    this.timer = undefined;
    this.reannouncer.stop();
    this.redialer.close();
    this.pex?.close();
    this.scheduler.close();
    this.links.closeAll(reason);
  }

  /** Resolves once every chunk handed to the store has been stored or rejected. */
  settled(): Promise<void> {
    return this.scheduler.settled();
  }

  private async announce(): Promise<void> {
    if (this.closed) return;
    let result: AnnounceResult;
    try {
      result = await this.components.announce(this.maxPeers);
    } catch (err) {
      // No tracker answers there: a link may name any member of the swarm, which is then
      // traded with directly (and one that is down is retried with backoff).
      if (this.options.owner) this.dial(this.options.owner);
      throw err;
    }
    for (const peer of result.peerList) this.dial(peer);
  }

  /**
   * Dials `peer` unless it is connected, being dialled or (for a fresh
   * listing, not a `retry`) waiting for its retry, or no slot is free, or
   * it is ourselves; a failed dial is retried with backoff (the Redialer)
   * unless `redial` is false (an address learnt from PEX: one SYN each).
   * False when nothing was dialled.
   */
  private dial(peer: Endpoint, retry = false, redial = true): boolean {
    const host = peer.host ?? '127.0.0.1';
    const label = formatEndpoint(host, peer.port);
    if (this.closed || this.links.has(label) || this.links.isDialling(label)) return false;
    if (this.selfLabels.has(label)) return false;
    if ((!retry && this.redialer.isWaiting(label)) || this.links.isFull()) return false;
    // Half the slots are for those who dial us: in a flash crowd the first maxPeers peers
    // otherwise fill each other's slots, and every later one reaches only the owner (the
    // simulator showed 20 of 50 peers served by the owner alone, 24x the bound).
    if (label !== this.ownerLabel && this.dialledOut() >= this.maxDialled) return false;
    this.links.startDialling(label);
    this.dialling++;
    const release = this.links.hold();
    const connect =
      this.components.connect ?? (plainTcp as unknown as typeof this.components.connect);
    connect!(host, peer.port, this.components.signal).then(
      (connection) => {
        this.dialling--;
        release();
        this.redialer.forget(label);
        if (this.closed) {
          this.links.stopDialling(label);
          this.discard(connection);
        } else this.open(connection, 'out', label);
      },
      // Not up yet, gone, or unreachable: tried again soon, a few times; after that only when
      // an announce lists it again.
      () => {
        this.dialling--;
        this.links.stopDialling(label);
        release();
        if (!redial) return;
        this.redialer.failed(label, () => {
          // Connected meanwhile (it dialled us), or no room: nothing to retry.
          if (!this.dial(peer, true)) this.redialer.forget(label);
        });
      },
    );
    return true;
  }

  /** Connections we dialled (live or being dialled), the owner's aside. */
  private dialledOut(): number {
    let out = this.dialling;
    for (const link of this.links.values()) if (link.dir === 'out' && link.role !== 'owner') out++;
    return out;
  }

  /** `dialled`: the address we dialled, which stays "being dialled" until the handshake settles it. */
  private discard(opened: O): void {
    if (this.components.discard) this.components.discard(opened);
    else (opened as WireConnection).socket.destroy();
  }

  private open(opened: O, dir: 'in' | 'out', dialled?: string): void {
    const { connection, server, metadata } = this.components.openLink
      ? this.components.openLink(opened)
      : (openConnection({
          opened: opened as WireConnection,
          // Without `openLink` the store is the peer's ChunkStore: a socket's stack reads from it.
          store: this.components.store as ChunkStore,
          peerId: this.components.peerId,
          clock: this.components.clock,
          limits: this.components.limits,
          // ut_pex only where we exchange peers: a private swarm does not even offer it.
          extensions: { enabled: this.pex ? ['ut_pex'] : [] },
        }) as unknown as SwarmConnection<W>);
    const release = this.links.hold();
    const uncount = () => {
      release();
      if (dialled !== undefined) this.links.stopDialling(dialled);
    };
    connection.on('ready', (handshake) => {
      uncount();
      const label = connection.label;
      const existing = this.links.get(label);
      if (this.closed) {
        connection.close('peer stopping');
        return;
      }
      if (Buffer.from(handshake.peerId).equals(this.components.peerId)) {
        // A tracker or a PEX message listed us: never dialled again.
        if (dialled !== undefined && this.selfLabels.size < MAX_SELF_ADDRESSES)
          this.selfLabels.add(dialled);
        connection.close(SELF_REASON);
        return;
      }
      if (existing) {
        // Both ends dialled at once: keep the one the smaller peer id dialled, on both sides alike.
        // (Two connections the same way round are a second dial to one address: the first stays.)
        const keepNew =
          existing.dir !== dir &&
          keepsDialledBySmallerId(this.components.peerId, handshake.peerId, dir);
        if (!keepNew) {
          connection.close(DUPLICATE_REASON);
          return;
        }
        this.retire(label, existing);
      }
      this.live(connection, server, dir, metadata);
    });
    connection.on('closed', uncount);
  }

  /**
   * Takes `link` out of the registry and the scheduler now and closes it, so
   * its successor can take its label in this turn: its `closed` comes a turn
   * later, and the scheduler refuses a label it still has (that refusal
   * closed the winner too, as a protocol error, when both ends dialled at once).
   */
  private retire(label: string, link: SwarmLink<W>): void {
    this.links.remove(label, link);
    this.scheduler.detach(label);
    link.connection.close(DUPLICATE_REASON);
  }

  private live(
    connection: Connection<W>,
    server: BlockServer,
    dir: 'in' | 'out',
    metadata: MetadataServer | undefined,
  ): void {
    const label = connection.label;
    const role: SwarmRole = label === this.ownerLabel ? 'owner' : 'swarm';
    const link: SwarmLink<W> = { connection, server, metadata, role, dir };
    this.links.add(label, link);
    this.links.markSeen(link);
    server.on('chunkCorrupt', (index) => {
      this.emit('chunkCorrupt', index);
      // Everything the store no longer holds (this chunk among them) is wanted again.
      this.storeChanged();
    });
    connection.on('closed', (close) => {
      this.links.remove(label, link);
      this.emit('disconnected', link, close.reason, close.error !== undefined);
      this.rechoke();
      this.emit('remoteProgress');
      // A slot is free: an address learnt from PEX may take it.
      this.pex?.dialFree();
    });
    if (this.pex) this.exchangeWith(this.pex, label, connection as unknown as Connection);
    connection.on('have', () => {
      if (connection.remoteHas.isComplete()) this.emit('remoteProgress');
    });
    // Interest changes are the moments a rechoke matters between the regular rounds.
    connection.on('interested', () => {
      this.wake();
      this.rechoke();
    });
    connection.on('notInterested', () => this.rechoke());
    this.emit('connected', link);
    this.wake();
    const form = connection.sendBitfield(this.components.store.held);
    const held = this.components.store.held;
    this.emit('idlistSent', link, held.count(), held.size, form);
    this.scheduler.add(label, connection, {
      requestBytes: requestBytesFor(
        connection.wire.remoteHandshake?.peerId,
        this.components.store.metainfo.pieceLength,
      ),
    });
  }

  /** Peer exchange with `connection` once its extended handshake offers ut_pex (now, or when it comes). */
  private exchangeWith(pex: SwarmPex, label: string, connection: Connection): void {
    const remote: PexRemote = {
      source: sourceKey(connection.wire.remoteHost),
      send: (payload) => connection.sendExtended('ut_pex', payload),
      fail: (error) => connection.close(`${error.code}: ${error.message}`, error),
    };
    const offer = (extensions: RemoteExtensions) => {
      if (!extensions.ids.has('ut_pex') || connection.state !== 'live') return;
      pex.add(label, remote);
    };
    // Only this connection's exchange: a duplicate kept in its place under the label has its own.
    connection.on('closed', () => pex.remove(label, remote));
    connection.on('extendedHandshake', offer);
    connection.on('extended', (name, payload) => {
      if (name === 'ut_pex') pex.receive(label, payload, remote);
    });
    if (connection.remoteExtensions) offer(connection.remoteExtensions);
  }

  private onStored(index: number, from: string): void {
    for (const link of this.links.values()) {
      if (link.connection.state !== 'live') continue;
      link.connection.sendHave(index);
      this.emit('haveSent', index, link);
    }
    const role: SwarmRole = from === this.ownerLabel ? 'owner' : 'swarm';
    this.emit(
      'pieceStored',
      index,
      from,
      role,
      this.components.store.metainfo.geometry.pieceSize(index),
    );
    // A leecher that just became a seed ranks by upload from now on.
    if (this.components.store.isComplete()) this.rechoke();
  }

  private onRejected(index: number, from: readonly string[]): void {
    this.emit('pieceRejected', index, from);
    for (const id of from) {
      const failures = (this.hashFailures.get(id) ?? 0) + 1;
      this.hashFailures.set(id, failures);
      if (failures >= MAX_HASH_FAILURES_PER_LINK)
        this.links.get(id)?.connection.close(`sent ${failures} chunks that failed SHA-1`);
    }
  }

  /** Starts the clock if it is stopped: something may move or be wanted. */
  /** Whether the review and choking clock runs now (for tests and stats). */
  get ticking(): boolean {
    return this.timer !== undefined;
  }

  private wake(): void {
    if (this.closed) return;
    this.timer ??= this.components.clock.setInterval(() => this.tick(), SWARM_TICK_MS);
  }

  /**
   * The min-rate review and, when due, a choking round. With nothing asked
   * of anyone (no review to make) and nobody interested in us (no one to
   * choose among), the clock stops: a finished peer in a quiet swarm woke
   * every second for nothing. A request, an interested remote or a new
   * connection starts it again.
   */
  private tick(): void {
    if (this.closed) return;
    this.scheduler.tick();
    if (this.choker.isDue()) this.rechoke();
    if (this.scheduler.idle && this.links.values().every((l) => !l.connection.peerInterested)) {
      this.timer?.cancel();
      this.timer = undefined;
    }
  }

  private rechoke(): void {
    if (this.closed) return;
    const links = this.links.keyed().filter(([, l]) => l.connection.state === 'live');
    const { unchoked } = this.choker.rechoke(
      links.map(([id, l]) => ({
        id,
        interested: l.connection.peerInterested,
        downloadBytesPerSec: l.connection.download.bytesPerSecond(),
        uploadBytesPerSec: l.connection.upload.bytesPerSecond(),
        connectedAtMs: l.connection.openedAtMs,
        amInterested: l.connection.amInterested,
        lastPieceAtMs: l.connection.lastPieceAtMs,
      })),
      this.components.store.isComplete(),
    );
    for (const [id, l] of links) {
      if (unchoked.has(id)) l.connection.unchoke();
      else l.connection.choke();
    }
  }
}

/** Swarm links without the peer's policies: plaintext over TCP (unit tests, and the default). */
async function plainTcp(host: string, port: number, signal: AbortSignal): Promise<WireConnection> {
  return {
    socket: await connectTcp(host, port, signal),
    encryption: 'plaintext',
    transport: 'tcp',
  };
}
