import { describe, expect, it } from 'vitest';
import { BufferPool } from '../src/node/index.js';

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
    const pool = new BufferPool(1024, 1);
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
