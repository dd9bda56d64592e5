/**
 * One remote cannot flood the log (issue 10, item 5): lines it causes come
 * out of a per-address budget; the rest are counted and summarised in one
 * `log-suppressed` line per address. Time is a fake clock.
 */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, DEFAULT_LOG_BURST, LogLimiter, parseTextLine } from '../src/index.js';

describe('LogLimiter', () => {
  it('lets a burst through per address, then refills at the set rate', () => {
    const now = { value: 0 };
    const limiter = new LogLimiter({ now: () => now.value, burst: 3, perSecond: 2 });
    const from = (host: string) => ({ from: `${host}:6881` });
    const admitted = () => limiter.admit('have-received', from('10.0.0.1'));
    expect([admitted(), admitted(), admitted(), admitted(), admitted()]).toEqual([
      true,
      true,
      true,
      false,
      false,
    ]);
    // Another address has its own budget; lines naming no remote always pass.
    expect(limiter.admit('connected', { peer: '10.0.0.2:7001' })).toBe(true);
    expect(limiter.admit('merged', { path: '/x' })).toBe(true);
    // Our own transfer lines and decisions are never limited.
    expect(limiter.admit('chunk-sent', from('10.0.0.1'))).toBe(true);
    expect(limiter.admit('fallback', from('10.0.0.1'))).toBe(true);
    now.value += 1_000; // two tokens back
    expect([admitted(), admitted(), admitted()]).toEqual([true, true, false]);
    expect(limiter.flush()).toEqual([{ source: '10.0.0.1', count: 3, events: 'have-received:3' }]);
    expect(limiter.flush()).toEqual([]);
  });

  it('counts IPv6 addresses of one /64 as one source and tracks a bounded number of sources', () => {
    const now = { value: 0 };
    const limiter = new LogLimiter({ now: () => now.value, burst: 1, maxSources: 2 });
    expect(limiter.admit('connected', { peer: '[2001:db8::1]:1' })).toBe(true);
    expect(limiter.admit('connected', { peer: '[2001:db8::2]:1' })).toBe(false);
    const evicted: string[] = [];
    limiter.admit('connected', { peer: '10.0.0.1:1' });
    limiter.admit('connected', { peer: '10.0.0.2:1' }, (s) => evicted.push(s.source));
    // The /64's pending count was reported when it was forgotten to make room.
    expect(evicted).toEqual(['2001:db8:0:0::/64']);
  });
});

describe('createLogger with limits', () => {
  it('prints at most the burst of 50,000 lines one remote causes, then one summary line', async () => {
    const lines: string[] = [];
    let summary: () => void = () => {};
    const summarised = new Promise<void>((resolve) => {
      summary = resolve;
    });
    const stream = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        for (const line of chunk.toString().split('\n')) {
          if (line === '') continue;
          lines.push(line);
          if (parseTextLine(line)?.event === 'log-suppressed') summary();
        }
        callback();
      },
    });
    // A frozen clock: no tokens come back, so the count is exact.
    const frozen = new Date(Date.UTC(2030, 0, 1));
    const log = createLogger({
      role: 'owner',
      port: 1,
      format: 'text',
      stream,
      clock: () => frozen,
    });
    for (let i = 0; i < 50_000; i++)
      log.log('idlist-received', { from: '10.9.9.9:6881', chunks: 1 });
    log.log('connected', { peer: '10.0.0.7:7001', dir: 'in' });
    await summarised;
    const parsed = lines.map((l) => parseTextLine(l)!);
    expect(parsed.filter((l) => l.event === 'idlist-received')).toHaveLength(DEFAULT_LOG_BURST);
    expect(parsed.filter((l) => l.event === 'connected')).toHaveLength(1);
    const suppressed = parsed.filter((l) => l.event === 'log-suppressed');
    expect(suppressed).toHaveLength(1);
    expect(suppressed[0]!.fields).toEqual({
      from: '10.9.9.9',
      count: String(50_000 - DEFAULT_LOG_BURST),
      events: `idlist-received:${50_000 - DEFAULT_LOG_BURST}`,
    });
  });

  it('prints every line with limit: false', () => {
    let count = 0;
    const stream = new Writable({
      write(_chunk, _encoding, callback) {
        count++;
        callback();
      },
    });
    const log = createLogger({ role: 'peer', port: 1, format: 'json', stream, limit: false });
    for (let i = 0; i < DEFAULT_LOG_BURST + 10; i++)
      log.log('have-received', { from: '10.0.0.1:1' });
    expect(count).toBe(DEFAULT_LOG_BURST + 10);
  });
});
