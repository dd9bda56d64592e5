/**
 * --upload-limit and --download-limit, end to end on loopback: real owner
 * and peer processes move a 10 MiB file under a 1 MiB/s limit, about ten
 * seconds, and the rate the peer's log shows stays within ±10% of it. The
 * issue asks for this number; it is a check that the limiter works, not a
 * benchmark. 1 MiB/s is far below what either process can do on a busy
 * two-core machine, so the limit, not the CPU, sets the pace. The rate is
 * taken from the processes' own log timestamps (the `connected` line to the
 * last `chunk-received`), never from the test's clock; the test's timeout
 * only bounds a hang.
 */
import { join } from 'node:path';
import {
  Cleanup,
  freePorts,
  type LogCapture,
  type LogLine,
  MiB,
  OWNER_BIN,
  PEER_BIN,
  randomFile,
  runBin,
  within,
} from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';

const LIMIT_BYTES_PER_SECOND = MiB;
const SIZE = 10 * MiB;
/** Bounds a hang only: the transfer takes about ten seconds. */
const TRANSFER_HANG_MS = 120_000;

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

/** Milliseconds since midnight from a text line's `HH:MM:SS.mmm` (UTC) prefix. */
function stampMs(line: LogLine): number {
  const m = /^(\d\d):(\d\d):(\d\d)\.(\d{3}) /.exec(line.line);
  if (!m) throw new Error(`no timestamp on: ${line.line}`);
  return ((Number(m[1]) * 60 + Number(m[2])) * 60 + Number(m[3])) * 1000 + Number(m[4]);
}

/** Bytes the peer received and the span they took, from its log: its owner link's `connected` to its last chunk. */
function transfer(log: LogCapture): { bytes: number; seconds: number; bytesPerSecond: number } {
  const start = log.filter('connected', { role: 'owner' })[0];
  const chunks = log.filter('chunk-received');
  expect(start, 'a connected line for the owner link').toBeDefined();
  expect(chunks.length).toBeGreaterThan(0);
  const bytes = chunks.reduce((sum, l) => sum + Number(l.fields.bytes), 0);
  let spanMs = stampMs(chunks.at(-1)!) - stampMs(start!);
  if (spanMs < 0) spanMs += 86_400_000; // the run crossed midnight
  const seconds = spanMs / 1000;
  return { bytes, seconds, bytesPerSecond: bytes / seconds };
}

async function ownerWith(file: string, args: readonly string[]): Promise<number> {
  const dir = await cleanup.tempDir('swarmdrop-limit-owner-');
  const owner = runBin(cleanup, OWNER_BIN, [
    '127.0.0.1:0',
    file,
    '--dir',
    join(dir, 'work'),
    ...args,
  ]);
  const listening = await owner.stdout.waitFor('listening');
  await owner.stdout.waitFor('ready');
  return Number(listening.fields.addr!.split(':').at(-1));
}

async function peerDone(args: readonly string[]): Promise<LogCapture> {
  const dir = await cleanup.tempDir('swarmdrop-limit-peer-');
  const peer = runBin(cleanup, PEER_BIN, [
    ...args,
    '--dir',
    dir,
    '--exit-when-done',
    '--linger-ms',
    '0',
  ]);
  const code = await within(peer.exited, TRANSFER_HANG_MS, () => peer.stdout.tail());
  expect(code, peer.stderr).toBe(0);
  const merged = peer.stdout.filter('merged');
  expect(merged).toHaveLength(1);
  expect(merged[0]!.fields.verified).toBe('true');
  return peer.stdout;
}

describe('rate limits on loopback', () => {
  it('--upload-limit 1MiB holds the owner to 1 MiB/s ±10% over a 10 s transfer (swarm mode, TCP)', async () => {
    const base = await cleanup.tempDir('swarmdrop-limit-');
    const file = join(base, 'payload.bin');
    await randomFile(file, SIZE);
    const ownerPort = await ownerWith(file, ['--upload-limit', '1MiB', '--transport', 'tcp']);
    const [port] = await freePorts(1);
    const log = await peerDone([String(ownerPort), String(port), '--transport', 'tcp']);
    const t = transfer(log);
    expect(t.bytes).toBe(SIZE);
    expect(t.bytesPerSecond / LIMIT_BYTES_PER_SECOND, JSON.stringify(t)).toBeGreaterThan(0.9);
    expect(t.bytesPerSecond / LIMIT_BYTES_PER_SECOND, JSON.stringify(t)).toBeLessThan(1.1);
  });

  it('--download-limit 1MiB holds a peer to 1 MiB/s ±10% over a 10 s transfer (ring mode, µTP)', async () => {
    const base = await cleanup.tempDir('swarmdrop-limit-');
    const file = join(base, 'payload.bin');
    await randomFile(file, SIZE);
    // One expected peer: its initial batch is the whole file, all from the owner over the ring
    // mode's owner link. The download neighbour is a port nobody listens on.
    const ownerPort = await ownerWith(file, ['--expected-peers', '1']);
    const [port, nobody] = await freePorts(2);
    const log = await peerDone([
      String(ownerPort),
      String(port),
      String(nobody),
      '--transport',
      'utp',
      '--download-limit',
      '1MiB',
    ]);
    expect(log.filter('connected', { role: 'owner' })[0]!.fields.transport).toBe('utp');
    const t = transfer(log);
    expect(t.bytes).toBe(SIZE);
    expect(t.bytesPerSecond / LIMIT_BYTES_PER_SECOND, JSON.stringify(t)).toBeGreaterThan(0.9);
    expect(t.bytesPerSecond / LIMIT_BYTES_PER_SECOND, JSON.stringify(t)).toBeLessThan(1.1);
  });

  it('without a limit the same transfer is faster than the limit, so the tests above can fail', async () => {
    const base = await cleanup.tempDir('swarmdrop-limit-');
    const file = join(base, 'payload.bin');
    await randomFile(file, SIZE);
    const ownerPort = await ownerWith(file, ['--transport', 'tcp']);
    const [port] = await freePorts(1);
    const t = transfer(await peerDone([String(ownerPort), String(port), '--transport', 'tcp']));
    expect(t.bytes).toBe(SIZE);
    expect(t.bytesPerSecond).toBeGreaterThan(1.1 * LIMIT_BYTES_PER_SECOND);
  });
});
