/**
 * The swarm-mode picker: rarest-first with random ties, a few random pieces
 * first, strict priority to started pieces, and endgame with cancels. All on
 * a seeded RNG, so every order here is reproducible.
 */
import { Bitfield, Geometry, seededRng } from '@swarmdrop/protocol';
import { describe, expect, it } from 'vitest';
import { RarityOrder, SwarmPicker, type SwarmPickerOptions } from '../src/engine/index.js';

const BLOCK = 16_384;
/** Pieces of two 16 KiB blocks. */
const PIECE = 2 * BLOCK;

function holding(size: number, ids: Iterable<number>): Bitfield {
  const field = new Bitfield(size);
  for (const i of ids) field.set(i);
  return field;
}

/** A budget of `n` grid blocks, asked one grid block per request. */
function gridBlocks(n: number) {
  return { maxBytes: n * BLOCK };
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, k) => from + k);
}

function picker(pieces: number, options: Partial<SwarmPickerOptions> = {}): SwarmPicker {
  return new SwarmPicker({
    geometry: new Geometry(pieces * PIECE, PIECE),
    held: new Bitfield(pieces),
    rng: seededRng(1),
    randomFirstPieces: 0,
    ...options,
  });
}

/** Pieces in the order `peer` starts them, one whole piece per pick. */
function pieceOrder(p: SwarmPicker, peer: string, remote: Bitfield): number[] {
  const order: number[] = [];
  for (;;) {
    const blocks = p.pick(peer, remote, gridBlocks(2));
    if (blocks.length === 0) break; // in endgame, the same peer is never asked twice for a block
    expect(new Set(blocks.map((b) => b.index)).size, 'one piece per pick of 2 blocks').toBe(1);
    order.push(blocks[0]!.index);
  }
  return order;
}

describe('RarityOrder', () => {
  it('stays sorted by availability through random haves, departures, completions and losses', () => {
    const rng = seededRng(42);
    const n = 40;
    const order = new RarityOrder(n, rng);
    const counts = new Array<number>(n).fill(0);
    const retired = new Set<number>();
    for (let step = 0; step < 1_500; step++) {
      const i = Math.floor(rng() * n);
      const roll = rng();
      if (roll < 0.6) {
        order.increment(i);
        counts[i]!++;
      } else if (roll < 0.9) {
        if (counts[i] === 0) continue;
        order.decrement(i);
        counts[i]!--;
      } else if (roll < 0.97) {
        order.retire(i);
        retired.add(i);
      } else {
        order.restore(i);
        retired.delete(i);
      }
      const seen = [...order.rarestFirst()];
      expect(seen.slice().sort((a, b) => a - b)).toEqual(
        range(0, n).filter((k) => !retired.has(k)),
      );
      for (let k = 1; k < seen.length; k++) {
        expect(counts[seen[k]!]!, `step ${step}: order not by availability`).toBeGreaterThanOrEqual(
          counts[seen[k - 1]!]!,
        );
      }
      for (const k of seen) expect(order.availability(k)).toBe(counts[k]);
    }
  });
});

describe('SwarmPicker: which piece first', () => {
  it('starts the rarest pieces first, counting bitfields and haves', () => {
    const p = picker(8);
    // Availability: piece 0 by 4 peers, 1-2 by 3, 3-5 by 2, 6-7 by 1.
    p.peerBitfield(holding(8, range(0, 8)));
    p.peerBitfield(holding(8, range(0, 6)));
    p.peerBitfield(holding(8, []));
    p.peerBitfield(holding(8, [0]));
    for (const i of [1, 2]) p.peerHave(i);
    expect(range(0, 8).map((i) => p.availability(i))).toEqual([3, 3, 3, 2, 2, 2, 1, 1]);
    p.peerHave(0);

    const order = pieceOrder(p, 'A', holding(8, range(0, 8)));
    expect(order).toHaveLength(8);
    expect(new Set(order.slice(0, 2))).toEqual(new Set([6, 7]));
    expect(new Set(order.slice(2, 5))).toEqual(new Set([3, 4, 5]));
    expect(new Set(order.slice(5, 7))).toEqual(new Set([1, 2]));
    expect(order[7]).toBe(0);
  });

  it('breaks ties at random: reproducible for a seed, different across seeds', () => {
    const orderFor = (seed: number) => {
      const p = picker(16, { rng: seededRng(seed) });
      const all = holding(16, range(0, 16));
      p.peerBitfield(all);
      return pieceOrder(p, 'A', all);
    };
    const first = orderFor(1);
    expect(first.slice().sort((a, b) => a - b)).toEqual(range(0, 16));
    expect(orderFor(1)).toEqual(first);
    expect(orderFor(2)).not.toEqual(first);
    expect(first, 'ties are not broken by id').not.toEqual(range(0, 16));
  });

  it('a disconnect lowers availability, and the order follows', () => {
    const p = picker(4);
    const rich = holding(4, [0, 1, 2, 3]);
    p.peerBitfield(rich);
    p.peerBitfield(holding(4, [0, 1, 2]));
    p.peerBitfield(holding(4, [3])); // 3 is now as common as 0-2
    p.peerGone('C', holding(4, [3]), []);
    p.peerGone('B', holding(4, [0, 1, 2]), []);
    p.peerBitfield(holding(4, [0, 1, 3]));
    expect(pieceOrder(p, 'A', rich)[0]).toBe(2); // the only piece one peer has
  });

  it('picks the first pieces at random, then rarest-first', () => {
    const firstPick = (seed: number, randomFirstPieces: number) => {
      const p = picker(8, { rng: seededRng(seed), randomFirstPieces });
      p.peerBitfield(holding(8, range(0, 8)));
      p.peerBitfield(holding(8, range(0, 7))); // piece 7 is the rarest
      return p.pick('A', holding(8, range(0, 8)), gridBlocks(1))[0]!.index;
    };
    const seeds = range(1, 21);
    expect(new Set(seeds.map((s) => firstPick(s, 0)))).toEqual(new Set([7]));
    expect(new Set(seeds.map((s) => firstPick(s, 4))).size).toBeGreaterThan(1);
  });

  it('only picks pieces the connection has and we lack', () => {
    const held = holding(6, [1]);
    const p = picker(6, { held });
    p.peerBitfield(holding(6, [0, 1, 2]));
    const picked = p.pick('A', holding(6, [0, 1, 2]), gridBlocks(100));
    expect(new Set(picked.map((b) => b.index))).toEqual(new Set([0, 2]));
    expect(p.stateOf(1)).toBe('held');
    expect(p.wantsFrom(holding(6, [1]))).toBe(false);
    expect(p.wantsFrom(holding(6, [1, 5]))).toBe(true);
  });
});

describe('SwarmPicker: a held piece lost', () => {
  it('is queued again at its place in the rarity order, and only then', () => {
    const p = picker(4, { held: holding(4, [2]) });
    const remote = holding(4, [0, 1, 2, 3]);
    p.peerBitfield(remote);
    p.peerBitfield(holding(4, [0, 1, 3]));
    expect(pieceOrder(p, 'A', remote)).not.toContain(2);
    const q = picker(4, { held: holding(4, [2]) });
    q.peerBitfield(remote);
    q.peerBitfield(holding(4, [0, 1, 3]));
    q.pieceLost(2);
    q.pieceLost(2); // a second report of the same loss changes nothing
    expect(q.stateOf(2)).toBe('queued');
    // Piece 2 is the rarest (one copy, the others two): it comes first.
    expect(pieceOrder(q, 'A', remote)[0]).toBe(2);
    q.assertConsistent();
  });
});

describe('SwarmPicker: started pieces first', () => {
  it('gives the rest of a started piece to the next connection before starting another', () => {
    const p = picker(8);
    const all = holding(8, range(0, 8));
    p.peerBitfield(all);
    const [first] = p.pick('A', all, gridBlocks(1));
    expect(first).toMatchObject({ begin: 0 });
    const [second] = p.pick('B', all, gridBlocks(1));
    expect(second).toEqual({ index: first!.index, begin: BLOCK, length: BLOCK });
    expect(p.stateOf(first!.index)).toBe('started');
  });

  it('blocks dropped by a choke go to the next connection before anything new', () => {
    const p = picker(8);
    const all = holding(8, range(0, 8));
    p.peerBitfield(all);
    const asked = p.pick('A', all, gridBlocks(4)); // two whole pieces
    p.requestsDropped('A', asked);
    expect(p.requestedOf('A')).toEqual([]);
    expect(p.pick('B', all, gridBlocks(4))).toEqual(asked);
  });

  it('a piece that fails its hash is wanted again, from anybody', () => {
    const p = picker(2);
    const all = holding(2, [0, 1]);
    p.peerBitfield(all);
    const blocks = p.pick('A', all, gridBlocks(2));
    const index = blocks[0]!.index;
    expect(p.blockReceived('A', index, 0, BLOCK).pieceComplete).toBe(false);
    expect(p.blockReceived('A', index, BLOCK, BLOCK).pieceComplete).toBe(true);
    expect(p.stateOf(index)).toBe('complete');
    p.pieceFailed(index);
    expect(p.stateOf(index)).toBe('queued');
    expect(p.pick('B', holding(2, [index]), gridBlocks(2)).map((b) => b.index)).toEqual([
      index,
      index,
    ]);
  });

  it('a verified piece is held and never picked again', () => {
    const p = picker(2);
    const all = holding(2, [0, 1]);
    p.peerBitfield(all);
    const [block] = p.pick('A', all, gridBlocks(2));
    const index = block!.index;
    p.blockReceived('A', index, 0, BLOCK);
    p.blockReceived('A', index, BLOCK, BLOCK);
    p.pieceVerified(index);
    expect(p.stateOf(index)).toBe('held');
    expect(p.pick('B', all, gridBlocks(10)).every((b) => b.index !== index)).toBe(true);
  });
});

describe('SwarmPicker: endgame', () => {
  it('asks a second connection for blocks already in flight once nothing is unasked, and cancels the loser', () => {
    const p = picker(2);
    const all = holding(2, [0, 1]);
    p.peerBitfield(all);
    p.peerBitfield(all);
    const fromA = p.pick('A', all, gridBlocks(3));
    expect(p.inEndgame).toBe(false); // one block is still unasked
    const fromB = p.pick('B', all, gridBlocks(10));
    expect(fromB).toHaveLength(1 + 3); // the last unasked block, then A's three again
    expect(p.inEndgame).toBe(true);
    expect(new Set(fromB.slice(1).map((b) => `${b.index}:${b.begin}`))).toEqual(
      new Set(fromA.map((b) => `${b.index}:${b.begin}`)),
    );

    const won = fromA[0]!;
    const outcome = p.blockReceived('B', won.index, won.begin, BLOCK);
    expect(outcome.accepted).toBe(true);
    expect(outcome.cancels).toEqual([{ peer: 'A', block: won }]);
    // A's copy crosses the cancel and arrives anyway: a duplicate, not kept, nothing to cancel.
    expect(p.blockReceived('A', won.index, won.begin, BLOCK)).toEqual({
      accepted: false,
      pieceComplete: false,
      cancels: [],
    });
  });

  it('spreads duplicates: every block gets a second source before any gets a third, up to the cap', () => {
    const p = picker(1, { endgameMaxRequesters: 2 });
    const all = holding(1, [0]);
    p.pick('A', all, gridBlocks(2));
    const fromB = p.pick('B', all, gridBlocks(1));
    const fromC = p.pick('C', all, gridBlocks(5));
    expect(fromC).toHaveLength(1); // the block B did not take; the other has its two requesters
    expect(fromC[0]!.begin).not.toBe(fromB[0]!.begin);
    expect(p.pick('D', all, gridBlocks(5))).toEqual([]);
  });

  it('a connection that goes away frees its requests for the others', () => {
    const p = picker(1);
    const all = holding(1, [0]);
    p.peerBitfield(all);
    p.peerBitfield(all);
    const fromA = p.pick('A', all, gridBlocks(2));
    p.peerGone('A', all, fromA);
    expect(p.availability(0)).toBe(1);
    expect(p.inEndgame).toBe(false);
    expect(p.pick('B', all, gridBlocks(2))).toEqual(fromA);
  });
});

describe('SwarmPicker: several grid blocks in one request', () => {
  const CHUNK = 102_400; // seven grid blocks: six of 16 KiB and one of 4 KiB
  const chunked = (pieces: number, extraBytes = 0) =>
    new SwarmPicker({
      geometry: new Geometry(pieces * CHUNK + extraBytes, CHUNK),
      held: new Bitfield(pieces + (extraBytes > 0 ? 1 : 0)),
      rng: seededRng(5),
      randomFirstPieces: 0,
    });

  it('asks a connection that takes whole pieces for one request per piece, up to its pipeline', () => {
    const p = chunked(30);
    const all = holding(30, range(0, 30));
    const asked = p.pick('S', all, { maxBytes: 128 * BLOCK, requestBytes: CHUNK });
    // 2 MiB of pipeline is 20.48 chunks: asking while under it takes 21, as the Downloader does.
    expect(asked).toHaveLength(21);
    for (const r of asked) expect(r).toMatchObject({ begin: 0, length: CHUNK });
    const outcome = p.blockReceived('S', asked[0]!.index, 0, CHUNK);
    expect(outcome).toEqual({ accepted: true, pieceComplete: true, cancels: [] });
  });

  it('covers the short last piece exactly', () => {
    const p = chunked(1, 20_000);
    const asked = p.pick('S', holding(2, [0, 1]), { maxBytes: 10 * CHUNK, requestBytes: CHUNK });
    expect(asked.map((r) => [r.index, r.length]).sort()).toEqual([
      [0, CHUNK],
      [1, 20_000],
    ]);
    expect(p.blockReceived('S', 1, 0, 20_000).pieceComplete).toBe(true);
    expect(p.blockReceived('S', 0, 100, CHUNK - 100).accepted, 'off the grid').toBe(false);
  });

  it('a choke that drops a whole-piece request frees all its blocks for a stock client', () => {
    const p = chunked(1);
    const all = holding(1, [0]);
    const [whole] = p.pick('S', all, { maxBytes: CHUNK, requestBytes: CHUNK });
    expect(p.pick('T', all, { maxBytes: CHUNK })).toHaveLength(7); // endgame duplicates
    p.requestsDropped('S', [whole!]);
    expect(p.requestedOf('S')).toEqual([]);
    expect(p.requestedOf('T')).toHaveLength(7);
    expect(p.inEndgame).toBe(true); // every block is still asked of T
  });

  it('in endgame, a grid block from a stock client cancels the whole-piece request that covered it', () => {
    const p = chunked(1);
    const all = holding(1, [0]);
    const [whole] = p.pick('S', all, { maxBytes: CHUNK, requestBytes: CHUNK });
    const dup = p.pick('T', all, { maxBytes: 3 * BLOCK });
    expect(dup.map((r) => r.begin)).toEqual([0, BLOCK, 2 * BLOCK]);
    const outcome = p.blockReceived('T', 0, 0, BLOCK);
    expect(outcome.cancels).toEqual([{ peer: 'S', block: whole }]);
    expect(p.requestedOf('S')).toEqual([]);
    // The four blocks only S was asked for are unasked again: not endgame any more.
    expect(p.inEndgame).toBe(false);
    const rest = p.pick('T', all, { maxBytes: CHUNK });
    expect(rest.map((r) => r.begin)).toEqual([3, 4, 5, 6].map((k) => k * BLOCK));
  });
});

describe('SwarmPicker under random traffic', () => {
  /**
   * Several connections pick, deliver in any order, get choked, fail hashes,
   * leave and come back, at random (seeded). After every step the picker's
   * own invariants hold and its view of each connection's requests equals
   * what the connection has in flight; in the end every piece is held.
   */
  it.each([1, 2, 3, 4, 5])('keeps its invariants and completes (seed %i)', (seed) => {
    const rng = seededRng(seed * 7919);
    const CHUNK = 5 * BLOCK + 3_000; // six grid blocks, the last short
    const pieces = 30;
    const geometry = new Geometry(pieces * CHUNK - 1_000, CHUNK);
    const p = new SwarmPicker({
      geometry,
      held: new Bitfield(geometry.pieceCount),
      rng: seededRng(seed),
      endgameMaxRequesters: 2,
    });
    const peers = ['a', 'b', 'c', 'd'].map((id, k) => ({
      id,
      // a and b have everything; c and d a random half
      has: holding(
        geometry.pieceCount,
        range(0, geometry.pieceCount).filter(() => k < 2 || rng() < 0.5),
      ),
      requestBytes: k % 2 === 0 ? BLOCK : CHUNK,
      inFlight: new Map<string, { index: number; begin: number; length: number }>(),
      connected: true,
    }));
    for (const peer of peers) p.peerBitfield(peer.has);
    const key = (r: { index: number; begin: number }) => `${r.index}:${r.begin}`;
    const held = new Set<number>();

    for (let step = 0; step < 20_000 && held.size < geometry.pieceCount; step++) {
      const peer = peers[Math.floor(rng() * peers.length)]!;
      const roll = rng();
      if (!peer.connected) {
        if (roll < 0.2) {
          peer.connected = true;
          p.peerBitfield(peer.has);
        }
      } else if (roll < 0.4) {
        const budget = { maxBytes: Math.ceil(rng() * 6) * BLOCK, requestBytes: peer.requestBytes };
        for (const r of p.pick(peer.id, peer.has, budget)) {
          expect(peer.has.has(r.index)).toBe(true);
          expect(peer.inFlight.has(key(r)), 'asked twice of one connection').toBe(false);
          peer.inFlight.set(key(r), r);
        }
      } else if (roll < 0.9 && peer.inFlight.size > 0) {
        const all = [...peer.inFlight.values()];
        const r = all[Math.floor(rng() * all.length)]!;
        peer.inFlight.delete(key(r));
        const outcome = p.blockReceived(peer.id, r.index, r.begin, r.length);
        for (const cancel of outcome.cancels) {
          const other = peers.find((q) => q.id === cancel.peer)!;
          expect(other.inFlight.delete(key(cancel.block)), 'cancel names a request in flight').toBe(
            true,
          );
        }
        if (outcome.pieceComplete) {
          if (rng() < 0.1) {
            p.pieceFailed(r.index);
          } else {
            p.pieceVerified(r.index);
            held.add(r.index);
          }
        }
      } else if (roll < 0.95) {
        p.requestsDropped(peer.id, peer.inFlight.values()); // choked
        peer.inFlight.clear();
      } else {
        p.peerGone(peer.id, peer.has, peer.inFlight.values());
        peer.inFlight.clear();
        peer.connected = false;
      }
      p.assertConsistent();
      for (const q of peers) {
        const picker = new Set(p.requestedOf(q.id).map(key));
        expect(picker, `step ${step}: ${q.id}'s requests`).toEqual(new Set(q.inFlight.keys()));
      }
    }
    expect(held.size).toBe(geometry.pieceCount);
    for (let i = 0; i < geometry.pieceCount; i++) expect(p.stateOf(i)).toBe('held');
  });
});

describe('SwarmPicker with candidates', () => {
  it('picks among the candidates in the order it picks without them (a sparse remote)', () => {
    // Two pickers in the same state: availability varies, ties are random on the same seed.
    const make = () => {
      const p = picker(30);
      for (let k = 0; k < 30; k++) for (let a = 0; a < k % 4; a++) p.peerHave(k);
      return p;
    };
    const few = [3, 7, 8, 12, 21, 22, 29];
    const remote = holding(30, few);
    const whole = pieceOrder(make(), 'x', remote);
    const sparse = make();
    const order: number[] = [];
    for (;;) {
      const blocks = sparse.pick('x', remote, { ...gridBlocks(2), candidates: few });
      if (blocks.length === 0) break;
      order.push(blocks[0]!.index);
    }
    expect(order).toEqual(whole);
    expect(new Set(order)).toEqual(new Set(few));
  });

  it('leaves out candidates held, started, or that the remote lacks', () => {
    const p = picker(10, { held: holding(10, [1]) });
    const remote = holding(10, [1, 2, 3]);
    p.pick('y', holding(10, [2]), gridBlocks(1)); // starts piece 2 with y
    const blocks = p.pick('x', remote, { ...gridBlocks(10), candidates: [1, 2, 3, 4] });
    // 2 is started: its other block first; then 3; never 1 (held) or 4 (not the remote's).
    expect(blocks.map((b) => b.index)).toEqual([2, 3, 3]);
  });
});

describe('SwarmPicker with suggestions (BEP 6)', () => {
  /** 12 pieces: 0-3 seen once, 4-11 twice; the remote has them all. */
  function twoLevels(options: Partial<SwarmPickerOptions> = {}): SwarmPicker {
    const p = picker(12, options);
    for (let k = 0; k < 12; k++) for (let a = 0; a < (k < 4 ? 1 : 2); a++) p.peerHave(k);
    return p;
  }
  const all = holding(12, range(0, 12));

  it('starts a suggested piece before the others equally rare', () => {
    const p = twoLevels();
    const first = p.pick('x', all, { ...gridBlocks(2), suggested: [2] });
    expect(first.map((b) => b.index)).toEqual([2, 2]);
    // Without the suggestion the same picker state starts some other piece of 0-3 first.
    const plain = twoLevels().pick('x', all, gridBlocks(2));
    expect(plain[0]!.index).toBeLessThan(4);
  });

  it('never over a rarer piece, nor over a started one', () => {
    const p = twoLevels();
    // 7 is commoner than 0-3: the hint is passed over.
    const blocks = p.pick('x', all, { ...gridBlocks(2), suggested: [7] });
    expect(blocks[0]!.index).toBeLessThan(4);
    // Half of a piece started by y comes before any suggestion.
    const q = twoLevels();
    q.pick('y', holding(12, [1]), gridBlocks(1));
    const next = q.pick('z', all, { ...gridBlocks(1), suggested: [3] });
    expect(next.map((b) => b.index)).toEqual([1]);
  });

  it('takes a suggestion outright among the random first pieces', () => {
    const p = twoLevels({ randomFirstPieces: 4 });
    const blocks = p.pick('x', all, { ...gridBlocks(2), suggested: [9] });
    expect(blocks.map((b) => b.index)).toEqual([9, 9]);
  });
});
