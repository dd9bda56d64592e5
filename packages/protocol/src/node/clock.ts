import { MONOTONIC_CLOCK, type TimerClock } from '../swarm/clock.js';

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
