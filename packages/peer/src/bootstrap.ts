import { mkdir, rename, writeFile } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve } from 'node:path';
import {
  BLOCK_SIZE,
  ChunkError,
  type Endpoint,
  escapeUnsafe,
  formatEndpoint,
  type Metainfo,
  MetainfoError,
  OptionError,
  SwarmdropError,
  TypedEmitter,
  torrentFileName,
  torrentFromInfo,
} from '@swarmdrop/protocol';
import {
  BufferPool,
  CHUNK_DIR,
  ChunkStore,
  checkChunkDir,
  checkDiskSpace,
  MERGE_RECORD_FILE,
  MergedFile,
  MetadataFetcher,
  SUMMARY_FILE,
  type WireLimits,
} from '@swarmdrop/protocol/node';
import {
  type DomainEvents,
  formatRanges,
  publishMetadataFetch,
  TOKEN_ENV,
} from '@swarmdrop/service';
import { pause, type TimerClock } from './clock.js';
import { Completion } from './completion.js';
import { backoffMs, type WireConnection } from './dialers.js';
import type { ConnectionRegistry, RegistryEntry } from './engine/connection-registry.js';
import { DEFAULT_PIPELINE_BLOCKS } from './engine/scheduler.js';
import { type AnnounceResult, fetchMetainfo, HttpStatusError } from './owner-client.js';
import { REANNOUNCE_MS, Reannouncer } from './reannouncer.js';
import { RingSession } from './ring/ring-session.js';
import type { Session } from './session.js';
import { publishSwarm } from './swarm/swarm-log.js';
import { DEFAULT_MAX_PEERS, SwarmSession } from './swarm/swarm-session.js';
import { bytesLeft, Torrent } from './torrent.js';

/** What bootstrap reads of the peer's options (PeerOptions has them all). */
export interface BootstrapOptions {
  readonly owner: Endpoint;
  readonly metainfoPath?: string | undefined;
  /** `owner` is only a member of the swarm: no tracker, no batch, the metadata from peers. */
  readonly trackerless?: boolean | undefined;
  readonly dir: string;
  readonly out?: string | undefined;
  /** Replace a file at --out (or its .part) that swarmdrop did not write. */
  readonly force?: boolean | undefined;
  /** Delete the chunk files after a verified merge and serve from the merged file. */
  readonly removeChunks?: boolean | undefined;
  /** Every download neighbour (the first and the chord's), in order. */
  readonly neighbours: readonly Endpoint[];
  readonly swarm?: boolean | undefined;
  readonly maxPeers?: number | undefined;
  /** Swarm mode: peer exchange (never in a private swarm). */
  readonly pex?: boolean | undefined;
  readonly fallbackAfterMs: number;
  readonly ownerTimeoutMs: number;
  readonly exitWhenDone: boolean;
  readonly lingerMs: number;
  readonly pipelineBlocks?: number | undefined;
  readonly infoHash?: Buffer | undefined;
  readonly sha256?: Buffer | undefined;
  readonly token?: string | undefined;
}

/** One tracker request as bootstrap and the torrent make it; the peer adds its id, port and token. */
export interface TrackerRequest {
  readonly infoHash: Buffer;
  /** Exact bytes still missing. */
  readonly left: number;
  readonly event?: 'started' | 'completed';
  readonly numwant?: number;
}

/** The injected parts: the peer's services, none of which bootstrap owns. */
export interface BootstrapComponents {
  readonly events: DomainEvents;
  readonly clock: TimerClock;
  /** The peer's: aborting it stops the waits for the owner and every session. */
  readonly signal: AbortSignal;
  readonly peerId: Buffer;
  readonly limits: WireLimits;
  /** Announces to the owner's tracker (and notes the hosts it lists, for admission). */
  readonly announce: (request: TrackerRequest) => Promise<AnnounceResult>;
  /** Dials a BitTorrent connection under the peer's transport and encryption policy. */
  readonly connect: (
    host: string,
    port: number,
    signal: AbortSignal,
    infoHash: Buffer,
  ) => Promise<WireConnection>;
}

/** What bootstrap tells the peer before the torrent is whole. */
export type BootstrapEvents = {
  /** The store is open (resumed chunks counted): the dashboard can show the file. */
  storeOpened: (store: ChunkStore) => void;
};

/**
 * The steps from a bare port to a whole Torrent: --dir made and checked,
 * the metainfo fetched from the owner (with retry, pins checked), the
 * .torrent written, the chunk store opened, `started` announced for the
 * batch, and the session (ring or swarm), its connection registry,
 * completion and the re-announcer built. `run()` resolves with the Torrent,
 * not yet started; it imports nothing of the peer.
 */
export class Bootstrap extends TypedEmitter<BootstrapEvents> {
  private readonly options: BootstrapOptions;
  private readonly components: BootstrapComponents;

  constructor(options: BootstrapOptions, components: BootstrapComponents) {
    super();
    this.options = options;
    this.components = components;
  }

  /** Ring mode needs a download neighbour and no --swarm. */
  get swarmMode(): boolean {
    return this.options.swarm === true || this.options.neighbours.length === 0;
  }

  private get ownerLabel(): string {
    return formatEndpoint(this.options.owner.host, this.options.owner.port);
  }

  async run(): Promise<Torrent> {
    const dir = resolve(this.options.dir);
    try {
      await mkdir(dir, { recursive: true });
    } catch (err) {
      throw new OptionError('--dir', `cannot create ${dir}: ${(err as Error).message}`);
    }
    // Before waiting for the owner: a --dir holding a user's files is refused at once.
    await checkChunkDir(dir);
    const { bytes, metainfo } = await this.fetchMetainfoWithRetry();
    const outPath = mergedPathFor(dir, metainfo.name, this.options.out);
    const torrentPath = join(dir, torrentFileName(metainfo.name));
    await writeFile(`${torrentPath}.tmp`, bytes);
    await rename(`${torrentPath}.tmp`, torrentPath);
    const opened = await ChunkStore.open({ dir, metainfo });
    const store = opened.store;
    let output: MergedFile | undefined;
    try {
      output = await this.openOutput(store, outPath);
      const adopted =
        this.options.removeChunks && output.alreadyMerged && !store.isComplete()
          ? await store.adoptMergedFile(outPath)
          : 0;
      // Resumed chunks go into the new part in the background, as new ones do when they arrive.
      const attached = store.attach(output);
      attached.catch(() => {}); // Completion reports what it dropped, or its error
      this.emit('storeOpened', store);
      const { events } = this.components;
      events.publish('metainfo', {
        name: metainfo.name,
        size: metainfo.length,
        chunks: metainfo.geometry.pieceCount,
        infohash: metainfo.infoHash.toString('hex'),
        torrent: torrentPath,
      });
      if (opened.verified > 0 || opened.discarded > 0 || adopted > 0) {
        events.publish('resumed', {
          verified: opened.verified + adopted,
          discarded: opened.discarded,
          dir,
          ...(adopted > 0 ? { fromMerged: adopted } : {}),
        });
      }
      const announce = (event?: 'started' | 'completed') =>
        this.components.announce({
          infoHash: metainfo.infoHash,
          left: bytesLeft(store),
          ...(event ? { event } : {}),
        });
      const batch = await this.startedBatch(announce, metainfo);
      return this.assemble({
        metainfo,
        bytes,
        torrentPath,
        store,
        outPath,
        output,
        attached,
        batch,
        announce,
      });
    } catch (err) {
      await store.close();
      throw err;
    }
  }

  /**
   * The merged file, written as chunks arrive: refused (exit 2) when --out
   * or its .part holds a file swarmdrop did not write, unless --force; and
   * refused when --dir and --out have no room for what is still to come.
   */
  private async openOutput(store: ChunkStore, outPath: string): Promise<MergedFile> {
    const { metainfo } = store;
    const create = () =>
      MergedFile.create({
        path: outPath,
        dir: store.dir,
        metainfo,
        sha256: this.options.sha256,
        force: this.options.force,
      });
    let output: MergedFile;
    try {
      // Checked before the space: an output that is ours and merged needs none.
      output = await create();
    } catch (err) {
      if (err instanceof ChunkError && err.code === 'ERR_FOREIGN_FILES')
        throw new OptionError('--out', err.message);
      if (err instanceof SwarmdropError) throw err;
      throw new OptionError('--out', `cannot write ${outPath}: ${(err as Error).message}`);
    }
    if (output.alreadyMerged) return output;
    try {
      await checkDiskSpace({
        dir: store.chunkDir,
        chunkBytes: bytesLeft(store),
        outPath,
        fileBytes: metainfo.length,
      });
    } catch (err) {
      await output.abort();
      throw err;
    }
    return output;
  }

  /** Announces `started`; the owner's answer carries our batch. A failed announce leaves none. */
  private async startedBatch(
    announce: (event: 'started') => Promise<AnnounceResult>,
    metainfo: Metainfo,
  ): Promise<number[]> {
    if (this.options.trackerless) return [];
    try {
      const result = await announce('started');
      // Indexes from the network: only real chunk IDs, each once.
      const count = metainfo.geometry.pieceCount;
      const batch = [...new Set(result.batch ?? [])].filter((i) => i < count);
      this.components.events.publish('batch-received', {
        from: this.ownerLabel,
        count: batch.length,
        chunks: formatRanges(batch),
      });
      return batch;
    } catch (err) {
      this.components.events.publish('error', {
        reason: `announce failed: ${(err as Error).message}; continuing without a batch`,
      });
      return [];
    }
  }

  /** Builds the session for the mode, its registry, completion and the re-announcer: the Torrent, whole. */
  private assemble(parts: {
    metainfo: Metainfo;
    bytes: Buffer;
    torrentPath: string;
    store: ChunkStore;
    outPath: string;
    output: MergedFile;
    attached: Promise<number[]>;
    batch: number[];
    announce: (event?: 'completed') => Promise<AnnounceResult>;
  }): Torrent {
    const { metainfo, store } = parts;
    const { clock, signal, events } = this.components;
    const buffers = new BufferPool(metainfo.pieceLength);
    const connect = (host: string, port: number, s: AbortSignal) =>
      this.components.connect(host, port, s, metainfo.infoHash);
    const pipelineBytes = (this.options.pipelineBlocks ?? DEFAULT_PIPELINE_BLOCKS) * BLOCK_SIZE;
    const swarmMode = this.swarmMode;
    let session: Session;
    let registry: ConnectionRegistry<RegistryEntry>;
    let reannouncer: Reannouncer | undefined;
    if (swarmMode) {
      const swarmRegistry = SwarmSession.createRegistry(this.options.maxPeers ?? DEFAULT_MAX_PEERS);
      const swarm = new SwarmSession(
        {
          store,
          peerId: this.components.peerId,
          clock,
          signal,
          buffers,
          limits: this.components.limits,
          connect,
          registry: swarmRegistry,
          announce: (numwant) =>
            this.components.announce({
              infoHash: metainfo.infoHash,
              left: bytesLeft(store),
              numwant,
            }),
        },
        {
          ...(this.options.trackerless ? {} : { owner: this.options.owner }),
          maxPeers: this.options.maxPeers,
          pex: this.options.pex !== false,
          pipelineBytes,
          extraPeers: this.options.neighbours,
        },
      );
      publishSwarm(swarm, events.publish);
      session = swarm;
      registry = swarmRegistry;
    } else {
      const ringRegistry = RingSession.createRegistry();
      session = new RingSession(
        {
          store,
          peerId: this.components.peerId,
          clock,
          signal,
          publish: events.publish,
          connect,
          limits: this.components.limits,
          buffers,
          registry: ringRegistry,
        },
        {
          owner: this.options.owner,
          neighbours: this.options.neighbours,
          fallbackAfterMs: this.options.fallbackAfterMs,
          pipelineBytes,
          batch: parts.batch,
        },
      );
      registry = ringRegistry;
      reannouncer = new Reannouncer(clock, REANNOUNCE_MS, () => parts.announce());
    }
    const completion = new Completion(
      {
        removeChunks: this.options.removeChunks === true,
        exitWhenDone: this.options.exitWhenDone,
        lingerMs: this.options.lingerMs,
        swarmMode,
      },
      {
        store,
        output: parts.output,
        attached: parts.attached,
        clock,
        events,
        signal,
        allServed: () => session.allServed(),
        peersSeen: () => session.peersSeen,
      },
    );
    return new Torrent({
      metainfo,
      torrentBytes: parts.bytes,
      torrentPath: parts.torrentPath,
      store,
      buffers,
      outPath: parts.outPath,
      batch: parts.batch,
      registry,
      session,
      completion,
      reannouncer,
      announce: parts.announce,
    });
  }

  /**
   * Fetches the owner's .torrent, retrying with backoff until ownerTimeoutMs
   * has passed. It tries at least twice, and the first failure is always
   * logged (`waiting`): on a busy machine the first attempt alone can use up
   * a short timeout, and the user should still see what went wrong and get a
   * second chance. The last wait is cut to end at the deadline, so the final
   * attempt is made on time rather than skipped. Waits and the deadline are
   * on the injected clock (why this is no p-retry loop: see backoffMs).
   */
  private async fetchMetainfoWithRetry(): Promise<{ bytes: Buffer; metainfo: Metainfo }> {
    const { clock, signal } = this.components;
    const deadline = clock.now() + this.options.ownerTimeoutMs;
    for (let attempt = 0; ; attempt++) {
      try {
        const fetched = await this.fetchMetainfoOnce();
        this.checkPinned(fetched.metainfo);
        return fetched;
      } catch (err) {
        if (err instanceof SwarmdropError && err.code === 'ERR_PINNED') throw err;
        if (err instanceof HttpStatusError && err.status === 401) {
          // Retrying will not help: the swarm is private and our token is missing or wrong.
          throw new SwarmdropError(
            'ERR_PINNED',
            this.options.token === undefined
              ? `the owner at ${this.ownerLabel} runs a private swarm: pass its token with --token-file FILE or ${TOKEN_ENV}`
              : `the owner at ${this.ownerLabel} refused our token: check --token-file or ${TOKEN_ENV}`,
          );
        }
        if (err instanceof MetainfoError) {
          const detail = err.message.replace(`metainfo ${err.field}: `, '');
          throw new MetainfoError(
            err.field,
            `${detail}; refused the .torrent from the owner at ${this.ownerLabel}`,
          );
        }
        const remainingMs = deadline - clock.now();
        if (signal.aborted || (attempt > 0 && remainingMs <= 0)) {
          throw new Error(
            `the owner at ${this.ownerLabel} did not serve the metainfo within ${this.options.ownerTimeoutMs} ms (${(err as Error).message})`,
          );
        }
        const wait = Math.max(0, Math.min(backoffMs(attempt), remainingMs));
        if (attempt % 5 === 0) {
          this.components.events.publish('waiting', {
            for: 'owner',
            addr: this.ownerLabel,
            reason: (err as Error).message,
            retryMs: wait,
          });
        }
        if (!(await pause(wait, signal, clock))) throw new Error('stopped');
      }
    }
  }

  /**
   * One try: the `.torrent` from `<owner>`'s HTTP side, else, when the
   * info-hash is known (a link), the info dictionary from the members of the
   * swarm (BEP 9). Without a tracker (a magnet link's peers only) in a public
   * swarm, only the latter: a stock client has no HTTP side, and a swarmdrop
   * peer serves both. A private swarm's peers serve no metadata: there HTTP,
   * with the token, is the one way.
   */
  private async fetchMetainfoOnce(): Promise<{ bytes: Buffer; metainfo: Metainfo }> {
    const fromPeers = this.options.infoHash !== undefined;
    if (this.options.trackerless && this.options.token === undefined) return this.fetchFromPeers();
    try {
      return await fetchMetainfo(
        this.options.owner,
        this.components.signal,
        this.options.metainfoPath,
        this.options.token,
      );
    } catch (err) {
      const fatal =
        (err instanceof HttpStatusError && err.status === 401) || err instanceof MetainfoError;
      if (!fromPeers || fatal || this.options.token !== undefined) throw err;
      try {
        return await this.fetchFromPeers();
      } catch (peersErr) {
        throw new Error(`${(err as Error).message}; from peers: ${(peersErr as Error).message}`);
      }
    }
  }

  /** The metadata from `<owner>` and the link's other peers, one after the other (MetadataFetcher). */
  private async fetchFromPeers(): Promise<{ bytes: Buffer; metainfo: Metainfo }> {
    const infoHash = this.options.infoHash!;
    const { clock, signal, events } = this.components;
    const candidates = [this.options.owner, ...this.options.neighbours];
    const announce = this.options.trackerless ? undefined : `http://${this.ownerLabel}/announce`;
    let next = 0;
    const fetcher = new MetadataFetcher({
      infoHash,
      peerId: this.components.peerId,
      clock,
      signal,
      announce,
      limits: this.components.limits,
      dial: async (s) => {
        const peer = candidates[next++];
        if (!peer) return undefined;
        return this.components.connect(peer.host ?? '127.0.0.1', peer.port, s, infoHash);
      },
    });
    publishMetadataFetch(fetcher, events.publish, infoHash);
    const { metainfo, infoBytes } = await fetcher.run();
    return { bytes: torrentFromInfo(infoBytes, announce), metainfo };
  }

  /**
   * Pinned content: a metainfo with another info-hash, or a SHA-256 other
   * than --sha256, is refused (the peer exits 1) instead of downloaded.
   */
  private checkPinned(metainfo: Metainfo): void {
    const pinned = this.options.infoHash;
    if (pinned && !metainfo.infoHash.equals(pinned)) {
      throw new SwarmdropError(
        'ERR_PINNED',
        `the owner at ${this.ownerLabel} served a metainfo with info-hash ${metainfo.infoHash.toString('hex')}, not the pinned ${pinned.toString('hex')}; refused it`,
      );
    }
    const sha256 = this.options.sha256;
    if (sha256 && metainfo.sha256 && !metainfo.sha256.equals(sha256)) {
      throw new SwarmdropError(
        'ERR_PINNED',
        `the owner at ${this.ownerLabel} served a metainfo for a file with SHA-256 ${metainfo.sha256.toString('hex')}, not the pinned --sha256 ${sha256.toString('hex')}; refused it`,
      );
    }
  }
}

/** True for a name in --dir that is, or looks like, one of the peer's own files. */
export function isOwnFileName(name: string): boolean {
  return (
    name === SUMMARY_FILE ||
    name === `${SUMMARY_FILE}.tmp` ||
    name === MERGE_RECORD_FILE ||
    name === `${MERGE_RECORD_FILE}.tmp` ||
    name === CHUNK_DIR ||
    /\.(torrent|tmp|part)$/i.test(name)
  );
}

/**
 * The merged file's path: `out`, or `<dir>/<name>`. A metainfo can name any
 * file, and an honest owner may well share a `summary.txt`; the merged file
 * must still never replace the peer's own files (summary.txt, chunks/, the
 * .torrent, temp files), so such a path is refused with a hint to use --out.
 */
function mergedPathFor(dir: string, name: string, out: string | undefined): string {
  const path = resolve(out ?? join(dir, name));
  const inChunks = relative(join(dir, CHUNK_DIR), path);
  const own =
    (dirname(path) === dir && isOwnFileName(basename(path))) ||
    inChunks === '' ||
    !inChunks.startsWith('..');
  if (!own) return path;
  if (out === undefined) {
    throw new OptionError(
      '--out',
      `the metainfo names the file "${escapeUnsafe(name)}", which would take the place of the peer's own files in ${dir} (summary.txt, merged.json, chunks/, *.torrent, *.tmp, *.part); pass --out PATH to put the merged file elsewhere`,
    );
  }
  throw new OptionError(
    '--out',
    `${path} is one of the peer's own files in --dir; choose another path`,
  );
}
