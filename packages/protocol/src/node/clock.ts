import { type Clock, MONOTONIC_CLOCK, type TimerClock } from '../time/clock.js';

/**
 * The real clock: monotonic time (the same base as MONOTONIC_CLOCK) and
 * Node's timers, unref()'d, since only sockets should keep a service alive.
 */
export const systemClock: TimerClock = {
  now: MONOTONIC_CLOCK.now,
  setTimeout(fn, ms) {
    const timer = setTimeout(fn, ms);
    timer.unref();
    return { cancel: () => clearTimeout(timer) };
  },
  setInterval(fn, ms) {
    const timer = setInterval(fn, ms);
    timer.unref();
    return { cancel: () => clearInterval(timer) };
  },
};

/**
 * Wall-clock dates read from `clock`: anchored to Date.now() once, then
 * moving only as `clock` moves; given a time read from `clock` earlier, the
 * date it was then. Log stamps and `lastSeen` are dates, but a
 * service's one clock is monotonic (and a ManualClock in tests), so dates
 * are derived from it rather than read from a second clock that could not
 * be compared with it (or steered by a test).
 */
export function dateClock(clock: Clock): (atMs?: number) => Date {
  const epochMs = Date.now() - clock.now();
  return (atMs = clock.now()) => new Date(epochMs + atMs);
}
