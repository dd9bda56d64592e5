/**
 * Time as the peer sees it. Every timing decision (fallback, stall cut,
 * re-announce, backoff pauses, lingering) reads this instead of the globals,
 * so that unit tests can drive it by hand; `systemClock` is the real one.
 */
export interface Clock {
  /** Milliseconds since the epoch (or since any fixed origin: only differences are used). */
  now(): number;
  /** Runs `fn` once after `ms`. The timer does not keep the process alive. */
  setTimeout(fn: () => void, ms: number): Timer;
  /** Runs `fn` every `ms` until cancelled. The timer does not keep the process alive. */
  setInterval(fn: () => void, ms: number): Timer;
}

export interface Timer {
  cancel(): void;
}

/** The wall clock and Node's timers, unref()'d: only sockets keep a peer alive. */
export const systemClock: Clock = {
  now: () => Date.now(),
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

/** Sleeps `ms` on `clock`, resolving false instead of throwing when `signal` aborts. */
export function pause(
  ms: number,
  signal: AbortSignal,
  clock: Clock = systemClock,
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
