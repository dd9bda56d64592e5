import { chunksWithin, DEFAULT_POOL_BYTES } from './memory.js';

/**
 * Reuses buffers of one size, so a steady stream of chunks does not leave
 * 100 KiB of garbage per chunk for the GC (which shows up as RSS growing with
 * the file). `take` may hand out a shorter view (the last chunk); `give`
 * takes back any view of a buffer it made.
 */
export class BufferPool {
  readonly size: number;
  private readonly max: number;
  private readonly free: ArrayBuffer[] = [];

  /** Keeps at most `maxBytes` of free buffers (at least one buffer, whatever its size). */
  constructor(size: number, maxBytes = DEFAULT_POOL_BYTES) {
    this.size = size;
    this.max = chunksWithin(maxBytes, size);
  }

  /** Bytes of free buffers held for reuse. */
  get retainedBytes(): number {
    return this.free.length * this.size;
  }

  take(length = this.size): Buffer {
    if (length > this.size) return Buffer.allocUnsafe(length);
    const backing = this.free.pop();
    // allocUnsafeSlow: its own ArrayBuffer of exactly `size`, never a slice of Node's shared pool.
    const full = backing ? Buffer.from(backing, 0, this.size) : Buffer.allocUnsafeSlow(this.size);
    return length === this.size ? full : full.subarray(0, length);
  }

  /** Returns a buffer from `take`; the caller must not touch it afterwards. */
  give(buffer: Buffer): void {
    const backing = buffer.buffer;
    if (
      backing instanceof ArrayBuffer &&
      backing.byteLength === this.size &&
      this.free.length < this.max
    ) {
      this.free.push(backing);
    }
  }
}
