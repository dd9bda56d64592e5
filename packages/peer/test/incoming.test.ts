/**
 * Incoming connections before the peer has anything to trade: while it
 * still waits for the owner's metainfo, a BitTorrent connection on its port
 * is closed at once (protocol/node's incomingHandlers, with no policies yet).
 */
import { once } from 'node:events';
import { connect } from 'node:net';
import { encodeMessage, makePeerId } from '@swarmdrop/protocol';
import { DomainEvents } from '@swarmdrop/service';
import { Cleanup, freePorts, LogCapture, rejected } from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { Peer } from '../src/peer.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

describe('incoming connections', () => {
  it('a BitTorrent connection before the torrent exists is closed, not refused or accepted', async () => {
    // Nothing listens on the owner's port: the peer keeps waiting for the metainfo.
    const [ownerPort] = await freePorts(1);
    const dir = await cleanup.tempDir('swarmdrop-peer-test-');
    const log = new LogCapture('peer');
    const events = new DomainEvents();
    const controller = new AbortController();
    const starting = Peer.start(
      {
        owner: { host: '127.0.0.1', port: ownerPort! },
        listen: { host: '127.0.0.1', port: 0 },
        dir,
        ownerTimeoutMs: 600_000,
      },
      { logger: log.logger('peer'), events, signal: controller.signal },
    );
    cleanup.add(async () => {
      controller.abort();
      await starting.catch(() => undefined);
    });
    const listening = await log.waitFor('listening');
    // The first failed fetch is always logged: the peer is past binding and still has no torrent.
    await log.waitFor('waiting');
    const port = Number(listening.fields.addr!.split(':').pop());
    const socket = connect(port, '127.0.0.1');
    cleanup.add(() => socket.destroy());
    socket.resume();
    socket.write(
      encodeMessage({
        type: 'handshake',
        reserved: new Uint8Array(8),
        infoHash: new Uint8Array(20),
        peerId: makePeerId(1),
      }),
    );
    await once(socket, 'close');
    expect(log.filter('connection-refused')).toHaveLength(0);
    expect(log.filter('connected')).toHaveLength(0);
    controller.abort();
    expect(await rejected(starting)).toBeInstanceOf(Error);
  });
});
