/**
 * Peer exchange's policies on a ManualClock: what we tell a remote and how
 * often (PexSender), how often a remote may tell us (PexFloodGuard), and the
 * dial budget that keeps a PEX message from becoming a dialling flood
 * (PexDialBudget).
 */
import { ManualClock, OptionError, PEX_INTERVAL_MS, type PexPeer } from '@swarmdrop/protocol';
import { describe, expect, it } from 'vitest';
import {
  isDialable,
  PEX_DIAL_BURST,
  PEX_DIALS_PER_MESSAGE,
  PEX_DIALS_PER_MINUTE,
  PEX_DIALS_PER_SOURCE,
  PEX_MAX_RECEIVED_PER_INTERVAL,
  PexDialBudget,
  PexFloodGuard,
  PexSender,
} from '../src/swarm/pex-policy.js';

const peer = (i: number, flags = 0): PexPeer => ({
  host: `10.0.${i >> 8}.${i & 0xff}`,
  port: 6881,
  flags,
});
const labelOf = (p: { host: string; port: number }) => `${p.host}:${p.port}`;
const current = (ids: readonly number[]) => new Map(ids.map((i) => [labelOf(peer(i)), peer(i)]));
/** `count` distinct addresses, from `from` on. */
const added = (count: number, from = 1) => ({
  added: Array.from({ length: count }, (_, i) => peer(from + i)),
  dropped: [],
});

describe('PexSender', () => {
  it('lists the current peers first, then only what changed, at most once a minute', () => {
    const clock = new ManualClock();
    const sender = new PexSender(clock);
    expect(sender.next(current([1, 2]))?.added.map(labelOf)).toEqual([
      '10.0.0.1:6881',
      '10.0.0.2:6881',
    ]);
    // Changed, but a minute has not passed.
    clock.advance(PEX_INTERVAL_MS - 1);
    expect(sender.next(current([2, 3]))).toBeUndefined();
    clock.advance(1);
    expect(sender.next(current([2, 3]))).toEqual({
      added: [peer(3)],
      dropped: [{ host: '10.0.0.1', port: 6881 }],
    });
    // Nothing new: nothing sent, and the next change may go at once.
    clock.advance(PEX_INTERVAL_MS);
    expect(sender.next(current([2, 3]))).toBeUndefined();
    expect(sender.next(current([2, 3, 4]))?.added).toEqual([peer(4)]);
  });

  it('sends at most 50 added and 50 dropped in one message; the rest goes in the next', () => {
    const clock = new ManualClock();
    const sender = new PexSender(clock);
    const first = Array.from({ length: 70 }, (_, i) => i + 1);
    expect(sender.next(current(first))?.added).toHaveLength(50);
    clock.advance(PEX_INTERVAL_MS);
    const second = sender.next(current(first));
    expect(second?.added.map(labelOf)).toEqual(first.slice(50).map((i) => labelOf(peer(i))));
    clock.advance(PEX_INTERVAL_MS);
    const dropped = sender.next(current([]))?.dropped;
    expect(dropped).toHaveLength(50);
    clock.advance(PEX_INTERVAL_MS);
    expect(sender.next(current([]))?.dropped).toHaveLength(20);
  });

  it('sends nothing while there is nobody to list, and lists the first one at once', () => {
    const clock = new ManualClock();
    const sender = new PexSender(clock);
    expect(sender.next(current([]))).toBeUndefined();
    expect(sender.next(current([7]))?.added).toEqual([peer(7)]);
  });
});

describe('PexFloodGuard', () => {
  it('takes a few messages a minute and refuses one more', () => {
    const clock = new ManualClock();
    const guard = new PexFloodGuard(clock);
    for (let i = 0; i < PEX_MAX_RECEIVED_PER_INTERVAL; i++) {
      expect(guard.accept()).toBe(true);
      clock.advance(1_000);
    }
    expect(guard.accept()).toBe(false);
  });

  it('takes one a minute forever', () => {
    const clock = new ManualClock();
    const guard = new PexFloodGuard(clock);
    for (let i = 0; i < 100; i++) {
      expect(guard.accept()).toBe(true);
      clock.advance(PEX_INTERVAL_MS);
    }
  });
});

describe('PexDialBudget', () => {
  it('keeps at most PEX_DIALS_PER_MESSAGE addresses of one message', () => {
    const clock = new ManualClock();
    const budget = new PexDialBudget(clock);
    expect(budget.learn('a:1', added(50))).toBe(PEX_DIALS_PER_MESSAGE);
    expect(budget.take(1_000).map(labelOf)).toEqual(
      Array.from({ length: PEX_DIALS_PER_MESSAGE }, (_, i) => labelOf(peer(i + 1))),
    );
    // Handed out once: nothing is left of that message, at any time.
    clock.advance(10 * 60_000);
    expect(budget.take(1_000)).toEqual([]);
  });

  it('dials at most PEX_DIALS_PER_SOURCE of one source per window', () => {
    const clock = new ManualClock();
    const budget = new PexDialBudget(clock, { burst: 1_000, perMinute: 1_000_000 });
    let dialled = 0;
    for (let m = 0; m < 5; m++) {
      budget.learn('flooder:1', added(50, 1 + m * 50));
      dialled += budget.take(1_000).length;
    }
    expect(dialled).toBe(PEX_DIALS_PER_SOURCE);
    // Another source is not held back by the first one's budget.
    budget.learn('other:1', added(5, 5_000));
    expect(budget.take(1_000)).toHaveLength(5);
    // A window later the first source's waiting addresses may go.
    clock.advance(60_000);
    expect(budget.take(1_000).length).toBeGreaterThan(0);
  });

  it('dials at most PEX_DIAL_BURST at once and PEX_DIALS_PER_MINUTE a minute over all sources', () => {
    const clock = new ManualClock();
    const budget = new PexDialBudget(clock, { maxCandidates: 10_000 });
    for (let s = 0; s < 40; s++) budget.learn(`s${s}:1`, added(10, 1 + s * 10));
    expect(budget.take(1_000)).toHaveLength(PEX_DIAL_BURST);
    let total = PEX_DIAL_BURST;
    for (let second = 1; second <= 60; second++) {
      clock.advance(1_000);
      total += budget.take(1_000).length;
    }
    expect(total).toBe(PEX_DIAL_BURST + PEX_DIALS_PER_MINUTE);
  });

  it('hands out no more than the free slots; the rest waits for one', () => {
    const clock = new ManualClock();
    const budget = new PexDialBudget(clock);
    budget.learn('a:1', added(5));
    expect(budget.take(2)).toHaveLength(2);
    expect(budget.size).toBe(3);
    expect(budget.take(5)).toHaveLength(3);
  });

  it('skips addresses that are connected, being dialled, ourselves or not dialable', () => {
    const clock = new ManualClock();
    const budget = new PexDialBudget(clock);
    const message = {
      added: [
        peer(1),
        { host: '0.0.0.0', port: 1, flags: 0 },
        { host: '224.0.0.1', port: 1, flags: 0 },
        { host: '255.255.255.255', port: 1, flags: 0 },
        { host: 'ff02::1', port: 1, flags: 0 },
        peer(2),
        peer(3),
      ],
      dropped: [],
    };
    expect(budget.learn('a:1', message, (label) => label === labelOf(peer(2)))).toBe(2);
    // Connected meanwhile: leaves without a dial.
    expect(budget.take(10, (label) => label === labelOf(peer(1))).map(labelOf)).toEqual([
      labelOf(peer(3)),
    ]);
    expect(budget.size).toBe(0);
  });

  it('forgets an address its source says is dropped, and one that waited too long', () => {
    const clock = new ManualClock();
    const budget = new PexDialBudget(clock, { candidateTtlMs: 1_000 });
    budget.learn('a:1', added(3));
    budget.learn('b:1', { added: [], dropped: [{ host: '10.0.0.1', port: 6881 }] });
    expect(budget.size).toBe(3);
    budget.learn('a:1', { added: [], dropped: [{ host: '10.0.0.1', port: 6881 }] });
    expect(budget.size).toBe(2);
    clock.advance(1_001);
    expect(budget.take(10)).toEqual([]);
  });

  it('keeps at most maxCandidates waiting, dropping the oldest', () => {
    const clock = new ManualClock();
    const budget = new PexDialBudget(clock, { maxCandidates: 4, burst: 100 });
    budget.learn('a:1', added(3, 1));
    budget.learn('b:1', added(3, 10));
    expect(budget.size).toBe(4);
    expect(budget.take(10).map(labelOf)).toEqual([3, 10, 11, 12].map((i) => labelOf(peer(i))));
  });

  it('refuses a bad option naming it', () => {
    const clock = new ManualClock();
    expect(() => new PexDialBudget(clock, { perMessage: -1 })).toThrow(OptionError);
    expect(() => new PexDialBudget(clock, { perMinute: 0 })).toThrow(/perMinute/);
  });
});

describe('isDialable', () => {
  it.each([
    ['127.0.0.1', 1, true],
    ['10.1.2.3', 65_535, true],
    ['::1', 80, true],
    ['0.0.0.0', 80, false],
    ['239.1.1.1', 80, false],
    ['::', 80, false],
    ['1.2.3.4', 0, false],
    ['1.2.3', 80, false],
  ])('%s port %d: %s', (host, port, expected) => {
    expect(isDialable(host, port)).toBe(expected);
  });
});
