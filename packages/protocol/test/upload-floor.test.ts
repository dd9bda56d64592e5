/**
 * The minimum upload rate, on a ManualClock. Found by a probe of main: 500
 * connections that handshook, requested and never read kept our sockets
 * full; their keep-alives defeated the 120 s idle timeout, and only idleness
 * was ever cut. The honest cases pin what the floor must never cut: a
 * 56 kbit/s reader, a 1 Mbit/s uplink shared by 256 connections, and a
 * rate-limited upload.
 */
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_MIN_UPLOAD_BYTES_PER_SECOND,
  DEFAULT_MIN_UPLOAD_GRACE_MS,
  DEFAULT_MIN_UPLOAD_WINDOW_MS,
  ManualClock,
  UploadFloor,
  type UploadFloorSettings,
} from '../src/index.js';

/**
 * Runs a floor for `ms`, sampling as its owner does; `remote(atMs)` says how
 * many bytes it has taken by then and whether data waits. Returns when it
 * was cut (undefined if never) and why.
 */
function run(
  ms: number,
  remote: (atMs: number) => { taken: number; waiting: boolean },
  settings: UploadFloorSettings = {},
): { cutAtMs: number | undefined; reason: string | undefined } {
  const clock = new ManualClock();
  const floor = new UploadFloor({ clock, ...settings });
  let result: { cutAtMs: number | undefined; reason: string | undefined } = {
    cutAtMs: undefined,
    reason: undefined,
  };
  const timer = clock.setInterval(() => {
    const { taken, waiting } = remote(clock.now());
    const reason = floor.sample(taken, waiting);
    if (reason !== undefined) {
      result = { cutAtMs: clock.now(), reason };
      timer.cancel();
    }
  }, floor.sampleEveryMs);
  clock.advance(ms);
  return result;
}

const TEN_MINUTES_MS = 600_000;

describe('UploadFloor', () => {
  it('cuts a remote that takes nothing while data waits, once the grace and a whole window have passed', () => {
    const { cutAtMs, reason } = run(TEN_MINUTES_MS, () => ({ taken: 64_000, waiting: true }));
    expect(cutAtMs).toBe(DEFAULT_MIN_UPLOAD_GRACE_MS + DEFAULT_MIN_UPLOAD_WINDOW_MS);
    expect(reason).toBe(
      `upload below ${DEFAULT_MIN_UPLOAD_BYTES_PER_SECOND} B/s: 0 bytes taken in 30 s with data waiting`,
    );
  });

  it('cuts a remote that reads below the floor (100 B/s) with data always waiting', () => {
    const { cutAtMs } = run(TEN_MINUTES_MS, (t) => ({ taken: (t / 1000) * 100, waiting: true }));
    expect(cutAtMs).toBe(40_000);
  });

  it('never cuts an honest reader over a 56 kbit/s path, its buffer always full', () => {
    // About 6.5 KB/s of payload after TCP/IP headers, arriving in 1460-byte segments.
    const { cutAtMs } = run(TEN_MINUTES_MS, (t) => ({
      taken: Math.floor((t * 6.5) / 1460) * 1460,
      waiting: true,
    }));
    expect(cutAtMs).toBeUndefined();
  });

  it('never cuts a fair share of a 1 Mbit/s uplink split across 256 connections', () => {
    const share = 1_000_000 / 8 / 256; // 488 B/s
    const { cutAtMs } = run(TEN_MINUTES_MS, (t) => ({ taken: (t / 1000) * share, waiting: true }));
    expect(cutAtMs).toBeUndefined();
  });

  it('never cuts a 56 kbit/s reader stalled by a retransmission backoff of 8 s every window', () => {
    // 22 s at 6.5 KB/s, then 8 s with nothing taken, over and over.
    const taken = (t: number) => {
      const cycles = Math.floor(t / 30_000);
      const inCycle = Math.min(t % 30_000, 22_000);
      return (cycles * 22_000 + inCycle) * 6.5;
    };
    const { cutAtMs } = run(TEN_MINUTES_MS, (t) => ({ taken: taken(t), waiting: true }));
    expect(cutAtMs).toBeUndefined();
  });

  it('never cuts a connection held back by --upload-limit: its buffer empties between pieces', () => {
    // 10 KB/s shared by 200 connections: one 16 KiB block each 328 s, taken at once by the remote.
    const { cutAtMs } = run(TEN_MINUTES_MS, (t) => ({
      taken: Math.floor(t / 328_000) * 16_384,
      waiting: false,
    }));
    expect(cutAtMs).toBeUndefined();
  });

  it('judges only spans with data waiting throughout: one empty sample starts the window again', () => {
    // Takes nothing, but its buffer empties every 25 s (it reads in rare bursts): never a whole window waiting.
    const { cutAtMs } = run(TEN_MINUTES_MS, (t) => ({
      taken: Math.floor(t / 25_000) * 16_384,
      waiting: t % 25_000 !== 0,
    }));
    expect(cutAtMs).toBeUndefined();
  });

  it('cuts a remote that stops reading after a good start, one window after it stopped', () => {
    const { cutAtMs } = run(TEN_MINUTES_MS, (t) => ({
      taken: Math.min(t, 60_000) * 50,
      waiting: true,
    }));
    // Took 50 KB/s until 60 s; the first window wholly after that ends at 90 s.
    expect(cutAtMs).toBe(90_000);
  });

  it('leaves the first grace alone: a remote that starts reading after 9 s is not cut', () => {
    const { cutAtMs } = run(TEN_MINUTES_MS, (t) => ({
      taken: Math.max(0, t - 9_000) * 10,
      waiting: true,
    }));
    expect(cutAtMs).toBeUndefined();
  });

  it('takes its settings, and refuses nonsense', () => {
    const { cutAtMs } = run(10_000, () => ({ taken: 0, waiting: true }), {
      bytesPerSecond: 1,
      windowMs: 600,
      graceMs: 0,
    });
    // Sampled every 100 ms: the first sample (100 ms) opens the window, which is whole at 700 ms.
    expect(cutAtMs).toBe(700);
    const clock = new ManualClock();
    expect(() => new UploadFloor({ clock, windowMs: 0 })).toThrow(/windowMs/);
    expect(() => new UploadFloor({ clock, bytesPerSecond: -1 })).toThrow(/bytesPerSecond/);
  });
});
