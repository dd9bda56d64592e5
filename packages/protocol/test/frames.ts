/**
 * Frame helpers for the codec suites: raw frames, byte-stream splits and
 * messages normalised for comparison. Everything else comes from the test kit.
 */
import type { Message } from '../src/index.js';

/** A message with its byte fields as hex, so Buffer and Uint8Array compare equal. */
export function normalize(message: Message): Record<string, string | number> {
  const out: Record<string, string | number> = {};
  for (const [key, value] of Object.entries(message)) {
    out[key] =
      value instanceof Uint8Array ? `hex:${Buffer.from(value).toString('hex')}` : String(value);
  }
  return out;
}

/** Big-endian u32 as 4 bytes. */
export function u32(n: number): number[] {
  return [(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
}

/** A raw frame: `<len><id><body>`, with `length` overriding the true length. */
export function frame(id: number, body: ArrayLike<number> = [], length = 1 + body.length): Buffer {
  return Buffer.from([...u32(length), id, ...Array.from(body)]);
}

/** Splits `bytes` at the given offsets (any order, duplicates allowed). */
export function splitAt(bytes: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => Math.max(0, Math.min(bytes.length, c))))].sort(
    (a, b) => a - b,
  );
  const out: Uint8Array[] = [];
  let from = 0;
  for (const at of points) {
    out.push(bytes.subarray(from, at));
    from = at;
  }
  out.push(bytes.subarray(from));
  return out;
}
