import {
  createServer as createHttpServer,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import { formatEndpoint } from '../address.js';
import { OptionError } from '../errors.js';

export const DEFAULT_MAX_CONNECTIONS = 256;
export const DEFAULT_FIRST_BYTE_TIMEOUT_MS = 10_000;
/** First byte of a BitTorrent handshake (pstrlen = 19). HTTP starts with a method letter. */
export const BITTORRENT_FIRST_BYTE = 0x13;

export interface DualServerOptions {
  readonly host?: string | undefined;
  readonly port: number;
  /** How a bind failure names the port in its error (default `<port>`). */
  readonly portField?: string;
  readonly maxConnections?: number;
  readonly firstByteTimeoutMs?: number;
  /** A BitTorrent connection; `initial` holds the bytes already read. */
  readonly onWire: (socket: Socket, initial: Buffer) => void;
  readonly onHttp: (req: IncomingMessage, res: ServerResponse) => void;
  /** A connection turned away, with why. */
  readonly onRefused?: (remote: string, reason: string) => void;
}

/**
 * One TCP port for two protocols: the first byte of a connection picks
 * BitTorrent (0x13) or HTTP. Tracks every socket so `close()` really ends
 * them, and turns away connections past `maxConnections`.
 */
export class DualServer {
  private readonly server: Server;
  private readonly http;
  private readonly sockets = new Set<Socket>();
  private readonly refused = new Set<Socket>();
  private readonly options: DualServerOptions;

  constructor(options: DualServerOptions) {
    this.options = options;
    this.http = createHttpServer(
      { requestTimeout: 30_000, headersTimeout: 10_000 },
      options.onHttp,
    );
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

  async close(): Promise<void> {
    const closing = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const socket of [...this.sockets, ...this.refused]) socket.destroy();
    this.http.close();
    await closing;
  }

  private accept(socket: Socket): void {
    const remote = formatEndpoint(socket.remoteAddress, socket.remotePort ?? 0);
    const max = this.options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    if (this.sockets.size >= max) {
      this.options.onRefused?.(remote, `too many connections (limit ${max})`);
      // Tracked apart, so close() ends it too instead of waiting out the timer below.
      this.refused.add(socket);
      socket.on('close', () => this.refused.delete(socket));
      socket.on('error', () => {});
      socket.resume(); // drop what it sends, and see its FIN
      socket.end();
      setTimeout(() => socket.destroy(), 1_000).unref();
      return;
    }
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => {});
    const timeoutMs = this.options.firstByteTimeoutMs ?? DEFAULT_FIRST_BYTE_TIMEOUT_MS;
    const timer = setTimeout(() => {
      this.options.onRefused?.(remote, `sent nothing within ${timeoutMs} ms`);
      socket.destroy();
    }, timeoutMs).unref();
    socket.once('close', () => clearTimeout(timer));
    socket.once('data', (first: Buffer) => {
      clearTimeout(timer);
      socket.pause();
      if (first[0] === BITTORRENT_FIRST_BYTE) {
        this.options.onWire(socket, first);
      } else {
        socket.unshift(first);
        this.http.emit('connection', socket);
        socket.resume();
      }
    });
    socket.resume();
  }
}
