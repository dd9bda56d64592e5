import { readFile } from 'node:fs/promises';
import { parseRanges } from '@swarmdrop/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { CHUNK, Cleanup, freePort, LogCapture, merged, startOwner, startPeer } from './helpers.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

describe('a download neighbour killed mid-transfer', () => {
  it('falls back to the owner for the rest and completes byte-identical', async () => {
    const chunks = 82; // 8 MiB
    const { owner, data } = await startOwner(cleanup, { size: chunks * CHUNK, expectedPeers: 2 });
    const [portA, portB, nobody] = [await freePort(), await freePort(), await freePort()];
    // B holds only its batch (its own neighbour never exists, its fallback is out of reach).
    const b = await startPeer(cleanup, {
      ownerPort: owner.port,
      port: portB,
      neighbourPort: nobody,
      options: { fallbackAfterMs: 600_000 },
    });
    await b.capture.waitFor('disconnected', { reason: 'batch complete' });
    const batchB = parseRanges(b.capture.filter('batch-received')[0]!.fields.chunks!);

    // Stop B at A's first request that follows a chunk received from B. B's
    // sockets are destroyed synchronously there, so A has received at most the
    // chunks it had requested by then, with a pipeline of 2 blocks: a few.
    const labelB = `127.0.0.1:${portB}`;
    const captureA = new LogCapture();
    let stoppingB: Promise<void> | undefined;
    captureA.onLine = (line) => {
      if (
        !stoppingB &&
        line.event === 'request-sent' &&
        line.fields.to === labelB &&
        captureA.filter('chunk-received', { via: 'neighbour' }).length > 0
      ) {
        stoppingB = b.peer.close();
      }
    };
    const a = await startPeer(cleanup, {
      ownerPort: owner.port,
      port: portA,
      neighbourPort: portB,
      capture: captureA,
      options: { fallbackAfterMs: 1_500, pipelineBlocks: 2 },
    });
    const path = await merged(a.capture);
    await stoppingB;
    expect((await readFile(path)).equals(data)).toBe(true);

    const fromB = a.capture.chunks('chunk-received', { via: 'neighbour', from: labelB });
    const fromFallback = a.capture.chunks('chunk-received', { via: 'fallback' });
    const fromOwner = a.capture.chunks('chunk-received', { via: 'owner' });
    expect(fromB.length).toBeGreaterThan(0);
    expect(fromB.length).toBeLessThan(batchB.length);
    expect(fromFallback.length).toBeGreaterThan(0);
    // Every chunk exactly once, from one of the three.
    expect([...fromOwner, ...fromB, ...fromFallback].sort((x, y) => x - y)).toEqual([
      ...Array(chunks).keys(),
    ]);
    expect(a.capture.filter('disconnected', { role: 'neighbour', peer: labelB })).toHaveLength(1);
    const [fallback] = a.capture.filter('fallback');
    expect(fallback?.fields.from).toBe(`127.0.0.1:${owner.port}`);
    expect(fallback?.fields.reason).toBe('neighbour not connected');
    expect(parseRanges(fallback!.fields.chunks!).sort((x, y) => x - y)).toEqual(
      fromFallback.sort((x, y) => x - y),
    );
  });
});
