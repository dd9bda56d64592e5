/**
 * The stdout log's queue without a real stdout: a fake reader that takes
 * what it is told to (or nothing: EAGAIN), a ManualClock for the retry and
 * flush timers, and the end of the event loop's turn run by hand.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ManualClock } from '@swarmdrop/protocol';
import { describe, expect, it } from 'vitest';
import {
  BoundedWriter,
  LOG_COALESCE_BYTES,
  LOG_COALESCE_MS,
  LOG_FLUSH_TIMEOUT_MS,
  LOG_RETRY_MAX_MS,
} from '../src/index.js';

const WRITER = fileURLToPath(new URL('../dist/log/bounded-writer.js', import.meta.url));

/** A pipe's reader: `room` bytes fit now (Infinity: all); each write(2) is recorded. */
class FakeReader {
  room = Number.POSITIVE_INFINITY;
  text = '';
  writes = 0;
  failWith: string | undefined;

  readonly write = (data: Buffer): number => {
    this.writes++;
    if (this.failWith) throw Object.assign(new Error(this.failWith), { code: this.failWith });
    if (this.room === 0) throw Object.assign(new Error('EAGAIN'), { code: 'EAGAIN' });
    const n = Math.min(this.room, data.length);
    this.room -= n;
    this.text += data.subarray(0, n).toString();
    return n;
  };

  lines(): string[] {
    return this.text.split('\n').filter(Boolean);
  }
}

function setup(maxBytes = 1000) {
  const clock = new ManualClock();
  const reader = new FakeReader();
  const turns: Array<() => void> = [];
  const writer = new BoundedWriter({
    write: reader.write,
    maxBytes,
    clock,
    defer: (fn) => turns.push(fn),
    sleepSync: (ms) => clock.advance(ms),
  });
  /** Ends the event loop's turn: runs what was deferred to it. */
  const endTurn = () => {
    for (const fn of turns.splice(0)) fn();
  };
  return { clock, reader, writer, endTurn };
}

/** `n` lines of exactly 10 bytes: `line 0001\n`. */
const line = (i: number) => `line ${String(i).padStart(4, '0')}\n`;

describe('BoundedWriter', () => {
  it('writes the lines of one turn in one write, at its end, in order', () => {
    const { reader, writer, endTurn } = setup();
    for (let i = 0; i < 5; i++) expect(writer.write(line(i))).toBe(true);
    expect(reader.writes).toBe(0);
    endTurn();
    expect(reader.writes).toBe(1);
    expect(reader.lines()).toEqual([0, 1, 2, 3, 4].map((i) => line(i).trim()));
    expect(writer.pendingBytes).toBe(0);
  });

  it('never waits for a reader that is behind: the rest is kept, in order, and tried again on the clock', () => {
    const { clock, reader, writer, endTurn } = setup();
    reader.room = 25; // two lines and a half fit
    for (let i = 0; i < 6; i++) writer.write(line(i));
    endTurn();
    expect(reader.text).toBe(`${line(0)}${line(1)}line `);
    expect(writer.pendingBytes).toBe(35);
    // Nothing more fits: each try fails with EAGAIN, later each time, up to LOG_RETRY_MAX_MS.
    clock.advance(1000);
    const tries = reader.writes;
    clock.advance(10 * LOG_RETRY_MAX_MS);
    expect(reader.writes - tries).toBe(10);
    // The reader reads again: the next try writes the rest.
    reader.room = Number.POSITIVE_INFINITY;
    clock.advance(LOG_RETRY_MAX_MS);
    expect(reader.lines()).toEqual([0, 1, 2, 3, 4, 5].map((i) => line(i).trim()));
    expect(writer.pendingBytes).toBe(0);
  });

  it('keeps at most maxBytes: past it a write is refused, and refused until half is free again', () => {
    const { clock, reader, writer, endTurn } = setup(100);
    reader.room = 0;
    const accepted: boolean[] = [];
    for (let i = 0; i < 15; i++) accepted.push(writer.write(line(i)));
    // Ten lines of 10 bytes are the bound; the eleventh and after are dropped.
    expect(accepted).toEqual([...Array(10).fill(true), ...Array(5).fill(false)]);
    expect(writer.pendingBytes).toBe(100);
    expect(writer.dropping).toBe(true);
    let resumed = 0;
    writer.onResume(() => resumed++);
    endTurn();
    // 40 bytes read: 60 still queued, more than half the bound, so still dropping.
    reader.room = 40;
    clock.advance(LOG_RETRY_MAX_MS);
    expect(writer.pendingBytes).toBe(60);
    expect(writer.write(line(99))).toBe(false);
    expect(resumed).toBe(0);
    // 10 more: half free. Writing resumes, and the listeners hear it once.
    reader.room = 10;
    clock.advance(LOG_RETRY_MAX_MS);
    expect(writer.dropping).toBe(false);
    expect(resumed).toBe(1);
    expect(writer.write(line(15))).toBe(true);
    reader.room = Number.POSITIVE_INFINITY;
    clock.advance(LOG_RETRY_MAX_MS);
    expect(reader.lines()).toEqual([...Array(10).keys(), 15].map((i) => line(i).trim()));
    expect(resumed).toBe(1);
  });

  it('queues a forced write past the bound (the drop count must get out)', () => {
    const { reader, writer, endTurn } = setup(20);
    reader.room = 0;
    writer.write(line(0));
    writer.write(line(1));
    expect(writer.write(line(2))).toBe(false);
    expect(writer.write('dropped 1\n', true)).toBe(true);
    reader.room = Number.POSITIVE_INFINITY;
    endTurn();
    expect(reader.lines()).toEqual(['line 0000', 'line 0001', 'dropped 1']);
  });

  it('flush() resolves once everything is written, or after its timeout for a reader that does not read', async () => {
    const { clock, reader, writer, endTurn } = setup();
    writer.write(line(0));
    let flushed = false;
    void writer.flush().then(() => {
      flushed = true;
    });
    endTurn();
    await Promise.resolve();
    expect(flushed).toBe(true);

    reader.room = 0;
    writer.write(line(1));
    let gaveUp = false;
    void writer.flush(500).then(() => {
      gaveUp = true;
    });
    endTurn();
    clock.advance(499);
    await Promise.resolve();
    expect(gaveUp).toBe(false);
    clock.advance(1);
    await Promise.resolve();
    expect(gaveUp).toBe(true);
    expect(writer.pendingBytes).toBe(10);
  });

  it('flushSync() (the exit) waits for a slow reader, at most its timeout', () => {
    const { clock, reader, writer } = setup();
    reader.room = 0;
    writer.write(line(0));
    // The reader takes it after 300 ms of the exit's wait.
    clock.setTimeout(() => {
      reader.room = Number.POSITIVE_INFINITY;
    }, 300);
    writer.flushSync(LOG_FLUSH_TIMEOUT_MS);
    expect(reader.lines()).toEqual(['line 0000']);

    reader.room = 0;
    writer.write(line(1));
    const start = clock.now();
    writer.flushSync(1000);
    expect(clock.now() - start).toBeGreaterThanOrEqual(1000);
    expect(clock.now() - start).toBeLessThan(1010);
    expect(writer.pendingBytes).toBe(10);
  });

  it('flushSync() does not wait again for a reader an earlier flush gave up on', async () => {
    const { clock, reader, writer, endTurn } = setup();
    reader.room = 0;
    writer.write(line(0));
    const flushed = writer.flush(500);
    endTurn();
    clock.advance(500);
    await flushed;
    const start = clock.now();
    writer.flushSync(LOG_FLUSH_TIMEOUT_MS);
    expect(clock.now()).toBe(start);
  });

  it('stops for good when the reader is gone (EPIPE): nothing more is queued, flushes resolve', async () => {
    const { reader, writer, endTurn } = setup();
    reader.failWith = 'EPIPE';
    writer.write(line(0));
    endTurn();
    expect(writer.pendingBytes).toBe(0);
    expect(writer.dropping).toBe(true);
    expect(writer.write(line(1))).toBe(false);
    await writer.flush();
    const writes = reader.writes;
    writer.flushSync();
    expect(reader.writes).toBe(writes);
  });

  it('calls the resume listeners before a flush, so a drop count is queued ahead of it', async () => {
    const { reader, writer, endTurn } = setup();
    let calls = 0;
    writer.onResume(() => {
      calls++;
      writer.write('count\n', true);
    });
    const flushed = writer.flush();
    endTurn();
    await flushed;
    expect(calls).toBe(1);
    expect(reader.lines()).toEqual(['count']);
  });
});

describe('BoundedWriter on the real clock', () => {
  it('keeps the process alive while a flush waits for a reader that is behind', () => {
    // The reader refuses the first writes (EAGAIN); nothing else is on the
    // event loop, and the real clock's timers are unref()'d.
    const script = `
      const { BoundedWriter } = await import(${JSON.stringify(WRITER)});
      let refusals = 3;
      let got = '';
      const writer = new BoundedWriter({
        write(data) {
          if (refusals-- > 0) throw Object.assign(new Error('EAGAIN'), { code: 'EAGAIN' });
          got += data.toString();
          return data.length;
        },
      });
      writer.write('one line\\n');
      await writer.flush(2000);
      process.stdout.write(got === 'one line\\n' ? 'flushed' : 'lost: ' + JSON.stringify(got));
    `;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      encoding: 'utf8',
    });
    expect(out).toBe('flushed');
  });
});

describe('BoundedWriter with coalesceMs', () => {
  function coalescing() {
    const clock = new ManualClock();
    const reader = new FakeReader();
    const turns: Array<() => void> = [];
    const writer = new BoundedWriter({
      write: reader.write,
      maxBytes: 1 << 20,
      clock,
      defer: (fn) => turns.push(fn),
      coalesceMs: LOG_COALESCE_MS,
    });
    const endTurn = () => {
      for (const fn of turns.splice(0)) fn();
    };
    return { clock, reader, writer, endTurn };
  }

  it('gathers the lines of several turns into one write, LOG_COALESCE_MS after the first', () => {
    const { clock, reader, writer, endTurn } = coalescing();
    for (let i = 0; i < 6; i++) {
      writer.write(line(i));
      endTurn();
      clock.advance(1);
    }
    expect(reader.writes).toBe(0);
    clock.advance(LOG_COALESCE_MS - 6);
    expect(reader.writes).toBe(1);
    expect(reader.lines()).toEqual([0, 1, 2, 3, 4, 5].map((i) => line(i).trim()));
  });

  it('does not wait with LOG_COALESCE_BYTES queued, nor when someone flushes', async () => {
    const { reader, writer, endTurn } = coalescing();
    writer.write('x'.repeat(LOG_COALESCE_BYTES));
    endTurn();
    expect(reader.writes).toBe(1);
    writer.write(line(1));
    const flushed = writer.flush();
    endTurn();
    await flushed;
    expect(reader.writes).toBe(2);
  });
});
