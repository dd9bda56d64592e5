/**
 * The Redialer on a ManualClock: when a failed dial is tried again, how
 * often, for how many addresses, and when it gives up.
 */
import { ManualClock, OptionError } from '@swarmdrop/protocol';
import { describe, expect, it } from 'vitest';
import { DEFAULT_REDIAL_ATTEMPTS, REDIAL_MAX_DELAY_MS, Redialer } from '../src/swarm/redialer.js';

/** A redialer whose jitter is fixed by `rng`, and the times at which it redialled each address. */
function setup(options: { maxAddresses?: number; rng?: () => number } = {}) {
  const clock = new ManualClock();
  const redialer = new Redialer(
    { clock, rng: options.rng ?? (() => 0.5) },
    { maxAddresses: options.maxAddresses ?? 10 },
  );
  const redials: string[] = [];
  /** Fails `address`, and fails it again each time it is redialled. */
  const alwaysFailing = (address: string) => {
    const redial = () => {
      redials.push(`${address}@${clock.now()}`);
      redialer.failed(address, redial);
    };
    return redialer.failed(address, redial);
  };
  return { clock, redialer, redials, alwaysFailing };
}

describe('Redialer', () => {
  it('retries a failing address with doubling waits, then forgets it', () => {
    const { clock, redialer, redials, alwaysFailing } = setup();
    expect(alwaysFailing('10.0.0.1:6881')).toBe(true);
    clock.advance(60_000);
    // rng 0.5 is no jitter: 250 ms doubling, capped at REDIAL_MAX_DELAY_MS.
    expect(redials).toEqual(
      [250, 750, 1_750, 3_750, 7_750, 15_750].map((t) => `10.0.0.1:6881@${t}`),
    );
    expect(redials).toHaveLength(DEFAULT_REDIAL_ATTEMPTS);
    expect(REDIAL_MAX_DELAY_MS).toBe(8_000);
    expect(redialer.size).toBe(0);
    expect(redialer.isWaiting('10.0.0.1:6881')).toBe(false);
    // Listed again after it was forgotten: it starts afresh.
    expect(alwaysFailing('10.0.0.1:6881')).toBe(true);
    clock.advance(250);
    expect(redials.at(-1)).toBe('10.0.0.1:6881@60250');
  });

  it('jitters each wait within ±20%', () => {
    const low = setup({ rng: () => 0 });
    low.alwaysFailing('a:1');
    low.clock.advance(60_000);
    expect(low.redials).toEqual([200, 600, 1_400, 3_000, 6_200, 12_600].map((t) => `a:1@${t}`));
    const high = setup({ rng: () => 0.999_999 });
    high.alwaysFailing('a:1');
    high.clock.advance(60_000);
    expect(high.redials).toEqual([300, 900, 2_100, 4_500, 9_300, 18_900].map((t) => `a:1@${t}`));
  });

  it('retries at most maxAddresses addresses at once', () => {
    const { clock, redialer, redials, alwaysFailing } = setup({ maxAddresses: 2 });
    expect(alwaysFailing('a:1')).toBe(true);
    expect(alwaysFailing('b:1')).toBe(true);
    expect(alwaysFailing('c:1')).toBe(false);
    expect(redialer.size).toBe(2);
    clock.advance(250);
    expect(redials).toEqual(['a:1@250', 'b:1@250']);
    // Once one is forgotten there is room again.
    redialer.forget('a:1');
    expect(alwaysFailing('c:1')).toBe(true);
  });

  it('forgets an address that connected, and cancels everything on close', () => {
    const { clock, redialer, redials, alwaysFailing } = setup();
    alwaysFailing('a:1');
    alwaysFailing('b:1');
    expect(redialer.isWaiting('a:1')).toBe(true);
    redialer.forget('a:1');
    expect(redialer.isWaiting('a:1')).toBe(false);
    clock.advance(250);
    expect(redials).toEqual(['b:1@250']);
    redialer.close();
    clock.advance(60_000);
    expect(redials).toEqual(['b:1@250']);
    expect(redialer.failed('c:1', () => {})).toBe(false);
    expect(clock.timers).toBe(0);
  });

  it('refuses bad bounds, naming the field', () => {
    const clock = new ManualClock();
    expect(() => new Redialer({ clock }, { maxAddresses: -1 })).toThrow(OptionError);
    expect(() => new Redialer({ clock }, { maxAddresses: 1, maxAttempts: 1.5 })).toThrow(
      /maxAttempts/,
    );
    expect(() => new Redialer({ clock }, { maxAddresses: 1, maxDelayMs: 0 })).toThrow(/maxDelayMs/);
  });
});
