import { ManualClock } from '@swarmdrop/protocol';
import { describe, expect, it } from 'vitest';
import { REANNOUNCE_MS, Reannouncer } from '../src/index.js';

/** Lets the announce promises settle (they resolve on microtasks, not on the clock). */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('Reannouncer: keeping the tracker entry fresh', () => {
  it('announces every interval, the first one interval after start', async () => {
    const clock = new ManualClock(1_000_000);
    let calls = 0;
    const r = new Reannouncer(clock, REANNOUNCE_MS, async () => {
      calls++;
    });
    r.start();
    clock.advance(REANNOUNCE_MS - 1);
    expect(calls).toBe(0);
    clock.advance(1);
    expect(calls).toBe(1);
    await settle();
    clock.advance(2 * REANNOUNCE_MS);
    // The second round runs; the third falls due while the second is still running and is skipped.
    expect(calls).toBe(2);
    await settle();
    clock.advance(REANNOUNCE_MS);
    expect(calls).toBe(3);
    r.stop();
  });

  it('keeps going after a failed announce, and skips a round while one is still running', async () => {
    const clock = new ManualClock(1_000_000);
    const outcomes: Array<(ok: boolean) => void> = [];
    const r = new Reannouncer(
      clock,
      REANNOUNCE_MS,
      () =>
        new Promise((resolve, reject) => {
          outcomes.push((ok) => (ok ? resolve(undefined) : reject(new Error('owner down'))));
        }),
    );
    r.start();
    clock.advance(REANNOUNCE_MS);
    expect(outcomes).toHaveLength(1);
    clock.advance(REANNOUNCE_MS); // the first is still running: no second one piles up
    expect(outcomes).toHaveLength(1);
    outcomes[0]!(false);
    await settle();
    clock.advance(REANNOUNCE_MS);
    expect(outcomes).toHaveLength(2);
    r.stop();
  });

  it('stops: no timer left, no announce after stop', () => {
    const clock = new ManualClock(1_000_000);
    let calls = 0;
    const r = new Reannouncer(clock, REANNOUNCE_MS, async () => {
      calls++;
    });
    r.start();
    expect(clock.timers).toBe(1);
    r.stop();
    expect(clock.timers).toBe(0);
    clock.advance(10 * REANNOUNCE_MS);
    expect(calls).toBe(0);
  });
});
