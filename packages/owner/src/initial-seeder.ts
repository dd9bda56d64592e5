import { type Bitfield, OptionError, type Rng, randomBelow } from '@swarmdrop/protocol';

/**
 * Pieces offered to one peer and not yet sent: four chunks (400 KiB at the
 * default size) keep the owner's link to it busy while it requests, where
 * BEP 16's one at a time leaves the link idle for a round trip per chunk.
 */
export const DEFAULT_OFFERS_PER_PEER = 4;
/** Candidates compared for "fewest known copies" when choosing within one level: bounds the work per offer. */
const COPIES_SCAN_LIMIT = 64;

export interface InitialSeederOptions {
  readonly pieceCount: number;
  readonly rng: Rng;
  readonly offersPerPeer?: number;
}

interface PeerRecord {
  /** What the peer is known to hold, from its bitfield and haves. */
  readonly holds: Set<number>;
  /** Offered to it and not yet sent by us, nor obtained by it elsewhere. */
  readonly offered: Set<number>;
}

/**
 * Initial seeding ("super-seeding", BEP 16), pure: instead of its whole
 * bitfield, the owner tells each peer about a few pieces at a time (`have`),
 * chosen so that **every piece goes out once before any goes out twice**.
 * The peers then trade among themselves what only one of them got, so the
 * owner's upload carries each byte of the file about once, which is what
 * D_min assumes.
 *
 * State, per piece: how many times it has gone out (offered and not
 * withdrawn); per peer: what it holds (from haves) and what is offered to it.
 * An offer is withdrawn when the peer leaves before it was sent, or gets the
 * piece from someone else first: then the owner's copy did not go out.
 */
export class InitialSeeder {
  readonly pieceCount: number;
  readonly offersPerPeer: number;
  private readonly rng: Rng;
  /** Times each piece has gone out from the owner (offers in force plus sends). */
  private readonly out: Uint32Array;
  /** Peers known to hold each piece: the tie-break within a level, rarer first. */
  private readonly copies: Uint32Array;
  /** levels[k]: the pieces that have gone out k times, in no order (swap-remove). */
  private readonly levels: number[][] = [];
  private readonly posInLevel: Int32Array;
  private readonly peers = new Map<string, PeerRecord>();

  constructor(options: InitialSeederOptions) {
    this.pieceCount = options.pieceCount;
    this.rng = options.rng;
    this.offersPerPeer = options.offersPerPeer ?? DEFAULT_OFFERS_PER_PEER;
    if (!Number.isInteger(this.offersPerPeer) || this.offersPerPeer < 1) {
      throw new OptionError(
        'offersPerPeer',
        `must be a positive integer, got ${this.offersPerPeer}`,
      );
    }
    this.out = new Uint32Array(this.pieceCount);
    this.copies = new Uint32Array(this.pieceCount);
    this.posInLevel = new Int32Array(this.pieceCount);
    this.levels.push(Array.from({ length: this.pieceCount }, (_, i) => i));
    for (let i = 0; i < this.pieceCount; i++) this.posInLevel[i] = i;
  }

  addPeer(id: string): void {
    if (!this.peers.has(id)) this.peers.set(id, { holds: new Set(), offered: new Set() });
  }

  /** The peer's bitfield arrived. */
  peerBitfield(id: string, remote: Bitfield): void {
    for (const index of remote.heldIds()) this.peerHas(id, index);
  }

  /** The peer holds `index` now (its `have`, or a bit in its bitfield). */
  peerHas(id: string, index: number): void {
    const peer = this.peers.get(id);
    if (!peer || index < 0 || index >= this.pieceCount || peer.holds.has(index)) return;
    peer.holds.add(index);
    this.copies[index]!++;
    // Offered but obtained elsewhere before we sent it: our copy did not go out after all.
    if (peer.offered.delete(index)) this.moveLevel(index, -1);
  }

  /**
   * The owner finished sending `index` to the peer: the offer is fulfilled
   * and counts for good, and the peer holds it from now on (its `have` may
   * come later; until then it must not be offered the piece again).
   */
  pieceSent(id: string, index: number): void {
    const peer = this.peers.get(id);
    if (!peer?.offered.delete(index)) return;
    peer.holds.add(index);
    this.copies[index]!++;
  }

  /** The peer left: offers it never took did not go out; the copies it held are gone with it. */
  removePeer(id: string): void {
    const peer = this.peers.get(id);
    if (!peer) return;
    for (const index of peer.offered) this.moveLevel(index, -1);
    for (const index of peer.holds) this.copies[index]!--;
    this.peers.delete(id);
  }

  /**
   * New pieces to announce (`have`) to the peer now, topping it up to
   * `offersPerPeer` offers in force. Each comes from the lowest level (gone
   * out least) that has a piece the peer neither holds nor was offered;
   * within a level, the fewest known copies, then at random.
   */
  offers(id: string): number[] {
    const peer = this.peers.get(id);
    if (!peer) return [];
    const fresh: number[] = [];
    while (peer.offered.size < this.offersPerPeer) {
      const index = this.choose(peer);
      if (index === undefined) break;
      peer.offered.add(index);
      this.moveLevel(index, +1);
      fresh.push(index);
    }
    return fresh;
  }

  /** Whether the peer may be served `index`: only what it was offered (a stock client asks for nothing else). */
  isOffered(id: string, index: number): boolean {
    return this.peers.get(id)?.offered.has(index) ?? false;
  }

  /** Times `index` has gone out from the owner. */
  timesOut(index: number): number {
    return this.out[index] ?? 0;
  }

  /** Pieces offered to the peer and in force. */
  offeredTo(id: string): number[] {
    return [...(this.peers.get(id)?.offered ?? [])];
  }

  private choose(peer: PeerRecord): number | undefined {
    for (const level of this.levels) {
      if (level.length === 0) continue;
      let best: number | undefined;
      let seen = 0;
      const start = randomBelow(this.rng, level.length);
      for (let k = 0; k < level.length && seen < COPIES_SCAN_LIMIT; k++) {
        const index = level[(start + k) % level.length]!;
        if (peer.holds.has(index) || peer.offered.has(index)) continue;
        seen++;
        if (best === undefined || this.copies[index]! < this.copies[best]!) best = index;
      }
      if (best !== undefined) return best;
    }
    return undefined;
  }

  private moveLevel(index: number, delta: 1 | -1): void {
    const from = this.out[index]!;
    const to = from + delta;
    const level = this.levels[from]!;
    const pos = this.posInLevel[index]!;
    const last = level.pop()!;
    if (last !== index) {
      level[pos] = last;
      this.posInLevel[last] = pos;
    }
    while (this.levels.length <= to) this.levels.push([]);
    this.posInLevel[index] = this.levels[to]!.length;
    this.levels[to]!.push(index);
    this.out[index] = to;
  }
}
