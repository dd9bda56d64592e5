/**
 * µTP over real UDP on 127.0.0.1: two endpoints carry a few MB both ways as
 * Duplex streams, PeerWire runs over MSE over µTP, a malformed datagram is
 * dropped without harm, and a packet for an unknown connection is answered
 * with RESET.
 */
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { Cleanup, pseudoRandomBytes } from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeUtpPacket, encodeUtpPacket, makePeerId } from '../src/index.js';
import {
  firstBytes,
  mseInitiate,
  mseRespond,
  PeerWire,
  UtpEndpoint,
  type UtpStream,
} from '../src/node/index.js';
import { storeWith } from './sockets.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

async function endpoints(onConnection?: (stream: UtpStream) => void) {
  const server = new UtpEndpoint({
    host: '127.0.0.1',
    port: 0,
    ...(onConnection ? { onConnection } : {}),
  });
  const { port } = await server.listen();
  const client = new UtpEndpoint({ host: '127.0.0.1', port: 0 });
  await client.listen();
  cleanup.add(() => client.close());
  cleanup.add(() => server.close());
  return { server, client, port };
}

function collect(stream: UtpStream, length: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let got = 0;
    stream.on('data', (b: Buffer) => {
      parts.push(b);
      got += b.length;
      if (got >= length) resolve(Buffer.concat(parts));
    });
    stream.once('error', reject);
  });
}

describe('UtpEndpoint', () => {
  it('carries 3 MB up and 1 MB down over UDP, in order, with backpressure, and ends cleanly', async () => {
    let accepted!: (s: UtpStream) => void;
    const incoming = new Promise<UtpStream>((r) => {
      accepted = r;
    });
    const { client, port } = await endpoints((s) => accepted(s));
    const ours = await client.connect('127.0.0.1', port);
    const theirs = await incoming;
    const up = pseudoRandomBytes(3_000_000, 1);
    const down = pseudoRandomBytes(1_000_000, 2);
    const gotUp = collect(theirs, up.length);
    const gotDown = collect(ours, down.length);
    for (let at = 0; at < up.length; at += 65_536) {
      if (!ours.write(up.subarray(at, at + 65_536))) await once(ours, 'drain');
    }
    theirs.write(down);
    expect((await gotUp).equals(up)).toBe(true);
    expect((await gotDown).equals(down)).toBe(true);
    ours.end();
    await once(theirs, 'close');
    await once(ours, 'close');
    expect(theirs.remoteAddress).toBe('127.0.0.1');
  });

  it("runs its connections' clock only while it has a connection", async () => {
    // An idle port woke the process 20 times a second for nothing.
    let accepted!: (s: UtpStream) => void;
    const incoming = new Promise<UtpStream>((r) => {
      accepted = r;
    });
    const { server, client, port } = await endpoints((s) => accepted(s));
    expect([client.ticking, server.ticking]).toEqual([false, false]);
    const ours = await client.connect('127.0.0.1', port);
    const theirs = await incoming;
    expect([client.ticking, server.ticking]).toEqual([true, true]);
    // Read both sides to their end, so each closes once the other has ended.
    ours.resume();
    theirs.resume();
    theirs.end();
    ours.end();
    await Promise.all([once(theirs, 'close'), once(ours, 'close')]);
    expect([client.ticking, server.ticking]).toEqual([false, false]);
    // And it starts again with the next one.
    const again = client.connect('127.0.0.1', port);
    expect(client.ticking).toBe(true);
    (await again).destroy();
  });

  it('PeerWire runs over MSE over µTP', async () => {
    const { metainfo } = await storeWith(cleanup, pseudoRandomBytes(3_000, 3));
    const idA = makePeerId(1);
    const idB = makePeerId(2);
    let serverWire!: (w: PeerWire) => void;
    const serverSide = new Promise<PeerWire>((r) => {
      serverWire = r;
    });
    const { client, port } = await endpoints((stream) => {
      void firstBytes(stream, 5_000)
        .then((initial) =>
          mseRespond(stream, initial, { infoHash: metainfo.infoHash, policy: 'require' }),
        )
        .then((mse) =>
          serverWire(new PeerWire({ ...mse, metainfo, peerId: idB, transport: 'utp' })),
        );
    });
    const stream = await client.connect('127.0.0.1', port);
    const mse = await mseInitiate(stream, { infoHash: metainfo.infoHash, policy: 'require' });
    const a = new PeerWire({ ...mse, metainfo, peerId: idA, transport: 'utp' });
    const b = await serverSide;
    cleanup.add(() => {
      a.close('done');
      b.close('done');
    });
    const [ha] = await Promise.all([a.ready(), b.ready()]);
    expect(Buffer.from(ha.peerId)).toEqual(Buffer.from(idB));
    expect([a.encryption, b.transport]).toEqual(['rc4', 'utp']);
    const have = new Promise((resolve) => {
      b.onMessage = resolve;
    });
    a.send({ type: 'have', index: 0 });
    expect(await have).toEqual({ type: 'have', index: 0 });
  });

  it('drops a malformed datagram and answers a packet for an unknown connection with RESET', async () => {
    const { server, port } = await endpoints(() => {});
    const probe = createSocket('udp4');
    cleanup.add(() => new Promise<void>((r) => probe.close(() => r())));
    await new Promise<void>((r) => probe.bind(0, '127.0.0.1', () => r()));
    const replies: Buffer[] = [];
    const replied = new Promise<void>((r) =>
      probe.on('message', (m: Buffer) => {
        replies.push(m);
        r();
      }),
    );
    probe.send(Buffer.from('GET / HTTP/1.1\r\n\r\n'), port, '127.0.0.1');
    probe.send(
      encodeUtpPacket({
        type: 'data',
        connectionId: 4242,
        timestampUs: 0,
        timestampDiffUs: 0,
        windowSize: 0,
        seq: 9,
        ack: 0,
        payload: Buffer.from('x'),
      }),
      port,
      '127.0.0.1',
    );
    await replied;
    // Datagrams on one loopback socket pair arrive in order: the garbage was seen first.
    expect(server.malformed).toBe(1);
    const reset = decodeUtpPacket(replies[0]!);
    expect(reset.type).toBe('reset');
    expect(reset.connectionId).toBe(4242);
  });

  it('connect fails when nothing answers within its timeout', async () => {
    const silent = createSocket('udp4');
    cleanup.add(() => new Promise<void>((r) => silent.close(() => r())));
    await new Promise<void>((r) => silent.bind(0, '127.0.0.1', () => r()));
    const client = new UtpEndpoint({ host: '127.0.0.1', port: 0 });
    await client.listen();
    cleanup.add(() => client.close());
    await expect(
      client.connect('127.0.0.1', silent.address().port, { timeoutMs: 300 }),
    ).rejects.toThrow(/timed out/);
  });
});
