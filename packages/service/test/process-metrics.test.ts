/**
 * prom-client's process metrics start at a service's first scrape, not at
 * its start: their event-loop monitor (monitorEventLoopDelay, a 10 ms timer)
 * was most of an idle owner's or peer's CPU, and a service nobody scrapes
 * never needs it. A file of its own: they are made once per process.
 */
import { createRequire } from 'node:module';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createMetrics, DomainEvents } from '../src/index.js';

/** The module object prom-client calls through (a CommonJS require), so a spy on it is seen. */
const perfHooks = createRequire(import.meta.url)(
  'node:perf_hooks',
) as typeof import('node:perf_hooks');

afterEach(() => {
  vi.restoreAllMocks();
});

describe('process metrics', () => {
  it('start the event-loop monitor at the first scrape, once per process', async () => {
    const monitor = vi.spyOn(perfHooks, 'monitorEventLoopDelay');
    const a = createMetrics(new DomainEvents());
    const b = createMetrics(new DomainEvents());
    expect(monitor).not.toHaveBeenCalled();
    const text = await a.registry.metrics();
    expect(monitor).toHaveBeenCalledTimes(1);
    expect(text).toContain('nodejs_eventloop_lag_p99_seconds');
    expect(await b.registry.metrics()).toContain('process_cpu_seconds_total');
    expect(monitor).toHaveBeenCalledTimes(1);
    a.stop();
    b.stop();
  });
});
