import {
  createServer as createHttpServer,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import { formatEndpoint, OptionError, sourceKey } from '@swarmdrop/protocol';

/** BitTorrent connections (plaintext or MSE) held at once on a port. */
export const DEFAULT_MAX_CONNECTIONS = 256;
/**
 * BitTorrent connections held at once from one source address (an IPv6
 * /64). Well above what an honest process opens (a swarmdrop peer holds two
 * or three to one remote, and a test swarm on loopback a few dozen in all),
 * well below DEFAULT_MAX_CONNECTIONS, so one source alone cannot fill it.
 */
export const DEFAULT_MAX_CONNECTIONS_PER_ADDRESS = 64;
/**
 * HTTP connections held at once (metainfo, tracker, /status, the dashboard
 * and its 16 event streams): a budget of their own, so that a full wire
 * never locks out the metainfo and the tracker. A request takes
 * milliseconds, so 64 is many times what a swarm's announces need at once.
 */
export const DEFAULT_MAX_HTTP_CONNECTIONS = 64;
/** HTTP connections from one source address; every peer of a loopback swarm is 127.0.0.1, and each keeps one alive. */
export const DEFAULT_MAX_HTTP_CONNECTIONS_PER_ADDRESS = 16;
/**
 * Connections that have not sent their first byte yet (so are neither HTTP
 * nor BitTorrent): an honest client sends it with its first packet, so these
 * are held for a round trip; past the cap the oldest is closed.
 */
export const DEFAULT_MAX_PENDING_CONNECTIONS = 128;
/** Of those, from one source address. */
export const DEFAULT_MAX_PENDING_CONNECTIONS_PER_ADDRESS = 32;
export const DEFAULT_FIRST_BYTE_TIMEOUT_MS = 10_000;
/**
 * An HTTP connection must bring a whole request head within this long of
 * connecting or of its previous response, and take its response within this
 * long too; keep-alive connections idle past it are closed.
 */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
/** First byte of a BitTorrent handshake (pstrlen = 19). HTTP starts with a method letter. */
export const BITTORRENT_FIRST_BYTE = 0x13;

/** The first bytes of a plaintext handshake that tell it from an MSE key starting with 0x13. */
const PLAINTEXT_PREFIX = Buffer.from('\x13Bit', 'latin1');
/** How many first bytes the HTTP test looks at. */
const HTTP_SNIFF_BYTES = 16;

/**
 * Tells apart what a connection's first bytes start: a plaintext BitTorrent
 * handshake, HTTP, or an MSE handshake (a random 96-byte public key).
 * - An MSE key starts with 0x13 one time in 256, so 0x13 alone is not enough:
 *   a handshake is 0x13 followed by "Bit" (as far as it has arrived), and a
 *   handshake that goes wrong after that is still one (and fails as one).
 * - HTTP, even malformed, is text: the first 16 bytes are printable ASCII,
 *   CR, LF or tab. A random key passes that about once in 5 million.
 */
export function sniffConnection(first: Uint8Array): 'bittorrent' | 'http' | 'mse' {
  if (first[0] === BITTORRENT_FIRST_BYTE) {
    const n = Math.min(first.length, PLAINTEXT_PREFIX.length);
    let matches = true;
    for (let i = 1; i < n; i++) if (first[i] !== PLAINTEXT_PREFIX[i]) matches = false;
    return matches ? 'bittorrent' : 'mse';
  }
  const n = Math.min(first.length, HTTP_SNIFF_BYTES);
  for (let i = 0; i < n; i++) {
    const c = first[i]!;
    if (!((c >= 0x20 && c <= 0x7e) || c === 0x0d || c === 0x0a || c === 0x09)) return 'mse';
  }
  return 'http';
}

export interface DualServerOptions {
  readonly host?: string | undefined;
  readonly port: number;
  /** How a bind failure names the port in its error (default `<port>`). */
  readonly portField?: string;
  /** BitTorrent connections held at once, from everywhere (default DEFAULT_MAX_CONNECTIONS). */
  readonly maxConnections?: number;
  /** BitTorrent connections held at once from one source address, an IPv6 /64 (default DEFAULT_MAX_CONNECTIONS_PER_ADDRESS). */
  readonly maxConnectionsPerAddress?: number;
  /** HTTP connections held at once (default DEFAULT_MAX_HTTP_CONNECTIONS). */
  readonly maxHttpConnections?: number;
  /** HTTP connections from one source address (default DEFAULT_MAX_HTTP_CONNECTIONS_PER_ADDRESS). */
  readonly maxHttpConnectionsPerAddress?: number;
  /** Connections waiting for their first byte (default DEFAULT_MAX_PENDING_CONNECTIONS). */
  readonly maxPendingConnections?: number;
  /** Of those, from one source address (default DEFAULT_MAX_PENDING_CONNECTIONS_PER_ADDRESS). */
  readonly maxPendingConnectionsPerAddress?: number;
  /** A connection that sends nothing for this long is closed. */
  readonly firstByteTimeoutMs?: number;
  /** See DEFAULT_REQUEST_TIMEOUT_MS. */
  readonly requestTimeoutMs?: number;
  /** A BitTorrent connection; `initial` holds the bytes already read. */
  readonly onWire: (socket: Socket, initial: Buffer) => void;
  readonly onHttp: (req: IncomingMessage, res: ServerResponse) => void;
  /**
   * A connection that is neither a plaintext handshake nor HTTP: an MSE
   * (encrypted) handshake. Without this handler such bytes go to HTTP, as before.
   */
  readonly onEncrypted?: (socket: Socket, initial: Buffer) => void;
  /** A connection turned away or closed by its deadline, with why. */
  readonly onRefused?: (remote: string, reason: string) => void;
}

/** Counters of what the server turned away, for status pages and tests. */
export interface DualServerStats {
  /** BitTorrent connections refused because the server held maxConnections. */
  refusedTotalCap: number;
  /** BitTorrent connections refused because their source held maxConnectionsPerAddress. */
  refusedAddressCap: number;
  /** HTTP connections refused because every HTTP slot (of all, or of their source) was busy with a response. */
  refusedHttpCap: number;
  /** Closed to make room for a newer connection: one that had sent nothing yet, or an idle HTTP keep-alive. */
  evicted: number;
  /** Closed because they were not useful by their deadline. */
  timedOut: number;
}

/** The three budgets of a port; a connection is in exactly one. */
type PoolName = 'pending' | 'http' | 'wire';

/**
 * Connections of one kind, in arrival order (the first is the oldest), with
 * a count per source address.
 */
class Pool {
  /** Each socket, and whether it may be closed for a newer one (HTTP: between responses; pending: always). */
  private readonly sockets = new Map<Socket, { source: string; idle: boolean }>();
  private readonly perSource = new Map<string, number>();

  constructor(
    readonly max: number,
    readonly maxPerSource: number,
  ) {}

  get size(): number {
    return this.sockets.size;
  }

  count(source: string): number {
    return this.perSource.get(source) ?? 0;
  }

  add(socket: Socket, source: string, idle: boolean): void {
    this.sockets.set(socket, { source, idle });
    this.perSource.set(source, this.count(source) + 1);
  }

  setIdle(socket: Socket, idle: boolean): void {
    const entry = this.sockets.get(socket);
    if (entry) entry.idle = idle;
  }

  delete(socket: Socket): boolean {
    const entry = this.sockets.get(socket);
    if (!entry) return false;
    this.sockets.delete(socket);
    const left = this.count(entry.source) - 1;
    if (left > 0) this.perSource.set(entry.source, left);
    else this.perSource.delete(entry.source);
    return true;
  }

  /** The oldest idle socket, of `source` when given. */
  oldestIdle(source?: string): Socket | undefined {
    for (const [socket, entry] of this.sockets)
      if (entry.idle && (source === undefined || entry.source === source)) return socket;
    return undefined;
  }
}

/**
 * One TCP port for BitTorrent and HTTP: the first bytes of a connection pick
 * a plaintext BitTorrent handshake, HTTP, or (with `onEncrypted`) MSE.
 * Tracks every socket so `close()` really ends them, and holds every
 * connection to a deadline until it is useful: the first byte, then for HTTP
 * each request (head, and response) and each keep-alive wait. A BitTorrent
 * connection is handed over at its first byte; the handshake budget and
 * PeerWire's timers take over there.
 *
 * Three budgets, each in total and per source address, so that no kind of
 * connection can lock another out (one shared cap of 256 once let a full
 * wire refuse the metainfo, the tracker and /status):
 * - pending (no byte yet): past a cap the oldest pending connection (of
 *   that source, or of all) is closed for the newcomer: it had its round trip;
 * - HTTP: past a cap the oldest idle one (no response under way: an idle
 *   keep-alive, or a request head still incomplete) is closed; only when
 *   every one is busy is the newcomer refused;
 * - BitTorrent: past `maxConnections` or `maxConnectionsPerAddress` the
 *   newcomer is refused. A handshaken connection is never closed for another;
 *   idleness and PeerWire's minimum upload rate end the useless ones.
 *
 * Node's own `headersTimeout`/`requestTimeout` do not help here: they are
 * armed by `http.Server#listen`, and this HTTP server never listens (it is
 * handed sockets), so without our deadlines a client that sent one byte
 * held its slot for ever.
 */
export class DualServer {
  readonly stats: DualServerStats = {
    refusedTotalCap: 0,
    refusedAddressCap: 0,
    refusedHttpCap: 0,
    evicted: 0,
    timedOut: 0,
  };
  private readonly server: Server;
  private readonly http;
  private readonly pools: Record<PoolName, Pool>;
  private readonly poolOf = new Map<Socket, PoolName>();
  private readonly refused = new Set<Socket>();
  private readonly deadlines = new Map<Socket, NodeJS.Timeout>();
  private readonly options: DualServerOptions;
  private readonly requestTimeoutMs: number;

  constructor(options: DualServerOptions) {
    this.options = options;
    this.requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.pools = {
      pending: new Pool(
        options.maxPendingConnections ?? DEFAULT_MAX_PENDING_CONNECTIONS,
        options.maxPendingConnectionsPerAddress ?? DEFAULT_MAX_PENDING_CONNECTIONS_PER_ADDRESS,
      ),
      http: new Pool(
        options.maxHttpConnections ?? DEFAULT_MAX_HTTP_CONNECTIONS,
        options.maxHttpConnectionsPerAddress ?? DEFAULT_MAX_HTTP_CONNECTIONS_PER_ADDRESS,
      ),
      wire: new Pool(
        options.maxConnections ?? DEFAULT_MAX_CONNECTIONS,
        options.maxConnectionsPerAddress ?? DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
      ),
    };
    this.http = createHttpServer((req, res) => {
      this.onRequest(req, res);
      options.onHttp(req, res);
    });
    this.server = createServer({ pauseOnConnect: true }, (socket) => this.accept(socket));
  }

  /** Connections held now, of every kind. */
  get connectionCount(): number {
    return this.poolOf.size;
  }

  /** Connections held now in each budget. */
  get counts(): Record<PoolName, number> {
    return {
      pending: this.pools.pending.size,
      http: this.pools.http.size,
      wire: this.pools.wire.size,
    };
  }

  /**
   * Starts listening. A port in use, a port we may not bind, or a host that is
   * not ours rejects with an OptionError naming `portField`; anything else as is.
   */
  listen(): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => {
        const where = formatEndpoint(this.options.host ?? '0.0.0.0', this.options.port);
        const field = this.options.portField ?? '<port>';
        const why: Record<string, string> = {
          EADDRINUSE: `${where} is already in use`,
          EACCES: `no permission to listen on ${where}`,
          EADDRNOTAVAIL: `${this.options.host} is not an address of this machine`,
        };
        const message = err.code ? why[err.code] : undefined;
        reject(message ? new OptionError(field, message) : err);
      };
      this.server.once('error', onError);
      this.server.listen({ port: this.options.port, host: this.options.host }, () => {
        this.server.off('error', onError);
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  get address(): AddressInfo {
    return this.server.address() as AddressInfo;
  }

  /**
   * A response that streams for as long as its client listens (the
   * dashboard's Server-Sent Events): lifts its connection's deadline. The
   * stream's owner bounds such streams and ends stalled ones; close() still
   * ends them.
   */
  holdOpen(res: ServerResponse): void {
    this.disarm(res.socket as Socket);
  }

  async close(): Promise<void> {
    const closing = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const socket of [...this.poolOf.keys(), ...this.refused]) socket.destroy();
    this.http.close();
    await closing;
  }

  private accept(socket: Socket): void {
    const remote = formatEndpoint(socket.remoteAddress, socket.remotePort ?? 0);
    const source = sourceKey(socket.remoteAddress);
    const pending = this.pools.pending;
    // A newcomer always gets in; the connection that had its round trip and sent nothing makes room.
    if (pending.count(source) >= pending.maxPerSource)
      this.evict(
        pending.oldestIdle(source),
        `sent nothing while newer connections came from ${source} (limit ${pending.maxPerSource} waiting per address)`,
      );
    else if (pending.size >= pending.max)
      this.evict(
        pending.oldestIdle(),
        `sent nothing while newer connections came (limit ${pending.max} waiting)`,
      );
    this.enter(socket, 'pending', source, true);
    socket.on('close', () => {
      const pool = this.poolOf.get(socket);
      if (pool) this.pools[pool].delete(socket);
      this.poolOf.delete(socket);
      this.disarm(socket);
    });
    socket.on('error', () => {});
    const timeoutMs = this.options.firstByteTimeoutMs ?? DEFAULT_FIRST_BYTE_TIMEOUT_MS;
    this.arm(socket, remote, timeoutMs, `sent nothing within ${timeoutMs} ms`);
    socket.once('data', (first: Buffer) => {
      socket.pause();
      const mse = this.options.onEncrypted !== undefined && sniffConnection(first) === 'mse';
      if (mse || first[0] === BITTORRENT_FIRST_BYTE) {
        if (!this.admitWire(socket, source, remote)) return;
        this.disarm(socket);
        if (mse) this.options.onEncrypted!(socket, first);
        else this.options.onWire(socket, first);
      } else {
        if (!this.admitHttp(socket, source, remote)) return;
        this.arm(
          socket,
          remote,
          this.requestTimeoutMs,
          `no complete HTTP request within ${this.requestTimeoutMs} ms`,
        );
        socket.unshift(first);
        this.http.emit('connection', socket);
        socket.resume();
      }
    });
    socket.resume();
  }

  /** Moves a socket into `pool`. */
  private enter(socket: Socket, pool: PoolName, source: string, idle: boolean): void {
    const was = this.poolOf.get(socket);
    if (was) this.pools[was].delete(socket);
    this.pools[pool].add(socket, source, idle);
    this.poolOf.set(socket, pool);
  }

  /** A BitTorrent connection's first byte: into the wire budget, or refused. */
  private admitWire(socket: Socket, source: string, remote: string): boolean {
    const wire = this.pools.wire;
    if (wire.size >= wire.max) {
      this.stats.refusedTotalCap++;
      this.refuse(socket, remote, `too many BitTorrent connections (limit ${wire.max})`);
      return false;
    }
    if (wire.count(source) >= wire.maxPerSource) {
      this.stats.refusedAddressCap++;
      this.refuse(
        socket,
        remote,
        `too many BitTorrent connections from ${source} (limit ${wire.maxPerSource} per address)`,
      );
      return false;
    }
    this.enter(socket, 'wire', source, false);
    return true;
  }

  /** An HTTP connection's first byte: into the HTTP budget, making room from idle ones, or refused. */
  private admitHttp(socket: Socket, source: string, remote: string): boolean {
    const http = this.pools.http;
    const bySource = http.count(source) >= http.maxPerSource;
    if (bySource || http.size >= http.max) {
      const idle = http.oldestIdle(bySource ? source : undefined);
      const limit = bySource ? `${http.maxPerSource} per address` : `${http.max}`;
      if (!idle) {
        this.stats.refusedHttpCap++;
        this.refuse(
          socket,
          remote,
          `too many HTTP connections${bySource ? ` from ${source}` : ''} busy (limit ${limit})`,
        );
        return false;
      }
      this.evict(idle, `idle HTTP connection closed for a newer one (limit ${limit})`);
    }
    this.enter(socket, 'http', source, true);
    return true;
  }

  /** Closes `socket` (if any) to make room for a newer connection. */
  private evict(socket: Socket | undefined, reason: string): void {
    if (!socket) return;
    this.stats.evicted++;
    const pool = this.poolOf.get(socket);
    if (pool) this.pools[pool].delete(socket);
    this.poolOf.delete(socket);
    this.disarm(socket);
    this.options.onRefused?.(formatEndpoint(socket.remoteAddress, socket.remotePort ?? 0), reason);
    socket.destroy();
  }

  /** Ends a connection past a cap, tracked apart so close() ends it too. */
  private refuse(socket: Socket, remote: string, reason: string): void {
    const pool = this.poolOf.get(socket);
    if (pool) this.pools[pool].delete(socket);
    this.poolOf.delete(socket);
    this.disarm(socket);
    this.options.onRefused?.(remote, reason);
    this.refused.add(socket);
    socket.on('close', () => this.refused.delete(socket));
    socket.on('error', () => {});
    socket.resume(); // drop what it sends, and see its FIN
    socket.end();
    setTimeout(() => socket.destroy(), 1_000).unref();
  }

  /** A request head is complete: its response must be sent in time, then the next request must come. */
  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const socket = req.socket;
    if (this.poolOf.get(socket) !== 'http') return;
    const http = this.pools.http;
    const remote = formatEndpoint(socket.remoteAddress, socket.remotePort ?? 0);
    const ms = this.requestTimeoutMs;
    // Busy while its response is under way: a newcomer does not close it.
    http.setIdle(socket, false);
    this.arm(socket, remote, ms, `response not taken within ${ms} ms`);
    res.once('finish', () => {
      if (socket.destroyed) return;
      http.setIdle(socket, true);
      this.arm(socket, remote, ms, `no complete HTTP request within ${ms} ms`);
    });
  }

  private arm(socket: Socket, remote: string, ms: number, reason: string): void {
    clearTimeout(this.deadlines.get(socket));
    const timer = setTimeout(() => {
      this.deadlines.delete(socket);
      this.stats.timedOut++;
      this.options.onRefused?.(remote, reason);
      socket.destroy();
    }, ms).unref();
    this.deadlines.set(socket, timer);
  }

  private disarm(socket: Socket): void {
    clearTimeout(this.deadlines.get(socket));
    this.deadlines.delete(socket);
  }
}
