/** ManualClock: the one fake clock every scheduler test runs on. */
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../src/index.js';
import { dateClock, systemClock } from '../src/node/index.js';

describe('ManualClock', () => {
  it('runs each due timer at its own time, in order, and leaves later ones waiting', () => {
    const clock = new ManualClock(100);
    const seen: string[] = [];
    clock.setTimeout(() => seen.push(`b@${clock.now()}`), 20);
    clock.setTimeout(() => seen.push(`a@${clock.now()}`), 10);
    clock.setTimeout(() => seen.push(`c@${clock.now()}`), 50);
    clock.advance(30);
    expect(seen).toEqual(['a@110', 'b@120']);
    expect(clock.now()).toBe(130);
    expect(clock.timers).toBe(1);
  });

  it('repeats an interval until cancelled, and a cancelled timer never runs', () => {
    const clock = new ManualClock();
    const ticks: number[] = [];
    const interval = clock.setInterval(() => ticks.push(clock.now()), 10);
    const never = clock.setTimeout(() => ticks.push(-1), 5);
    never.cancel();
    clock.advance(35);
    interval.cancel();
    clock.advance(100);
    expect(ticks).toEqual([10, 20, 30]);
    expect(clock.timers).toBe(0);
  });

  it('refuses to go backwards', () => {
    expect(() => new ManualClock().advance(-1)).toThrow(RangeError);
  });

  it('names the next due time, past cancelled timers, for a simulation to step to', () => {
    const clock = new ManualClock(100);
    expect(clock.nextAt()).toBeUndefined();
    const early = clock.setTimeout(() => {}, 5);
    clock.setTimeout(() => {}, 50);
    clock.setInterval(() => {}, 20);
    expect(clock.nextAt()).toBe(105);
    early.cancel();
    expect(clock.nextAt()).toBe(120);
    expect(clock.timers).toBe(2);
    clock.advance(20);
    expect(clock.nextAt()).toBe(140);
  });

  it('runs many timers in time order whatever order they were set in', () => {
    const clock = new ManualClock();
    const ran: number[] = [];
    const delays = [70, 3, 55, 3, 91, 12, 40, 12, 0, 66, 25, 8];
    delays.forEach((ms, i) => {
      clock.setTimeout(() => ran.push(ms * 100 + i), ms);
    });
    clock.advance(100);
    const expected = delays.map((ms, i) => ms * 100 + i).sort((a, b) => a - b);
    expect(ran).toEqual(expected);
  });
});

describe('systemClock', () => {
  it('fires its timers and never goes backwards', async () => {
    const before = systemClock.now();
    await new Promise<void>((resolve) => systemClock.setTimeout(resolve, 5));
    expect(systemClock.now()).toBeGreaterThanOrEqual(before);
  });
});

describe('dateClock', () => {
  it('gives dates that move only as the clock moves, and the date of an earlier reading', () => {
    const clock = new ManualClock(5_000);
    const date = dateClock(clock);
    const start = date();
    const reading = clock.now();
    clock.advance(90_001);
    expect(date().getTime() - start.getTime()).toBe(90_001);
    expect(date(reading).getTime()).toBe(start.getTime());
    // Anchored to the wall clock when made, not to the clock's arbitrary origin.
    expect(Math.abs(start.getTime() - Date.now())).toBeLessThan(60_000);
  });
});
