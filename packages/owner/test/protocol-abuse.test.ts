/**
 * Protocol abuse that used to be accepted (issue 10, item 5): 50,000
 * repeated bitfields on one connection were all taken, writing 50,002 log
 * lines; and a remote could make the owner log without bound by opening
 * connections. Repeated bitfields now close that connection (a later one is
 * taken only as the haves it adds, since aria2 sends those), and what one
 * remote address can make the owner log is a bounded budget.
 */
import { once } from 'node:events';
import { connect } from 'node:net';
import { encodeMessage, ManualClock, type Metainfo } from '@swarmdrop/protocol';
import { dateClock } from '@swarmdrop/protocol/node';
import { createLogger, DEFAULT_LOG_BURST, parseTextLine } from '@swarmdrop/service';
import {
  Cleanup,
  closed,
  HANG_MS,
  LogCapture,
  ownerOptions,
  randomFile,
  stockPeerId,
  TestPeer,
} from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { Owner } from '../src/index.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

/** An owner on `clock`, its log lines stamped and paced by it (one never advanced holds the limits still). */
async function start(clock?: ManualClock): Promise<{ owner: Owner; log: LogCapture }> {
  const dir = await cleanup.tempDir('swarmdrop-owner-test-');
  await randomFile(`${dir}/data.bin`, 1_000_000);
  const log = new LogCapture('owner');
  const logger = createLogger({
    role: 'owner',
    port: 0,
    format: 'text',
    stream: log.stream,
    ...(clock ? { clock: dateClock(clock) } : {}),
  });
  const owner = await Owner.start(ownerOptions(`${dir}/data.bin`, `${dir}/owner`), {
    logger,
    ...(clock ? { clock } : {}),
  });
  cleanup.add(() => owner.close());
  return { owner, log };
}

function hostile(metainfo: Metainfo, frames: Buffer): Buffer {
  return Buffer.concat([
    encodeMessage({
      type: 'handshake',
      reserved: new Uint8Array(8),
      infoHash: metainfo.infoHash,
      peerId: stockPeerId(),
    }),
    frames,
  ]);
}

/** Sends `bytes` from `localAddress` and resolves when the owner has closed the connection. */
async function sendAndWaitClose(port: number, localAddress: string, bytes: Buffer): Promise<void> {
  const socket = connect({ host: '127.0.0.1', port, localAddress });
  cleanup.add(() => socket.destroy());
  socket.on('error', () => {});
  socket.resume();
  const socketClosed = closed(socket);
  await once(socket, 'connect');
  socket.write(bytes);
  const timer = setTimeout(() => socket.destroy(), HANG_MS);
  await socketClosed;
  clearTimeout(timer);
}

describe('protocol abuse', { timeout: 60_000 }, () => {
  it('50,000 repeated bitfields: the connection is closed with one protocol-error line', async () => {
    const { owner, log } = await start();
    const bitfield = encodeMessage({ type: 'bitfield', bytes: new Uint8Array([0xff, 0xc0]) });
    const frames = Buffer.concat(Array.from({ length: 50_000 }, () => bitfield));
    await sendAndWaitClose(owner.port, '127.0.0.2', hostile(owner.metainfo, frames));
    const error = await log.waitFor('protocol-error');
    expect(error.fields.reason).toMatch(/ERR_BITFIELD_REPEATED/);
    expect(log.filter('idlist-received')).toHaveLength(1);
    expect(log.lines.length).toBeLessThan(20);
    // The owner goes on serving.
    const good = await TestPeer.connect(owner.port, { metainfo: owner.metainfo });
    await good.ready();
    await good.interested();
    await good.fetchChunks([0, 9]);
    good.destroy();
  });

  it('one address opening 400 abusive connections gets a bounded share of the log, and one summary', async () => {
    // A clock that never moves: the address earns no budget back, so the bound is exact.
    const { owner, log } = await start(new ManualClock());
    const bitfield = encodeMessage({ type: 'bitfield', bytes: new Uint8Array([0xff, 0xc0]) });
    const takeBack = encodeMessage({ type: 'bitfield', bytes: new Uint8Array([0x00, 0x00]) });
    const bytes = hostile(owner.metainfo, Buffer.concat([bitfield, takeBack]));
    // Each connection makes connected, idlist-sent, idlist-received,
    // protocol-error and disconnected lines: 2000 in all without a limit.
    for (let round = 0; round < 20; round++) {
      await Promise.all(
        Array.from({ length: 20 }, () => sendAndWaitClose(owner.port, '127.0.0.2', bytes)),
      );
    }
    const printed = () =>
      log.lines.filter((l) => l.event !== 'log-suppressed' && /=127\.0\.0\.2:/.test(l.line));
    const summaries = () => log.filter('log-suppressed', (f) => f.from === '127.0.0.2');
    const counted = () => summaries().reduce((sum, l) => sum + Number(l.fields.count), 0);
    // Every line is either printed or counted in a summary, printed once a second at most.
    await log.waitFor('log-suppressed', () => printed().length + counted() >= 5 * 400);
    expect(printed().length).toBe(DEFAULT_LOG_BURST);
    expect(printed().length + counted()).toBe(5 * 400);
    expect(summaries()[0]!.fields.events).toMatch(/protocol-error:\d+/);
    // Another address is not held to 127.0.0.2's budget.
    const good = await TestPeer.connect(owner.port, { metainfo: owner.metainfo });
    await good.ready();
    await log.waitFor('connected', (f) => f.peer === good.label);
    good.destroy();
    expect(log.lines.every((l) => parseTextLine(l.line) !== undefined)).toBe(true);
  });
});
