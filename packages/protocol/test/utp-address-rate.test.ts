import { describe, expect, it } from 'vitest';
import { AddressRate, ManualClock } from '../src/index.js';

describe('AddressRate', () => {
  it('gives each address a burst, then its rate, on the injected clock', () => {
    const clock = new ManualClock();
    const rate = new AddressRate({
      perSecond: 4,
      burst: 3,
      maxAddresses: 10,
      now: () => clock.now(),
    });
    const takes = (address: string, n: number) =>
      Array.from({ length: n }, () => rate.take(address)).filter(Boolean).length;
    expect(takes('a', 10)).toBe(3);
    expect(takes('b', 10)).toBe(3);
    clock.advance(500);
    expect(takes('a', 10)).toBe(2);
    clock.advance(60_000);
    expect(takes('a', 10)).toBe(3); // refilled to the burst, no more
    expect(rate.refused).toBe(7 + 7 + 8 + 7);
  });

  it('remembers at most maxAddresses, forgetting the one heard from least recently', () => {
    const clock = new ManualClock();
    const rate = new AddressRate({
      perSecond: 1,
      burst: 1,
      maxAddresses: 2,
      now: () => clock.now(),
    });
    expect(rate.take('a')).toBe(true);
    expect(rate.take('b')).toBe(true);
    expect(rate.take('a')).toBe(false); // a is now the most recent
    expect(rate.take('c')).toBe(true); // b goes
    expect(rate.size).toBe(2);
    expect(rate.take('a')).toBe(false);
    expect(rate.take('b')).toBe(true); // forgotten, so new again; c goes
    expect(rate.take('c')).toBe(true);
  });
});
