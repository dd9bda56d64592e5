import {
  createServer as createHttpServer,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import { formatEndpoint, sourceKey } from '../address.js';
import { OptionError } from '../errors.js';

export const DEFAULT_MAX_CONNECTIONS = 256;
/**
 * Connections held at once from one source address (an IPv6 /64). Well
 * above what an honest process opens (a swarmdrop peer holds two or three to
 * one remote, and a test swarm on loopback a few dozen in all), well below
 * DEFAULT_MAX_CONNECTIONS, so one source alone cannot fill the server.
 */
export const DEFAULT_MAX_CONNECTIONS_PER_ADDRESS = 64;
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
  /** Connections held at once, from everywhere. */
  readonly maxConnections?: number;
  /** Connections held at once from one source address (an IPv6 /64). */
  readonly maxConnectionsPerAddress?: number;
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
  /** Refused because the server held maxConnections. */
  refusedTotalCap: number;
  /** Refused because their source held maxConnectionsPerAddress. */
  refusedAddressCap: number;
  /** Closed because they were not useful by their deadline. */
  timedOut: number;
}

/**
 * One TCP port for BitTorrent and HTTP: the first bytes of a connection pick
 * a plaintext BitTorrent handshake, HTTP, or (with `onEncrypted`) MSE. Tracks every socket so `close()` really ends
 * them, turns away connections past `maxConnections` in all or
 * `maxConnectionsPerAddress` from one source, and holds every connection to
 * a deadline until it is useful: the first byte, then for HTTP each request
 * (head, and response) and each keep-alive wait. A BitTorrent connection is
 * handed over at its first byte; PeerWire's handshake timer takes over there.
 *
 * Node's own `headersTimeout`/`requestTimeout` do not help here: they are
 * armed by `http.Server#listen`, and this HTTP server never listens (it is
 * handed sockets), so without our deadlines a client that sent one byte
 * held its slot for ever.
 */
export class DualServer {
  readonly stats: DualServerStats = { refusedTotalCap: 0, refusedAddressCap: 0, timedOut: 0 };
  private readonly server: Server;
  private readonly http;
  private readonly sockets = new Set<Socket>();
  private readonly refused = new Set<Socket>();
  /** Open connections per source key. */
  private readonly perSource = new Map<string, number>();
  private readonly deadlines = new Map<Socket, NodeJS.Timeout>();
  private readonly options: DualServerOptions;
  private readonly requestTimeoutMs: number;

  constructor(options: DualServerOptions) {
    this.options = options;
    this.requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.http = createHttpServer((req, res) => {
      this.onRequest(req, res);
      options.onHttp(req, res);
    });
    this.server = createServer({ pauseOnConnect: true }, (socket) => this.accept(socket));
  }

  get connectionCount(): number {
    return this.sockets.size;
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
    for (const socket of [...this.sockets, ...this.refused]) socket.destroy();
    this.http.close();
    await closing;
  }

  private accept(socket: Socket): void {
    const remote = formatEndpoint(socket.remoteAddress, socket.remotePort ?? 0);
    const source = sourceKey(socket.remoteAddress);
    const max = this.options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    const maxPerSource =
      this.options.maxConnectionsPerAddress ?? DEFAULT_MAX_CONNECTIONS_PER_ADDRESS;
    const fromSource = this.perSource.get(source) ?? 0;
    if (this.sockets.size >= max) {
      this.stats.refusedTotalCap++;
      this.refuse(socket, remote, `too many connections (limit ${max})`);
      return;
    }
    if (fromSource >= maxPerSource) {
      this.stats.refusedAddressCap++;
      this.refuse(
        socket,
        remote,
        `too many connections from ${source} (limit ${maxPerSource} per address)`,
      );
      return;
    }
    this.sockets.add(socket);
    this.perSource.set(source, fromSource + 1);
    socket.on('close', () => {
      this.sockets.delete(socket);
      this.disarm(socket);
      const left = (this.perSource.get(source) ?? 1) - 1;
      if (left > 0) this.perSource.set(source, left);
      else this.perSource.delete(source);
    });
    socket.on('error', () => {});
    const timeoutMs = this.options.firstByteTimeoutMs ?? DEFAULT_FIRST_BYTE_TIMEOUT_MS;
    this.arm(socket, remote, timeoutMs, `sent nothing within ${timeoutMs} ms`);
    socket.once('data', (first: Buffer) => {
      socket.pause();
      if (this.options.onEncrypted && sniffConnection(first) === 'mse') {
        this.disarm(socket);
        this.options.onEncrypted(socket, first);
      } else if (first[0] === BITTORRENT_FIRST_BYTE) {
        this.disarm(socket);
        this.options.onWire(socket, first);
      } else {
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

  /** Ends a connection past a cap, tracked apart so close() ends it too. */
  private refuse(socket: Socket, remote: string, reason: string): void {
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
    if (!this.sockets.has(socket)) return;
    const remote = formatEndpoint(socket.remoteAddress, socket.remotePort ?? 0);
    const ms = this.requestTimeoutMs;
    this.arm(socket, remote, ms, `response not taken within ${ms} ms`);
    res.once('finish', () => {
      if (!socket.destroyed)
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
