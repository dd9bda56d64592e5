/**
 * Protocol encryption (MSE/PE) between swarmdrop processes: with `require`
 * on every side every connection is RC4 and the file still merges
 * byte-identical; `require` turns a plaintext handshake away; `prefer`
 * retries in plaintext against a remote that hangs up on MSE.
 */
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { connect, createServer, type Socket } from 'node:net';
import { encodeMessage, makePeerId } from '@swarmdrop/protocol';
import {
  CHUNK,
  Cleanup,
  freePorts,
  merged,
  rejected,
  startOwner,
  startPeer,
} from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { parsePeerArgs } from '../src/args.js';
import { connectWire } from '../src/dialers.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

/** pstrlen and pstr: how every plaintext BitTorrent handshake starts. */
const PROTOCOL = Buffer.from('\x13BitTorrent protocol', 'latin1');

describe('encryption between swarmdrop processes', () => {
  it('with --encryption require everywhere, every connection is rc4 and both peers merge byte-identical', async () => {
    const {
      port: ownerPort,
      data,
      log: ownerLog,
    } = await startOwner(cleanup, {
      size: 8 * CHUNK + 777,
      options: { expectedPeers: 2, encryption: 'require' },
    });
    const [portA, portB] = await freePorts(2);
    const options = { encryption: 'require' as const };
    const a = await startPeer(cleanup, { ownerPort, port: portA!, neighbourPort: portB!, options });
    const b = await startPeer(cleanup, { ownerPort, port: portB!, neighbourPort: portA!, options });
    const [pathA, pathB] = await Promise.all([merged(a.log), merged(b.log)]);
    expect((await readFile(pathA)).equals(data)).toBe(true);
    expect((await readFile(pathB)).equals(data)).toBe(true);
    // Each peer had a neighbour link and an owner link, all encrypted.
    for (const log of [a.log, b.log]) {
      const connected = log.filter('connected');
      expect(connected.map((l) => l.fields.role)).toEqual(
        expect.arrayContaining(['owner', 'neighbour']),
      );
      for (const line of connected) expect(line.fields.encryption).toBe('rc4');
    }
    const ownerConnected = ownerLog.filter('connected');
    expect(ownerConnected.length).toBeGreaterThanOrEqual(2);
    for (const line of ownerConnected) expect(line.fields.encryption).toBe('rc4');
  });

  it('an owner with --encryption require refuses a plaintext handshake and says why', async () => {
    const { port, metainfo, log } = await startOwner(cleanup, {
      options: { encryption: 'require' },
    });
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
    expect(refused.fields.reason).toMatch(/plaintext handshake, but --encryption is require/);
    await once(socket, 'close');
    expect(log.filter('connected')).toHaveLength(0);
  });

  it('outgoing prefer opens in plaintext; require opens with MSE and never falls back', async () => {
    // What each connection opened with. An MSE key starts with 0x13 one time
    // in 256, so a plaintext handshake is told by its whole protocol string.
    const opened: Array<'plaintext' | 'other'> = [];
    const server = createServer((socket: Socket) => {
      let first = Buffer.alloc(0);
      socket.on('data', (data: Buffer) => {
        if (first.length >= PROTOCOL.length) return;
        first = Buffer.concat([first, data]);
        if (first.length < PROTOCOL.length) return;
        const plaintext = first.subarray(0, PROTOCOL.length).equals(PROTOCOL);
        opened.push(plaintext ? 'plaintext' : 'other');
        // A client with encryption off: anything but a plaintext handshake is dropped.
        if (!plaintext) socket.destroy();
        else socket.end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    cleanup.add(() => new Promise<void>((r) => server.close(() => r())));
    const port = (server.address() as { port: number }).port;
    const signal = new AbortController().signal;
    const infoHash = new Uint8Array(20);

    const preferred = await connectWire('127.0.0.1', port, signal, { policy: 'prefer', infoHash });
    cleanup.add(() => preferred.socket.destroy());
    expect(preferred.encryption).toBe('plaintext');
    preferred.socket.write(
      encodeMessage({
        type: 'handshake',
        reserved: new Uint8Array(8),
        infoHash,
        peerId: makePeerId(1),
      }),
    );
    preferred.socket.resume();
    await once(preferred.socket, 'close');
    // prefer opens in plaintext: one connection, a plaintext handshake first.
    expect(opened).toEqual(['plaintext']);

    await rejected(connectWire('127.0.0.1', port, signal, { policy: 'require', infoHash }));
    // require: one MSE connection, no plaintext retry.
    expect(opened).toEqual(['plaintext', 'other']);
  });

  it('--encryption and --transport: defaults prefer and both; a wrong value names the flag', () => {
    expect(parsePeerArgs(['7000', '7001', '7002'])).toMatchObject({
      encryption: 'prefer',
      transport: 'both',
    });
    expect(
      parsePeerArgs(['7000', '7001', '7002', '--encryption', 'off', '--transport', 'tcp']),
    ).toMatchObject({
      encryption: 'off',
      transport: 'tcp',
    });
    expect(() => parsePeerArgs(['7000', '7001', '7002', '--encryption', 'rc4'])).toThrow(
      /--encryption: "rc4"/,
    );
    expect(() => parsePeerArgs(['7000', '7001', '7002', '--transport', 'quic'])).toThrow(
      /--transport: "quic"/,
    );
  });
});
