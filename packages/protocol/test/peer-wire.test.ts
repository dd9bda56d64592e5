/**
 * PeerWire: one BitTorrent connection over a socket.
 */
import { Duplex } from 'node:stream';
import { Cleanup, socketPair } from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import {
  DEFAULT_MIN_UPLOAD_BYTES_PER_SECOND,
  DEFAULT_MIN_UPLOAD_GRACE_MS,
  DEFAULT_MIN_UPLOAD_WINDOW_MS,
  encodeMessage,
  FrameDecoder,
  ManualClock,
  makePeerId,
  RateLimiter,
} from '../src/index.js';
import { DEFAULT_IDLE_TIMEOUT_MS, DEFAULT_KEEPALIVE_MS, PeerWire } from '../src/node/index.js';
import { storeWith } from './sockets.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

// Regression: the idle timeout used socket.setTimeout, which our own
// keep-alives reset, so a remote that went silent after its handshake was
// never closed.
describe('PeerWire idle timeout', () => {
  it('closes a connection that receives nothing, although it keeps sending keep-alives', async () => {
    const { metainfo } = await storeWith(cleanup, Buffer.alloc(1000, 7));
    const [ours, theirs] = await socketPair(cleanup);
    const wire = new PeerWire({
      socket: ours,
      metainfo,
      peerId: makePeerId(1),
      idleTimeoutMs: 400,
      keepAliveMs: 100,
    });
    // The remote handshakes, then says nothing more while reading everything we send.
    theirs.write(
      encodeMessage({
        type: 'handshake',
        reserved: new Uint8Array(8),
        infoHash: metainfo.infoHash,
        peerId: makePeerId(2),
      }),
    );
    let keepAlives = 0;
    const decoder = new FrameDecoder({ geometry: metainfo.geometry });
    theirs.on('data', (b: Buffer) => {
      keepAlives += decoder.push(b).filter((m) => m.type === 'keepAlive').length;
    });
    const closed = await wire.closed;
    expect(closed.reason).toMatch(/idle/);
    expect(keepAlives, 'keep-alives went out before the idle close').toBeGreaterThan(0);
  });
});

describe('PeerWire keep-alives', () => {
  it('wakes only when a keep-alive or the idle timeout is due', async () => {
    // Its timer looked every quarter of the keep-alive interval, for nothing three times in four.
    const { metainfo } = await storeWith(cleanup, Buffer.alloc(1000, 7));
    const [ours, theirs] = await socketPair(cleanup);
    const manual = new ManualClock();
    let wakes = 0;
    const clock = {
      now: () => manual.now(),
      setTimeout: (fn: () => void, ms: number) =>
        manual.setTimeout(() => {
          wakes++;
          fn();
        }, ms),
      setInterval: (fn: () => void, ms: number) => manual.setInterval(fn, ms),
    };
    const wire = new PeerWire({ socket: ours, metainfo, peerId: makePeerId(1), clock });
    cleanup.add(() => wire.close('test over'));
    const decoder = new FrameDecoder({ geometry: metainfo.geometry });
    const keepAlives: number[] = [];
    let sawKeepAlive: () => void = () => {};
    theirs.on('data', (b: Buffer) => {
      for (const m of decoder.push(b))
        if (m.type === 'keepAlive') {
          keepAlives.push(manual.now());
          sawKeepAlive();
        }
    });
    const handshaken = wire.ready();
    theirs.write(
      encodeMessage({
        type: 'handshake',
        reserved: new Uint8Array(8),
        infoHash: metainfo.infoHash,
        peerId: makePeerId(2),
      }),
    );
    await handshaken;
    const keepAlive = () =>
      new Promise<void>((resolve) => {
        sawKeepAlive = resolve;
      });
    // The remote is silent: one keep-alive at 60 s, the idle close at 120 s, nothing between.
    manual.advance(DEFAULT_KEEPALIVE_MS - 1);
    expect(wakes).toBe(0);
    const first = keepAlive();
    manual.advance(1);
    await first;
    expect(keepAlives).toEqual([DEFAULT_KEEPALIVE_MS]);
    expect(wakes).toBe(1);
    manual.advance(DEFAULT_IDLE_TIMEOUT_MS - DEFAULT_KEEPALIVE_MS - 1);
    expect(wire.isClosed).toBe(false);
    manual.advance(1);
    expect((await wire.closed).reason).toMatch(/idle: nothing received for 120000 ms/);
    expect(wakes).toBe(2);
  });
});

/** Settles once the event loop has gone round: what a socket had to deliver by now, it has. */
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('PeerWire rate limits', () => {
  const handshake = (infoHash: Buffer) =>
    encodeMessage({
      type: 'handshake',
      reserved: new Uint8Array(8),
      infoHash,
      peerId: makePeerId(2),
    });

  it('holds the next piece until the upload limit has the tokens, then gives the connection its turn', async () => {
    const { metainfo } = await storeWith(cleanup, Buffer.alloc(1000, 7));
    const [ours] = await socketPair(cleanup);
    const clock = new ManualClock();
    const upload = new RateLimiter({ clock, bytesPerSecond: 10_000, burstMs: 0 });
    const wire = new PeerWire({
      socket: ours,
      metainfo,
      peerId: makePeerId(1),
      limits: { upload },
    });
    cleanup.add(() => wire.close('test over'));
    // Handshake (68 bytes) and a 1000-byte piece (13 + 1000) go out; then the bucket is in debt.
    expect(wire.sendPiece(0, 0, Buffer.alloc(1000, 7))).toBe(false);
    expect(wire.needsDrain).toBe(true);
    expect(upload.total).toBe(68 + 13 + 1000);
    let drained = false;
    void wire.drained().then(() => {
      drained = true;
    });
    await turn();
    clock.advance(100); // 1000 of the 1081 bytes paid back
    await turn();
    expect(drained).toBe(false);
    clock.advance(10); // 1100 ≥ 1081: the debt is paid
    await turn();
    expect(drained).toBe(true);
    expect(wire.needsDrain).toBe(false);
  });

  it('pauses reading while the download limit is in debt, and reads on once it is paid', async () => {
    const { metainfo } = await storeWith(cleanup, Buffer.alloc(1000, 7));
    const [ours, theirs] = await socketPair(cleanup);
    const clock = new ManualClock();
    const download = new RateLimiter({ clock, bytesPerSecond: 1_000, burstMs: 0 });
    const wire = new PeerWire({
      socket: ours,
      metainfo,
      peerId: makePeerId(1),
      limits: { download },
    });
    cleanup.add(() => wire.close('test over'));
    let haves = 0;
    wire.onMessage = (m) => {
      if (m.type === 'have') haves++;
    };
    theirs.write(handshake(metainfo.infoHash));
    await wire.ready();
    expect(download.blocked).toBe(true); // 68 bytes taken from an empty bucket
    expect(ours.isPaused()).toBe(true);
    theirs.write(encodeMessage({ type: 'have', index: 0 }));
    // The bytes reach our socket's buffer, where they wait: the positive sign that they came.
    while (ours.readableLength === 0) await turn();
    expect(haves).toBe(0);
    clock.advance(68); // 68 bytes at 1000 B/s: the debt is paid, the wire reads again
    while (haves === 0) await turn();
    expect(haves).toBe(1);
    expect(download.total).toBe(68 + 9);
  });
});

/**
 * A socket whose remote reads nothing: everything written stays in its
 * buffer (the write callback never runs), as with a TCP peer whose window
 * closed. `release()` lets the buffered bytes go, as a remote that reads
 * (they leave over a turn of the event loop).
 */
class StuckSocket extends Duplex {
  readonly remoteAddress = '10.0.0.9';
  readonly remotePort = 6881;
  private pending: Array<() => void> = [];
  private reading = false;
  constructor() {
    super({ read() {} });
  }
  override _write(_chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    if (this.reading) callback();
    else this.pending.push(callback);
  }
  async release(): Promise<void> {
    this.reading = true;
    for (const done of this.pending.splice(0)) done();
    while (this.writableLength > 0) await turn();
    this.reading = false;
  }
}

describe('PeerWire minimum upload rate', () => {
  it('closes a connection that keeps our buffer full and takes nothing, on its clock, with a one-line reason', async () => {
    const { metainfo } = await storeWith(cleanup, Buffer.alloc(1000, 7));
    const clock = new ManualClock();
    const socket = new StuckSocket();
    // Its idle timeout is not what is tested here: far away.
    const wire = new PeerWire({
      socket,
      metainfo,
      peerId: makePeerId(1),
      clock,
      idleTimeoutMs: 3_600_000,
      handshakeTimeoutMs: 3_600_000,
    });
    cleanup.add(() => wire.close('test over'));
    // Our handshake waits in the buffer from the start (once this turn's writes are out); the remote never takes it.
    await new Promise((resolve) => setImmediate(resolve));
    expect(socket.writableLength).toBeGreaterThan(0);
    clock.advance(DEFAULT_MIN_UPLOAD_GRACE_MS + DEFAULT_MIN_UPLOAD_WINDOW_MS - 1);
    expect(wire.isClosed).toBe(false);
    clock.advance(1);
    expect((await wire.closed).reason).toBe(
      `upload below ${DEFAULT_MIN_UPLOAD_BYTES_PER_SECOND} B/s: 0 bytes taken in 30 s with data waiting`,
    );
    expect(socket.destroyed).toBe(true);
  });

  it('leaves a connection alone whose remote takes what we send', async () => {
    const { metainfo } = await storeWith(cleanup, Buffer.alloc(1000, 7));
    const clock = new ManualClock();
    const socket = new StuckSocket();
    const wire = new PeerWire({
      socket,
      metainfo,
      peerId: makePeerId(1),
      clock,
      idleTimeoutMs: 3_600_000,
      handshakeTimeoutMs: 3_600_000,
    });
    cleanup.add(() => wire.close('test over'));
    for (let s = 0; s < 600; s++) {
      // A 16 KiB block a second, taken by the remote in the next second: data always waits.
      wire.sendPiece(0, 0, Buffer.alloc(16_384));
      await new Promise((resolve) => setImmediate(resolve)); // this turn's writes go out
      clock.advance(1_000);
      await socket.release();
      expect(wire.bytesTaken).toBeGreaterThan(s * 16_384);
    }
    expect(wire.isClosed).toBe(false);
  });

  it('minUpload false turns it off', async () => {
    const { metainfo } = await storeWith(cleanup, Buffer.alloc(1000, 7));
    const clock = new ManualClock();
    const wire = new PeerWire({
      socket: new StuckSocket(),
      metainfo,
      peerId: makePeerId(1),
      clock,
      idleTimeoutMs: 3_600_000,
      handshakeTimeoutMs: 3_600_000,
      minUpload: false,
    });
    cleanup.add(() => wire.close('test over'));
    await new Promise((resolve) => setImmediate(resolve)); // the handshake waits for the remote
    clock.advance(600_000);
    expect(wire.isClosed).toBe(false);
  });
});
