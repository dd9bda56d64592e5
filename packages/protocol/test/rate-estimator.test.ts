/**
 * RateEstimator and the injected clock: rates are computed on a ManualClock,
 * so these tests never wait on wall time.
 */
import { describe, expect, it } from 'vitest';
import { ManualClock, RateEstimator, randomBelow, seededRng, TypedEmitter } from '../src/index.js';

describe('RateEstimator', () => {
  it('averages a steady flow over the window', () => {
    const clock = new ManualClock();
    const rate = new RateEstimator({ clock, windowMs: 4_000, bucketMs: 500 });
    for (let t = 0; t < 20; t++) {
      rate.record(1_000); // 1000 bytes every 250 ms = 4000 B/s
      clock.advance(250);
    }
    expect(rate.bytesPerSecond()).toBeCloseTo(4_000, -2);
    expect(rate.total).toBe(20_000);
  });

  it('forgets traffic older than the window, so a link that stops falls to zero', () => {
    const clock = new ManualClock();
    const rate = new RateEstimator({ clock, windowMs: 2_000, bucketMs: 500 });
    rate.record(50_000);
    clock.advance(1_000);
    expect(rate.bytesPerSecond()).toBeGreaterThan(0);
    clock.advance(2_000);
    expect(rate.bytesPerSecond()).toBe(0);
    expect(rate.total).toBe(50_000);
  });

  it('follows a link that slows down within one window', () => {
    const clock = new ManualClock();
    const rate = new RateEstimator({ clock, windowMs: 2_000, bucketMs: 250 });
    for (let t = 0; t < 40; t++) {
      rate.record(10_000);
      clock.advance(100);
    }
    const fast = rate.bytesPerSecond();
    for (let t = 0; t < 20; t++) {
      rate.record(100);
      clock.advance(100);
    }
    expect(fast).toBeCloseTo(100_000, -4);
    expect(rate.bytesPerSecond()).toBeLessThan(fast / 50);
  });

  it('averages a young link over its own age, not the whole window', () => {
    const clock = new ManualClock(5_000);
    const rate = new RateEstimator({ clock, windowMs: 10_000, bucketMs: 500 });
    clock.advance(1_000);
    rate.record(100_000);
    expect(rate.bytesPerSecond()).toBeCloseTo(100_000);
  });

  it('rejects a window shorter than a bucket', () => {
    expect(
      () => new RateEstimator({ clock: new ManualClock(), windowMs: 100, bucketMs: 500 }),
    ).toThrow(/windowMs/);
  });
});

describe('seededRng', () => {
  it('repeats its sequence for a seed and differs between seeds', () => {
    const take = (seed: number) => {
      const rng = seededRng(seed);
      return Array.from({ length: 5 }, () => rng());
    };
    expect(take(7)).toEqual(take(7));
    expect(take(7)).not.toEqual(take(8));
    for (const x of take(9)) expect(x >= 0 && x < 1).toBe(true);
  });

  it('randomBelow covers [0, n) and nothing else', () => {
    const rng = seededRng(1);
    const seen = new Set<number>();
    for (let k = 0; k < 200; k++) seen.add(randomBelow(rng, 4));
    expect([...seen].sort()).toEqual([0, 1, 2, 3]);
  });
});

describe('TypedEmitter', () => {
  class Source extends TypedEmitter<{ ping: (n: number) => void }> {
    errors: unknown[] = [];
    constructor() {
      super();
      this.onListenerError = (error) => this.errors.push(error);
    }
    fire(n: number) {
      this.emit('ping', n);
    }
  }

  it('delivers to every listener even when one throws, and once() fires once', () => {
    const source = new Source();
    const got: number[] = [];
    source.on('ping', () => {
      throw new Error('bad listener');
    });
    source.on('ping', (n) => got.push(n));
    source.once('ping', (n) => got.push(n * 100));
    source.fire(1);
    source.fire(2);
    expect(got).toEqual([1, 100, 2]);
    expect(source.errors).toHaveLength(2);
  });

  it('on() returns an unsubscribe', () => {
    const source = new Source();
    const got: number[] = [];
    const off = source.on('ping', (n) => got.push(n));
    source.fire(1);
    off();
    source.fire(2);
    expect(got).toEqual([1]);
    expect(source.listenerCount('ping')).toBe(0);
  });
});
