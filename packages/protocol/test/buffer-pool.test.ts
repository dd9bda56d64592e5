import { describe, expect, it } from 'vitest';
import { MAX_PIECE_LENGTH } from '../src/index.js';
import { BufferPool, DEFAULT_POOL_BYTES } from '../src/node/index.js';

describe('BufferPool', () => {
  it('hands back the memory it was given, including from a shorter view', () => {
    const pool = new BufferPool(1024);
    const a = pool.take();
    a[0] = 42;
    pool.give(a);
    const b = pool.take(100); // the last, shorter chunk
    expect(b.length).toBe(100);
    expect(b.buffer).toBe(a.buffer);
    pool.give(b);
    expect(pool.take().buffer).toBe(a.buffer);
  });

  it('never takes in a buffer of another size, nor more than its limit', () => {
    const pool = new BufferPool(1024, 1024); // room for one
    const foreign = Buffer.allocUnsafeSlow(2048);
    pool.give(foreign);
    expect(pool.take().buffer).not.toBe(foreign.buffer);
    const [x, y] = [pool.take(), pool.take()];
    pool.give(x);
    pool.give(y); // over the limit of 1: dropped
    expect(pool.take().buffer).toBe(x.buffer);
    expect(pool.take().buffer).not.toBe(y.buffer);
  });

  it('allocates a plain buffer for a request larger than its size', () => {
    expect(new BufferPool(16).take(32).length).toBe(32);
  });
});

describe('BufferPool budget in bytes', () => {
  // The pool kept 64 buffers whatever their size: 4 GiB of 64 MiB chunks.
  it('keeps at most DEFAULT_POOL_BYTES of free buffers at the largest chunk size', () => {
    const pool = new BufferPool(MAX_PIECE_LENGTH);
    const taken = Array.from({ length: 4 }, () => pool.take());
    for (const b of taken) pool.give(b);
    expect(pool.retainedBytes).toBeGreaterThan(0);
    expect(pool.retainedBytes).toBeLessThanOrEqual(Math.max(DEFAULT_POOL_BYTES, MAX_PIECE_LENGTH));
  });

  it('keeps many small buffers within the same budget', () => {
    const pool = new BufferPool(100 * 1024);
    const taken = Array.from({ length: 200 }, () => pool.take());
    for (const b of taken) pool.give(b);
    expect(pool.retainedBytes).toBeLessThanOrEqual(DEFAULT_POOL_BYTES);
    expect(pool.retainedBytes).toBeGreaterThan(DEFAULT_POOL_BYTES / 2);
  });
});
