import type { PeerReport } from '@swarmdrop/service';
import type { Timer, TimerClock } from './clock.js';
import { HttpStatusError } from './owner-client.js';

/**
 * How soon the peer first tells the owner's dashboard what it holds and whom
 * it trades with, and how often after that when the owner gives no hint
 * (an older owner); the owner's answer sets the next (DASHBOARD_REPORT_HEADER).
 */
export const DASHBOARD_REPORT_MS = 1_000;
/**
 * A report that says nothing the last one did not goes at most this often:
 * the owner already shows it, and an owner that restarted (and forgot us)
 * learns of us again within a minute. A finished peer in a quiet swarm
 * repeated itself every 5 s, an HTTP request on both sides each time.
 */
export const DASHBOARD_UNCHANGED_REPORT_MS = 60_000;

export interface DashboardReporterComponents {
  readonly clock: TimerClock;
  /** This peer's report now (the dashboard model's; it hands each event over once). */
  readonly report: () => PeerReport;
  /** Sends a report to the owner; resolves with its hint for the next one (ms), if it gave one. */
  readonly post: (report: PeerReport) => Promise<number | undefined>;
  /** The owner took the report (its events are told: the model stops resending them). */
  readonly accepted?: () => void;
  /** Aborting it stops the reports (the peer stopping, or failed). */
  readonly signal?: AbortSignal;
}

/**
 * Reports to the owner's dashboard, one at a time, as often as the owner's
 * answer says (every second while someone watches its dashboard), and only
 * when there is something new, or once a DASHBOARD_UNCHANGED_REPORT_MS. An
 * owner that takes no reports (404 or 405: an older one) is not asked again;
 * after a failed report the next comes in DASHBOARD_REPORT_MS.
 */
export class DashboardReporter {
  private readonly components: DashboardReporterComponents;
  private timer: Timer | undefined;
  private stopped = false;
  /** The owner's last hint: how often it wants to hear from us. */
  private everyMs = DASHBOARD_REPORT_MS;
  /** The last report the owner took, as sent, and when. */
  private lastSent: string | undefined;
  private lastSentAtMs = 0;

  constructor(components: DashboardReporterComponents) {
    this.components = components;
    if (components.signal?.aborted) this.stopped = true;
    components.signal?.addEventListener('abort', () => this.stop(), { once: true });
  }

  /** The first report in `ms` (DASHBOARD_REPORT_MS by default). */
  start(ms = DASHBOARD_REPORT_MS): void {
    this.schedule(ms);
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
    this.timer = undefined;
  }

  private schedule(ms: number): void {
    this.timer?.cancel();
    this.timer = this.stopped ? undefined : this.components.clock.setTimeout(() => this.send(), ms);
  }

  private send(): void {
    if (this.stopped) return;
    const report = this.components.report();
    const text = JSON.stringify(report);
    const now = this.components.clock.now();
    if (text === this.lastSent && now - this.lastSentAtMs < DASHBOARD_UNCHANGED_REPORT_MS) {
      this.schedule(this.everyMs);
      return;
    }
    this.components.post(report).then(
      (nextMs) => {
        this.components.accepted?.();
        this.lastSent = text;
        this.lastSentAtMs = now;
        this.everyMs = nextMs ?? DASHBOARD_REPORT_MS;
        this.schedule(this.everyMs);
      },
      (err: unknown) => {
        const status = err instanceof HttpStatusError ? err.status : 0;
        if (status !== 404 && status !== 405) this.schedule(DASHBOARD_REPORT_MS);
      },
    );
  }
}
