import type { Timer, TimerClock } from '@swarmdrop/protocol';
import { systemClock } from '@swarmdrop/protocol/node';
import type { LogSink } from './log-sink.js';

/**
 * Bytes of log text held for a reader that is behind before lines are
 * dropped: at about 100 bytes a line, some 80,000 lines, minutes of a busy
 * swarm's log. A reader that keeps up never comes near it.
 */
export const LOG_BUFFER_BYTES = 8 * 1024 * 1024;
/** How long a flush (a service stopping, the process exiting) waits for a reader, at most. */
export const LOG_FLUSH_TIMEOUT_MS = 2_000;
/** After a write that could not go through (EAGAIN), the next try comes this soon, */
export const LOG_RETRY_MIN_MS = 1;
/** doubling up to this: a reader that resumes is served within this long. */
export const LOG_RETRY_MAX_MS = 50;
/** Bytes handed to one write(2), and written in one turn of the event loop at most. */
export const LOG_WRITE_MAX_BYTES = 1024 * 1024;
/**
 * stdout's lines wait this long for more to go out with them (unless
 * LOG_COALESCE_BYTES are queued): a write(2) per turn of the event loop,
 * two or three lines each, was 0.45 of a 256 MiB download's 3.2 CPU-s to a
 * log file on ext4 (each write dirties the inode and its journal); ten
 * milliseconds of lines are one write. A SIGKILL loses at most this much
 * more of the tail.
 */
export const LOG_COALESCE_MS = 10;
/** Queued bytes that go out at the end of the turn without waiting for LOG_COALESCE_MS. */
export const LOG_COALESCE_BYTES = 64 * 1024;

/**
 * One write(2) of `data`: returns how many bytes went out; throws an error
 * with code `EAGAIN` when none can go now (a full pipe in non-blocking mode).
 */
export type WriteBytes = (data: Buffer) => number;

export interface BoundedWriterOptions {
  readonly write: WriteBytes;
  /** Default LOG_BUFFER_BYTES. */
  readonly maxBytes?: number;
  /** The retry and flush timers (default systemClock). */
  readonly clock?: TimerClock;
  /** Waits `ms` without returning to the event loop: only the exit flush does (default Atomics.wait). */
  readonly sleepSync?: (ms: number) => void;
  /** Runs the next batch later in this turn of the event loop (default setImmediate). */
  readonly defer?: (fn: () => void) => void;
  /** Lines wait up to this long (on `clock`) for others to share their write (default 0: the end of the turn). */
  readonly coalesceMs?: number;
  /**
   * Keeps the process alive while a flush waits, until the returned release
   * is called (default: a ref'd Node timer). The clock's timers do not, so
   * without it a process awaiting flush() behind a slow reader would find
   * its event loop empty and exit with code 13 before the lines went out.
   */
  readonly keepAlive?: () => () => void;
}

const refTimer = (): (() => void) => {
  const timer = setInterval(() => {}, 0x7fffffff);
  return () => clearInterval(timer);
};

const sleepCell = new Int32Array(new SharedArrayBuffer(4));
const atomicSleep = (ms: number) => void Atomics.wait(sleepCell, 0, 0, ms);

/**
 * Text queued in memory, bounded in bytes, and written by `write` without
 * ever waiting for the reader: when the reader is behind (EAGAIN, or a
 * short write), the rest waits in the queue and is tried again on a timer.
 * Lines queued within one turn of the event loop go out in one write at
 * its end (setImmediate).
 *
 * Past `maxBytes`, writes are refused (`false`) until the queue has drained
 * to half the bound; then `onResume` listeners run, once, so that whoever
 * lost lines can say so. A write error other than EAGAIN (EPIPE: the reader
 * is gone) ends writing for good: what follows is discarded.
 */
export class BoundedWriter implements LogSink {
  readonly maxBytes: number;
  private readonly writeBytes: WriteBytes;
  private readonly clock: TimerClock;
  private readonly sleepSync: (ms: number) => void;
  private readonly defer: (fn: () => void) => void;
  private readonly coalesceMs: number;
  private readonly keepAlive: () => () => void;
  /** Texts not yet in `head`. */
  private queue: string[] = [];
  /** Bytes taken from the queue for the next write(2), what is left of them after a short write. */
  private head: Buffer | undefined;
  /** Bytes in `queue` and `head`. */
  private pending = 0;
  #dropping = false;
  private failed = false;
  private scheduled = false;
  /** The coalescing timer, while lines wait for company (coalesceMs). */
  private coalescing: Timer | undefined;
  private retry: Timer | undefined;
  private retryMs = 0;
  /** A flush gave up on a reader that did not read: the exit flush then tries once, without waiting. */
  private gaveUp = false;
  private readonly listeners = new Set<() => void>();
  private readonly waiters = new Set<() => void>();

  constructor(options: BoundedWriterOptions) {
    const maxBytes = options.maxBytes ?? LOG_BUFFER_BYTES;
    if (!Number.isInteger(maxBytes) || maxBytes < 1)
      throw new RangeError(`maxBytes must be a whole number of bytes, at least 1, got ${maxBytes}`);
    this.maxBytes = maxBytes;
    this.writeBytes = options.write;
    this.clock = options.clock ?? systemClock;
    this.sleepSync = options.sleepSync ?? atomicSleep;
    this.defer = options.defer ?? ((fn) => void setImmediate(fn));
    this.coalesceMs = options.coalesceMs ?? 0;
    this.keepAlive = options.keepAlive ?? refTimer;
  }

  /** Bytes queued and not yet written. */
  get pendingBytes(): number {
    return this.pending;
  }

  get dropping(): boolean {
    return this.#dropping || this.failed;
  }

  write(text: string, force = false): boolean {
    if (this.failed || (this.#dropping && !force)) return false;
    const bytes = Buffer.byteLength(text);
    if (!force && this.pending + bytes > this.maxBytes) {
      this.#dropping = true;
      return false;
    }
    this.queue.push(text);
    this.pending += bytes;
    this.schedule();
    return true;
  }

  onResume(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  flush(timeoutMs = LOG_FLUSH_TIMEOUT_MS): Promise<void> {
    this.resumed();
    if (this.pending === 0 || this.failed) return Promise.resolve();
    if (this.coalescing) {
      // Someone waits for these lines: they go at the end of this turn, not in coalesceMs.
      this.coalescing.cancel();
      this.coalescing = undefined;
      this.defer(() => this.run());
    }
    return new Promise((resolve) => {
      const release = this.keepAlive();
      const done = () => {
        timer.cancel();
        release();
        this.waiters.delete(done);
        resolve();
      };
      const timer = this.clock.setTimeout(() => {
        this.gaveUp = true;
        done();
      }, timeoutMs);
      this.waiters.add(done);
    });
  }

  /**
   * The exit's flush: writes what is queued now, in this call, waiting
   * (asleep, off the event loop, which is ending) for a reader that is
   * behind, up to `timeoutMs`; not at all if an earlier flush already gave
   * up on this reader.
   */
  flushSync(timeoutMs = LOG_FLUSH_TIMEOUT_MS): void {
    this.resumed();
    this.retry?.cancel();
    this.retry = undefined;
    this.coalescing?.cancel();
    this.coalescing = undefined;
    this.scheduled = false;
    const deadline = this.clock.now() + (this.gaveUp ? 0 : timeoutMs);
    while (this.pending > 0 && !this.failed) {
      const wrote = this.writeOnce();
      if (wrote === 'again') {
        if (this.clock.now() >= deadline) return;
        this.sleepSync(Math.min(5, Math.max(1, deadline - this.clock.now())));
      }
    }
    this.settled();
  }

  private schedule(): void {
    if (this.retry) return;
    if (this.scheduled) {
      // Enough for a write of its own: the end of this turn, not the coalescing timer.
      if (this.coalescing && this.pending >= LOG_COALESCE_BYTES) {
        this.coalescing.cancel();
        this.coalescing = undefined;
        this.defer(() => this.run());
      }
      return;
    }
    this.scheduled = true;
    if (this.coalesceMs > 0 && this.pending < LOG_COALESCE_BYTES) {
      this.coalescing = this.clock.setTimeout(() => {
        this.coalescing = undefined;
        this.run();
      }, this.coalesceMs);
    } else {
      this.defer(() => this.run());
    }
  }

  private run(): void {
    if (!this.scheduled) return;
    this.scheduled = false;
    this.drain();
  }

  /** Writes until the queue is empty, the reader is behind, or this turn's share is written. */
  private drain(): void {
    let budget = LOG_WRITE_MAX_BYTES;
    while (this.pending > 0 && !this.failed) {
      const before = this.pending;
      const wrote = this.writeOnce();
      // A short write: the pipe is full now, and the next would fail with EAGAIN.
      if (wrote === 'again' || wrote === 'short') {
        this.settled();
        this.waitForReader();
        return;
      }
      this.retryMs = 0;
      this.settled();
      budget -= before - this.pending;
      if (budget <= 0 && this.pending > 0) {
        this.schedule();
        return;
      }
    }
    this.settled();
  }

  /** One write(2): 'all' of the head went, a 'short' part of it, or nothing ('again'). */
  private writeOnce(): 'all' | 'short' | 'again' | 'failed' {
    if (!this.head) this.head = this.take();
    let n: number;
    try {
      n = this.writeBytes(this.head);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EAGAIN') return 'again';
      this.fail();
      return 'failed';
    }
    this.pending -= n;
    if (n < this.head.length) {
      this.head = this.head.subarray(n);
      return 'short';
    }
    this.head = undefined;
    return 'all';
  }

  /** Queued texts, about LOG_WRITE_MAX_BYTES of them (one at least), as one buffer. */
  private take(): Buffer {
    let count = 0;
    let chars = 0;
    while (
      count < this.queue.length &&
      (count === 0 || chars + this.queue[count]!.length <= LOG_WRITE_MAX_BYTES)
    ) {
      chars += this.queue[count]!.length;
      count++;
    }
    const texts = count === this.queue.length ? this.queue : this.queue.slice(0, count);
    this.queue = count === this.queue.length ? [] : this.queue.slice(count);
    return Buffer.from(texts.length === 1 ? texts[0]! : texts.join(''));
  }

  /** The reader is behind: try again soon, a little later each time it still is. */
  private waitForReader(): void {
    this.retryMs = Math.min(
      LOG_RETRY_MAX_MS,
      this.retryMs === 0 ? LOG_RETRY_MIN_MS : this.retryMs * 2,
    );
    this.retry = this.clock.setTimeout(() => {
      this.retry = undefined;
      this.drain();
    }, this.retryMs);
  }

  /** After progress: leaves dropping once half the bound is free, wakes flushes once all is out. */
  private settled(): void {
    if (this.#dropping && this.pending <= this.maxBytes / 2) {
      this.#dropping = false;
      this.resumed();
    }
    if (this.pending === 0 || this.failed) for (const done of [...this.waiters]) done();
  }

  private resumed(): void {
    for (const listener of [...this.listeners]) listener();
  }

  private fail(): void {
    this.failed = true;
    this.queue = [];
    this.head = undefined;
    this.pending = 0;
    this.retry?.cancel();
    this.retry = undefined;
  }
}
