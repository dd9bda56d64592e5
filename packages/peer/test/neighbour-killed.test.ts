import { readFile } from 'node:fs/promises';
import { parseRanges } from '@swarmdrop/service';
import {
  CHUNK,
  Cleanup,
  freePorts,
  LogCapture,
  merged,
  startOwner,
  startPeer,
} from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

describe('a download neighbour killed mid-transfer', () => {
  it('falls back to the owner for the rest and completes byte-identical', async () => {
    const chunks = 82; // 8 MiB
    const { owner, data } = await startOwner(cleanup, {
      size: chunks * CHUNK,
      options: { expectedPeers: 2 },
    });
    const [portA, portB, nobody] = (await freePorts(3)) as [number, number, number];
    // B holds only its batch (its own neighbour never exists, its fallback is out of reach).
    const b = await startPeer(cleanup, {
      ownerPort: owner.port,
      port: portB,
      neighbourPort: nobody,
      options: { fallbackAfterMs: 600_000 },
    });
    await b.log.waitFor('disconnected', { reason: 'batch complete' });
    const batchB = parseRanges(b.log.filter('batch-received')[0]!.fields.chunks!);

    // Stop B at A's first request that follows a chunk received from B. B's
    // sockets are destroyed synchronously there, so A has received at most the
    // chunks it had requested by then, with a pipeline of 2 blocks: a few.
    const labelB = `127.0.0.1:${portB}`;
    const logA = new LogCapture('peer A');
    let stoppingB: Promise<void> | undefined;
    logA.onLine = (line) => {
      if (
        !stoppingB &&
        line.event === 'request-sent' &&
        line.fields.to === labelB &&
        logA.filter('chunk-received', { via: 'neighbour' }).length > 0
      ) {
        stoppingB = b.peer.close();
      }
    };
    const a = await startPeer(cleanup, {
      ownerPort: owner.port,
      port: portA,
      neighbourPort: portB,
      log: logA,
      options: { fallbackAfterMs: 1_500, pipelineBlocks: 2 },
    });
    const path = await merged(a.log);
    await stoppingB;
    expect((await readFile(path)).equals(data)).toBe(true);

    const fromB = a.log.chunks('chunk-received', { via: 'neighbour', from: labelB });
    const fromFallback = a.log.chunks('chunk-received', { via: 'fallback' });
    const fromOwner = a.log.chunks('chunk-received', { via: 'owner' });
    expect(fromB.length).toBeGreaterThan(0);
    expect(fromB.length).toBeLessThan(batchB.length);
    expect(fromFallback.length).toBeGreaterThan(0);
    // Every chunk exactly once, from one of the three.
    expect([...fromOwner, ...fromB, ...fromFallback].sort((x, y) => x - y)).toEqual([
      ...Array(chunks).keys(),
    ]);
    expect(a.log.filter('disconnected', { role: 'neighbour', peer: labelB })).toHaveLength(1);
    const [fallback] = a.log.filter('fallback');
    expect(fallback?.fields.from).toBe(`127.0.0.1:${owner.port}`);
    expect(fallback?.fields.reason).toBe('neighbour not connected');
    expect(parseRanges(fallback!.fields.chunks!).sort((x, y) => x - y)).toEqual(
      fromFallback.sort((x, y) => x - y),
    );
  });
});
