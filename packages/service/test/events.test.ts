import { describe, expect, it } from 'vitest';
import { DomainEvents, type LogEventName, type LogFields, subscribeLog } from '../src/index.js';

describe('DomainEvents', () => {
  it('delivers typed fields to each subscriber, and the log prints them as one line each', () => {
    const events = new DomainEvents();
    const lines: Array<[LogEventName, LogFields]> = [];
    const off = subscribeLog(events, { log: (event, fields) => lines.push([event, fields]) });
    const held: number[] = [];
    events.on('chunk-received', (e) => held.push(e.chunk));

    events.publish('chunk-received', {
      chunk: 7,
      from: '127.0.0.1:7002',
      bytes: 100,
      via: 'swarm',
    });
    events.publish('have-sent', { chunk: 7, to: '127.0.0.1:7003' });
    off();
    events.publish('done', { path: '/tmp/x' });

    expect(held).toEqual([7]);
    expect(lines).toEqual([
      ['chunk-received', { chunk: 7, from: '127.0.0.1:7002', bytes: 100, via: 'swarm' }],
      ['have-sent', { chunk: 7, to: '127.0.0.1:7003' }],
    ]);
  });
});
