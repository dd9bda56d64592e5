import { mkdir, rename, writeFile } from 'node:fs/promises';
import type { AddressInfo, Socket } from 'node:net';
import { basename, dirname, join, relative, resolve } from 'node:path';
import {
  BLOCK_SIZE,
  ChunkError,
  clientOf,
  DashboardModel,
  DEFAULT_ENCRYPTION,
  DEFAULT_TRANSPORT,
  DomainEvents,
  type EncryptionPolicy,
  type Endpoint,
  escapeUnsafe,
  formatEndpoint,
  formatRanges,
  isSwarmdropPeer,
  type LogFormat,
  MAX_BLOCK_LENGTH,
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
  PeerWire,
  type ServiceMetrics,
  SUMMARY_FILE,
  sendBody,
  sendJson,
  sendMetrics,
  sendText,
  sendUnauthorized,
  Uploader,
  UtpEndpoint,
  type UtpStream,
  type WireLimits,
  type WireSocket,
} from '@swarmdrop/protocol/node';
import { backoffMs, connectWire, type WireConnection } from './backoff.js';
import { type Clock, pause, systemClock, type Timer } from './clock.js';
import { DEFAULT_PIPELINE_BLOCKS, Downloader } from './downloader.js';
import { FallbackPolicy } from './fallback-policy.js';
import {
  type AnnounceResult,
  announce,
  fetchMetainfo,
  HttpStatusError,
  postReport,
} from './owner-client.js';
import { PiecePicker } from './piece-picker.js';
import { REANNOUNCE_MS, Reannouncer } from './reannouncer.js';
import { publishSwarm } from './swarm/swarm-log.js';
import { SwarmSession } from './swarm/swarm-session.js';

export const DEFAULT_FALLBACK_AFTER_MS = 10_000;
export const DEFAULT_OWNER_TIMEOUT_MS = 60_000;
export const DEFAULT_LINGER_MS = 5_000;
/** How often the peer tells the owner's dashboard what it holds and whom it trades with. */
export const DASHBOARD_REPORT_MS = 1_000;
/**
 * Block size to request from `wire`'s remote: whole chunks (capped at
 * MAX_BLOCK_LENGTH) from another swarmdrop process, 16 KiB from anyone else,
 * since stock clients refuse larger requests.
 */
function blockSizeFor(wire: PeerWire, pieceLength: number): number {
  const remote = wire.remoteHandshake;
  return remote && isSwarmdropPeer(remote.peerId)
    ? Math.min(pieceLength, MAX_BLOCK_LENGTH)
    : BLOCK_SIZE;
}

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

/** Chunks that fail SHA-1 from one source before that connection is cut. */
export const MAX_HASH_FAILURES = 3;
const TICK_MS = 250;
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

type Role = 'in' | 'neighbour' | 'owner' | 'fallback';

interface Session {
  readonly role: Role;
  /** When the connection was opened (on the peer's clock). */
  readonly openedAt: number;
  readonly wire: PeerWire;
  readonly uploader: Uploader;
  readonly downloader: Downloader | undefined;
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
  mergedPath: string | undefined;

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
  private readonly sessions = new Set<Session>();
  /** Downloaders that may still be storing a chunk (kept past their connection until settled). */
  private readonly downloaders = new Set<Downloader>();
  private store: ChunkStore | undefined;
  private picker: PiecePicker | undefined;
  private chunkBuffers: BufferPool | undefined;
  private torrentBytes: Buffer | undefined;
  /** Where the merged file goes, checked against the peer's own files once the name is known. */
  private outPath: string | undefined;
  private batch: number[] = [];
  private ownerLinkActive = false;
  private fallbackActive = false;
  private readonly clock: Clock;
  /** One bucket per direction for every connection (--upload-limit, --download-limit). */
  private readonly limits: WireLimits;
  private readonly fallback: FallbackPolicy;
  private readonly blamed = new Map<string, Set<number>>();
  /** With a token: hosts the owner's tracker listed (they announced with it), and when. */
  private readonly admitted = new Map<string, number>();
  /** The tracker query under way to admit a new host, and when the last one ran. */
  private admitting: Promise<void> | undefined;
  private lastAdmitRefresh = 0;
  private readonly hashFailures = new Map<string, number>();
  /**
   * Peer ids (hex) of stock clients that are our download neighbours. aria2c
   * keeps one connection per peer id: when it dialled us first (it dials
   * everyone the tracker lists), it closed our own neighbour connection right
   * after its handshake ("Same Peer ID has been already seen"), so we never
   * downloaded from it and fell back to the owner. We then close its incoming
   * connection and refuse the next ones, and our redial carries both ways.
   */
  private readonly stockNeighbourIds = new Set<string>();
  /** The merge in progress, if any (close() waits for it). */
  private merging: Promise<void> | undefined;
  private mergedAt = 0;
  private uploadSessionsSeen = 0;
  /** `done` is logged (and `finished` resolved) once, however many events re-check it. */
  private doneLogged = false;
  private tick: Timer | undefined;
  private reannouncer: Reannouncer | undefined;
  private resolveFinished!: (code: number) => void;
  private closing: Promise<void> | undefined;
  private counts = { fromOwner: 0, fromNeighbour: 0, fromFallback: 0, fromSwarm: 0 };
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
    this.fallback = new FallbackPolicy(options.fallbackAfterMs, clock);
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
      this.tick?.cancel();
      this.reportTimer?.cancel();
      this.dashboardHttp.close();
      this.reannouncer?.stop();
      this.swarm?.close();
      for (const session of this.sessions) session.wire.close('peer stopping');
      this.limits.upload?.close();
      this.limits.download?.close();
      await this.utp?.close();
      await this.server.close();
      // A chunk being written when we stop is finished (file and summary line) before the store closes.
      await Promise.all([...this.downloaders].map((d) => d.settled()));
      // A merge in progress finishes (or fails) before the store closes.
      await this.merging;
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
      received: this.counts,
      ...(this.swarm ? { swarm: this.swarm.status() } : {}),
      connections: [...this.sessions].map((s) => ({
        peer: s.wire.label,
        role: s.role,
        holds: s.uploader.remoteHas.count(),
        chunksSent: s.uploader.chunksSent,
        chunksReceived: s.downloader?.chunksReceived ?? 0,
      })),
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
    this.picker = new PiecePicker(opened.store.held);
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
    this.fallback.restart();
    if (this.options.swarm || this.neighbours.length === 0) {
      this.startSwarm(opened.store);
      if (opened.store.isComplete()) void this.merge();
      return;
    }
    const wanted = this.batch.filter((i) => !opened.store.has(i));
    if (wanted.length > 0) void this.runOwnerLink(new Set(wanted), 'owner');
    for (const neighbour of this.neighbours) void this.neighbourLoop(neighbour);
    this.tick = this.clock.setInterval(() => this.onTick(), TICK_MS);
    this.reannouncer = new Reannouncer(this.clock, REANNOUNCE_MS, () => this.announceNow());
    this.reannouncer.start();
    if (opened.store.isComplete()) void this.merge();
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
    else this.openSession(connection, 'in', undefined);
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
    swarm.on('pieceStored', (_index, _from, role) => {
      if (role === 'owner') this.counts.fromOwner++;
      else this.counts.fromSwarm++;
      if (store.isComplete()) void this.merge();
    });
    swarm.on('chunkCorrupt', () => this.chunkLost());
    swarm.on('remoteProgress', () => this.maybeFinish());
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

  private openSession(
    connection: WireConnection,
    role: Role,
    allowed: ((index: number) => boolean) | undefined,
    only?: ReadonlySet<number>,
  ): Session {
    const store = this.store!;
    const wire = new PeerWire({
      socket: connection.socket,
      metainfo: store.metainfo,
      peerId: this.peerId,
      encryption: connection.encryption,
      transport: connection.transport,
      ...(connection.initial ? { initial: connection.initial } : {}),
      limits: this.limits,
    });
    let downloader: Downloader | undefined;
    const uploader = new Uploader({
      wire,
      store,
      publish: this.events.publish,
      onChunkCorrupt: (index) => {
        this.events.publish('chunk-corrupt', {
          chunk: index,
          reason: 'stored file failed SHA-1; dropped',
        });
        // Serving found one of our chunk files rotten and dropped it: it is wanted again.
        this.chunkLost();
      },
      onRemoteHas: (_remote, index) => {
        downloader?.noteRemoteHas(index);
        if (role === 'in') this.maybeFinish();
      },
    });
    // An upload neighbour (`in`) is only served; the other links fetch.
    if (allowed && role !== 'in') {
      downloader = new Downloader({
        wire,
        store,
        picker: this.picker!,
        publish: this.events.publish,
        remoteHas: uploader.remoteHas,
        allowed,
        ...(only ? { only } : {}),
        via: role,
        pipelineBlocks: this.options.pipelineBlocks ?? DEFAULT_PIPELINE_BLOCKS,
        blockSize: () => blockSizeFor(wire, store.metainfo.pieceLength),
        buffers: this.chunkBuffers!,
        onStored: (index) => this.onStored(index, role),
        onRejected: (index) => this.onRejected(wire, index),
        onFatal: (err) => this.fatal(err),
        now: () => this.clock.now(),
      });
    }
    if (downloader) this.downloaders.add(downloader);
    const session: Session = { role, openedAt: this.clock.now(), wire, uploader, downloader };
    this.sessions.add(session);
    wire.onHandshake = (handshake) => {
      if (
        role === 'in' &&
        this.stockNeighbourIds.has(Buffer.from(handshake.peerId).toString('hex'))
      ) {
        wire.close('our download neighbour: we trade over our own connection to it');
        return;
      }
      // Only a real handshake counts as an upload neighbour (not a port probe).
      if (role === 'in') this.uploadSessionsSeen++;
      this.events.publish('connected', {
        peer: wire.label,
        role,
        ...(wire.remoteHandshake ? { client: clientOf(wire.remoteHandshake.peerId) } : {}),
        dir: role === 'in' ? 'in' : 'out',
        transport: wire.transport,
        encryption: wire.encryption,
      });
      uploader.start();
    };
    wire.onMessage = (message) => {
      uploader.handle(message);
      downloader?.handle(message);
    };
    void wire.closed.then(({ reason, error }) => {
      this.sessions.delete(session);
      if (downloader) {
        downloader.close();
        void downloader.settled().then(() => this.downloaders.delete(downloader));
        // Its unfinished chunks are free again: let the other links take them.
        this.refreshDownloaders();
      }
      if (wire.remoteHandshake || error) {
        if (error) this.events.publish('protocol-error', { peer: wire.label, reason });
        this.events.publish('disconnected', { peer: wire.label, role, reason });
      }
      if (role === 'in') this.maybeFinish();
    });
    return session;
  }

  private onStored(index: number, role: Role): void {
    if (role === 'neighbour') {
      this.counts.fromNeighbour++;
      this.fallback.restart();
    } else if (role === 'owner') {
      this.counts.fromOwner++;
    } else if (role === 'fallback') {
      this.counts.fromFallback++;
    }
    for (const session of this.sessions) session.uploader.announce(index);
    this.refreshDownloaders();
    if (this.store!.isComplete()) void this.merge();
  }

  private onRejected(wire: PeerWire, index: number): void {
    const key = wire.label;
    let set = this.blamed.get(key);
    if (!set) {
      set = new Set();
      this.blamed.set(key, set);
    }
    set.add(index);
    const failures = (this.hashFailures.get(key) ?? 0) + 1;
    this.hashFailures.set(key, failures);
    if (failures >= MAX_HASH_FAILURES) {
      wire.close(`sent ${failures} chunks that failed SHA-1`);
    }
    // The chunk is free again; another link (the owner fallback) may be waiting for it.
    this.refreshDownloaders();
  }

  /** A chunk we held was dropped: every link reconsiders what its remote can give us. */
  private chunkLost(): void {
    this.swarm?.storeChanged();
    for (const session of this.sessions) session.downloader?.rebuildCandidates();
    this.refreshDownloaders();
  }

  private refreshDownloaders(): void {
    for (const session of this.sessions) session.downloader?.refresh();
  }

  private isBlamed(label: string, index: number): boolean {
    return this.blamed.get(label)?.has(index) ?? false;
  }

  /** The download side: connect to the download neighbour, retrying with backoff, for as long as we lack chunks. */
  private get neighbours(): Endpoint[] {
    const first = this.options.neighbour;
    return [...(first ? [first] : []), ...(this.options.moreNeighbours ?? [])];
  }

  private async neighbourLoop(neighbour: Endpoint): Promise<void> {
    const { host = '127.0.0.1', port } = neighbour;
    const label = formatEndpoint(host, port);
    const signal = this.abort.signal;
    const progress = this.fallback.neighbour();
    for (let attempt = 0; !signal.aborted; ) {
      if (this.store!.isComplete()) {
        // Nothing to fetch; stay idle in case a chunk is dropped as corrupt and must come back.
        await pause(1_000, signal, this.clock);
        continue;
      }
      let connection: WireConnection;
      try {
        connection = await this.connect(host, port, signal);
      } catch (err) {
        if (signal.aborted) return;
        const wait = backoffMs(attempt);
        if (attempt % 10 === 0) {
          this.events.publish('waiting', {
            for: 'neighbour',
            addr: label,
            reason: (err as Error).message,
            retryMs: wait,
          });
        }
        attempt++;
        await pause(wait, signal, this.clock);
        continue;
      }
      // Blame is looked up under the connection's label, the key onRejected records it
      // under (not `label`, which may name the host differently, e.g. localhost).
      const session: Session = this.openSession(
        connection,
        'neighbour',
        (i) => !this.picker!.isReserved(i) && !this.isBlamed(session.wire.label, i),
      );
      void session.wire.ready().then(
        () => progress.connected(),
        () => {},
      );
      await session.wire.closed;
      // A session that delivered nothing (dropped at once, stalled, cut for bad
      // chunks) counts as a failed attempt, so the backoff keeps growing.
      const useful = (session.downloader?.chunksReceived ?? 0) > 0;
      if (!useful) this.yieldToNeighbour(session.wire);
      progress.ended(useful);
      attempt = useful ? 0 : attempt + 1;
      if (!(await pause(backoffMs(attempt), signal, this.clock))) return;
    }
  }

  /**
   * Our connection to a stock-client neighbour ended without a chunk: if the
   * client is connected to us already, that connection goes, so that our next
   * dial is the one it keeps (see stockNeighbourIds).
   */
  private yieldToNeighbour(wire: PeerWire): void {
    const remote = wire.remoteHandshake;
    if (!remote || isSwarmdropPeer(remote.peerId)) return;
    const id = Buffer.from(remote.peerId).toString('hex');
    this.stockNeighbourIds.add(id);
    for (const session of this.sessions) {
      const other = session.wire.remoteHandshake;
      if (session.role === 'in' && other && Buffer.from(other.peerId).toString('hex') === id)
        session.wire.close('our download neighbour: we trade over our own connection to it');
    }
  }

  /**
   * Fetches `wanted` from the owner over one connection (reconnecting if it
   * drops), then closes it. `owner` is the initial batch; `fallback` is what
   * the neighbour could not supply.
   */
  private async runOwnerLink(wanted: Set<number>, via: 'owner' | 'fallback'): Promise<void> {
    const store = this.store!;
    const picker = this.picker!;
    const signal = this.abort.signal;
    const { host = '127.0.0.1', port } = this.options.owner;
    const remaining = () => [...wanted].filter((i) => !store.has(i));
    // Reserved for this link while it runs: the neighbours leave them alone.
    picker.reserve(wanted);
    if (via === 'owner') this.ownerLinkActive = true;
    else this.fallbackActive = true;
    try {
      for (let attempt = 0; !signal.aborted && remaining().length > 0 && attempt < 20; ) {
        let connection: WireConnection;
        try {
          connection = await this.connect(host, port, signal);
        } catch (err) {
          if (signal.aborted) return;
          if (attempt % 5 === 0) {
            this.events.publish('waiting', {
              for: 'owner',
              addr: this.ownerLabel,
              reason: (err as Error).message,
            });
          }
          await pause(backoffMs(attempt++), signal, this.clock);
          continue;
        }
        const session = this.openSession(connection, via, (i) => wanted.has(i), wanted);
        const done = () => {
          if (remaining().length === 0)
            session.wire.close(via === 'owner' ? 'batch complete' : 'fallback complete');
        };
        const poll = this.clock.setInterval(done, TICK_MS);
        await session.wire.closed;
        poll.cancel();
        if (remaining().length > 0) await pause(backoffMs(attempt++), signal, this.clock);
      }
    } finally {
      picker.unreserve(wanted);
      if (via === 'owner') this.ownerLinkActive = false;
      else this.fallbackActive = false;
      // The neighbours get a full period to supply whatever is still missing.
      this.fallback.restart();
      this.refreshDownloaders();
    }
  }

  private onTick(): void {
    const store = this.store;
    if (!store || store.isComplete() || this.abort.signal.aborted) return;
    // Any link (neighbour or owner) with requests out and no block back for the
    // fallback period is cut, freeing its chunks; an owner link reconnects.
    for (const session of this.sessions) {
      const downloader = session.downloader;
      if (!downloader) continue;
      const stalledMs = this.fallback.stalledMs({
        inFlight: downloader.inFlight,
        lastBlockAt: downloader.lastBlockAt,
        openedAt: session.openedAt,
      });
      if (stalledMs !== undefined) {
        downloader.close();
        session.wire.close(`no block in ${stalledMs} ms`);
      }
    }
    if (this.ownerLinkActive || this.fallbackActive) return;
    if (!this.fallback.fallbackDue()) return;
    const idleMs = this.fallback.idleMs();
    const neighbours = [...this.sessions].filter((s) => s.role === 'neighbour');
    const wanted = store.held.missing().filter((i) => !this.picker!.isInFlight(i));
    if (wanted.length === 0) return;
    const reason =
      neighbours.length === 0
        ? 'neighbour not connected'
        : neighbours.some((n) => n.downloader?.hasWanted())
          ? `no chunk from neighbour in ${idleMs} ms`
          : 'neighbour has none of the missing chunks';
    this.events.publish('fallback', {
      from: this.ownerLabel,
      count: wanted.length,
      chunks: formatRanges(wanted),
      reason,
    });
    void this.runOwnerLink(new Set(wanted), 'fallback');
  }

  private merge(): Promise<void> {
    if (this.merging || this.mergedPath || this.abort.signal.aborted) return Promise.resolve();
    this.merging = this.runMerge().finally(() => {
      this.merging = undefined;
    });
    return this.merging;
  }

  private async runMerge(): Promise<void> {
    const store = this.store!;
    const out = this.outPath!;
    try {
      await mkdir(dirname(out), { recursive: true });
      const result = await store.merge(out, { sha256: this.options.sha256 });
      this.mergedPath = result.path;
      this.mergedAt = this.clock.now();
      this.events.publish('merged', {
        path: result.path,
        sha256: result.sha256,
        verified: store.metainfo.sha256 !== undefined,
        owner: this.counts.fromOwner,
        neighbour: this.counts.fromNeighbour,
        fallback: this.counts.fromFallback,
        ...(this.swarm ? { swarm: this.counts.fromSwarm } : {}),
      });
      void this.announceNow('completed').catch(() => {});
      this.maybeFinish();
      if (this.options.exitWhenDone) {
        this.clock.setTimeout(() => this.maybeFinish(), this.options.lingerMs + 10);
      }
    } catch (err) {
      if (
        err instanceof ChunkError &&
        (err.code === 'ERR_CHUNK_HASH' || err.code === 'ERR_CHUNK_MISSING')
      ) {
        // The store dropped the bad (or vanished) chunk; fetching resumes and merge runs again when it is back.
        this.events.publish('chunk-corrupt', { reason: err.message });
        this.chunkLost();
      } else {
        this.fatal(err as Error);
      }
    }
  }

  /** With exitWhenDone: finish once merged and every upload neighbour holds everything or has gone. */
  private maybeFinish(): void {
    if (!this.options.exitWhenDone || !this.mergedPath || this.doneLogged) return;
    const uploads = [...this.sessions].filter((s) => s.role === 'in');
    const served =
      uploads.every((s) => s.uploader.remoteHas.isComplete()) && (this.swarm?.allServed() ?? true);
    const lingered =
      this.uploadSessionsSeen + (this.swarm?.peersSeen ?? 0) > 0 ||
      this.clock.now() - this.mergedAt >= this.options.lingerMs;
    if (served && lingered) {
      this.doneLogged = true;
      this.events.publish('done', { path: this.mergedPath });
      this.resolveFinished(0);
    }
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
    for (const session of this.sessions) session.wire.close('peer stopping after an error');
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
