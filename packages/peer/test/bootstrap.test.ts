import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ManualClock } from '@swarmdrop/protocol';
import { parseRanges } from '@swarmdrop/service';
import {
  CHUNK,
  Cleanup,
  freePort,
  freePorts,
  httpGet,
  LogCapture,
  merged,
  PEER_BIN,
  readSummary,
  rejected,
  runBin,
  scanChunks,
  startOwner,
  startPeer,
} from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

describe('bootstrap from the owner', () => {
  it('downloads its initial batch from the owner over the wire, stores it and merges', async () => {
    const chunks = 12;
    const { owner, data } = await startOwner(cleanup, {
      size: chunks * CHUNK - 1234,
      options: { expectedPeers: 1 },
    });
    const nobody = await freePort();
    const { peer, log, dir } = await startPeer(cleanup, {
      ownerPort: owner.port,
      port: 0,
      neighbourPort: nobody,
    });
    const path = await merged(log);

    // The owner assigned the whole file to the only expected peer.
    const [batchLine] = log.filter('batch-received');
    expect(batchLine?.fields.from).toBe(`127.0.0.1:${owner.port}`);
    const batch = parseRanges(batchLine!.fields.chunks!);
    expect(batch).toEqual([...Array(chunks).keys()]);

    // One chunk-received line per chunk, each from the owner, and each chunk was requested once.
    const received = log.filter('chunk-received');
    expect(received.map((l) => Number(l.fields.chunk)).sort((a, b) => a - b)).toEqual(batch);
    for (const line of received) {
      expect(line.fields.via).toBe('owner');
      expect(line.fields.from).toBe(`127.0.0.1:${owner.port}`);
    }
    expect(log.chunks('request-sent').sort((a, b) => a - b)).toEqual(batch);
    expect(log.filter('idlist-received', { from: `127.0.0.1:${owner.port}` })).toHaveLength(1);
    expect(log.filter('fallback')).toHaveLength(0);

    // The merged file, the chunk files and the summary.
    expect(path).toBe(join(dir, 'payload.bin'));
    expect((await readFile(path)).equals(data)).toBe(true);
    expect(log.filter('merged')[0]!.fields.verified).toBe('true');
    expect((await scanChunks(dir, owner.metainfo)).good).toEqual(batch);
    expect((await readSummary(dir)).sort((a, b) => a - b)).toEqual(batch);
    expect((await readFile(join(dir, 'payload.bin.torrent'))).equals(owner.torrent)).toBe(true);

    // The HTTP side of the peer's port.
    const status = await httpGet(peer.port, '/status');
    expect(status.status).toBe(200);
    expect(status.headers['content-type']).toBe('application/json');
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
    const torrent = await httpGet(peer.port, '/metainfo.torrent');
    expect(torrent.status).toBe(200);
    expect(torrent.headers['content-type']).toBe('application/x-bittorrent');
    expect(torrent.body.equals(owner.torrent)).toBe(true);
    expect((await httpGet(peer.port, '/nothing')).status).toBe(404);
  });

  it('gets only its share when the owner expects more peers, and logs each step of the exchange', async () => {
    const { owner } = await startOwner(cleanup, {
      size: 20 * CHUNK,
      options: { expectedPeers: 4 },
    });
    const nobody = await freePort();
    const { peer, log } = await startPeer(cleanup, {
      ownerPort: owner.port,
      port: 0,
      neighbourPort: nobody,
      // Out of reach: the rest can only come from the (absent) neighbour.
      options: { fallbackAfterMs: 600_000 },
    });
    await log.waitFor('disconnected', { reason: 'batch complete' });
    const batch = parseRanges(log.filter('batch-received')[0]!.fields.chunks!);
    expect(batch).toHaveLength(5);
    expect(log.chunks('chunk-received', { via: 'owner' }).sort((a, b) => a - b)).toEqual(batch);
    // Its batch done, it has tried the neighbour and found nobody: the rest stays missing.
    await log.waitFor('waiting', { for: 'neighbour', addr: `127.0.0.1:${nobody}` });
    expect(peer.status()).toMatchObject({ held: 5, complete: false });
    expect(log.filter('merged')).toHaveLength(0);
    expect(log.filter('fallback')).toHaveLength(0);
  });
});

describe('an owner that is not up', () => {
  // Bug pinned here: with a short --owner-timeout-ms a slow start could use
  // up the whole timeout in the first attempt, and the peer gave up without a
  // retry and without saying what was wrong (no `waiting` line). It now tries
  // at least twice and always logs the first failure.
  it('is retried, then a clear error after --owner-timeout-ms, exit status 1', async () => {
    const [nobody, port, neighbour] = await freePorts(3);
    const child = runBin(cleanup, PEER_BIN, [
      String(nobody),
      String(port),
      String(neighbour),
      '--dir',
      await cleanup.tempDir(),
      '--owner-timeout-ms',
      '300',
    ]);
    expect(await child.exited).toBe(1);
    const lines = child.stderr.split('\n').filter((l) => l !== '');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`the owner at 127.0.0.1:${nobody} did not serve the metainfo`);
    expect(child.stderr).not.toContain('    at ');
    const [waiting] = child.stdout.filter('waiting', { for: 'owner' });
    expect(waiting?.fields.addr).toBe(`127.0.0.1:${nobody}`);
    expect(waiting?.fields.reason).toMatch(/ECONNREFUSED/);
  });

  it('waits for the retry on the peer clock, and gives up only after that second attempt', async () => {
    const [nobody, neighbour] = (await freePorts(2)) as [number, number];
    const clock = new ManualClock(1_000_000);
    const log = new LogCapture('peer');
    const starting = rejected(
      startPeer(cleanup, {
        ownerPort: nobody,
        port: 0,
        neighbourPort: neighbour,
        options: { ownerTimeoutMs: 0 },
        components: { clock },
        log,
      }),
    );
    // The first attempt failed; the retry is a timer on the injected clock, not on Node's.
    const waiting = await log.waitFor('waiting', { for: 'owner' });
    expect(waiting.fields.retryMs).toBe('0');
    expect(clock.timers).toBe(1);
    clock.advance(0);
    const err = await starting;
    expect((err as Error).message).toContain(
      `the owner at 127.0.0.1:${nobody} did not serve the metainfo within 0 ms`,
    );
    expect(log.filter('waiting', { for: 'owner' })).toHaveLength(1);
  });

  // Bug pinned here: SIGTERM while the peer was still waiting for the owner
  // killed it by signal, without a `stopping` line.
  it('stops cleanly (exit 0, `stopping`) on SIGTERM while still waiting for it', async () => {
    const [nobody, neighbour] = await freePorts(2);
    const child = runBin(cleanup, PEER_BIN, [
      String(nobody),
      '0',
      String(neighbour),
      '--dir',
      await cleanup.tempDir(),
      '--owner-timeout-ms',
      '600000',
    ]);
    await child.stdout.waitFor('waiting', { for: 'owner' });
    child.process.kill('SIGTERM');
    expect(await child.exited).toBe(0);
    expect(child.stdout.filter('stopping')).toHaveLength(1);
  });
});
