import { ChunkError, TypedEmitter } from '@swarmdrop/protocol';
import type { ChunkStore, MergedFile } from '@swarmdrop/protocol/node';
import type { DomainEvents } from '@swarmdrop/service';
import type { TimerClock } from './clock.js';

/** Chunks received so far, by where they came from (the `merged` line, `/status`). */
export interface ReceivedCounts {
  fromOwner: number;
  fromNeighbour: number;
  fromFallback: number;
  fromSwarm: number;
}

export interface CompletionOptions {
  /** Delete the chunk files once merged and serve from the merged file (--remove-chunks). */
  readonly removeChunks: boolean;
  /** Finish (`done`, then `finished`) once merged and served; else keep seeding. */
  readonly exitWhenDone: boolean;
  /** With exitWhenDone: how long to wait for an upload neighbour that never connected. */
  readonly lingerMs: number;
  /** The `merged` line counts chunks from the swarm (swarm mode). */
  readonly swarmMode: boolean;
}

export interface CompletionComponents {
  readonly store: ChunkStore;
  /** The merged file, attached to the store: it fills as chunks are stored. */
  readonly output: MergedFile;
  /** The store's copy of the chunks it held at start into `output`: the chunks it dropped on the way. */
  readonly attached: Promise<readonly number[]>;
  readonly clock: TimerClock;
  /** The peer's domain events: Completion counts `chunk-received` and publishes `merged`, `chunk-corrupt`, `done`. */
  readonly events: DomainEvents;
  readonly signal: AbortSignal;
  /** Every upload neighbour (ring) or swarm member holds everything, or has gone. */
  readonly allServed: () => boolean;
  /** Upload neighbours or swarm members seen so far: none means exit-when-done lingers. */
  readonly peersSeen: () => number;
}

/** What Completion tells the level above. */
export type CompletionEvents = {
  /** The file is merged and verified (the peer announces `completed`). */
  merged: (path: string) => void;
  /** The merge's re-check dropped chunks: they are wanted again. */
  chunksLost: () => void;
  /** Finished: exit-when-done's conditions hold (`done` was published). */
  done: () => void;
  /** The merge failed for another reason than a bad chunk (disk): the peer must stop. */
  error: (error: Error) => void;
};

/**
 * The end of a download: completes the merged file (its SHA-256 checked,
 * fsynced, renamed into place) once the store holds every chunk, re-fetches what the merge's re-check dropped, and with
 * exit-when-done finishes once every upload neighbour is served (or after
 * lingering `lingerMs` for one that never came). It learns of new chunks
 * from the `chunk-received` domain events, and tells the peer what follows
 * by its own events; it imports nothing of the peer.
 */
export class Completion extends TypedEmitter<CompletionEvents> {
  readonly counts: ReceivedCounts = {
    fromOwner: 0,
    fromNeighbour: 0,
    fromFallback: 0,
    fromSwarm: 0,
  };
  mergedPath: string | undefined;
  private readonly options: CompletionOptions;
  private readonly components: CompletionComponents;
  /** The merge in progress, if any (`settled()` waits for it). */
  private merging: Promise<void> | undefined;
  private mergedAt = 0;
  /** `done` is published once, however many events re-check it. */
  private finished = false;

  constructor(options: CompletionOptions, components: CompletionComponents) {
    super();
    this.options = options;
    this.components = components;
    // A resumed chunk file that no longer verifies was dropped while copied into the merged file.
    components.attached.then(
      (dropped) => {
        if (dropped.length === 0) return;
        components.events.publish('chunk-corrupt', {
          reason: `${dropped.length} chunk files no longer matched their SHA-1 (first ${dropped[0]}); dropped them`,
        });
        this.emit('chunksLost');
      },
      (err: Error) => this.emit('error', err),
    );
    components.events.on('chunk-received', ({ via }) => {
      if (via === 'owner') this.counts.fromOwner++;
      else if (via === 'neighbour') this.counts.fromNeighbour++;
      else if (via === 'fallback') this.counts.fromFallback++;
      else if (via === 'swarm') this.counts.fromSwarm++;
      this.check();
    });
  }

  /** Merges if every chunk is held and no merge ran or runs. */
  check(): void {
    if (this.components.store.isComplete()) void this.merge();
  }

  /** With exitWhenDone: finish once merged and every upload neighbour holds everything or has gone. */
  recheck(): void {
    if (!this.options.exitWhenDone || !this.mergedPath || this.finished) return;
    const lingered =
      this.components.peersSeen() > 0 ||
      this.components.clock.now() - this.mergedAt >= this.options.lingerMs;
    if (this.components.allServed() && lingered) {
      this.finished = true;
      this.components.events.publish('done', { path: this.mergedPath });
      this.emit('done');
    }
  }

  /** Resolves once a merge under way has finished or failed. */
  async settled(): Promise<void> {
    await this.merging;
  }

  private merge(): Promise<void> {
    if (this.merging || this.mergedPath || this.components.signal.aborted) return Promise.resolve();
    this.merging = this.runMerge().finally(() => {
      this.merging = undefined;
    });
    return this.merging;
  }

  private async runMerge(): Promise<void> {
    const { store, events, clock, output } = this.components;
    try {
      await this.components.attached;
      const result = await output.complete();
      if (this.options.removeChunks && !store.isServingFromMerged) {
        const removed = await store.releaseChunkFiles(result.path);
        events.publish('chunks-removed', { count: removed, servingFrom: result.path });
      }
      this.mergedPath = result.path;
      this.mergedAt = clock.now();
      events.publish('merged', {
        path: result.path,
        sha256: result.sha256,
        verified: store.metainfo.sha256 !== undefined,
        owner: this.counts.fromOwner,
        neighbour: this.counts.fromNeighbour,
        fallback: this.counts.fromFallback,
        ...(this.options.swarmMode ? { swarm: this.counts.fromSwarm } : {}),
      });
      this.emit('merged', result.path);
      this.recheck();
      if (this.options.exitWhenDone)
        clock.setTimeout(() => this.recheck(), this.options.lingerMs + 10);
    } catch (err) {
      if (
        err instanceof ChunkError &&
        (err.code === 'ERR_CHUNK_HASH' || err.code === 'ERR_CHUNK_MISSING')
      ) {
        // The store dropped the bad (or vanished) chunk; fetching resumes and the merge runs again when it is back.
        events.publish('chunk-corrupt', { reason: err.message });
        this.emit('chunksLost');
      } else {
        this.emit('error', err as Error);
      }
    }
  }
}
