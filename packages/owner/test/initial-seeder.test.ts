/**
 * Initial seeding (super-seeding): each piece goes out once before any goes
 * out twice, tracked per peer from offers, sends and haves. Pure, on a seeded
 * RNG.
 */
import { Bitfield, ManualClock, seededRng } from '@swarmdrop/protocol';
import { describe, expect, it } from 'vitest';
import { InitialSeeder, type InitialSeederOptions } from '../src/index.js';

function seeder(
  pieceCount: number,
  offersPerPeer = 4,
  seed = 1,
  more: Partial<InitialSeederOptions> = {},
): InitialSeeder {
  return new InitialSeeder({ pieceCount, offersPerPeer, rng: seededRng(seed), ...more });
}

function holding(size: number, ids: number[]): Bitfield {
  const field = new Bitfield(size);
  for (const i of ids) field.set(i);
  return field;
}

describe('InitialSeeder', () => {
  it('sends every piece once before any twice, while peers take turns and report what they got', () => {
    const n = 25;
    const s = seeder(n);
    const peers = ['a', 'b', 'c', 'd', 'e'];
    const holds = new Map(peers.map((p) => [p, new Set<number>()]));
    for (const p of peers) s.addPeer(p);
    const firstRound: number[] = [];
    for (let turn = 0; turn < 40; turn++) {
      const id = peers[turn % peers.length]!;
      const before = Array.from({ length: n }, (_, i) => s.timesOut(i));
      const mine = holds.get(id)!;
      for (const index of s.offers(id)) {
        // The invariant: nothing this peer could be offered has gone out fewer times.
        const could = before
          .map((times, i) => ({ times, i }))
          .filter(({ i }) => !mine.has(i) && !s.offeredTo(id).includes(i));
        const least = Math.min(before[index]!, ...could.map((c) => c.times));
        expect(before[index], `turn ${turn}: piece ${index} went out twice first`).toBe(least);
        before[index]!++;
        if (firstRound.length < n) firstRound.push(index);
      }
      // The peer downloads what it was offered, then announces it.
      for (const index of s.offeredTo(id)) {
        s.pieceSent(id, index);
        s.peerHas(id, index);
        mine.add(index);
      }
    }
    expect(firstRound.slice().sort((x, y) => x - y)).toEqual(
      Array.from({ length: n }, (_, i) => i),
    );
    const times = Array.from({ length: n }, (_, i) => s.timesOut(i));
    expect(Math.max(...times) - Math.min(...times)).toBeLessThanOrEqual(1);
  });

  it('keeps each peer at its number of offers in force, topping up as they are sent', () => {
    const s = seeder(20, 3);
    s.addPeer('a');
    const first = s.offers('a');
    expect(first).toHaveLength(3);
    expect(s.offers('a'), 'nothing new while three are in force').toEqual([]);
    s.pieceSent('a', first[0]!);
    const more = s.offers('a');
    expect(more).toHaveLength(1);
    expect(first).not.toContain(more[0]);
    expect(s.isOffered('a', more[0]!)).toBe(true);
    expect(s.isOffered('a', first[0]!), 'sent: no longer in force').toBe(false);
  });

  it('takes back the offers of a peer that leaves before they were sent', () => {
    const s = seeder(8, 4);
    s.addPeer('a');
    const offered = s.offers('a');
    s.removePeer('a');
    for (const i of offered) expect(s.timesOut(i)).toBe(0);
    s.addPeer('b');
    s.addPeer('c');
    const toB = s.offers('b');
    const toC = s.offers('c');
    // Eight pieces, none out: b and c get them all, disjoint.
    expect(new Set([...toB, ...toC]).size).toBe(8);
  });

  it('takes back an offer the peer filled from someone else first', () => {
    // No wait for first copies: this is about the withdrawal alone.
    const s = seeder(2, 1, 1, { firstCopyGraceMs: 0 });
    s.addPeer('a');
    s.addPeer('b');
    const [x] = s.offers('a');
    s.peerHas('a', x!); // it traded for it before asking us
    expect(s.timesOut(x!)).toBe(0);
    // Both pieces are at zero again; b does not hold x, so it can be offered x.
    expect(s.offers('b')).toHaveLength(1);
    const y = 1 - x!;
    expect(s.offers('a')).toEqual([y]);
  });

  it('never offers a piece the peer is known to hold', () => {
    const s = seeder(10, 4);
    s.addPeer('a');
    s.peerBitfield('a', holding(10, [0, 1, 2, 3, 4, 5, 6, 7]));
    expect(new Set(s.offers('a'))).toEqual(new Set([8, 9]));
    s.pieceSent('a', 8);
    s.pieceSent('a', 9);
    expect(s.offers('a')).toEqual([]);
  });

  it('among pieces gone out equally often, offers the one fewest peers hold', () => {
    const s = seeder(4, 1);
    s.addPeer('x');
    s.addPeer('y');
    s.peerBitfield('x', holding(4, [0, 1, 2]));
    s.peerBitfield('y', holding(4, [0, 1]));
    s.addPeer('new');
    expect(s.offers('new')).toEqual([3]);
    s.pieceSent('new', 3);
    expect(s.offers('new')).toEqual([2]);
  });

  it('breaks remaining ties at random, reproducibly for a seed', () => {
    const firstOffers = (seed: number) => {
      const s = seeder(50, 4, seed);
      s.addPeer('a');
      return s.offers('a');
    };
    expect(firstOffers(3)).toEqual(firstOffers(3));
    expect(firstOffers(3)).not.toEqual(firstOffers(4));
  });

  it('offers no second copy while a first copy is under way, until it is sent or its grace has passed', () => {
    const clock = new ManualClock();
    const s = seeder(3, 4, 1, { clock, firstCopyGraceMs: 2_000 });
    s.addPeer('a');
    s.addPeer('b');
    const toA = s.offers('a');
    expect(toA).toHaveLength(3); // every piece, each a first copy
    expect(s.offers('b'), 'b would only get second copies').toEqual([]);
    s.pieceSent('a', toA[0]!);
    expect(s.offers('b'), 'two first copies are still under way').toEqual([]);
    clock.advance(2_000);
    // Past the grace the slow first copies no longer hold the owner back.
    expect(s.offers('b')).toHaveLength(3);
  });

  it('stretches the grace to twice what first copies have been taking to leave (a slow link), never below the configured one', () => {
    const clock = new ManualClock();
    const s = seeder(8, 4, 1, { clock, firstCopyGraceMs: 2_000 });
    s.addPeer('a');
    s.addPeer('b');
    expect(s.currentGraceMs()).toBe(2_000);
    // On a slow link each first copy takes 3 s from offer to sent.
    const early = s.offers('a');
    expect(early).toHaveLength(4);
    clock.advance(3_000);
    for (const i of early) s.pieceSent('a', i);
    expect(s.currentGraceMs()).toBe(6_000);
    // The other four pieces, first copies, now under way to a.
    expect(s.offers('a')).toHaveLength(4);
    expect(s.offers('b'), 'only second copies are left').toEqual([]);
    clock.advance(3_000);
    expect(s.offers('b'), 'past the configured 2 s, within twice the usual 3 s').toEqual([]);
    clock.advance(3_001);
    expect(s.offers('b'), "a's first copies are late now").toHaveLength(4);
  });

  it('lets second copies out once every first copy has been sent', () => {
    const s = seeder(2, 4, 1, { clock: new ManualClock() });
    s.addPeer('a');
    s.addPeer('b');
    const toA = s.offers('a');
    for (const i of toA) s.pieceSent('a', i);
    expect(s.offers('b').sort()).toEqual([0, 1]);
  });

  it('shares the offers in force among the peers: fewer each as more join, at least one', () => {
    const s = seeder(1000, 4, 1, { offersInForce: 8 });
    s.addPeer('p0');
    expect(s.offers('p0')).toHaveLength(4);
    for (let i = 1; i < 4; i++) s.addPeer(`p${i}`);
    expect(s.offersPerPeerNow()).toBe(2);
    expect(s.offers('p1')).toHaveLength(2);
    for (let i = 4; i < 20; i++) s.addPeer(`p${i}`);
    expect(s.offersPerPeerNow()).toBe(1);
    expect(s.offers('p19')).toHaveLength(1);
    // p0 is above the share now: nothing new until it is below it.
    expect(s.offers('p0')).toEqual([]);
  });

  it('rejects a bad offersPerPeer, offersInForce or firstCopyGraceMs, naming it', () => {
    expect(() => seeder(4, 0)).toThrow(/offersPerPeer/);
    expect(() => seeder(4, 4, 1, { offersInForce: 0 })).toThrow(/offersInForce/);
    expect(() => seeder(4, 4, 1, { firstCopyGraceMs: -1 })).toThrow(/firstCopyGraceMs/);
  });
});
