/**
 * µTP between swarmdrop processes: with --transport utp on the owner and
 * both peers, every BitTorrent connection runs over UDP (HTTP stays on TCP),
 * with RC4 on top, and both peers merge byte-identical.
 */
import { readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { encodeMessage, makePeerId } from '@swarmdrop/protocol';
import { UtpEndpoint } from '@swarmdrop/protocol/node';
import { CHUNK, Cleanup, freePorts, merged, startOwner, startPeer } from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { connectWire, UTP_PROBE_TIMEOUT_MS } from '../src/dialers.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

describe('µTP between swarmdrop processes', () => {
  it('owner and two peers with --transport utp: every connection is µTP and both merge byte-identical', async () => {
    const {
      port: ownerPort,
      data,
      log: ownerLog,
    } = await startOwner(cleanup, {
      size: 24 * CHUNK + 321,
      options: { expectedPeers: 2, transport: 'utp' },
    });
    const [portA, portB] = await freePorts(2);
    const options = { transport: 'utp' as const };
    const a = await startPeer(cleanup, { ownerPort, port: portA!, neighbourPort: portB!, options });
    const b = await startPeer(cleanup, { ownerPort, port: portB!, neighbourPort: portA!, options });
    const [pathA, pathB] = await Promise.all([merged(a.log), merged(b.log)]);
    expect((await readFile(pathA)).equals(data)).toBe(true);
    expect((await readFile(pathB)).equals(data)).toBe(true);
    for (const log of [a.log, b.log]) {
      const connected = log.filter('connected');
      expect(connected.map((l) => l.fields.role)).toEqual(
        expect.arrayContaining(['owner', 'neighbour']),
      );
      for (const line of connected) {
        expect(line.fields.transport).toBe('utp');
        // The peers' outgoing connections open in plaintext (the default, prefer, does).
        expect(line.fields.encryption).toBe('plaintext');
      }
      // Each peer got chunks over µTP from its neighbour, not only from the owner.
      expect(log.filter('chunk-received', { via: 'neighbour' }).length).toBeGreaterThan(0);
    }
    for (const line of ownerLog.filter('connected')) expect(line.fields.transport).toBe('utp');
  });

  it('swarm mode goes through the same paths: two swarm peers with --transport utp --encryption require trade over µTP and RC4', async () => {
    const options = { transport: 'utp' as const, encryption: 'require' as const };
    const {
      port: ownerPort,
      data,
      log: ownerLog,
    } = await startOwner(cleanup, {
      size: 20 * CHUNK + 77,
      options: { expectedPeers: 2, ...options },
    });
    const [portA, portB] = await freePorts(2);
    // No download neighbour: swarm mode, peers found through the owner's tracker.
    const a = await startPeer(cleanup, { ownerPort, port: portA!, options });
    const b = await startPeer(cleanup, { ownerPort, port: portB!, options });
    const [pathA, pathB] = await Promise.all([merged(a.log), merged(b.log)]);
    expect((await readFile(pathA)).equals(data)).toBe(true);
    expect((await readFile(pathB)).equals(data)).toBe(true);
    const links = [...a.log.filter('connected'), ...b.log.filter('connected')];
    // The owner seeds each chunk once before any twice: the two must have traded.
    expect(links.filter((l) => l.fields.role === 'swarm').length).toBeGreaterThan(0);
    for (const line of [...links, ...ownerLog.filter('connected')]) {
      expect(line.fields.transport).toBe('utp');
      expect(line.fields.encryption).toBe('rc4');
    }
  });

  it('an owner with --transport utp refuses a BitTorrent handshake over TCP and says why', async () => {
    const { port, metainfo, log } = await startOwner(cleanup, { options: { transport: 'utp' } });
    const socket = connect(port, '127.0.0.1');
    cleanup.add(() => socket.destroy());
    socket.resume();
    socket.write(
      encodeMessage({
        type: 'handshake',
        reserved: new Uint8Array(8),
        infoHash: metainfo.infoHash,
        peerId: makePeerId(1),
      }),
    );
    const refused = await log.waitFor('connection-refused');
    expect(refused.fields.reason).toMatch(/TCP, but --transport is utp/);
  });

  it('with --transport both a peer connects to the owner over TCP', async () => {
    const { port: ownerPort, data } = await startOwner(cleanup, {
      size: 6 * CHUNK,
      options: { expectedPeers: 1 },
    });
    const [port, nobody] = await freePorts(2);
    const { log } = await startPeer(cleanup, {
      ownerPort,
      port: port!,
      neighbourPort: nobody!,
      options: { transport: 'both' },
    });
    const path = await merged(log);
    expect((await readFile(path)).equals(data)).toBe(true);
    expect(log.filter('connected', { role: 'owner' })[0]?.fields.transport).toBe('tcp');
  });

  it('connectWire with transport both falls back to µTP when nothing listens on TCP', async () => {
    const infoHash = new Uint8Array(20).fill(3);
    const [port] = await freePorts(1);
    const server = new UtpEndpoint({
      host: '127.0.0.1',
      port: port!,
      // Outgoing prefer opens in plaintext: accepting the µTP connection is all it takes.
      onConnection: (stream) => {
        cleanup.add(() => stream.destroy());
      },
    });
    await server.listen();
    cleanup.add(() => server.close());
    const ours = new UtpEndpoint({ host: '127.0.0.1', port: 0 });
    await ours.listen();
    cleanup.add(() => ours.close());
    const signal = new AbortController().signal;
    const connection = await connectWire('127.0.0.1', port!, signal, {
      policy: 'prefer',
      infoHash,
      transport: 'both',
      utp: ours,
    });
    cleanup.add(() => connection.socket.destroy());
    expect(connection.transport).toBe('utp');
    expect(connection.encryption).toBe('plaintext');
    // tcp alone does not try µTP.
    await expect(
      connectWire('127.0.0.1', port!, signal, {
        policy: 'prefer',
        infoHash,
        transport: 'tcp',
        utp: ours,
      }),
    ).rejects.toThrow(/ECONNREFUSED/);
  });

  // Bug pinned here: after a refused TCP connect (a neighbour still
  // starting), a full µTP connect kept resending its SYN, caught the
  // neighbour as it came up, and the ring link ran over µTP instead of TCP.
  it('after a refused TCP connect, µTP gets one SYN: a connect bounded by UTP_PROBE_TIMEOUT_MS', async () => {
    const [nobody] = await freePorts(1);
    const asked: Array<number | undefined> = [];
    const utp = {
      connect: async (_host: string, _port: number, opts: { timeoutMs?: number }) => {
        asked.push(opts.timeoutMs);
        throw new Error('µTP connect timed out');
      },
    } as unknown as UtpEndpoint;
    const err = await connectWire('127.0.0.1', nobody!, new AbortController().signal, {
      policy: 'off',
      infoHash: Buffer.alloc(20),
      transport: 'both',
      utp,
    }).catch((e: Error) => e);
    expect(String(err)).toMatch(/ECONNREFUSED.*µTP: µTP connect timed out/);
    expect(asked).toEqual([UTP_PROBE_TIMEOUT_MS]);
  });

  // The peer's µTP endpoint was built without the caps, so only TCP honoured them.
  it("the peer's µTP port honours --max-connections and --max-connections-per-address", async () => {
    const { port: ownerPort } = await startOwner(cleanup, {
      size: 3 * CHUNK,
      options: { expectedPeers: 1 },
    });
    const [port, nobody] = await freePorts(2);
    const { log } = await startPeer(cleanup, {
      ownerPort,
      port: port!,
      neighbourPort: nobody!,
      options: { maxConnections: 3, maxConnectionsPerAddress: 2 },
    });
    await merged(log);
    const dial = async (address: string) => {
      const endpoint = new UtpEndpoint({ host: address, port: 0 });
      await endpoint.listen();
      cleanup.add(() => endpoint.close());
      const stream = await endpoint.connect('127.0.0.1', port!);
      stream.on('error', () => {});
      return stream;
    };
    const reason = (from: string) =>
      log.waitFor('connection-refused', (f) => f.from?.startsWith(`${from}:`) ?? false);
    const perAddress = reason('127.0.0.2');
    for (let i = 0; i < 3; i++) await dial('127.0.0.2');
    expect((await perAddress).fields.reason).toBe(
      'too many µTP connections from 127.0.0.2 (limit 2 per address)',
    );
    const total = reason('127.0.0.4');
    await dial('127.0.0.3');
    await dial('127.0.0.4');
    expect((await total).fields.reason).toBe('too many µTP connections (limit 3)');
    expect(
      log.filter('connection-refused', (f) => f.from?.startsWith('127.0.0.3:') ?? false),
    ).toEqual([]);
  });
});
