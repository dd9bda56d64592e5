/**
 * Bad input from the network closes that one connection with a logged
 * reason; the owner keeps running and keeps serving a good client that
 * stays connected through all of it.
 */
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { encodeMessage, MAX_BLOCK_LENGTH, makePeerId } from '@swarmdrop/protocol';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Owner } from '../src/index.js';
import {
  BtClient,
  httpGet,
  type LogCapture,
  randomFile,
  rawExchange,
  startOwner,
  TempDirs,
} from './helpers.js';

const FILE_SIZE = 1_000_000; // 10 chunks
const HANDSHAKE_TIMEOUT_MS = 300;

function handshakeBytes(infoHash: Uint8Array): Buffer {
  return encodeMessage({
    type: 'handshake',
    reserved: new Uint8Array(8),
    infoHash,
    peerId: Buffer.from('-XX0001-abcdefghijkl', 'latin1'),
  });
}

describe('hostile and broken connections', () => {
  const temp = new TempDirs();
  const sockets: Socket[] = [];
  const clients: BtClient[] = [];
  let owner: Owner;
  let log: LogCapture;
  let data: Buffer;
  let good: BtClient;
  let goodNext = 0;

  beforeAll(async () => {
    const dir = await temp.make();
    const source = await randomFile(dir, 'data.bin', FILE_SIZE);
    data = source.data;
    ({ owner, log } = await startOwner(source.path, `${dir}/owner`, {
      handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS,
    }));
    good = await BtClient.connect(owner.port, owner.metainfo);
    await good.ready();
    await good.interested();
  });

  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy();
    for (const c of clients.splice(0)) c.destroy();
    // After every case the good client is still connected and gets its next chunk.
    expect(good.closed).toBe(false);
    const index = goodNext++ % owner.metainfo.geometry.pieceCount;
    await good.fetchChunks([index]);
  });

  afterAll(async () => {
    good?.destroy();
    await owner?.close();
    await temp.cleanup();
  });

  /** Opens a raw socket, writes `bytes`, and waits for the owner to close it. */
  async function sendAndWaitClose(bytes: Buffer): Promise<{ label: string; received: Buffer }> {
    const socket = connect({ host: '127.0.0.1', port: owner.port });
    sockets.push(socket);
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

  async function expectProtocolError(bytes: Buffer, code: string): Promise<void> {
    const { label } = await sendAndWaitClose(bytes);
    const line = await log.waitFor('protocol-error', (f) => f.peer === label);
    expect(line.fields.reason).toContain(code);
    const gone = await log.waitFor('disconnected', (f) => f.peer === label);
    expect(gone.fields.reason).toContain(code);
  }

  it('closes a connection that sends garbage after the 0x13 byte', async () => {
    await expectProtocolError(
      Buffer.concat([Buffer.from([0x13]), Buffer.from('BitTorrent protocoX', 'latin1')]),
      'ERR_HANDSHAKE',
    );
  });

  it('closes a connection whose handshake is for another torrent', async () => {
    await expectProtocolError(handshakeBytes(Buffer.alloc(20, 0xab)), 'ERR_INFO_HASH');
  });

  it('closes a connection that announces an oversized message, before buffering it', async () => {
    const lengthPrefix = Buffer.alloc(4);
    lengthPrefix.writeUInt32BE(0xffff_fff0);
    await expectProtocolError(
      Buffer.concat([handshakeBytes(owner.metainfo.infoHash), lengthPrefix]),
      'ERR_FRAME_TOO_LARGE',
    );
  });

  it('closes a connection that requests a chunk index out of range', async () => {
    await expectProtocolError(
      Buffer.concat([
        handshakeBytes(owner.metainfo.infoHash),
        encodeMessage({ type: 'interested' }),
        encodeMessage({ type: 'request', index: 10, begin: 0, length: 16_384 }),
      ]),
      'ERR_PIECE_INDEX',
    );
  });

  it('closes a connection that requests an over-long block', async () => {
    await expectProtocolError(
      Buffer.concat([
        handshakeBytes(owner.metainfo.infoHash),
        encodeMessage({ type: 'request', index: 0, begin: 0, length: MAX_BLOCK_LENGTH + 1 }),
      ]),
      'ERR_REQUEST_LENGTH',
    );
  });

  it('closes a connection that requests past the end of a chunk', async () => {
    await expectProtocolError(
      Buffer.concat([
        handshakeBytes(owner.metainfo.infoHash),
        encodeMessage({ type: 'request', index: 9, begin: 65_536, length: 16_384 }),
      ]),
      'ERR_BLOCK_RANGE',
    );
  });

  it('closes a connection that sends a bitfield of the wrong length', async () => {
    await expectProtocolError(
      Buffer.concat([
        handshakeBytes(owner.metainfo.infoHash),
        encodeMessage({ type: 'bitfield', bytes: new Uint8Array(5) }),
      ]),
      'ERR_BITFIELD_LENGTH',
    );
  });

  it('refuses a connection that stays silent past the handshake timeout', async () => {
    const { label, received } = await sendAndWaitClose(Buffer.alloc(0));
    expect(received.length).toBe(0);
    const line = await log.waitFor('connection-refused', (f) => f.from === label);
    expect(line.fields.reason).toContain(`${HANDSHAKE_TIMEOUT_MS} ms`);
  });

  it('closes a connection that stops halfway through its handshake', async () => {
    const { label } = await sendAndWaitClose(
      handshakeBytes(owner.metainfo.infoHash).subarray(0, 30),
    );
    const line = await log.waitFor('disconnected', (f) => f.peer === label);
    expect(line.fields.reason).toContain('no handshake');
  });

  it('skips messages with unknown ids instead of closing', async () => {
    const client = await BtClient.connect(owner.port, owner.metainfo, {
      peerId: makePeerId(7001),
    });
    clients.push(client);
    await client.ready();
    // An extension-protocol message (id 20) and a DHT port message (id 9).
    client.socket.write(Buffer.from([0, 0, 0, 3, 20, 0, 0, 0, 0, 0, 3, 9, 0x1a, 0xe1]));
    await client.interested();
    await client.fetchChunks([1]);
    expect(client.closed).toBe(false);
    // A swarmdrop peer is named by the listening port in its peer id.
    await log.waitFor('connected', (f) => f.peer === '127.0.0.1:7001' && f.client === 'swarmdrop');
  });

  it('answers malformed HTTP with 400 and keeps running', async () => {
    const reply = await rawExchange(owner.port, 'GARBAGE\r\n\r\n');
    expect(reply).toMatch(/^HTTP\/1\.1 400 /);
  });

  // Used to crash the owner: `new URL()` threw on this request target inside the HTTP handler.
  it('answers an unparsable request target with 400 instead of crashing', async () => {
    for (const target of ['http://[', '//evil.example/status', '/%E0%A4%A', '*']) {
      const reply = await rawExchange(
        owner.port,
        `GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
      );
      expect(reply, target).toMatch(/^HTTP\/1\.1 400 /);
    }
    expect((await httpGet(owner.port, '/status')).status).toBe(200);
  });

  it('answers POST with 405 and an unknown path with 404', async () => {
    const post = await httpGet(owner.port, '/announce', { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe('GET, HEAD');
    const missing = await httpGet(owner.port, '/no/such/thing');
    expect(missing.status).toBe(404);
  });

  it('has served the good client the whole file, byte-identical, through all of it', async () => {
    const all = Array.from({ length: owner.metainfo.geometry.pieceCount }, (_, k) => k);
    await good.fetchChunks(all);
    expect(good.file().equals(data)).toBe(true);
    expect(owner.status().connections).toBeGreaterThanOrEqual(1);
    expect(log.events('error')).toHaveLength(0);
  });
});

describe('connection limit', () => {
  const temp = new TempDirs();
  const clients: BtClient[] = [];
  let owner: Owner | undefined;

  afterEach(async () => {
    for (const c of clients.splice(0)) c.destroy();
    await owner?.close();
    owner = undefined;
    await temp.cleanup();
  });

  it('refuses the 4th concurrent connection with maxConnections 3, and admits again once one leaves', async () => {
    const dir = await temp.make();
    const source = await randomFile(dir, 'data.bin', 300_000);
    let log: LogCapture;
    ({ owner, log } = await startOwner(source.path, `${dir}/owner`, { maxConnections: 3 }));
    const o = owner;
    for (let k = 0; k < 3; k++) {
      const c = await BtClient.connect(o.port, o.metainfo);
      clients.push(c);
      await c.ready();
    }
    const fourth = await BtClient.connect(o.port, o.metainfo);
    clients.push(fourth);
    await fourth.closedPromise;
    expect(fourth.remoteHandshake).toBeUndefined();
    const refused = await log.waitFor('connection-refused', (f) => f.from === fourth.label);
    expect(refused.fields.reason).toContain('limit 3');
    // HTTP counts too: the port is full.
    const reply = await rawExchange(o.port, 'GET /status HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(reply).toBe('');

    const leaving = clients[0]!;
    leaving.destroy();
    await log.waitFor('disconnected', (f) => f.peer === leaving.label);
    const fifth = await BtClient.connect(o.port, o.metainfo);
    clients.push(fifth);
    await fifth.ready();
    await fifth.interested();
    await fifth.fetchChunks([0, 1, 2]);
    expect(fifth.file().equals(source.data)).toBe(true);
  });
});
