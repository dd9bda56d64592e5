/**
 * SwarmSession on a ManualClock: what it does on time (re-announcing, and
 * dialling whom the tracker lists by then) runs when the test advances the
 * clock, never on a wall-clock wait.
 */
import { ManualClock, makePeerId } from '@swarmdrop/protocol';
import { ChunkStore } from '@swarmdrop/protocol/node';
import { Cleanup, HANG_MS, startOwner, within } from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import type { AnnounceResult } from '../src/owner-client.js';
import { REANNOUNCE_MS } from '../src/reannouncer.js';
import { SwarmSession } from '../src/swarm/swarm-session.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

describe('SwarmSession', () => {
  it('re-announces on its clock asking for maxPeers, and dials whom the tracker lists then', async () => {
    const { owner, metainfo } = await startOwner(cleanup, { size: 9 * 102_400 - 5 });
    const dir = await cleanup.tempDir();
    const { store } = await ChunkStore.open({ dir, metainfo });
    cleanup.add(() => store.close());
    const clock = new ManualClock();
    const abort = new AbortController();
    cleanup.add(() => abort.abort());
    // The tracker lists nobody at first; the owner is "announced" only later.
    let listed: AnnounceResult['peerList'] = [];
    const asked: number[] = [];
    let answered!: () => void;
    let announces = new Promise<void>((resolve) => {
      answered = resolve;
    });
    const session = new SwarmSession(
      {
        store,
        peerId: makePeerId(1),
        clock,
        signal: abort.signal,
        announce: async (numwant) => {
          asked.push(numwant);
          const result = { batch: undefined, peers: listed.length, hosts: [], peerList: listed };
          queueMicrotask(answered);
          return result;
        },
      },
      { owner: { host: '127.0.0.1', port: owner.port }, maxPeers: 7 },
    );
    cleanup.add(() => session.close());
    const stored = new Set<number>();
    const complete = new Promise<void>((resolve) =>
      session.on('pieceStored', (index) => {
        stored.add(index);
        if (stored.size === metainfo.geometry.pieceCount) resolve();
      }),
    );
    const connected: string[] = [];
    session.on('connected', (link) => connected.push(`${link.role}:${link.dir}`));

    session.start();
    await within(announces, HANG_MS, () => 'no first announce');
    expect(asked).toEqual([7]);
    expect(session.size).toBe(0);

    listed = [{ host: '127.0.0.1', port: owner.port }];
    announces = new Promise<void>((resolve) => {
      answered = resolve;
    });
    clock.advance(REANNOUNCE_MS - 1);
    expect(asked).toHaveLength(1);
    clock.advance(1);
    await within(announces, HANG_MS, () => 'no re-announce');
    expect(asked).toEqual([7, 7]);
    await within(complete, HANG_MS, () => `stored ${stored.size} pieces`);
    expect(connected).toEqual(['owner:out']);
    expect(session.allServed()).toBe(true);
  });
});
