/**
 * The shared token bucket behind --upload-limit and --download-limit, on a
 * ManualClock: every wake-up is a timer the test moves the clock past.
 */
import { describe, expect, it } from 'vitest';
import { formatRate, ManualClock, OptionError, parseRateLimit, RateLimiter } from '../src/index.js';
import { createWireLimits } from '../src/node/index.js';

/** A caller that sends `unit` bytes per turn, as PeerWire does: consume, and wait while in debt. */
function sender(limiter: RateLimiter, unit: number) {
  const state = { sent: 0, waiting: false };
  const turn = () => {
    state.waiting = false;
    limiter.consume(unit);
    state.sent += unit;
    if (limiter.blocked) {
      state.waiting = true;
      limiter.whenAvailable(turn);
    } else queueTurn();
  };
  // Not in debt: go again on the next turn of the clock, like a socket's next read.
  const queueTurn = () => {
    state.waiting = true;
    limiter.whenAvailable(turn);
  };
  return { state, start: turn };
}

describe('RateLimiter', () => {
  it('holds one sender to the limit over time, starting empty (no burst at start)', () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter({ clock, bytesPerSecond: 100_000 });
    const s = sender(limiter, 16_384);
    s.start();
    for (let ms = 0; ms < 10_000; ms += 10) clock.advance(10);
    // 10 s at 100 kB/s = 1 MB; at most one unit ahead of the limit, and never more than a unit behind.
    expect(s.state.sent).toBeGreaterThanOrEqual(1_000_000 - 16_384);
    expect(s.state.sent).toBeLessThanOrEqual(1_000_000 + 16_384);
    expect(limiter.total).toBe(s.state.sent);
  });

  it('shares one limit between connections, and none of them starves', () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter({ clock, bytesPerSecond: 200_000 });
    const big = sender(limiter, 131_072);
    const small = sender(limiter, 16_384);
    const tiny = sender(limiter, 100);
    big.start();
    small.start();
    tiny.start();
    for (let ms = 0; ms < 20_000; ms += 5) clock.advance(5);
    const total = big.state.sent + small.state.sent + tiny.state.sent;
    expect(total).toBeGreaterThanOrEqual(4_000_000 - 131_072);
    expect(total).toBeLessThanOrEqual(4_000_000 + 131_072 + 16_384 + 100);
    // Turns go round: each gets about as many turns as the others.
    const turns = [big.state.sent / 131_072, small.state.sent / 16_384, tiny.state.sent / 100];
    for (const t of turns) expect(t).toBeGreaterThan(Math.max(...turns) / 2);
  });

  it('saves up at most burstMs of tokens while idle', () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter({ clock, bytesPerSecond: 1_000, burstMs: 500 });
    expect(limiter.available).toBe(0);
    clock.advance(200);
    expect(limiter.available).toBeCloseTo(200);
    clock.advance(60_000);
    expect(limiter.available).toBe(500);
    limiter.consume(2_000);
    expect(limiter.blocked).toBe(true);
    expect(limiter.available).toBe(-1_500);
  });

  it('wakes a waiter only once the debt is paid, on a later turn even when not in debt', () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter({ clock, bytesPerSecond: 1_000 });
    let woken = 0;
    limiter.whenAvailable(() => woken++);
    expect(woken).toBe(0); // not inside the caller's own turn
    clock.advance(0);
    expect(woken).toBe(1);
    limiter.consume(1_000);
    limiter.whenAvailable(() => woken++);
    clock.advance(999);
    expect(woken).toBe(1);
    clock.advance(1);
    expect(woken).toBe(2);
    expect(clock.timers).toBe(0);
  });

  it('a cancelled waiter is never woken, and close() drops every waiter and timer', () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter({ clock, bytesPerSecond: 1_000 });
    limiter.consume(500);
    let woken = 0;
    const cancel = limiter.whenAvailable(() => woken++);
    limiter.whenAvailable(() => woken++);
    cancel();
    clock.advance(500);
    expect(woken).toBe(1);
    limiter.consume(500);
    limiter.whenAvailable(() => woken++);
    limiter.close();
    expect(limiter.waiting).toBe(0);
    expect(clock.timers).toBe(0);
    clock.advance(10_000);
    expect(woken).toBe(1);
  });

  it('rejects a limit that is not a positive number', () => {
    const clock = new ManualClock();
    expect(() => new RateLimiter({ clock, bytesPerSecond: 0 })).toThrow(RangeError);
    expect(() => new RateLimiter({ clock, bytesPerSecond: Number.NaN })).toThrow(RangeError);
    expect(() => new RateLimiter({ clock, bytesPerSecond: 1, burstMs: -1 })).toThrow(RangeError);
  });
});

describe('parseRateLimit', () => {
  it.each([
    ['0', 0],
    ['1500000', 1_500_000],
    ['500k', 500_000],
    ['500K', 500_000],
    ['500kB', 500_000],
    ['2M', 2_000_000],
    ['2MB/s', 2_000_000],
    ['1.5M', 1_500_000],
    ['1G', 1_000_000_000],
    ['10MiB', 10 * 1024 * 1024],
    ['64Ki', 65_536],
    ['1 MiB/s', 1_048_576],
    ['1GiB', 1024 ** 3],
  ])('reads %s as %d bytes/s', (text, bytes) => {
    expect(parseRateLimit(text, '--upload-limit')).toBe(bytes);
  });

  it.each(['', 'fast', '-1M', '2X', '1e6', '500kb', '5 M B', '0.5', '2000T'])(
    'rejects %j with one line naming the flag',
    (text) => {
      let error: unknown;
      try {
        parseRateLimit(text, '--download-limit');
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(OptionError);
      expect((error as OptionError).code).toBe('ERR_OPTION');
      expect((error as OptionError).message).toMatch(/^--download-limit: /);
      expect((error as OptionError).message).not.toContain('\n');
    },
  );
});

describe('formatRate', () => {
  it('prints IEC units', () => {
    expect(formatRate(0)).toBe('0 B/s');
    expect(formatRate(1_048_576)).toBe('1.00 MiB/s');
    expect(formatRate(1_536)).toBe('1.50 KiB/s');
    expect(formatRate(200 * 1024)).toBe('200 KiB/s');
  });
});

describe('createWireLimits', () => {
  it('makes a bucket per limited direction, none for 0 or undefined, and refuses a negative limit', () => {
    const clock = new ManualClock();
    const none = createWireLimits({ clock, uploadLimitBytesPerSecond: 0 });
    expect(none.upload).toBeUndefined();
    expect(none.download).toBeUndefined();
    const both = createWireLimits({
      clock,
      uploadLimitBytesPerSecond: 1_000,
      downloadLimitBytesPerSecond: 2_000,
    });
    expect(both.upload?.bytesPerSecond).toBe(1_000);
    expect(both.download?.bytesPerSecond).toBe(2_000);
    expect(() => createWireLimits({ clock, downloadLimitBytesPerSecond: -5 })).toThrow(
      /downloadLimitBytesPerSecond must be 0 \(no limit\) or a positive number, not -5/,
    );
    expect(() => createWireLimits({ clock, uploadLimitBytesPerSecond: Number.NaN })).toThrow(
      RangeError,
    );
  });
});
