import type { Timer, TimerClock } from './clock.js';

/** How often the peer re-announces to the owner's tracker (its `interval`). */
export const REANNOUNCE_MS = 30_000;

/**
 * Re-announces every `intervalMs` on `clock`, so the peer's tracker entry
 * stays fresh and stock clients joining later still find it. A round is
 * skipped while the previous announce is still running, and a failed
 * announce is forgotten: the next round tries again.
 */
export class Reannouncer {
  private timer: Timer | undefined;
  private running = false;

  constructor(
    private readonly clock: TimerClock,
    private readonly intervalMs: number,
    private readonly announce: () => Promise<unknown>,
  ) {}

  start(): void {
    this.timer ??= this.clock.setInterval(() => this.round(), this.intervalMs);
  }

  stop(): void {
    this.timer?.cancel();
    this.timer = undefined;
  }

  private round(): void {
    if (this.running) return;
    this.running = true;
    this.announce()
      .catch(() => {})
      .finally(() => {
        this.running = false;
      });
  }
}
