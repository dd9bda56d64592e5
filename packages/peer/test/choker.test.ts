/**
 * The choker on a ManualClock and a seeded RNG: regular slots by rate,
 * optimistic rotation every 30 s favouring new connections, seed mode, and
 * anti-snubbing. No wall time anywhere.
 */

import { ManualClock, seededRng } from '@swarmdrop/protocol';
import { describe, expect, it } from 'vitest';
import {
  type ChokeCandidate,
  Choker,
  DEFAULT_OPTIMISTIC_INTERVAL_MS,
  DEFAULT_RECHOKE_INTERVAL_MS,
} from '../src/engine/choker.js';

const OLD = -1_000_000; // connected long ago: not new

function peer(id: string, fields: Partial<ChokeCandidate> = {}): ChokeCandidate {
  return {
    id,
    interested: true,
    downloadBytesPerSec: 0,
    uploadBytesPerSec: 0,
    connectedAtMs: OLD,
    amInterested: false,
    lastPieceAtMs: undefined,
    ...fields,
  };
}

function setup(seed = 1) {
  const clock = new ManualClock();
  const choker = new Choker({ clock, rng: seededRng(seed) });
  return { clock, choker };
}

describe('Choker: regular slots', () => {
  it('unchokes the four interested peers that upload to us fastest, plus one optimistic', () => {
    const { choker } = setup();
    const peers = [
      peer('slow', { downloadBytesPerSec: 10 }),
      peer('a', { downloadBytesPerSec: 500 }),
      peer('b', { downloadBytesPerSec: 400 }),
      peer('uninterested', { downloadBytesPerSec: 9_999, interested: false }),
      peer('c', { downloadBytesPerSec: 300 }),
      peer('d', { downloadBytesPerSec: 200 }),
      peer('slower', { downloadBytesPerSec: 5 }),
    ];
    const decision = choker.rechoke(peers, false);
    expect(decision.regular).toEqual(['a', 'b', 'c', 'd']);
    expect(['slow', 'slower']).toContain(decision.optimistic);
    expect(decision.unchoked).toEqual(new Set(['a', 'b', 'c', 'd', decision.optimistic]));
    expect(decision.unchoked.has('uninterested')).toBe(false);
  });

  it('unchokes everyone interested when there are fewer than the slots, with no optimistic left to draw', () => {
    const { choker } = setup();
    const decision = choker.rechoke(
      [peer('a'), peer('b'), peer('c', { interested: false })],
      false,
    );
    expect(new Set(decision.regular)).toEqual(new Set(['a', 'b']));
    expect(decision.optimistic).toBeUndefined();
  });

  it('follows the rates at each round: a peer that speeds up takes a slot', () => {
    const { clock, choker } = setup();
    const rates = { a: 500, b: 400, c: 300, d: 200, e: 1 };
    const round = () =>
      choker.rechoke(
        Object.entries(rates).map(([id, r]) => peer(id, { downloadBytesPerSec: r })),
        false,
      );
    expect(round().regular).not.toContain('e');
    rates.e = 1_000;
    clock.advance(DEFAULT_RECHOKE_INTERVAL_MS);
    expect(choker.isDue()).toBe(true);
    expect(round().regular[0]).toBe('e');
    expect(choker.isDue()).toBe(false);
  });

  it('as a seed, ranks by how fast each peer takes from us, not by what it sends', () => {
    const { choker } = setup();
    const peers = ['a', 'b', 'c', 'd', 'e', 'f'].map((id, k) =>
      peer(id, { uploadBytesPerSec: k * 100, downloadBytesPerSec: (6 - k) * 100 }),
    );
    expect(choker.rechoke(peers, true).regular).toEqual(['f', 'e', 'd', 'c']);
    expect(choker.rechoke(peers, false).regular).toEqual(['a', 'b', 'c', 'd']);
  });

  it('gives no regular slot to a peer that snubs us (no block for 60 s while we want its pieces)', () => {
    const { clock, choker } = setup();
    clock.advance(100_000);
    const peers = [
      peer('snubber', { downloadBytesPerSec: 9_000, amInterested: true, lastPieceAtMs: 30_000 }),
      peer('a', { downloadBytesPerSec: 500, amInterested: true, lastPieceAtMs: 99_000 }),
      peer('b', { downloadBytesPerSec: 400 }),
      peer('c', { downloadBytesPerSec: 300 }),
      peer('d', { downloadBytesPerSec: 200 }),
    ];
    const decision = choker.rechoke(peers, false);
    expect(decision.regular).toEqual(['a', 'b', 'c', 'd']);
    // Still eligible for the optimistic slot: a way back in.
    expect(decision.optimistic).toBe('snubber');
  });
});

describe('Choker: optimistic unchoke', () => {
  const crowd = () => [
    ...['a', 'b', 'c', 'd'].map((id) => peer(id, { downloadBytesPerSec: 1_000 })),
    ...['w', 'x', 'y', 'z'].map((id) => peer(id)),
  ];

  it('keeps the optimistic peer for 30 s across 10 s rounds, then rotates to another', () => {
    const { clock, choker } = setup(3);
    const seen: Array<string | undefined> = [];
    for (let round = 0; round < 12; round++) {
      seen.push(choker.rechoke(crowd(), false).optimistic);
      clock.advance(DEFAULT_RECHOKE_INTERVAL_MS);
    }
    // Rounds at 0, 10, 20 s share one; 30 s starts the next; and so on.
    for (let period = 0; period < 4; period++) {
      const slice = seen.slice(period * 3, period * 3 + 3);
      expect(new Set(slice).size, `period ${period}: ${slice}`).toBe(1);
      expect(['w', 'x', 'y', 'z']).toContain(slice[0]);
      if (period > 0) expect(slice[0], 'rotated').not.toBe(seen[period * 3 - 1]);
    }
  });

  it('draws a new one at once when the optimistic peer leaves or loses interest', () => {
    const { clock, choker } = setup();
    const first = choker.rechoke(crowd(), false).optimistic!;
    clock.advance(1_000);
    const without = crowd().filter((c) => c.id !== first);
    const next = choker.rechoke(without, false).optimistic;
    expect(next).toBeDefined();
    expect(next).not.toBe(first);
  });

  it('draws new connections three times as often as old ones', () => {
    const { clock, choker } = setup(7);
    const wins = new Map<string, number>();
    const rounds = 3_000;
    for (let k = 0; k < rounds; k++) {
      const candidates = [
        ...['a', 'b', 'c', 'd'].map((id) => peer(id, { downloadBytesPerSec: 1_000 })),
        peer('new', { connectedAtMs: clock.now() - 1_000 }),
        ...['o1', 'o2', 'o3'].map((id) => peer(id)),
      ];
      const { optimistic } = choker.rechoke(candidates, false);
      wins.set(optimistic!, (wins.get(optimistic!) ?? 0) + 1);
      clock.advance(DEFAULT_OPTIMISTIC_INTERVAL_MS);
    }
    // Weights 3:1:1:1, and the outgoing winner is passed over at each
    // rotation. After an old winner the draw is new:old:old = 3:1:1, so
    // new wins 3/5 of those; after 'new' an old one always wins. The
    // stationary share of 'new' is p = (1 - p) * 3/5, so p = 3/8 = 0.375 and
    // each old one gets 0.208. A draw ignoring age would give 0.25 each.
    const share = (id: string) => (wins.get(id) ?? 0) / rounds;
    expect(share('new')).toBeGreaterThan(0.345);
    expect(share('new')).toBeLessThan(0.405);
    for (const id of ['o1', 'o2', 'o3']) {
      expect(share(id)).toBeGreaterThan(0.178);
      expect(share(id)).toBeLessThan(0.238);
    }
  });
});
