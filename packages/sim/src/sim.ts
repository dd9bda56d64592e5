import { SuperSeeding, TrackerRegistry } from '@swarmdrop/owner';
import { type AnnounceResult, SwarmSession } from '@swarmdrop/peer';
import {
  type Endpoint,
  formatEndpoint,
  isSwarmModePeer,
  ManualClock,
  type Metainfo,
  makePeerId,
  type Rng,
  seededRng,
} from '@swarmdrop/protocol';
import { BlockServer, Connection } from '@swarmdrop/protocol/node';
import { type Host, Network } from './network.js';
import { classOf, minimumTime, type Scenario } from './scenario.js';
import { SimStore, simMetainfo } from './sim-store.js';
import { SimWire } from './sim-wire.js';

const PORT = 6881;

/** What a dial or an accept hands the session: the local end of a connected pair. */
interface SimOpened {
  readonly wire: SimWire;
}

interface SimPeer {
  readonly index: number;
  readonly host: Host;
  readonly address: string;
  readonly peerId: Buffer;
  readonly stock: boolean;
  store: SimStore;
  session: SwarmSession<SimOpened, SimWire> | undefined;
  abort: AbortController | undefined;
  arrivedAtMs: number;
  completedAtMs: number | undefined;
  /** Killed for good (a crash without return): not counted among the survivors. */
  gone: boolean;
  crashed: boolean;
  listening: boolean;
}

export interface PeerOutcome {
  readonly index: number;
  readonly up: number;
  readonly down: number;
  readonly crashed: boolean;
  /** Seconds from its (last) arrival to holding the whole file, or undefined. */
  readonly seconds: number | undefined;
  /** Seconds since the start of the run when it completed. */
  readonly completedAt: number | undefined;
}

export interface SimResult {
  readonly scenario: Scenario;
  /** Kumar & Ross's bound for this scenario, seconds. */
  readonly minimumSeconds: number;
  readonly peers: readonly PeerOutcome[];
  /** Survivors (not killed for good) that completed, and all survivors. */
  readonly completed: number;
  readonly survivors: number;
  /** Completion times of the survivors over the bound: p50, p90, p99, max (Infinity if one did not complete). */
  readonly ratio: {
    readonly p50: number;
    readonly p90: number;
    readonly p99: number;
    readonly max: number;
  };
  /** Piece bytes the owner sent, in copies of the file. */
  readonly ownerCopies: number;
  /** Seconds until every piece had a copy outside the owner, or undefined. */
  readonly allPiecesOutAt: number | undefined;
  /** Simulated seconds the run took. */
  readonly simulatedSeconds: number;
  /** Messages the network carried. */
  readonly messages: number;
}

function addressOf(index: number): string {
  // The owner is 10.0.0.1; peers from 10.0.0.2 on, one address each (the tracker keeps a few per address).
  const n = index + 2;
  return formatEndpoint(`10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`, PORT);
}

/**
 * A swarmdrop peer id with a deterministic tail (the product draws it at
 * random; the connection kept between two that dial each other depends on
 * it), or a stock client's for a stock-like peer.
 */
function peerIdOf(index: number, stock: boolean): Buffer {
  const tail = index.toString(36).padStart(5, '0').slice(-5);
  if (stock) return Buffer.from(`-qB4650-sim${tail.padStart(9, '0')}`, 'latin1');
  const id = makePeerId(PORT, 'swarm');
  id.write(tail, 15, 'latin1');
  return id;
}

/** Everything the microtasks of this step (promise continuations in the engine) do, before the next event. */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * The simulator: one owner (its real initial seeding, its tracker's table
 * and peer selection) and `scenario.peers` peers, each running the real
 * SwarmSession (scheduler, picker, min-rate policy, choker, redialer,
 * reannouncer) over SimWires on one ManualClock. Deterministic for a seed:
 * every random choice comes from seeded generators, and events at the same
 * time run in the order they were set.
 */
export class Simulation {
  readonly scenario: Scenario;
  readonly clock = new ManualClock();
  readonly net: Network;
  readonly metainfo: Metainfo;
  private readonly rng: Rng;
  private readonly trackerRng: Rng;
  private readonly ownerHost: Host;
  private readonly ownerLabel: string;
  private readonly ownerStore: SimStore;
  private readonly tracker: TrackerRegistry;
  private readonly seeding: SuperSeeding;
  private ownerConnections = 0;
  private readonly peers: SimPeer[] = [];
  private readonly byAddress = new Map<string, SimPeer>();
  /** Copies of each piece outside the owner (first copies only matter). */
  private readonly outside: Uint32Array;
  private piecesOutside = 0;
  private allOutAtMs: number | undefined;
  private messages = 0;
  private pendingEvents = 0;

  constructor(scenario: Scenario) {
    this.scenario = scenario;
    this.net = new Network(this.clock);
    this.metainfo = simMetainfo(scenario.fileBytes, scenario.pieceBytes);
    this.rng = seededRng(scenario.seed);
    this.trackerRng = seededRng(scenario.seed ^ 0x5eed);
    this.ownerHost = this.net.addHost(scenario.owner);
    this.ownerLabel = formatEndpoint('10.0.0.1', PORT);
    this.ownerStore = new SimStore(this.metainfo, true);
    this.tracker = new TrackerRegistry({
      clock: this.clock,
      maxPeers: Math.max(1_000, scenario.peers * 2),
    });
    this.seeding = new SuperSeeding(this.ownerStore, () => {}, {
      clock: this.clock,
      rng: seededRng(scenario.seed ^ 0x0de1),
    });
    this.outside = new Uint32Array(this.metainfo.geometry.pieceCount);
    for (let i = 0; i < scenario.peers; i++) {
      const link = classOf(scenario, i);
      const stock = i < Math.round(scenario.stockShare * scenario.peers);
      const peer: SimPeer = {
        index: i,
        host: this.net.addHost(link),
        address: addressOf(i),
        peerId: peerIdOf(i, stock),
        stock,
        store: new SimStore(this.metainfo),
        session: undefined,
        abort: undefined,
        arrivedAtMs: 0,
        completedAtMs: undefined,
        gone: false,
        crashed: false,
        listening: false,
      };
      peer.host.alive = false;
      this.peers.push(peer);
      this.byAddress.set(peer.address, peer);
    }
  }

  /** Runs to the end (every survivor complete, or the time limit) and reports. */
  async run(): Promise<SimResult> {
    const s = this.scenario;
    for (const peer of this.peers) {
      const at = s.peers > 1 ? (s.arrivalsOverMs * peer.index) / (s.peers - 1) : 0;
      this.at(at, () => this.arrive(peer));
    }
    const crashing = Math.round(s.crash.share * s.peers);
    if (crashing > 0) {
      // Which peers crash: drawn from the seeded generator, not the first ones (they may be special).
      const order = this.peers.map((p) => p.index);
      for (let i = order.length - 1; i > 0; i--) {
        const j = Math.floor(this.rng() * (i + 1));
        [order[i], order[j]] = [order[j]!, order[i]!];
      }
      const returning = Math.round(s.crash.returnShare * crashing);
      order.slice(0, crashing).forEach((index, k) => {
        const peer = this.peers[index]!;
        this.at(s.crash.atMs, () => this.crash(peer, k < returning));
      });
    }
    for (;;) {
      if (this.finished()) break;
      const next = this.clock.nextAt();
      if (next === undefined || next > s.timeLimitMs) break;
      this.clock.advance(next - this.clock.now());
      await settle();
    }
    const endMs = this.clock.now();
    for (const peer of this.peers) this.stop(peer, 'simulation over');
    await settle();
    return this.result(endMs);
  }

  private at(ms: number, fn: () => void): void {
    this.pendingEvents++;
    this.clock.setTimeout(() => {
      this.pendingEvents--;
      fn();
    }, ms - this.clock.now());
  }

  private finished(): boolean {
    if (this.pendingEvents > 0) return false;
    return this.peers.every((p) => p.gone || p.completedAtMs !== undefined);
  }

  private arrive(peer: SimPeer): void {
    peer.host.alive = true;
    peer.listening = true;
    peer.arrivedAtMs = this.clock.now();
    peer.abort = new AbortController();
    const store = peer.store;
    store.onStored = (index) => this.stored(peer, index);
    const session = new SwarmSession<SimOpened, SimWire>(
      {
        store,
        peerId: peer.peerId,
        clock: this.clock,
        rng: seededRng(this.scenario.seed * 7919 + peer.index * 104_729 + 1),
        signal: peer.abort.signal,
        announce: (numwant) => this.announce(peer, numwant),
        connect: (host, port) => this.connect(peer, formatEndpoint(host, port)),
        openLink: (opened) => this.openLink(peer, opened),
        discard: (opened) => opened.wire.close('refused: no free connection slot'),
      },
      { owner: { host: '10.0.0.1', port: PORT }, maxPeers: this.scenario.maxPeers, pex: false },
    );
    peer.session = session;
    if (store.isComplete()) this.completed(peer);
    session.start();
  }

  private stored(peer: SimPeer, index: number): void {
    const copies = this.outside[index]!;
    this.outside[index] = copies + 1;
    if (copies === 0 && ++this.piecesOutside === this.outside.length)
      this.allOutAtMs ??= this.clock.now();
    if (peer.store.isComplete()) this.completed(peer);
  }

  private completed(peer: SimPeer): void {
    if (peer.completedAtMs !== undefined) return;
    peer.completedAtMs = this.clock.now();
    if (this.scenario.leaveWhenDone) {
      // It tells the tracker it stopped, then goes (after this turn: the have of its last piece goes out first).
      this.tracker.announce(peer.address.split(':')[0]!, PORT, { event: 'stopped' });
      this.at(this.clock.now(), () => this.stop(peer, 'peer stopping'));
    }
  }

  private crash(peer: SimPeer, returns: boolean): void {
    if (!peer.host.alive) return;
    if (peer.completedAtMs !== undefined && this.scenario.leaveWhenDone) return;
    peer.crashed = true;
    this.stop(peer, 'killed');
    if (returns) {
      // It comes back with what it had stored: a restart re-checks its chunk files and keeps them.
      peer.completedAtMs = undefined;
      this.at(this.clock.now() + this.scenario.crash.returnAfterMs, () => this.arrive(peer));
    } else peer.gone = true;
  }

  private stop(peer: SimPeer, reason: string): void {
    if (!peer.session) return;
    peer.listening = false;
    peer.host.alive = false;
    peer.abort?.abort();
    peer.session.close(reason);
    peer.session = undefined;
  }

  /** The owner's tracker, as its announce route answers: the owner first, then up to numwant - 1 others. */
  private announce(peer: SimPeer, numwant: number): Promise<AnnounceResult> {
    const rtt = 2 * this.net.latency(peer.host, this.ownerHost);
    return new Promise((resolve) => {
      this.clock.setTimeout(() => {
        const [host] = peer.address.split(':') as [string];
        const left = peer.store.isComplete() ? 0 : 1;
        const { address } = this.tracker.announce(host, PORT, { left });
        // The tracker samples with Math.random; for a reproducible run it draws from a seeded generator here.
        const saved = Math.random;
        Math.random = this.trackerRng;
        let listed: Endpoint[];
        try {
          listed = this.tracker.peers(address, numwant - 1).peers;
        } finally {
          Math.random = saved;
        }
        const peerList: Endpoint[] = [{ host: '10.0.0.1', port: PORT }, ...listed];
        resolve({
          batch: undefined,
          peers: peerList.length,
          hosts: peerList.map((p) => p.host ?? ''),
          peerList,
        });
      }, rtt);
    });
  }

  /** A dial: connected after a round trip, refused (after one) when nobody listens there. */
  private connect(from: SimPeer, address: string): Promise<SimOpened> {
    const target = address === this.ownerLabel ? undefined : this.byAddress.get(address);
    const toHost = target ? target.host : address === this.ownerLabel ? this.ownerHost : undefined;
    const rtt = toHost ? 2 * this.net.latency(from.host, toHost) : 100;
    return new Promise((resolve, reject) => {
      this.clock.setTimeout(() => {
        const listening = target ? target.listening && target.session : toHost === this.ownerHost;
        if (!toHost || !listening || !from.session) {
          reject(new Error(`connect ${address}: refused`));
          return;
        }
        const [ours, theirs] = SimWire.pair(
          this.net,
          from.host,
          toHost,
          { ofFrom: from.address, ofTo: address },
          this.metainfo.geometry.pieceCount,
        );
        this.countMessages(ours, theirs);
        if (target) target.session!.accept({ wire: theirs });
        else this.ownerAccept(theirs);
        resolve({ wire: ours });
      }, rtt);
    });
  }

  private countMessages(a: SimWire, b: SimWire): void {
    for (const wire of [a, b]) {
      const send = wire.send.bind(wire);
      wire.send = (message) => {
        this.messages++;
        return send(message);
      };
      const sendPiece = wire.sendPiece.bind(wire);
      wire.sendPiece = (index, begin, block) => {
        this.messages++;
        return sendPiece(index, begin, block);
      };
    }
  }

  private openLink(peer: SimPeer, opened: SimOpened) {
    const connection = new Connection<SimWire>({
      wire: opened.wire,
      pieceCount: this.metainfo.geometry.pieceCount,
      localHas: peer.store.held,
      clock: this.clock,
    });
    const server = new BlockServer({ connection, store: peer.store });
    opened.wire.sendHandshake({
      type: 'handshake',
      reserved: new Uint8Array(8),
      infoHash: this.metainfo.infoHash,
      peerId: peer.peerId,
    });
    return { connection, server };
  }

  /**
   * The owner's side of a connection, as its Serving does: unchoke on
   * interest, initial seeding (SuperSeeding) for a swarm-mode peer, the
   * whole bitfield for anyone else; at most ownerMaxConnections at once.
   */
  private ownerAccept(wire: SimWire): void {
    if (this.ownerConnections >= this.scenario.ownerMaxConnections) {
      wire.close('too many connections');
      return;
    }
    this.ownerConnections++;
    const connection = new Connection<SimWire>({
      wire,
      pieceCount: this.metainfo.geometry.pieceCount,
      localHas: this.ownerStore.held,
      clock: this.clock,
    });
    const server = new BlockServer({ connection, store: this.ownerStore });
    connection.on('interested', () => connection.unchoke());
    connection.on('ready', (handshake) => {
      if (isSwarmModePeer(handshake.peerId)) this.seeding.serve(connection, server);
      else connection.sendBitfield(this.ownerStore.held);
    });
    connection.on('closed', () => {
      this.ownerConnections--;
    });
    wire.sendHandshake({
      type: 'handshake',
      reserved: new Uint8Array(8),
      infoHash: this.metainfo.infoHash,
      peerId: makeOwnerId(),
    });
  }

  private result(endMs: number): SimResult {
    const s = this.scenario;
    const minimumSeconds = minimumTime(
      s.fileBytes,
      s.owner.up,
      this.peers.map((p) => p.host.spec),
    );
    const outcomes: PeerOutcome[] = this.peers.map((p) => ({
      index: p.index,
      up: p.host.spec.up,
      down: p.host.spec.down,
      crashed: p.crashed,
      seconds: p.completedAtMs === undefined ? undefined : (p.completedAtMs - p.arrivedAtMs) / 1000,
      completedAt: p.completedAtMs === undefined ? undefined : p.completedAtMs / 1000,
    }));
    const survivors = this.peers.filter((p) => !p.gone);
    const times = survivors
      .map((p) => outcomes[p.index]!.seconds ?? Number.POSITIVE_INFINITY)
      .map((t) => t / minimumSeconds)
      .sort((a, b) => a - b);
    const q = (f: number) =>
      times[Math.min(times.length - 1, Math.ceil(f * times.length) - 1)] ?? 0;
    return {
      scenario: s,
      minimumSeconds,
      peers: outcomes,
      completed: survivors.filter((p) => p.completedAtMs !== undefined).length,
      survivors: survivors.length,
      ratio: { p50: q(0.5), p90: q(0.9), p99: q(0.99), max: times[times.length - 1] ?? 0 },
      ownerCopies: this.ownerHost.pieceBytesUp / s.fileBytes,
      allPiecesOutAt: this.allOutAtMs === undefined ? undefined : this.allOutAtMs / 1000,
      simulatedSeconds: endMs / 1000,
      messages: this.messages,
    };
  }
}

function makeOwnerId(): Buffer {
  const id = makePeerId(PORT, 'other');
  id.write('owner0', 14, 'latin1');
  return id;
}

/** Runs one scenario. */
export function simulate(scenario: Scenario): Promise<SimResult> {
  return new Simulation(scenario).run();
}
