/**
 * The timing decisions behind the fallback to the owner and the stall cut,
 * on a clock the test moves by hand: what the real-socket tests
 * (stalled-neighbour, neighbour-killed, corrupt-neighbour) can only show
 * end to end is pinned here to the millisecond.
 */
import { ManualClock } from '@swarmdrop/protocol';
import { describe, expect, it } from 'vitest';
import { FallbackPolicy } from '../src/index.js';

const WINDOW_MS = 1_500;

function setup(): { clock: ManualClock; policy: FallbackPolicy } {
  const clock = new ManualClock(1_000_000);
  return { clock, policy: new FallbackPolicy(WINDOW_MS, clock) };
}

describe('FallbackPolicy: when to fall back to the owner', () => {
  it('is due after fallbackAfterMs with no progress, and not a millisecond before', () => {
    const { clock, policy } = setup();
    clock.advance(WINDOW_MS - 1);
    expect(policy.fallbackDue()).toBe(false);
    expect(policy.idleMs()).toBe(WINDOW_MS - 1);
    clock.advance(1);
    expect(policy.fallbackDue()).toBe(true);
  });

  it('restarts the full period on progress', () => {
    const { clock, policy } = setup();
    clock.advance(WINDOW_MS - 100);
    policy.restart(); // a chunk from the neighbour
    clock.advance(WINDOW_MS - 1);
    expect(policy.fallbackDue()).toBe(false);
    clock.advance(1);
    expect(policy.fallbackDue()).toBe(true);
  });

  // Bug pinned here: every reconnect of a neighbour restarted the fallback
  // clock, so one that was cut for bad chunks every few hundred ms postponed
  // the fallback until it had spoiled every missing chunk.
  it('a neighbour that reconnects without delivering does not postpone it', () => {
    const { clock, policy } = setup();
    const neighbour = policy.neighbour();
    neighbour.connected(); // the first handshake starts a full period
    for (let i = 0; i < 10; i++) {
      clock.advance(WINDOW_MS / 5);
      neighbour.ended(false);
      neighbour.connected();
    }
    expect(policy.fallbackDue()).toBe(true);
  });

  it('a link that delivered earns the next handshake a fresh period', () => {
    const { clock, policy } = setup();
    const neighbour = policy.neighbour();
    neighbour.connected();
    clock.advance(WINDOW_MS - 1);
    neighbour.ended(true);
    clock.advance(WINDOW_MS - 1);
    neighbour.connected();
    clock.advance(WINDOW_MS - 1);
    expect(policy.fallbackDue()).toBe(false);
    clock.advance(1);
    expect(policy.fallbackDue()).toBe(true);
  });
});

describe('FallbackPolicy: when a link is stalled', () => {
  it('cuts a link with requests out and no block for the window, reporting how long', () => {
    const { clock, policy } = setup();
    const openedAt = clock.now();
    clock.advance(WINDOW_MS - 1);
    expect(policy.stalledMs({ inFlight: 3, lastBlockAt: 0, openedAt })).toBeUndefined();
    clock.advance(1);
    expect(policy.stalledMs({ inFlight: 3, lastBlockAt: 0, openedAt })).toBe(WINDOW_MS);
  });

  it('counts from the last block, not from the opening', () => {
    const { clock, policy } = setup();
    const openedAt = clock.now();
    clock.advance(10_000);
    const lastBlockAt = clock.now();
    clock.advance(WINDOW_MS - 1);
    expect(policy.stalledMs({ inFlight: 1, lastBlockAt, openedAt })).toBeUndefined();
    clock.advance(1);
    expect(policy.stalledMs({ inFlight: 1, lastBlockAt, openedAt })).toBe(WINDOW_MS);
  });

  it('never cuts a link with nothing requested, however long it is quiet', () => {
    const { clock, policy } = setup();
    const openedAt = clock.now();
    clock.advance(100 * WINDOW_MS);
    expect(policy.stalledMs({ inFlight: 0, lastBlockAt: 0, openedAt })).toBeUndefined();
  });
});

// Bug pinned here: on the real (monotonic, sub-millisecond) clock the stall
// cut logged "no block in 1749.88 ms", which the log's integer fields and
// the tests reading them did not expect.
describe('FallbackPolicy on a sub-millisecond clock', () => {
  it('reports idle and stalled times in whole milliseconds', () => {
    const clock = new ManualClock(1_000_000.25);
    const policy = new FallbackPolicy(WINDOW_MS, clock);
    const openedAt = clock.now();
    clock.advance(WINDOW_MS + 0.5);
    expect(policy.idleMs()).toBe(WINDOW_MS);
    expect(policy.stalledMs({ inFlight: 1, lastBlockAt: 0, openedAt })).toBe(WINDOW_MS);
  });
});
