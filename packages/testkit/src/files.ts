import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';

/** Deterministic pseudo-random bytes (xorshift32), so file contents are the same every run. */
export function pseudoRandomBytes(length: number, seed = 1): Buffer {
  const out = Buffer.allocUnsafe(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** Writes `size` random bytes to `path` and returns them. */
export async function randomFile(path: string, size: number): Promise<Buffer> {
  const data = randomBytes(size);
  await writeFile(path, data);
  return data;
}

export const KiB = 1024;
export const MiB = 1024 * 1024;
/** The seed's chunk size. */
export const CHUNK = 100 * KiB;
