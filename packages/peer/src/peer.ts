import { mkdir, rename, writeFile } from 'node:fs/promises';
import type { AddressInfo, Socket } from 'node:net';
import { basename, dirname, join, relative, resolve } from 'node:path';
import {
  BLOCK_SIZE,
  ChunkError,
  DashboardModel,
  DEFAULT_ENCRYPTION,
  DEFAULT_TRANSPORT,
  DomainEvents,
  type EncryptionPolicy,
  type Endpoint,
  escapeUnsafe,
  formatEndpoint,
  formatRanges,
  type LogFormat,
  type Metainfo,
  MetainfoError,
  makePeerId,
  OptionError,
  SwarmdropError,
  subscribeLog,
  TOKEN_ENV,
  type TransportPolicy,
  torrentFileName,
  unmapIPv4,
} from '@swarmdrop/protocol';
import {
  acceptIncoming,
  BufferPool,
  CHUNK_DIR,
  ChunkStore,
  carriesToken,
  createLogger,
  createMetrics,
  createWireLimits,
  DashboardHttp,
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  DualServer,
  httpRouter,
  type IncomingStart,
  type Logger,
  listChunkDir,
  type ServiceMetrics,
  SUMMARY_FILE,
  sendBody,
  sendJson,
  sendMetrics,
  sendText,
  sendUnauthorized,
  UtpEndpoint,
  type UtpStream,
  type WireLimits,
  type WireSocket,
} from '@swarmdrop/protocol/node';
import { backoffMs, connectWire, type WireConnection } from './backoff.js';
import { type Clock, pause, systemClock, type Timer } from './clock.js';
import { Completion } from './completion.js';
import { RingSession } from './links/ring-session.js';
import {
  type AnnounceResult,
  announce,
  fetchMetainfo,
  HttpStatusError,
  postReport,
} from './owner-client.js';
import { REANNOUNCE_MS, Reannouncer } from './reannouncer.js';
import { publishSwarm } from './swarm/swarm-log.js';
import { DEFAULT_PIPELINE_BLOCKS } from './swarm/swarm-scheduler.js';
import { SwarmSession } from './swarm/swarm-session.js';

export const DEFAULT_FALLBACK_AFTER_MS = 10_000;
export const DEFAULT_OWNER_TIMEOUT_MS = 60_000;
export const DEFAULT_LINGER_MS = 5_000;
/** How often the peer tells the owner's dashboard what it holds and whom it trades with. */
export const DASHBOARD_REPORT_MS = 1_000;
/** How long a host the tracker listed may open connections to us (the owner's announce expiry). */
const ADMISSION_MS = 90_000;
/** At most one extra announce this often to admit a host we have not seen (the tracker's min interval). */
const ADMIT_REFRESH_MS = 5_000;

/** A host as Node reports a remote address: IPv4 unmapped, IPv6 in its short form. */
function canonicalHost(host: string): string {
  const h = unmapIPv4(host);
  if (!h.includes(':')) return h;
  try {
    return new URL(`http://[${h.replace(/%.*$/, '')}]/`).hostname.slice(1, -1);
  } catch {
    return h;
  }
}

export { MAX_HASH_FAILURES } from './links/ring-session.js';

/** Error codes that mean the disk (not the network or the input) failed us. */
const DISK_ERROR_CODES = new Set([
  'ENOSPC',
  'EDQUOT',
  'EACCES',
  'EPERM',
  'EROFS',
  'EIO',
  'EFBIG',
  'ENOTDIR',
  'EISDIR',
  'EMFILE',
  'ENFILE',
]);

export interface PeerOptions {
  readonly owner: Endpoint;
  /** The owner's HTTP path of the metainfo (default `/metainfo.torrent`; a .torrent URL gives its own). */
  readonly metainfoPath?: string | undefined;
  /** Where to listen for upload neighbours; `host` undefined means every interface. */
  readonly listen: Endpoint;
  /** The download neighbour; without one the peer runs in swarm mode. */
  readonly neighbour?: Endpoint | undefined;
  /** Further download neighbours (a chord in the topology); each gets its own download side. */
  readonly moreNeighbours?: readonly Endpoint[] | undefined;
  readonly dir: string;
  /** Where the merged file goes; default `<dir>/<name>`. */
  readonly out?: string | undefined;
  readonly exitWhenDone: boolean;
  /** Swarm mode (also without a neighbour): trade with the tracker's peers; any neighbours are dialled as swarm peers. */
  readonly swarm?: boolean | undefined;
  /** Swarm mode: connections held at once (default DEFAULT_MAX_PEERS). */
  readonly maxPeers?: number | undefined;
  /** Fetch from the owner what the download neighbour has not supplied for this long. */
  readonly fallbackAfterMs: number;
  /** Give up if the owner's metainfo cannot be fetched for this long. */
  readonly ownerTimeoutMs: number;
  /** With exitWhenDone: how long to wait for an upload neighbour that never connected. */
  readonly lingerMs: number;
  readonly logFormat: LogFormat;
  readonly pipelineBlocks?: number;
  /** Connections served at once on our port (default DEFAULT_MAX_CONNECTIONS). */
  readonly maxConnections?: number | undefined;
  /** Connections served at once from one source address (default DEFAULT_MAX_CONNECTIONS_PER_ADDRESS). */
  readonly maxConnectionsPerAddress?: number | undefined;
  /** Pinned content: any other metainfo is refused (a `swarmdrop://` link or --infohash). */
  readonly infoHash?: Buffer | undefined;
  /** The merged file must have this SHA-256 (--sha256). */
  readonly sha256?: Buffer | undefined;
  /**
   * A private swarm's token: sent to the owner, and required on our own port
   * (HTTP needs it; the wire admits only addresses the owner's tracker lists).
   */
  readonly token?: string | undefined;
  /** MSE/PE policy for every BitTorrent connection, both ways (default prefer). */
  readonly encryption?: EncryptionPolicy;
  /** TCP, µTP (UDP on the same port number) or both for BitTorrent, both ways (default both). */
  readonly transport?: TransportPolicy;
  /** Bytes per second sent over all BitTorrent connections together; 0 or undefined: no limit. */
  readonly uploadLimitBytesPerSecond?: number | undefined;
  /** Bytes per second received over all BitTorrent connections together; 0 or undefined: no limit. */
  readonly downloadLimitBytesPerSecond?: number | undefined;
}

export interface PeerComponents {
  /** The console log: one subscriber to `events` (created from logFormat by default). */
  readonly logger?: Logger;
  /**
   * Where the peer publishes its domain events (a new one by default); pass
   * one to subscribe before `start()` returns, to see `listening` and `metainfo`.
   */
  readonly events?: DomainEvents;
  /** Aborting it stops the peer, also while it is still starting (waiting for the owner). */
  readonly signal?: AbortSignal;
  /** Time for every timing decision (fallback, stall cut, re-announce, backoff); the system clock by default. */
  readonly clock?: Clock;
}

/**
 * A swarmdrop peer: bootstraps from the owner, downloads its initial batch,
 * then uploads to whoever connects on its port while downloading from its
 * download neighbour; falls back to the owner for what the neighbour cannot
 * supply; merges the file when every chunk is held.
 */
export class Peer {
  readonly options: PeerOptions;
  readonly port: number;
  /** Resolves with an exit status: 0 once done (with exitWhenDone), 1 on a fatal error. */
  readonly finished: Promise<number>;
  metainfo: Metainfo | undefined;

  /**
   * Every state change, published once (README, "Log events"); the console
   * log, metrics and dashboard subscribe. Nothing reacts to a printed line.
   */
  readonly events: DomainEvents;
  /** What `GET /metrics` serves: a subscriber to `events` (README, "Metrics"). */
  readonly metrics: ServiceMetrics;
  private readonly log: Logger;
  private readonly server: DualServer;
  private utp: UtpEndpoint | undefined;
  private readonly peerId: Buffer;
  private readonly abort = new AbortController();
  /** Ring mode's links and their connections (links/), set at bootstrap in ring mode. */
  private ring: RingSession | undefined;
  private store: ChunkStore | undefined;
  private chunkBuffers: BufferPool | undefined;
  private torrentBytes: Buffer | undefined;
  /** Where the merged file goes, checked against the peer's own files once the name is known. */
  private outPath: string | undefined;
  private batch: number[] = [];
  private readonly clock: Clock;
  /** One bucket per direction for every connection (--upload-limit, --download-limit). */
  private readonly limits: WireLimits;
  /** With a token: hosts the owner's tracker listed (they announced with it), and when. */
  private readonly admitted = new Map<string, number>();
  /** The tracker query under way to admit a new host, and when the last one ran. */
  private admitting: Promise<void> | undefined;
  private lastAdmitRefresh = 0;
  /** Merge, exit and linger (set at bootstrap, once the store is open). */
  private completion: Completion | undefined;
  private reannouncer: Reannouncer | undefined;
  private resolveFinished!: (code: number) => void;
  private closing: Promise<void> | undefined;
  /** Swarm mode's session, set at bootstrap when the peer runs in swarm mode. */
  private swarm: SwarmSession | undefined;
  /** This peer's view of the swarm, for its own dashboard and its reports to the owner's. */
  readonly dashboard: DashboardModel;
  private readonly dashboardHttp: DashboardHttp;
  private reportTimer: Timer | undefined;
  private reporting = false;

  private constructor(
    options: PeerOptions,
    events: DomainEvents,
    metrics: ServiceMetrics,
    log: Logger,
    server: DualServer,
    port: number,
    clock: Clock,
  ) {
    this.options = options;
    this.events = events;
    this.metrics = metrics;
    this.log = log;
    this.clock = clock;
    this.limits = createWireLimits({ ...options, clock });
    this.server = server;
    this.port = port;
    // A swarm-mode id tells the owner to seed us piece by piece (its super-seeding).
    this.peerId = makePeerId(port, options.swarm || !options.neighbour ? 'swarm' : 'other');
    this.finished = new Promise((resolve) => {
      this.resolveFinished = resolve;
    });
    this.dashboard = new DashboardModel({
      clock,
      selfId: formatEndpoint(options.listen.host, port),
      selfKind: 'swarmdrop',
    });
    this.dashboard.attach(this.events);
    this.dashboardHttp = new DashboardHttp({
      model: this.dashboard,
      clock,
      token: options.token,
      title: `peer ${formatEndpoint(options.listen.host, port)}`,
      holdOpen: (res) => server.holdOpen(res),
    });
  }

  /** Binds the port, fetches the metainfo, opens the store and starts both sides. */
  static async start(options: PeerOptions, components: PeerComponents = {}): Promise<Peer> {
    const log =
      components.logger ??
      createLogger({ role: 'peer', port: options.listen.port, format: options.logFormat });
    const events = components.events ?? new DomainEvents();
    subscribeLog(events, log);
    let peer: Peer | undefined;
    // Subscribed from the start, so refusals while bootstrapping count too.
    const metrics = createMetrics(events, {
      chunksHeld: () => peer?.store?.held.count() ?? 0,
      utpMalformed: () => peer?.utp?.malformed ?? 0,
    });
    const server = new DualServer({
      host: options.listen.host,
      port: options.listen.port,
      maxConnections: options.maxConnections,
      maxConnectionsPerAddress: options.maxConnectionsPerAddress,
      onWire: (socket, initial) => {
        if (peer?.store) peer.acceptTcp(socket, initial, 'plaintext');
        else socket.destroy();
      },
      onEncrypted: (socket, initial) => {
        if (peer?.store) peer.acceptTcp(socket, initial, 'mse');
        else socket.destroy();
      },
      onHttp: (req, res) => {
        if (peer) peer.handleHttp(req, res);
        else sendText(res, 503, 'the peer is starting; try again shortly\n');
      },
      onRefused: (remote, reason) => events.publish('connection-refused', { from: remote, reason }),
    });
    const address: AddressInfo = await server.listen();
    log.setPort(address.port);
    peer = new Peer(
      options,
      events,
      metrics,
      log,
      server,
      address.port,
      components.clock ?? systemClock,
    );
    if ((options.transport ?? DEFAULT_TRANSPORT) !== 'tcp') {
      const utp = new UtpEndpoint({
        host: options.listen.host,
        port: address.port,
        onConnection: (stream) => {
          if (peer?.store) peer.acceptUtp(stream);
          else stream.destroy();
        },
        onRefused: (remote, reason) =>
          events.publish('connection-refused', { from: remote, reason }),
      });
      peer.utp = utp;
      try {
        await utp.listen();
      } catch (err) {
        await peer.close();
        throw err;
      }
    }
    const created = peer;
    if (components.signal?.aborted) void created.close();
    components.signal?.addEventListener('abort', () => void created.close(), { once: true });
    try {
      await peer.bootstrap();
    } catch (err) {
      await peer.close();
      throw err;
    }
    return peer;
  }

  /** Stops every loop and connection and releases the store. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.events.publish('stopping', {});
      this.abort.abort();
      this.reportTimer?.cancel();
      this.dashboardHttp.close();
      this.reannouncer?.stop();
      this.swarm?.close();
      this.ring?.close();
      this.limits.upload?.close();
      this.limits.download?.close();
      await this.utp?.close();
      await this.server.close();
      // A chunk being written when we stop is finished (file and summary line) before the store closes.
      await this.ring?.settled();
      // A merge in progress finishes (or fails) before the store closes.
      await this.completion?.settled();
      await this.store?.close();
      // Last: the JSON log writes asynchronously, and the bin exits right after.
      await this.log.flush();
    })();
    return this.closing;
  }

  /** What /status shows a request without the token of a private swarm: no addresses, paths or name. */
  publicStatus(): Record<string, unknown> {
    const held = this.store?.held;
    return {
      role: 'peer',
      private: true,
      chunks: held?.size ?? null,
      held: held?.count() ?? 0,
      complete: held?.isComplete() ?? false,
    };
  }

  status(): Record<string, unknown> {
    const held = this.store?.held;
    return {
      role: 'peer',
      port: this.port,
      name: this.metainfo?.name ?? null,
      chunks: held?.size ?? null,
      held: held?.count() ?? 0,
      complete: held?.isComplete() ?? false,
      merged: this.mergedPath ?? null,
      batch: formatRanges(this.batch),
      // The chunk map by source (run-length, as the dashboard shows it) and bytes per link.
      ...this.dashboard.selfStatus(),
      received: this.completion?.counts ?? null,
      ...(this.swarm ? { swarm: this.swarm.status() } : {}),
      connections: this.ring?.status() ?? [],
    };
  }

  private get ownerLabel(): string {
    return formatEndpoint(this.options.owner.host, this.options.owner.port);
  }

  private async bootstrap(): Promise<void> {
    const dir = resolve(this.options.dir);
    this.events.publish('listening', {
      addr: formatEndpoint(this.server.address.address, this.port),
      dir,
      owner: this.ownerLabel,
      neighbour: this.neighbours.map((n) => formatEndpoint(n.host, n.port)).join(','),
      mode: this.options.swarm || this.neighbours.length === 0 ? 'swarm' : 'ring',
    });
    try {
      await mkdir(dir, { recursive: true });
    } catch (err) {
      throw new OptionError('--dir', `cannot create ${dir}: ${(err as Error).message}`);
    }
    // Before waiting for the owner: a --dir holding a user's files is refused at once.
    await checkChunkDir(dir);
    const { bytes, metainfo } = await this.fetchMetainfoWithRetry();
    this.outPath = mergedPathFor(dir, metainfo.name, this.options.out);
    this.metainfo = metainfo;
    this.torrentBytes = bytes;
    const torrentPath = join(dir, torrentFileName(metainfo.name));
    await writeFile(`${torrentPath}.tmp`, bytes);
    await rename(`${torrentPath}.tmp`, torrentPath);
    const opened = await ChunkStore.open({ dir, metainfo });
    this.store = opened.store;
    this.chunkBuffers = new BufferPool(metainfo.pieceLength);
    this.dashboard.setFile(
      {
        name: metainfo.name,
        size: metainfo.length,
        chunks: metainfo.geometry.pieceCount,
        chunkSize: metainfo.pieceLength,
      },
      (i) => opened.store.has(i),
      'd',
    );
    this.reportTimer = this.clock.setInterval(() => this.reportToOwner(), DASHBOARD_REPORT_MS);
    this.events.publish('metainfo', {
      name: metainfo.name,
      size: metainfo.length,
      chunks: metainfo.geometry.pieceCount,
      infohash: metainfo.infoHash.toString('hex'),
      torrent: torrentPath,
    });
    if (opened.verified > 0 || opened.discarded > 0) {
      this.events.publish('resumed', {
        verified: opened.verified,
        discarded: opened.discarded,
        dir,
      });
    }
    try {
      const result = await this.announceNow('started');
      // Indexes from the network: only real chunk IDs, each once.
      const count = metainfo.geometry.pieceCount;
      this.batch = [...new Set(result.batch ?? [])].filter((i) => i < count);
      this.events.publish('batch-received', {
        from: this.ownerLabel,
        count: this.batch.length,
        chunks: formatRanges(this.batch),
      });
    } catch (err) {
      this.events.publish('error', {
        reason: `announce failed: ${(err as Error).message}; continuing without a batch`,
      });
    }
    const swarmMode = this.options.swarm || this.neighbours.length === 0;
    this.startCompletion(opened.store, swarmMode);
    if (swarmMode) {
      this.startSwarm(opened.store);
      this.completion!.check();
      return;
    }
    this.startRing(opened.store);
    this.reannouncer = new Reannouncer(this.clock, REANNOUNCE_MS, () => this.announceNow());
    this.reannouncer.start();
    this.completion!.check();
  }

  /**
   * Tells the owner's dashboard what we hold and whom we trade with. One at a
   * time; an owner that takes no reports (an older one) is not asked again,
   * and a failed report is simply replaced by the next.
   */
  private reportToOwner(): void {
    if (this.reporting || this.abort.signal.aborted) return;
    this.reporting = true;
    const report = this.dashboard.report(this.port, this.mergedPath !== undefined);
    postReport(this.options.owner, report, this.abort.signal, this.options.token)
      .catch((err: unknown) => {
        const status = err instanceof HttpStatusError ? err.status : 0;
        if (status === 404 || status === 405) this.reportTimer?.cancel();
      })
      .finally(() => {
        this.reporting = false;
      });
  }

  /** Where the merged file went, once merged. */
  get mergedPath(): string | undefined {
    return this.completion?.mergedPath;
  }

  /** Completion (completion.ts): merges when every chunk is held, finishes when served. */
  private startCompletion(store: ChunkStore, swarmMode: boolean): void {
    const completion = new Completion(
      {
        outPath: this.outPath!,
        sha256: this.options.sha256,
        exitWhenDone: this.options.exitWhenDone,
        lingerMs: this.options.lingerMs,
        swarmMode,
      },
      {
        store,
        clock: this.clock,
        events: this.events,
        signal: this.abort.signal,
        allServed: () => (this.ring?.allServed() ?? true) && (this.swarm?.allServed() ?? true),
        peersSeen: () => (this.ring?.peersSeen ?? 0) + (this.swarm?.peersSeen ?? 0),
      },
    );
    completion.on('merged', () => void this.announceNow('completed').catch(() => {}));
    completion.on('chunksLost', () => this.chunkLost());
    completion.on('done', () => this.resolveFinished(0));
    completion.on('error', (err) => this.fatal(err));
    this.completion = completion;
  }

  /** Exact bytes still missing (the last chunk may be short). */
  private bytesLeft(): number {
    const store = this.store!;
    return store.held.missing().reduce((sum, i) => sum + store.metainfo.geometry.pieceSize(i), 0);
  }

  /**
   * Fetches the owner's .torrent, retrying with backoff until ownerTimeoutMs
   * has passed. It tries at least twice, and the first failure is always
   * logged (`waiting`): on a busy machine the first attempt alone can use up
   * a short timeout, and the user should still see what went wrong and get a
   * second chance. The last wait is cut to end at the deadline, so the final
   * attempt is made on time rather than skipped.
   */
  private async fetchMetainfoWithRetry(): Promise<{ bytes: Buffer; metainfo: Metainfo }> {
    const deadline = this.clock.now() + this.options.ownerTimeoutMs;
    for (let attempt = 0; ; attempt++) {
      try {
        const fetched = await fetchMetainfo(
          this.options.owner,
          this.abort.signal,
          this.options.metainfoPath,
          this.options.token,
        );
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
        const remainingMs = deadline - this.clock.now();
        if (this.abort.signal.aborted || (attempt > 0 && remainingMs <= 0)) {
          throw new Error(
            `the owner at ${this.ownerLabel} did not serve the metainfo within ${this.options.ownerTimeoutMs} ms (${(err as Error).message})`,
          );
        }
        const wait = Math.max(0, Math.min(backoffMs(attempt), remainingMs));
        if (attempt % 5 === 0) {
          this.events.publish('waiting', {
            for: 'owner',
            addr: this.ownerLabel,
            reason: (err as Error).message,
            retryMs: wait,
          });
        }
        if (!(await pause(wait, this.abort.signal, this.clock))) throw new Error('stopped');
      }
    }
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

  /** The upload side: a peer connected to us. */
  /**
   * Why `socket`'s host may not trade with us, or undefined (always, in a
   * public swarm). In a private swarm only hosts that announced with the
   * token may; a host we have not seen yet may have just joined, so the
   * tracker is asked first.
   */
  private async admission(socket: WireSocket): Promise<string | undefined> {
    if (this.options.token === undefined) return undefined;
    const host = canonicalHost(socket.remoteAddress ?? '');
    if (!this.isAdmitted(host)) await this.refreshAdmitted();
    return this.isAdmitted(host) ? undefined : 'not announced with the token';
  }

  private isAdmitted(host: string): boolean {
    const at = this.admitted.get(host);
    return at !== undefined && this.clock.now() - at <= ADMISSION_MS;
  }

  /** Notes the hosts a tracker answer listed (they announced with the token). */
  private admit(hosts: readonly string[]): void {
    const now = this.clock.now();
    for (const [h, at] of this.admitted) if (now - at > ADMISSION_MS) this.admitted.delete(h);
    for (const h of hosts) this.admitted.set(canonicalHost(h), now);
  }

  /** Re-announces to learn newly admitted hosts; at most once per ADMIT_REFRESH_MS, shared by callers. */
  private refreshAdmitted(): Promise<void> {
    if (this.admitting) return this.admitting;
    if (this.clock.now() - this.lastAdmitRefresh < ADMIT_REFRESH_MS || !this.store)
      return Promise.resolve();
    this.lastAdmitRefresh = this.clock.now();
    this.admitting = this.announceNow()
      .then(
        () => {},
        () => {},
      )
      .finally(() => {
        this.admitting = undefined;
      });
    return this.admitting;
  }

  /** One announce with what we hold now; notes the hosts it lists. */
  private async announceNow(event?: 'started' | 'completed'): Promise<AnnounceResult> {
    const metainfo = this.metainfo!;
    const result = await announce(
      this.options.owner,
      {
        infoHash: metainfo.infoHash,
        peerId: this.peerId,
        port: this.port,
        // Exact bytes still missing (the last chunk may be short, so not verified x pieceLength).
        left: this.store ? this.bytesLeft() : metainfo.length,
        ...(event ? { event } : {}),
      },
      this.abort.signal,
      this.options.token,
    );
    if (this.options.token !== undefined) this.admit(result.hosts);
    return result;
  }

  /** An admitted incoming connection: the swarm session's in swarm mode, else an upload neighbour. */
  private serveIncoming(connection: WireConnection): void {
    if (this.swarm) this.swarm.accept(connection);
    else this.ring?.accept(connection);
  }

  /** Swarm mode (swarm/swarm-session.ts): the session trades; the peer counts, merges and finishes. */
  private startSwarm(store: ChunkStore): void {
    const swarm = new SwarmSession(
      {
        store,
        peerId: this.peerId,
        clock: this.clock,
        signal: this.abort.signal,
        buffers: this.chunkBuffers!,
        limits: this.limits,
        connect: (host, port, signal) => this.connect(host, port, signal),
        announce: async (numwant) => {
          const result = await announce(
            this.options.owner,
            {
              infoHash: store.metainfo.infoHash,
              peerId: this.peerId,
              port: this.port,
              left: this.bytesLeft(),
              numwant,
            },
            this.abort.signal,
            this.options.token,
          );
          if (this.options.token !== undefined) this.admit(result.hosts);
          return result;
        },
      },
      {
        owner: this.options.owner,
        maxPeers: this.options.maxPeers,
        pipelineBytes: (this.options.pipelineBlocks ?? DEFAULT_PIPELINE_BLOCKS) * BLOCK_SIZE,
        extraPeers: this.neighbours,
      },
    );
    this.swarm = swarm;
    publishSwarm(swarm, this.events.publish);
    swarm.on('chunkCorrupt', () => this.chunkLost());
    swarm.on('remoteProgress', () => this.completion?.recheck());
    swarm.on('error', (err) => this.fatal(err));
    swarm.start();
  }

  private get encryption(): EncryptionPolicy {
    return this.options.encryption ?? DEFAULT_ENCRYPTION;
  }

  private acceptTcp(socket: Socket, initial: Buffer, kind: 'plaintext' | 'mse'): void {
    this.acceptIncoming(socket, { transport: 'tcp', initial, kind });
  }

  private acceptUtp(stream: UtpStream): void {
    this.acceptIncoming(stream, { transport: 'utp' });
  }

  /**
   * A plaintext or MSE handshake, on either transport, under our policies
   * (protocol/node's acceptIncoming, as the owner does): an upload link, or
   * in swarm mode a swarm link.
   */
  private acceptIncoming(socket: WireSocket, start: IncomingStart): void {
    const from = formatEndpoint(socket.remoteAddress, socket.remotePort ?? 0);
    acceptIncoming(socket, start, {
      infoHash: this.store!.metainfo.infoHash,
      encryption: this.encryption,
      transport: this.options.transport,
      timeoutMs: DEFAULT_HANDSHAKE_TIMEOUT_MS,
      admit: (s) => this.admission(s),
    }).then(
      (connection) => {
        if (this.abort.signal.aborted) connection.socket.destroy();
        else this.serveIncoming(connection);
      },
      (err: Error) => {
        if (!this.abort.signal.aborted)
          this.events.publish('connection-refused', { from, reason: err.message });
      },
    );
  }

  private connect(host: string, port: number, signal: AbortSignal): Promise<WireConnection> {
    return connectWire(host, port, signal, {
      policy: this.encryption,
      transport: this.options.transport ?? DEFAULT_TRANSPORT,
      utp: this.utp,
      infoHash: this.store!.metainfo.infoHash,
    });
  }

  /** Ring mode (links/ring-session.ts): the fixed links trade; the peer merges and finishes. */
  private startRing(store: ChunkStore): void {
    const ring = new RingSession(
      {
        store,
        peerId: this.peerId,
        clock: this.clock,
        signal: this.abort.signal,
        publish: this.events.publish,
        connect: (host, port, signal) => this.connect(host, port, signal),
        limits: this.limits,
        ...(this.chunkBuffers ? { buffers: this.chunkBuffers } : {}),
      },
      {
        owner: this.options.owner,
        neighbours: this.neighbours,
        fallbackAfterMs: this.options.fallbackAfterMs,
        pipelineBytes: (this.options.pipelineBlocks ?? DEFAULT_PIPELINE_BLOCKS) * BLOCK_SIZE,
        batch: this.batch,
      },
    );
    this.ring = ring;
    ring.on('remoteProgress', () => this.completion?.recheck());
    ring.on('error', (err) => this.fatal(err));
    ring.start();
  }

  /** Chunks we held were dropped: every link reconsiders what its remote can give us. */
  private chunkLost(): void {
    this.swarm?.storeChanged();
    this.ring?.storeChanged();
  }

  /** The download side: connect to the download neighbour, retrying with backoff, for as long as we lack chunks. */
  private get neighbours(): Endpoint[] {
    const first = this.options.neighbour;
    return [...(first ? [first] : []), ...(this.options.moreNeighbours ?? [])];
  }

  /**
   * Stops the peer after an error it cannot work around (a disk error while
   * storing or merging): logs one `error` line, stops fetching at once so
   * nothing more is written, and resolves `finished` with 1. The verified
   * chunk files stay for a restart; `close()` releases the rest.
   */
  private fatal(err: Error): void {
    if (this.fatalMessage !== undefined) return;
    const errno = err as NodeJS.ErrnoException;
    const disk = typeof errno.path === 'string' || DISK_ERROR_CODES.has(errno.code ?? '');
    const reason = disk
      ? `disk error: ${err.message}; the verified chunks in ${this.store?.dir} are kept: restart with the same --dir to resume`
      : err.message;
    this.events.publish('error', { reason });
    this.fatalMessage = reason;
    this.abort.abort();
    this.ring?.close('peer stopping after an error');
    this.resolveFinished(1);
  }

  /** Why the peer failed, when `finished` resolved with 1. */
  fatalMessage: string | undefined;

  /** `/status`, `/metrics`, `/metainfo.torrent` and the dashboard on the peer's port; a bad request costs that request only. */
  private readonly handleHttp = httpRouter(
    (path, req, res) => {
      const authorized = carriesToken(req, this.options.token);
      if (this.dashboardHttp.handle(path, req, res)) return;
      if (path === '/status') sendJson(req, res, authorized ? this.status() : this.publicStatus());
      else if (path === '/metrics') {
        if (!authorized) sendUnauthorized(res);
        else
          sendMetrics(req, res, this.metrics.registry, (err) =>
            this.events.publish('error', {
              request: `${req.method} ${(req.url ?? '').slice(0, 200)}`,
              reason: err.message,
            }),
          );
      } else if (path === '/metainfo.torrent' && this.torrentBytes) {
        if (authorized) sendBody(req, res, 'application/x-bittorrent', this.torrentBytes);
        else sendUnauthorized(res);
      } else sendText(res, 404, `no such path: ${path.slice(0, 200)}\n`);
    },
    (err, req) =>
      this.events.publish('error', {
        request: `${req.method} ${(req.url ?? '').slice(0, 200)}`,
        reason: err.message,
      }),
  );
}

/** Refuses a --dir whose chunk folder holds files swarmdrop did not write (exit status 2). */
async function checkChunkDir(dir: string): Promise<void> {
  try {
    await listChunkDir(join(dir, CHUNK_DIR));
  } catch (err) {
    if (err instanceof ChunkError && err.code === 'ERR_FOREIGN_FILES')
      throw new OptionError('--dir', err.message);
    throw err;
  }
}

/** True for a name in --dir that is, or looks like, one of the peer's own files. */
export function isOwnFileName(name: string): boolean {
  return (
    name === SUMMARY_FILE ||
    name === `${SUMMARY_FILE}.tmp` ||
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
      `the metainfo names the file "${escapeUnsafe(name)}", which would take the place of the peer's own files in ${dir} (summary.txt, chunks/, *.torrent, *.tmp, *.part); pass --out PATH to put the merged file elsewhere`,
    );
  }
  throw new OptionError(
    '--out',
    `${path} is one of the peer's own files in --dir; choose another path`,
  );
}
