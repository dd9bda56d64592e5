import { readFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { parseRanges } from '@swarmdrop/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import {
  CHUNK,
  Cleanup,
  freePort,
  merged,
  readSummary,
  scanChunks,
  startOwner,
  startPeer,
} from './helpers.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

function get(port: number, path: string): Promise<{ status: number; type: string; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (b: Buffer) => parts.push(b));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          type: String(res.headers['content-type']),
          body: Buffer.concat(parts),
        }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('bootstrap from the owner', () => {
  it('downloads its initial batch from the owner over the wire, stores it and merges', async () => {
    const chunks = 12;
    const { owner, data } = await startOwner(cleanup, {
      size: chunks * CHUNK - 1234,
      expectedPeers: 1,
    });
    const nobody = await freePort();
    const { peer, capture, dir } = await startPeer(cleanup, {
      ownerPort: owner.port,
      port: 0,
      neighbourPort: nobody,
    });
    const path = await merged(capture);

    // The owner assigned the whole file to the only expected peer.
    const [batchLine] = capture.filter('batch-received');
    expect(batchLine?.fields.from).toBe(`127.0.0.1:${owner.port}`);
    const batch = parseRanges(batchLine!.fields.chunks!);
    expect(batch).toEqual([...Array(chunks).keys()]);

    // One chunk-received line per chunk, each from the owner, and each chunk was requested once.
    const received = capture.filter('chunk-received');
    expect(received.map((l) => Number(l.fields.chunk)).sort((a, b) => a - b)).toEqual(batch);
    for (const line of received) {
      expect(line.fields.via).toBe('owner');
      expect(line.fields.from).toBe(`127.0.0.1:${owner.port}`);
    }
    expect(capture.chunks('request-sent').sort((a, b) => a - b)).toEqual(batch);
    expect(capture.filter('idlist-received', { from: `127.0.0.1:${owner.port}` })).toHaveLength(1);
    expect(capture.filter('fallback')).toHaveLength(0);

    // The merged file, the chunk files and the summary.
    expect(path).toBe(join(dir, 'payload.bin'));
    expect((await readFile(path)).equals(data)).toBe(true);
    expect(capture.filter('merged')[0]!.fields.verified).toBe('true');
    expect((await scanChunks(dir, owner.metainfo)).good).toEqual(batch);
    expect((await readSummary(dir)).sort((a, b) => a - b)).toEqual(batch);
    expect((await readFile(join(dir, 'payload.bin.torrent'))).equals(owner.torrent)).toBe(true);

    // The HTTP side of the peer's port.
    const status = await get(peer.port, '/status');
    expect(status.status).toBe(200);
    expect(status.type).toBe('application/json');
    expect(JSON.parse(status.body.toString())).toMatchObject({
      role: 'peer',
      port: peer.port,
      name: 'payload.bin',
      chunks,
      held: chunks,
      complete: true,
      merged: path,
      received: { fromOwner: chunks, fromNeighbour: 0, fromFallback: 0 },
    });
    const torrent = await get(peer.port, '/metainfo.torrent');
    expect(torrent.status).toBe(200);
    expect(torrent.type).toBe('application/x-bittorrent');
    expect(torrent.body.equals(owner.torrent)).toBe(true);
    expect((await get(peer.port, '/nothing')).status).toBe(404);
  });

  it('gets only its share when the owner expects more peers, and logs each step of the exchange', async () => {
    const { owner } = await startOwner(cleanup, { size: 20 * CHUNK, expectedPeers: 4 });
    const nobody = await freePort();
    const { capture } = await startPeer(cleanup, {
      ownerPort: owner.port,
      port: 0,
      neighbourPort: nobody,
    });
    await capture.waitFor('disconnected', { reason: 'batch complete' });
    const batch = parseRanges(capture.filter('batch-received')[0]!.fields.chunks!);
    expect(batch).toHaveLength(5);
    expect(capture.chunks('chunk-received', { via: 'owner' }).sort((a, b) => a - b)).toEqual(batch);
    // The rest stays missing: no neighbour, no fallback within 60 s.
    expect(capture.filter('merged')).toHaveLength(0);
    await capture.waitFor('waiting', { for: 'neighbour', addr: `127.0.0.1:${nobody}` });
  });
});
