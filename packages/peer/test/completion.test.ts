/**
 * Completion on its own: a stand-in store and merged file, and a hand-moved
 * clock. It learns of chunks from `chunk-received` events, completes the
 * merged file once, re-fetches what was dropped, and with exit-when-done
 * finishes when served or lingered.
 */
import { ChunkError, ManualClock } from '@swarmdrop/protocol';
import type { ChunkStore, MergedFile } from '@swarmdrop/protocol/node';
import { DomainEvents } from '@swarmdrop/service';
import { describe, expect, it } from 'vitest';
import { Completion, type CompletionOptions } from '../src/completion.js';

const OUT = '/tmp/never-written';

/** A store that is complete once `held` reaches `chunks`; its merged file's completion fails once when told to. */
function fakeStore(chunks: number) {
  const state = { held: 0, merges: 0, failNext: false };
  const store = {
    metainfo: { sha256: undefined },
    isComplete: () => state.held >= chunks,
    isServingFromMerged: false,
  };
  const output = {
    complete: async () => {
      state.merges++;
      if (state.failNext) {
        state.failNext = false;
        state.held--;
        throw new ChunkError('ERR_CHUNK_MISSING', 'cannot merge: 1 chunks missing (first 1)');
      }
      return { path: OUT, sha256: 'ab'.repeat(32) };
    },
  };
  return { store: store as unknown as ChunkStore, output: output as unknown as MergedFile, state };
}

function setup(
  chunks: number,
  options: Partial<CompletionOptions> = {},
  attached: Promise<readonly number[]> = Promise.resolve([]),
) {
  const { store, output, state } = fakeStore(chunks);
  const clock = new ManualClock();
  const events = new DomainEvents();
  const published: string[] = [];
  for (const e of ['merged', 'done', 'chunk-corrupt'] as const)
    events.on(e, () => published.push(e));
  const served = { all: false, seen: 0 };
  const completion = new Completion(
    {
      removeChunks: false,
      exitWhenDone: true,
      lingerMs: 5_000,
      swarmMode: false,
      ...options,
    },
    {
      store,
      output,
      attached,
      clock,
      events,
      signal: new AbortController().signal,
      allServed: () => served.all,
      peersSeen: () => served.seen,
    },
  );
  const receive = (via: 'owner' | 'neighbour' | 'fallback') => {
    state.held++;
    events.publish('chunk-received', { chunk: state.held - 1, from: 'x:1', bytes: 1, via });
  };
  return { completion, clock, events, published, served, state, receive };
}

/** Lets the merge's awaits run. */
const settle = async (completion: Completion) => {
  for (let i = 0; i < 5; i++) await completion.settled();
};

describe('Completion', () => {
  it('counts chunks by source and merges once, when the last one arrives', async () => {
    const { completion, published, state, receive } = setup(3, { exitWhenDone: false });
    receive('owner');
    receive('neighbour');
    await settle(completion);
    expect(state.merges).toBe(0);
    receive('fallback');
    await settle(completion);
    completion.check();
    await settle(completion);
    expect(state.merges).toBe(1);
    expect(published).toEqual(['merged']);
    expect(completion.counts).toMatchObject({ fromOwner: 1, fromNeighbour: 1, fromFallback: 1 });
    expect(completion.mergedPath).toBe('/tmp/never-written');
  });

  it('a merge that drops a chunk says so, asks for it again, and merges when it is back', async () => {
    const { completion, published, state, receive } = setup(2, { exitWhenDone: false });
    let lost = 0;
    completion.on('chunksLost', () => lost++);
    state.failNext = true;
    receive('owner');
    receive('owner');
    await settle(completion);
    expect(published).toEqual(['chunk-corrupt']);
    expect(lost).toBe(1);
    expect(completion.mergedPath).toBeUndefined();
    receive('neighbour');
    await settle(completion);
    expect(published).toEqual(['chunk-corrupt', 'merged']);
    expect(state.merges).toBe(2);
  });

  it('resumed chunks dropped while copied into the merged file are reported and fetched again', async () => {
    let lost = 0;
    const { completion, published } = setup(2, { exitWhenDone: false }, Promise.resolve([1, 4]));
    completion.on('chunksLost', () => lost++);
    await settle(completion);
    expect(published).toEqual(['chunk-corrupt']);
    expect(lost).toBe(1);
  });

  it('exit-when-done with no upload neighbour ever seen: done only once lingerMs has passed', async () => {
    const { completion, clock, published, served, receive } = setup(1, { lingerMs: 5_000 });
    let done = 0;
    completion.on('done', () => done++);
    served.all = true;
    receive('owner');
    await settle(completion);
    expect(published).toEqual(['merged']);
    clock.advance(4_000);
    expect(done).toBe(0);
    clock.advance(1_100);
    expect(done).toBe(1);
    expect(published).toEqual(['merged', 'done']);
    completion.recheck();
    expect(done).toBe(1);
  });

  it('exit-when-done waits for the upload neighbour to hold everything', async () => {
    const { completion, published, served, receive } = setup(1);
    served.seen = 1;
    receive('owner');
    await settle(completion);
    completion.recheck();
    expect(published).toEqual(['merged']);
    served.all = true;
    completion.recheck();
    expect(published).toEqual(['merged', 'done']);
  });
});
