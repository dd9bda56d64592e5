import { readFile } from 'node:fs/promises';
import { CHUNK, Cleanup, freePorts, merged, startOwner, startPeer } from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

describe('a download neighbour that starts late', () => {
  it('is retried with backoff until it is up, then supplies what the peer lacks', async () => {
    const { owner, data } = await startOwner(cleanup, {
      size: 16 * CHUNK,
      options: { expectedPeers: 2 },
    });
    const [portA, portB] = (await freePorts(2)) as [number, number];
    const a = await startPeer(cleanup, {
      ownerPort: owner.port,
      port: portA,
      neighbourPort: portB,
      options: { fallbackAfterMs: 600_000 },
    });
    // A has its batch and has already failed to reach B.
    await a.log.waitFor('disconnected', { reason: 'batch complete' });
    await a.log.waitFor('waiting', { for: 'neighbour', addr: `127.0.0.1:${portB}` });
    expect(a.log.filter('connected', { role: 'neighbour' })).toHaveLength(0);

    const b = await startPeer(cleanup, {
      ownerPort: owner.port,
      port: portB,
      neighbourPort: portA,
      options: { fallbackAfterMs: 600_000 },
    });
    const [pathA, pathB] = await Promise.all([merged(a.log), merged(b.log)]);
    expect((await readFile(pathA)).equals(data)).toBe(true);
    expect((await readFile(pathB)).equals(data)).toBe(true);

    const fromB = a.log.chunks('chunk-received', {
      via: 'neighbour',
      from: `127.0.0.1:${portB}`,
    });
    const batchA = a.log.chunks('chunk-received', { via: 'owner' });
    expect(fromB.length).toBeGreaterThan(0);
    expect([...batchA, ...fromB].sort((x, y) => x - y)).toEqual([...Array(16).keys()]);
    expect(a.log.filter('fallback')).toHaveLength(0);
    expect(
      a.log.filter('connected', { role: 'neighbour', peer: `127.0.0.1:${portB}` }),
    ).toHaveLength(1);
  });
});
