import type { Timer, TimerClock } from '@swarmdrop/protocol';
import { systemClock } from '@swarmdrop/protocol/node';

/**
 * Time as the peer sees it: protocol's TimerClock (one name, one meaning:
 * `Clock` is `now()` alone, a TimerClock also sets timers). Every timing
 * decision (fallback, stall cut, re-announce, backoff pauses, lingering)
 * reads one instead of the globals, so that unit tests drive it with
 * protocol's ManualClock; `systemClock` is the real one.
 */
export { systemClock, type Timer, type TimerClock };

/** Sleeps `ms` on `clock`, resolving false instead of throwing when `signal` aborts. */
export function pause(
  ms: number,
  signal: AbortSignal,
  clock: TimerClock = systemClock,
): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve(false);
      return;
    }
    const onAbort = () => {
      timer.cancel();
      resolve(false);
    };
    const timer = clock.setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
