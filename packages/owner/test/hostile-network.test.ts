/**
 * Bad input from the network closes that one connection with a logged
 * reason; the owner keeps running and keeps serving a good client that
 * stays connected through it. Every test starts its own owner and good
 * client, so each verdict belongs to the test that caused it.
 */
import { once } from 'node:events';
import { connect } from 'node:net';
import { encodeMessage, MAX_BLOCK_LENGTH, type Metainfo, makePeerId } from '@swarmdrop/protocol';
import {
  Cleanup,
  httpGet,
  rawExchange,
  startOwner,
  type TestOwner,
  TestPeer,
} from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';

const FILE_SIZE = 1_000_000; // 10 chunks of 100 KiB, the last one shorter
const CHUNK_SIZE = 102_400;
/**
 * For the two tests that wait for the handshake timeout (the others keep the
 * default). Long enough that a busy machine cannot trip it on what a test
 * sends at once: the good client's handshake, or the first half of one,
 * which must be read before the timer fires for the halfway case to be a
 * handshake timeout rather than a silent connection.
 */
const HANDSHAKE_TIMEOUT_MS = 2_000;

function handshakeBytes(infoHash: Uint8Array): Buffer {
  return encodeMessage({
    type: 'handshake',
    reserved: new Uint8Array(8),
    infoHash,
    peerId: Buffer.from('-XX0001-abcdefghijkl', 'latin1'),
  });
}

/** Byte sequences that each break one rule of the wire, and the error code the owner names. */
const HOSTILE: ReadonlyArray<{
  readonly what: string;
  readonly bytes: (metainfo: Metainfo) => Buffer;
  readonly code: string;
}> = [
  {
    what: 'sends garbage after the 0x13 byte',
    bytes: () => Buffer.concat([Buffer.from([0x13]), Buffer.from('BitTorrent protocoX', 'latin1')]),
    code: 'ERR_HANDSHAKE',
  },
  {
    what: 'sends a handshake for another torrent',
    bytes: () => handshakeBytes(Buffer.alloc(20, 0xab)),
    code: 'ERR_INFO_HASH',
  },
  {
    what: 'announces an oversized message, before buffering it',
    bytes: (m) => {
      const lengthPrefix = Buffer.alloc(4);
      lengthPrefix.writeUInt32BE(0xffff_fff0);
      return Buffer.concat([handshakeBytes(m.infoHash), lengthPrefix]);
    },
    code: 'ERR_FRAME_TOO_LARGE',
  },
  {
    what: 'requests a chunk index out of range',
    bytes: (m) =>
      Buffer.concat([
        handshakeBytes(m.infoHash),
        encodeMessage({ type: 'interested' }),
        encodeMessage({ type: 'request', index: 10, begin: 0, length: 16_384 }),
      ]),
    code: 'ERR_PIECE_INDEX',
  },
  {
    what: 'requests an over-long block',
    bytes: (m) =>
      Buffer.concat([
        handshakeBytes(m.infoHash),
        encodeMessage({ type: 'request', index: 0, begin: 0, length: MAX_BLOCK_LENGTH + 1 }),
      ]),
    code: 'ERR_REQUEST_LENGTH',
  },
  {
    what: 'requests past the end of a chunk',
    bytes: (m) =>
      Buffer.concat([
        handshakeBytes(m.infoHash),
        encodeMessage({ type: 'request', index: 9, begin: 65_536, length: 16_384 }),
      ]),
    code: 'ERR_BLOCK_RANGE',
  },
  {
    what: 'sends a bitfield of the wrong length',
    bytes: (m) =>
      Buffer.concat([
        handshakeBytes(m.infoHash),
        encodeMessage({ type: 'bitfield', bytes: new Uint8Array(5) }),
      ]),
    code: 'ERR_BITFIELD_LENGTH',
  },
];

describe('hostile and broken connections', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  interface Setup extends TestOwner {
    /** A well-behaved stock client, past its handshake and unchoked before anything hostile starts. */
    readonly good: TestPeer;
  }

  async function setup(handshakeTimeoutMs?: number): Promise<Setup> {
    const started = await startOwner(cleanup, {
      size: FILE_SIZE,
      name: 'data.bin',
      options: handshakeTimeoutMs === undefined ? {} : { handshakeTimeoutMs },
    });
    const good = await connectPeer(started.port, started.metainfo);
    // Ready means the owner has taken its handshake: no handshake timeout applies to it any more.
    await good.ready();
    await good.interested();
    return { ...started, good };
  }

  async function connectPeer(
    port: number,
    metainfo: Metainfo,
    peerId?: Uint8Array,
  ): Promise<TestPeer> {
    const peer = await TestPeer.connect(port, { metainfo, peerId });
    cleanup.add(() => peer.destroy());
    return peer;
  }

  /** The good client is still connected and still gets a correct chunk. */
  async function expectGoodStillServed(s: Setup, index: number): Promise<void> {
    expect(s.good.closed).toBe(false);
    await s.good.fetchChunks([index]);
    expect(
      s.good.chunk(index).equals(s.data.subarray(index * CHUNK_SIZE, (index + 1) * CHUNK_SIZE)),
    ).toBe(true);
  }

  /** Opens a raw socket, writes `bytes`, and waits for the owner to close it. */
  async function sendAndWaitClose(
    port: number,
    bytes: Buffer,
  ): Promise<{ label: string; received: Buffer }> {
    const socket = connect({ host: '127.0.0.1', port });
    cleanup.add(() => socket.destroy());
    socket.on('error', () => {});
    const parts: Buffer[] = [];
    socket.on('data', (d: Buffer) => parts.push(d));
    await once(socket, 'connect');
    const label = `127.0.0.1:${socket.localPort}`;
    const closed = once(socket, 'close');
    socket.write(bytes);
    await closed;
    return { label, received: Buffer.concat(parts) };
  }

  async function expectProtocolError(s: Setup, bytes: Buffer, code: string): Promise<void> {
    const { label } = await sendAndWaitClose(s.port, bytes);
    const line = await s.log.waitFor('protocol-error', { peer: label });
    expect(line.fields.reason).toContain(code);
    const gone = await s.log.waitFor('disconnected', { peer: label });
    expect(gone.fields.reason).toContain(code);
  }

  it.each(HOSTILE)('closes a connection that $what, and keeps serving others', async (hostile) => {
    const s = await setup();
    await expectProtocolError(s, hostile.bytes(s.metainfo), hostile.code);
    await expectGoodStillServed(s, 9);
  });

  it('refuses a connection that stays silent past the handshake timeout', async () => {
    const s = await setup(HANDSHAKE_TIMEOUT_MS);
    const { label, received } = await sendAndWaitClose(s.port, Buffer.alloc(0));
    expect(received.length).toBe(0);
    const line = await s.log.waitFor('connection-refused', { from: label });
    expect(line.fields.reason).toContain(`${HANDSHAKE_TIMEOUT_MS} ms`);
    await expectGoodStillServed(s, 0);
  });

  it('closes a connection that stops halfway through its handshake', async () => {
    const s = await setup(HANDSHAKE_TIMEOUT_MS);
    const { label } = await sendAndWaitClose(
      s.port,
      handshakeBytes(s.metainfo.infoHash).subarray(0, 30),
    );
    const line = await s.log.waitFor('disconnected', { peer: label });
    expect(line.fields.reason).toContain('no handshake');
    await expectGoodStillServed(s, 0);
  });

  it('skips messages with unknown ids instead of closing', async () => {
    const s = await setup();
    const client = await connectPeer(s.port, s.metainfo, makePeerId(7001));
    await client.ready();
    // An extension-protocol message (id 20) and a DHT port message (id 9).
    client.sendRaw(Buffer.from([0, 0, 0, 3, 20, 0, 0, 0, 0, 0, 3, 9, 0x1a, 0xe1]));
    await client.interested();
    await client.fetchChunks([1]);
    expect(client.closed).toBe(false);
    // A swarmdrop peer is named by the listening port in its peer id.
    await s.log.waitFor('connected', { peer: '127.0.0.1:7001', client: 'swarmdrop' });
    expect(s.log.filter('protocol-error')).toHaveLength(0);
    await expectGoodStillServed(s, 2);
  });

  it('answers malformed HTTP with 400 and keeps running', async () => {
    const s = await setup();
    const reply = await rawExchange(s.port, 'GARBAGE\r\n\r\n');
    expect(reply).toMatch(/^HTTP\/1\.1 400 /);
    await expectGoodStillServed(s, 3);
  });

  // `new URL()` on these request targets used to throw inside the HTTP handler and crash the owner.
  it('answers an unparsable request target with 400 instead of crashing', async () => {
    const s = await setup();
    for (const target of ['http://[', '//evil.example/status', '/%E0%A4%A', '*']) {
      const reply = await rawExchange(
        s.port,
        `GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
      );
      expect(reply, target).toMatch(/^HTTP\/1\.1 400 /);
    }
    expect((await httpGet(s.port, '/status')).status).toBe(200);
    await expectGoodStillServed(s, 4);
  });

  it('answers POST with 405 and an unknown path with 404', async () => {
    const s = await setup();
    const post = await httpGet(s.port, '/announce', { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe('GET, HEAD');
    const missing = await httpGet(s.port, '/no/such/thing');
    expect(missing.status).toBe(404);
    await expectGoodStillServed(s, 5);
  });

  it('serves a good client the whole file, byte-identical, while every hostile connection comes and goes', async () => {
    const s = await setup();
    const all = Array.from({ length: s.metainfo.geometry.pieceCount }, (_, k) => k);
    s.good.requestChunks(all);
    await Promise.all([
      ...HOSTILE.map((h) => expectProtocolError(s, h.bytes(s.metainfo), h.code)),
      rawExchange(s.port, 'GARBAGE\r\n\r\n').then((reply) =>
        expect(reply).toMatch(/^HTTP\/1\.1 400 /),
      ),
      s.good.until(() => all.every((i) => s.good.hasChunk(i)), 'the whole file'),
    ]);
    expect(s.good.file().equals(s.data)).toBe(true);
    expect(s.good.closed).toBe(false);
    expect(s.owner.status().connections).toBe(1);
    expect(s.log.filter('error')).toHaveLength(0);
  });
});

describe('connection limit', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  async function connectPeer(o: TestOwner): Promise<TestPeer> {
    const peer = await TestPeer.connect(o.port, { metainfo: o.metainfo });
    cleanup.add(() => peer.destroy());
    return peer;
  }

  it('refuses the 4th concurrent connection with maxConnections 3, and admits again once one leaves', async () => {
    const o = await startOwner(cleanup, {
      size: 300_000,
      name: 'data.bin',
      options: { maxConnections: 3 },
    });
    const first3: TestPeer[] = [];
    for (let k = 0; k < 3; k++) {
      const c = await connectPeer(o);
      await c.ready();
      first3.push(c);
    }
    const fourth = await connectPeer(o);
    await fourth.closedPromise;
    expect(fourth.remoteHandshake).toBeUndefined();
    const refused = await o.log.waitFor('connection-refused', { from: fourth.label });
    expect(refused.fields.reason).toContain('limit 3');
    // HTTP has a budget of its own: a full wire still answers it.
    const reply = await rawExchange(
      o.port,
      'GET /status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
    );
    expect(reply).toMatch(/^HTTP\/1\.1 200/);

    const leaving = first3[0]!;
    leaving.destroy();
    await o.log.waitFor('disconnected', { peer: leaving.label });
    const fifth = await connectPeer(o);
    await fifth.ready();
    await fifth.interested();
    await fifth.fetchChunks([0, 1, 2]);
    expect(fifth.file().equals(o.data)).toBe(true);
  });
});
