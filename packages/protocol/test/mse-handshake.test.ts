/**
 * The MSE handshake over real loopback sockets: initiator against responder
 * under each policy, PeerWire over the resulting stream, and the ways a
 * handshake fails (another torrent, garbage, a refused offer, a silent remote).
 */
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { Cleanup, pseudoRandomBytes, rejected, socketPair } from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import {
  CRYPTO_RC4,
  type EncryptionPolicy,
  MSE_KEY_LENGTH,
  makePeerId,
  mseCiphers,
  req1Hash,
  req23Hash,
} from '../src/index.js';
import {
  MAX_MSE_INITIAL_PAYLOAD,
  MAX_MSE_RESPONDER_BYTES,
  MseError,
  MseKeyPair,
  type MseResult,
  mseInitiate,
  mseRespond,
  PeerWire,
} from '../src/node/index.js';
import { storeWith } from './sockets.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const INFO_HASH = Buffer.alloc(20, 0x42);

/** The responder's side as DualServer starts it: with the first bytes already read. */
async function respond(socket: Socket, policy: EncryptionPolicy, infoHash = INFO_HASH) {
  const [first] = (await once(socket, 'data')) as [Buffer];
  socket.pause();
  return mseRespond(socket, first, { infoHash, policy });
}

async function pair(a: EncryptionPolicy, b: EncryptionPolicy): Promise<[MseResult, MseResult]> {
  const [client, server] = await socketPair(cleanup);
  const responding = respond(server, b);
  const initiating = mseInitiate(client, { infoHash: INFO_HASH, policy: a });
  return Promise.all([initiating, responding]);
}

async function readExactly(socket: MseResult['socket'], initial: Buffer, length: number) {
  const parts = [initial];
  let got = initial.length;
  while (got < length) {
    const next = once(socket, 'data');
    socket.resume(); // the handshake leaves the socket paused, as PeerWire expects
    const [chunk] = (await next) as [Buffer];
    parts.push(chunk);
    got += chunk.length;
  }
  return Buffer.concat(parts);
}

describe('MSE handshake', () => {
  it.each([
    ['prefer', 'prefer', 'rc4'],
    ['require', 'prefer', 'rc4'],
    ['prefer', 'require', 'rc4'],
  ] as const)(
    'initiator %s, responder %s: both get %s and payload crosses both ways',
    async (a, b, expected) => {
      const [ours, theirs] = await pair(a, b);
      expect(ours.encryption).toBe(expected);
      expect(theirs.encryption).toBe(expected);
      const up = pseudoRandomBytes(300_000, 1);
      const down = pseudoRandomBytes(1_000, 2);
      const received = readExactly(theirs.socket, theirs.initial, up.length);
      ours.socket.write(up);
      theirs.socket.write(down);
      expect((await received).equals(up)).toBe(true);
      expect((await readExactly(ours.socket, ours.initial, down.length)).equals(down)).toBe(true);
    },
  );

  it('the bytes on the wire are not the payload when rc4 was chosen', async () => {
    const [client, server] = await socketPair(cleanup);
    const seen: Buffer[] = [];
    server.on('data', (b: Buffer) => seen.push(Buffer.from(b)));
    const responding = respond(server, 'prefer');
    const [ours, theirs] = await Promise.all([
      mseInitiate(client, { infoHash: INFO_HASH, policy: 'prefer' }),
      responding,
    ]);
    const marker = Buffer.from('BitTorrent protocol, in the clear?');
    const received = readExactly(theirs.socket, theirs.initial, marker.length);
    ours.socket.write(marker);
    expect((await received).equals(marker)).toBe(true);
    expect(Buffer.concat(seen).includes(marker)).toBe(false);
  });

  it('PeerWire runs unchanged over the rc4 stream: handshakes cross, the encryption is reported', async () => {
    const { metainfo } = await storeWith(cleanup, pseudoRandomBytes(5_000, 3));
    const [client, server] = await socketPair(cleanup);
    const responding = (async () => {
      const [first] = (await once(server, 'data')) as [Buffer];
      server.pause();
      return mseRespond(server, first, { infoHash: metainfo.infoHash, policy: 'require' });
    })();
    const [ours, theirs] = await Promise.all([
      mseInitiate(client, { infoHash: metainfo.infoHash, policy: 'require' }),
      responding,
    ]);
    const idA = makePeerId(1);
    const idB = makePeerId(2);
    const a = new PeerWire({ ...ours, metainfo, peerId: idA });
    const b = new PeerWire({ ...theirs, metainfo, peerId: idB });
    cleanup.add(() => {
      a.close('test over');
      b.close('test over');
    });
    const [ha, hb] = await Promise.all([a.ready(), b.ready()]);
    expect(Buffer.from(ha.peerId)).toEqual(Buffer.from(idB));
    expect(Buffer.from(hb.peerId)).toEqual(Buffer.from(idA));
    expect(a.encryption).toBe('rc4');
    const have = new Promise((resolve) => {
      b.onMessage = resolve;
    });
    a.send({ type: 'have', index: 0 });
    expect(await have).toEqual({ type: 'have', index: 0 });
    a.close('done');
    expect((await b.closed).reason).toBe('closed by remote');
  });

  it('a responder refuses a handshake for another torrent', async () => {
    const [client, server] = await socketPair(cleanup);
    const responding = respond(server, 'prefer', Buffer.alloc(20, 0x43));
    const initiating = mseInitiate(client, { infoHash: INFO_HASH, policy: 'prefer' });
    const err = (await rejected(responding)) as MseError;
    expect(err).toBeInstanceOf(MseError);
    expect(err.code).toBe('ERR_INFO_HASH');
    expect(((await rejected(initiating)) as MseError).code).toBe('ERR_HANDSHAKE');
  });

  it('an initiator offering plaintext only gets plaintext from prefer and a refusal from require', async () => {
    const [client, server] = await socketPair(cleanup);
    const responding = respond(server, 'prefer');
    // Our own initiators always offer rc4; a plaintext-only offer comes from stock clients.
    const initiating = mseInitiate(client, {
      infoHash: INFO_HASH,
      policy: 'prefer',
      provide: 0x01,
    });
    const [ours, theirs] = await Promise.all([initiating, responding]);
    expect([ours.encryption, theirs.encryption]).toEqual(['plaintext', 'plaintext']);

    const [client2, server2] = await socketPair(cleanup);
    const refusing = respond(server2, 'require');
    const refused = mseInitiate(client2, { infoHash: INFO_HASH, policy: 'prefer', provide: 0x01 });
    const err = (await rejected(refusing)) as MseError;
    expect(err.code).toBe('ERR_HANDSHAKE');
    expect(err.message).toMatch(/offer plaintext is not allowed with --encryption require/);
    await rejected(refused);
  });

  // Transmission 3.00 keeps what it read on a failed MSE attempt in front of
  // its plaintext retry, and then calls our plaintext handshake corrupt: under
  // `off` not one byte may go back.
  it('off closes an MSE handshake without sending a byte', async () => {
    const [client, server] = await socketPair(cleanup);
    let received = 0;
    client.on('data', (b: Buffer) => {
      received += b.length;
    });
    const responding = respond(server, 'off');
    const initiating = mseInitiate(client, { infoHash: INFO_HASH, policy: 'prefer' });
    const err = (await rejected(responding)) as MseError;
    expect(err.message).toMatch(/--encryption is off/);
    expect(((await rejected(initiating)) as MseError).message).toMatch(/closed the connection/);
    expect(received).toBe(0);
  });

  it('garbage in place of an MSE handshake fails within the padding bound and closes the socket', async () => {
    const [client, server] = await socketPair(cleanup);
    const responding = respond(server, 'prefer');
    client.resume();
    client.write(pseudoRandomBytes(96 + 700, 4));
    const err = (await rejected(responding)) as MseError;
    expect(err.code).toBe('ERR_HANDSHAKE');
    expect(err.message).toMatch(/within 512 bytes/);
    await once(client, 'close');
  });

  it('an initiator whose remote answers with HTTP instead of MSE fails, so prefer can retry in plaintext', async () => {
    const [client, server] = await socketPair(cleanup);
    server.once('data', () => server.end('HTTP/1.1 400 Bad Request\r\n\r\n'));
    const err = (await rejected(
      mseInitiate(client, { infoHash: INFO_HASH, policy: 'prefer' }),
    )) as MseError;
    expect(err).toBeInstanceOf(MseError);
    expect(err.message).toMatch(/closed the connection/);
  });

  it('a silent remote fails the handshake at its deadline', async () => {
    const [client] = await socketPair(cleanup);
    const err = (await rejected(
      mseInitiate(client, { infoHash: INFO_HASH, policy: 'prefer', timeoutMs: 200 }),
    )) as MseError;
    expect(err.message).toMatch(/no MSE handshake within 200 ms/);
  });
});

/**
 * A hand-played initiator over an in-memory stream, so that what the
 * responder receives arrives in exactly the chunks the test pushes.
 */
async function playInitiator(): Promise<{
  stream: Duplex;
  responding: Promise<MseResult>;
  step3: Buffer;
}> {
  let wrote: (chunk: Buffer) => void = () => {};
  const firstWrite = new Promise<Buffer>((resolve) => {
    wrote = resolve;
  });
  const stream = new Duplex({
    read() {},
    write(chunk: Buffer, _encoding, callback) {
      wrote(chunk);
      callback();
    },
  });
  const keys = new MseKeyPair();
  const responding = mseRespond(stream, keys.publicKey, { infoHash: INFO_HASH, policy: 'prefer' });
  responding.catch(() => {});
  const yb = (await firstWrite).subarray(0, MSE_KEY_LENGTH);
  const secret = keys.secret(yb);
  const { encrypt } = mseCiphers(secret, INFO_HASH, true);
  // VC, crypto_provide, len(PadC)=0, len(IA): the longest IA the responder takes.
  const head = Buffer.alloc(8 + 4 + 2 + 2);
  head.writeUInt32BE(CRYPTO_RC4, 8);
  head.writeUInt16BE(MAX_MSE_INITIAL_PAYLOAD, 14);
  const step3 = Buffer.concat([
    req1Hash(secret),
    req23Hash(INFO_HASH, secret),
    encrypt.update(head),
  ]);
  return { stream, responding, step3 };
}

describe('MSE responder memory', () => {
  it('fails a handshake whose remote sends more than MAX_MSE_RESPONDER_BYTES before it is done, holding none of it', async () => {
    const { stream, responding, step3 } = await playInitiator();
    stream.push(step3);
    // One chunk larger than anything the handshake may hold: IA and far more.
    stream.push(Buffer.alloc(MAX_MSE_RESPONDER_BYTES + 1));
    const err = await rejected(responding);
    expect(err).toBeInstanceOf(MseError);
    expect((err as Error).message).toMatch(
      new RegExp(`more than ${MAX_MSE_RESPONDER_BYTES} bytes before the MSE handshake was done`),
    );
    expect(stream.destroyed).toBe(true);
  });

  it('still takes a client that sends its first messages right behind the initial payload', async () => {
    const { stream, responding, step3 } = await playInitiator();
    stream.push(step3);
    stream.push(Buffer.alloc(MAX_MSE_INITIAL_PAYLOAD + 16_000));
    const result = await responding;
    expect(result.encryption).toBe('rc4');
    expect(result.initial.length).toBe(MAX_MSE_INITIAL_PAYLOAD + 16_000);
  });
});
