/**
 * Shared test helpers: temp dirs that clean up after themselves, message
 * normalisation for comparisons, and catching a thrown error to check its `code`.
 */
import { accessSync, constants } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import type { Message } from '../src/index.js';

/** Runs registered teardown steps in reverse order; call `run()` in afterEach. */
export class Cleanup {
  private tasks: Array<() => unknown> = [];

  add(task: () => unknown): void {
    this.tasks.push(task);
  }

  /** A fresh directory under os.tmpdir(), removed on `run()`. */
  async tempDir(prefix = 'swarmdrop-protocol-'): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), prefix));
    this.add(() => rm(dir, { recursive: true, force: true }));
    return dir;
  }

  async run(): Promise<void> {
    const tasks = this.tasks.reverse();
    this.tasks = [];
    const errors: unknown[] = [];
    for (const task of tasks) {
      try {
        await task();
      } catch (err) {
        errors.push(err);
      }
    }
    if (errors.length > 0) throw new AggregateError(errors, 'cleanup failed');
  }
}

/** The error `fn` throws; fails the test when it does not throw. */
export function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected the call to throw, but it returned');
}

/** The error `promise` rejects with; fails the test when it resolves. */
export async function rejected(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected the promise to reject, but it resolved');
}

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

/** True when the environment variable CI says this is a CI run. */
export const IN_CI = !['', '0', 'false', undefined].includes(process.env.CI?.toLowerCase());

/** True when `name` is an executable on PATH. */
export function hasTool(name: string): boolean {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    try {
      accessSync(join(dir, name), constants.X_OK);
      return true;
    } catch {
      // not in this directory
    }
  }
  return false;
}
