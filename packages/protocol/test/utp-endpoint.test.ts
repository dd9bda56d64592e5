/**
 * µTP over real UDP on 127.0.0.1: two endpoints carry a few MB both ways as
 * Duplex streams, PeerWire runs over MSE over µTP, a malformed datagram is
 * dropped without harm, and a packet for an unknown connection is answered
 * with RESET.
 */
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { Cleanup, pseudoRandomBytes, RawUtpRemote } from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeUtpPacket, encodeUtpPacket, makePeerId, seqAdd } from '../src/index.js';
import {
  firstBytes,
  mseInitiate,
  mseRespond,
  PeerWire,
  UTP_MAX_UNPROVEN,
  UTP_MAX_UNPROVEN_PER_ADDRESS,
  UTP_SYN_BURST,
  UTP_SYN_PER_SECOND,
  UtpEndpoint,
  type UtpEndpointOptions,
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

/** A server endpoint on 127.0.0.1 that counts what it hands up and turns away. */
async function server(options: Partial<UtpEndpointOptions> = {}) {
  const accepted: UtpStream[] = [];
  const refused: string[] = [];
  const waiters: Array<() => void> = [];
  const changed = () => {
    for (const w of waiters.splice(0)) w();
  };
  const endpoint = new UtpEndpoint({
    host: '127.0.0.1',
    port: 0,
    onConnection: (stream) => {
      accepted.push(stream);
      // Read as the services do: the stream's first read used to send a second STATE.
      stream.resume();
      changed();
    },
    onRefused: (_remote, reason) => {
      refused.push(reason);
      changed();
    },
    ...options,
  });
  const { port } = await endpoint.listen();
  cleanup.add(() => endpoint.close());
  /** Resolves once accepted + refused reach `n`. */
  const settled = async (n: number) => {
    while (accepted.length + refused.length < n) await new Promise<void>((r) => waiters.push(r));
  };
  return { endpoint, port, accepted, refused, settled };
}

const syn = (connectionId: number, seq = 1) => ({ type: 'syn' as const, connectionId, seq });

describe('UtpEndpoint facing forged and flooding sources', () => {
  it('answers a SYN with one STATE, and hands a stream up only once the remote acks our sequence number', async () => {
    const { port, accepted } = await server();
    const remote = await RawUtpRemote.open(cleanup, '127.0.0.2', { port });
    remote.send(syn(100));
    await remote.barrier();
    const states = remote.received.filter((p) => p.type === 'state');
    expect(states.length).toBe(1);
    expect(accepted.length).toBe(0);
    const data = remote.next((p) => p.type === 'state' && p.ack === 2);
    remote.send({
      type: 'data',
      connectionId: 101,
      seq: 2,
      ack: seqAdd(states[0]!.seq, -1),
      payload: Buffer.from('hi'),
    });
    await data;
    expect(accepted.length).toBe(1);
  });

  // Regression: the SYN's id + 1 was looked up without wrapping, so a repeated
  // SYN with id 0xFFFF never found its connection and opened another.
  it('five identical SYNs with connection id 0xFFFF open one connection', async () => {
    const { endpoint, port, accepted } = await server();
    const remote = await RawUtpRemote.open(cleanup, '127.0.0.2', { port });
    for (let i = 0; i < 5; i++) remote.send(syn(0xffff));
    await remote.barrier();
    const state = remote.received.find((p) => p.type === 'state')!;
    remote.send({ type: 'state', connectionId: 0, seq: 2, ack: seqAdd(state.seq, -1) });
    await remote.barrier(0x7a7b);
    expect(accepted.length).toBe(1);
    expect(endpoint.connectionCount).toBe(1);
  });

  it(`answers at most ${UTP_SYN_BURST} SYNs at once from one address, then ${UTP_SYN_PER_SECOND} a second`, async () => {
    let nowMs = 0;
    const { endpoint, port } = await server({ now: () => nowMs });
    const flood = await RawUtpRemote.open(cleanup, '127.0.0.2', { port });
    const other = await RawUtpRemote.open(cleanup, '127.0.0.3', { port });
    // The same SYN again and again: each repeat would be answered with a STATE.
    for (let i = 0; i < 100; i++) flood.send(syn(300));
    await flood.barrier();
    const states = () => flood.received.filter((p) => p.type === 'state').length;
    expect(states()).toBe(UTP_SYN_BURST);
    expect(endpoint.stats.synsRateLimited).toBe(100 - UTP_SYN_BURST);
    // Another address has its own bucket.
    other.send(syn(300));
    await other.barrier();
    expect(other.received.filter((p) => p.type === 'state').length).toBe(1);
    nowMs += 1_000;
    for (let i = 0; i < 100; i++) flood.send(syn(300));
    await flood.barrier(0x7a7b);
    expect(states()).toBe(UTP_SYN_BURST + UTP_SYN_PER_SECOND);
  });

  it('a SYN flood from many addresses never proving them cannot lock a real remote out', async () => {
    const { endpoint, port, accepted, settled } = await server({ maxConnections: 4 });
    const addresses = Array.from({ length: 20 }, (_, i) => `127.0.0.${10 + i}`);
    const floods = await Promise.all(addresses.map((a) => RawUtpRemote.open(cleanup, a, { port })));
    // Past the unproven cap per address, and past the table's total.
    const perAddress = UTP_MAX_UNPROVEN_PER_ADDRESS + 4;
    for (const f of floods) for (let id = 0; id < perAddress; id++) f.send(syn(1000 + 2 * id));
    await Promise.all(floods.map((f) => f.barrier()));
    expect(endpoint.unprovenCount).toBe(UTP_MAX_UNPROVEN);
    expect(endpoint.stats.synsUnprovenCapped).toBe(20 * 4);
    expect(endpoint.stats.unprovenEvicted).toBe(
      20 * UTP_MAX_UNPROVEN_PER_ADDRESS - UTP_MAX_UNPROVEN,
    );
    expect(accepted.length).toBe(0);

    const client = new UtpEndpoint({ host: '127.0.0.9', port: 0 });
    await client.listen();
    cleanup.add(() => client.close());
    const ours = await client.connect('127.0.0.1', port, { timeoutMs: 5_000 });
    ours.write('hello');
    await settled(1);
    expect(accepted[0]!.remoteAddress).toBe('127.0.0.9');
  });

  it('a source address past --max-connections-per-address is refused while others get in', async () => {
    const { port, accepted, refused, settled } = await server({ maxConnectionsPerAddress: 2 });
    const crowd = new UtpEndpoint({ host: '127.0.0.2', port: 0 });
    const lone = new UtpEndpoint({ host: '127.0.0.3', port: 0 });
    for (const e of [crowd, lone]) {
      await e.listen();
      cleanup.add(() => e.close());
    }
    const streams = [];
    for (let i = 0; i < 3; i++) streams.push(await crowd.connect('127.0.0.1', port));
    streams.push(await lone.connect('127.0.0.1', port));
    for (const s of streams) s.on('error', () => {});
    await settled(4);
    expect(accepted.map((s) => s.remoteAddress).sort()).toEqual([
      '127.0.0.2',
      '127.0.0.2',
      '127.0.0.3',
    ]);
    expect(refused).toEqual(['too many µTP connections from 127.0.0.2 (limit 2 per address)']);
  });
});
