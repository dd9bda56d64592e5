import { readFile } from 'node:fs/promises';
import { parseRanges } from '@swarmdrop/service';
import { CHUNK, Cleanup, freePorts, merged, startOwner, startPeer } from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

describe('a three-peer ring', () => {
  it('completes byte-identical at every peer, each trading with its neighbour', async () => {
    const chunks = 31;
    const { owner, data } = await startOwner(cleanup, {
      size: chunks * CHUNK - 777,
      options: { expectedPeers: 3 },
    });
    const ports = await freePorts(3);
    // Peer i downloads from peer i+1; the fallback is out of reach, so every
    // chunk outside a peer's batch must come through the ring.
    const peers = await Promise.all(
      ports.map((port, i) =>
        startPeer(cleanup, {
          ownerPort: owner.port,
          port,
          neighbourPort: ports[(i + 1) % 3]!,
          options: { fallbackAfterMs: 600_000 },
        }),
      ),
    );
    const paths = await Promise.all(peers.map((p) => merged(p.log)));

    const batches = peers.map((p) =>
      parseRanges(p.log.filter('batch-received')[0]!.fields.chunks!),
    );
    // Disjoint batches covering the file.
    expect(batches.flat().sort((a, b) => a - b)).toEqual([...Array(chunks).keys()]);

    for (const [i, { log }] of peers.entries()) {
      expect((await readFile(paths[i]!)).equals(data)).toBe(true);
      const neighbour = `127.0.0.1:${ports[(i + 1) % 3]}`;
      const fromNeighbour = log.chunks('chunk-received', { via: 'neighbour', from: neighbour });
      const fromOwner = log.chunks('chunk-received', { via: 'owner' });
      expect(fromOwner.sort((a, b) => a - b)).toEqual(batches[i]);
      // Everything else came from the neighbour, each chunk once.
      expect([...fromOwner, ...fromNeighbour].sort((a, b) => a - b)).toEqual([
        ...Array(chunks).keys(),
      ]);
      expect(log.filter('fallback')).toHaveLength(0);
      expect(log.filter('chunk-rejected')).toHaveLength(0);
      // The seed's six activities, named with the counterpart's listening address.
      expect(log.filter('idlist-received', { from: neighbour }).length).toBeGreaterThan(0);
      expect(log.filter('request-sent', { to: neighbour }).length).toBe(fromNeighbour.length);
      const upload = `127.0.0.1:${ports[(i + 2) % 3]}`;
      expect(log.filter('idlist-sent', { to: upload }).length).toBeGreaterThan(0);
      expect(log.filter('request-received', { from: upload }).length).toBeGreaterThan(0);
      expect(log.filter('chunk-sent', { to: upload }).length).toBeGreaterThan(0);
      // Its chunk ID list, then a `have` for each chunk stored after it: the
      // upload neighbour learns every chunk. A chunk whose store finished while
      // the handshake was under way can be in both (a redundant `have`, which
      // BEP 3 allows), so the sum may exceed the count, never fall short.
      const last = log.lines.findLastIndex(
        (l) => l.event === 'idlist-sent' && l.fields.to === upload,
      );
      const after = log.lines.slice(last);
      const haves = new Set(
        after
          .filter((l) => l.event === 'have-sent' && l.fields.to === upload)
          .map((l) => Number(l.fields.chunk)),
      );
      expect(Number(log.lines[last]!.fields.chunks) + haves.size).toBeGreaterThanOrEqual(chunks);
      for (const l of after.filter((l) => l.event === 'chunk-received'))
        expect(haves.has(Number(l.fields.chunk))).toBe(true);
    }
    // What a peer sent upstream is exactly what its upload neighbour received from it.
    for (const [i, { log }] of peers.entries()) {
      const upload = peers[(i + 2) % 3]!.log;
      const sent = log.chunks('chunk-sent', { to: `127.0.0.1:${ports[(i + 2) % 3]}` });
      const got = upload.chunks('chunk-received', { from: `127.0.0.1:${ports[i]}` });
      expect(sent.sort((a, b) => a - b)).toEqual(got.sort((a, b) => a - b));
    }
  });
});
