/**
 * Metadata from peers (BEP 9) between swarmdrop processes: a bare fetcher,
 * given only the info-hash and an address, gets the info dictionary from an
 * owner and from a peer, over TCP and over µTP with MSE, and both log what
 * they did.
 */

import { makePeerId, type TransportPolicy } from '@swarmdrop/protocol';
import { MetadataFetcher, systemClock, UtpEndpoint } from '@swarmdrop/protocol/node';
import { DomainEvents, type EventFields, publishMetadataFetch } from '@swarmdrop/service';
import {
  CHUNK,
  Cleanup,
  freePorts,
  HANG_MS,
  merged,
  startOwner,
  startPeer,
  within,
} from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { connectWire } from '../src/dialers.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

/** Fetches the metadata of `infoHash` from 127.0.0.1:`port` alone. */
async function fetchFrom(
  infoHash: Uint8Array,
  port: number,
  how: { transport: TransportPolicy; encryption: 'prefer' | 'require' },
) {
  let utp: UtpEndpoint | undefined;
  if (how.transport !== 'tcp') {
    utp = new UtpEndpoint({ host: '127.0.0.1', port: 0 });
    await utp.listen();
    cleanup.add(() => utp?.close());
  }
  let dialled = false;
  const events = new DomainEvents();
  const seen: Array<[string, unknown]> = [];
  for (const name of ['metadata-received', 'metadata-dropped', 'metadata-fetched'] as const)
    events.on(name, (fields: EventFields[typeof name]) => seen.push([name, fields]));
  const controller = new AbortController();
  cleanup.add(() => controller.abort());
  const fetcher = new MetadataFetcher({
    infoHash,
    peerId: makePeerId(40_001),
    clock: systemClock,
    signal: controller.signal,
    dial: async (signal) => {
      if (dialled) return undefined;
      dialled = true;
      return connectWire('127.0.0.1', port, signal, {
        policy: how.encryption,
        infoHash,
        transport: how.transport,
        utp,
      });
    },
  });
  publishMetadataFetch(fetcher, events.publish, infoHash);
  const got = await within(fetcher.run(), HANG_MS, () => 'no metadata');
  return { got, seen };
}

const TOKEN = 'a-private-swarm-token-0123456789';

describe('metadata from swarmdrop processes (BEP 9)', () => {
  it.each([
    ['TCP, plaintext', { transport: 'tcp', encryption: 'prefer' }],
    ['µTP, MSE', { transport: 'utp', encryption: 'require' }],
  ] as const)('a fetcher gets it from an owner over %s', async (_, how) => {
    const { port, metainfo, log } = await startOwner(cleanup, {
      size: 40 * CHUNK + 7,
      options: { transport: 'both', encryption: 'prefer' },
    });
    const { got, seen } = await fetchFrom(metainfo.infoHash, port, how);
    expect(got.infoBytes.equals(metainfo.infoBytes)).toBe(true);
    expect(got.metainfo.length).toBe(metainfo.length);
    expect(got.metainfo.pieceHashes.bytes.equals(metainfo.pieceHashes.bytes)).toBe(true);
    expect(seen.at(-1)).toEqual([
      'metadata-fetched',
      expect.objectContaining({ size: metainfo.infoBytes.length }),
    ]);
    expect(log.filter('connected')[0]?.fields).toMatchObject({
      transport: how.transport,
      encryption: how.encryption === 'require' ? 'rc4' : 'plaintext',
    });
    const sent = await log.waitFor('metadata-sent');
    expect(sent.fields).toMatchObject({ piece: '0', bytes: String(metainfo.infoBytes.length) });
    const handshake = log.filter('extended-handshake');
    expect(handshake[0]?.fields).toMatchObject({
      extensions: 'ut_metadata',
      client: 'swarmdrop 0.2.0',
      listenPort: '40001',
    });
  });

  it.each([
    ['TCP, plaintext', { transport: 'tcp', encryption: 'prefer' }],
    ['µTP, MSE', { transport: 'utp', encryption: 'require' }],
  ] as const)(
    'a private swarm serves no metadata to an address that has not announced with the token (%s)',
    async (_, how) => {
      const { port, metainfo, log } = await startOwner(cleanup, {
        size: 4 * CHUNK,
        options: { token: TOKEN, transport: 'both' },
      });
      await expect(fetchFrom(metainfo.infoHash, port, how)).rejects.toThrow(
        /no remote gave the metadata \(1 tried/,
      );
      expect((await log.waitFor('connection-refused')).fields.reason).toBe(
        'not announced with the token',
      );
      expect(log.filter('connected')).toEqual([]);
      expect(log.filter('metadata-sent')).toEqual([]);
    },
  );

  it('a fetcher gets it from a swarmdrop peer (swarm mode, over µTP with MSE)', async () => {
    const { owner, metainfo } = await startOwner(cleanup, {
      size: 12 * CHUNK,
      options: { expectedPeers: 1, transport: 'both' },
    });
    const [peerPort] = await freePorts(1);
    const peer = await startPeer(cleanup, {
      ownerPort: owner.port,
      port: peerPort!,
      options: { transport: 'both' },
    });
    await merged(peer.log);
    const { got } = await fetchFrom(metainfo.infoHash, peerPort!, {
      transport: 'utp',
      encryption: 'require',
    });
    expect(got.infoBytes.equals(metainfo.infoBytes)).toBe(true);
    const requested = await peer.log.waitFor('metadata-requested');
    expect(requested.fields).toMatchObject({ piece: '0', of: '1' });
    expect(peer.log.filter('listening')[0]?.fields.mode).toBe('swarm');
  });
});
