/**
 * The peer's reports to the owner's dashboard on a ManualClock: as often as
 * the owner asks, but a report that says nothing new only once a minute.
 */
import { ManualClock } from '@swarmdrop/protocol';
import type { PeerReport } from '@swarmdrop/service';
import { describe, expect, it } from 'vitest';
import {
  DASHBOARD_REPORT_MS,
  DASHBOARD_UNCHANGED_REPORT_MS,
  DashboardReporter,
} from '../src/dashboard-reporter.js';
import { HttpStatusError } from '../src/owner-client.js';

/** A reporter whose owner answers with `answer` (its hint, or an error); `state.connections` is what it reports. */
function setup(answer: () => Promise<number | undefined>) {
  const clock = new ManualClock();
  const state = { connections: 0 };
  const posted: number[] = [];
  const abort = new AbortController();
  const reporter = new DashboardReporter({
    clock,
    report: (): PeerReport => ({
      port: 7001,
      connections: state.connections,
      done: true,
      links: [],
    }),
    post: () => {
      posted.push(clock.now());
      return answer();
    },
    signal: abort.signal,
  });
  /** Moves the clock in steps of `stepMs`, letting each answer settle. */
  const advance = async (ms: number, stepMs: number) => {
    for (let t = 0; t < ms; t += stepMs) {
      clock.advance(stepMs);
      await new Promise((resolve) => setImmediate(resolve));
    }
  };
  return { clock, state, posted, reporter, abort, advance };
}

describe('DashboardReporter', () => {
  it('sends a report that says nothing new only once a minute, and a changed one at once', async () => {
    // A finished peer in a quiet swarm repeated itself every 5 s, an HTTP request on both sides.
    const { state, posted, reporter, advance } = setup(async () => 5_000);
    reporter.start();
    await advance(DASHBOARD_REPORT_MS, DASHBOARD_REPORT_MS);
    expect(posted).toEqual([1_000]);
    await advance(DASHBOARD_UNCHANGED_REPORT_MS, 5_000);
    expect(posted).toEqual([1_000, 61_000]);
    state.connections = 1;
    await advance(5_000, 5_000);
    expect(posted).toEqual([1_000, 61_000, 66_000]);
    reporter.stop();
  });

  it("follows the owner's hint while the report changes", async () => {
    const { state, posted, reporter, advance } = setup(async () => 2_000);
    reporter.start();
    for (let i = 1; i <= 3; i++) {
      state.connections = i;
      await advance(i === 1 ? 1_000 : 2_000, 1_000);
    }
    expect(posted).toEqual([1_000, 3_000, 5_000]);
    reporter.stop();
  });

  it('stops for an owner that takes no reports, and retries after any other failure', async () => {
    const old = setup(() => Promise.reject(new HttpStatusError(404, 'report: HTTP 404')));
    old.reporter.start();
    await old.advance(10_000, 1_000);
    expect(old.posted).toEqual([1_000]);
    const busy = setup(() => Promise.reject(new HttpStatusError(503, 'report: HTTP 503')));
    busy.reporter.start();
    await busy.advance(3_000, 1_000);
    expect(busy.posted).toEqual([1_000, 2_000, 3_000]);
    busy.abort.abort();
    await busy.advance(10_000, 1_000);
    expect(busy.posted).toHaveLength(3);
    expect(busy.clock.timers).toBe(0);
  });
});
