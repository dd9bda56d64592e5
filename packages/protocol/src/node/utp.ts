import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { Duplex } from 'node:stream';
import { formatEndpoint } from '../address.js';
import { OptionError } from '../errors.js';
import {
  DEFAULT_UTP_CONNECT_TIMEOUT_MS,
  UTP_RECEIVE_WINDOW_BYTES,
  UtpConnection,
  type UtpConnectionOptions,
} from '../utp/connection.js';
import { decodeUtpPacket, encodeUtpPacket, type UtpPacket } from '../utp/packet.js';

/** How often the connections' clocks run (retransmission, keep-alive, deadlines). */
export const UTP_TICK_MS = 50;
export const DEFAULT_UTP_MAX_CONNECTIONS = 256;
const UDP_BUFFER_BYTES = 4 * 1024 * 1024;

/**
 * A µTP connection as a Duplex, so PeerWire (and MSE) run over it as over a
 * TCP socket. Reading pauses the advertised window, not the remote's packets:
 * the window we send shrinks by what the reader has not taken.
 */
export class UtpStream extends Duplex {
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly remoteFamily: 'IPv4' | 'IPv6';
  /** The state machine under this stream (stats, tests). */
  connection!: UtpConnection;
  private writeCallback: ((err?: Error | null) => void) | undefined;

  constructor(remoteAddress: string, remotePort: number) {
    super({ allowHalfOpen: false });
    this.remoteAddress = remoteAddress;
    this.remotePort = remotePort;
    this.remoteFamily = isIPv6(remoteAddress) ? 'IPv6' : 'IPv4';
  }

  /** Callbacks the state machine reports to. */
  hooks(): Pick<
    UtpConnectionOptions,
    'onData' | 'onEnd' | 'onClose' | 'onDrain' | 'receiveWindow'
  > {
    return {
      onData: (bytes) => {
        this.push(Buffer.from(bytes));
      },
      onEnd: () => {
        this.push(null);
      },
      onClose: (error) => {
        if (error) this.destroy(error);
        else {
          this.push(null);
          this.destroy();
        }
      },
      onDrain: () => {
        const callback = this.writeCallback;
        this.writeCallback = undefined;
        callback?.();
      },
      receiveWindow: () => UTP_RECEIVE_WINDOW_BYTES - this.readableLength,
    };
  }

  setNoDelay(): this {
    return this;
  }

  override _read(): void {
    if (this.connection.state === 'connected' && this.readableLength === 0)
      this.connection.windowOpened();
  }

  override _write(
    chunk: Buffer,
    _encoding: BufferEncoding,
    callback: (err?: Error | null) => void,
  ): void {
    if (this.connection.write(chunk)) callback();
    else this.writeCallback = callback;
  }

  override _final(callback: (err?: Error | null) => void): void {
    this.connection.end();
    callback();
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.connection.destroy(err ?? undefined);
    const pending = this.writeCallback;
    this.writeCallback = undefined;
    pending?.(err);
    callback(err);
  }
}

export interface UtpEndpointOptions {
  /** Interface to bind; every IPv4 interface when undefined (an IPv6 host binds IPv6). */
  readonly host?: string | undefined;
  readonly port: number;
  /** How a bind failure names the port (default `<port>`). */
  readonly portField?: string;
  /** A remote opened a connection to us. */
  readonly onConnection?: (stream: UtpStream) => void;
  /** A connection turned away, with why. */
  readonly onRefused?: (remote: string, reason: string) => void;
  readonly maxConnections?: number;
  /** Injected clock in ms (tests); default performance.now. */
  readonly now?: () => number;
}

/**
 * µTP on one UDP port: demultiplexes datagrams to connections by remote
 * address and connection id, accepts SYNs, opens outgoing connections, and
 * runs every connection's clock. A datagram that is not µTP is dropped.
 */
export class UtpEndpoint {
  private readonly socket: UdpSocket;
  private readonly connections = new Map<string, { conn: UtpConnection; stream: UtpStream }>();
  /** Runs the connections' clocks; only while there is a connection (an idle port sleeps). */
  private timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;
  private closed = false;
  /** Datagrams dropped as malformed (for tests and stats). */
  malformed = 0;

  constructor(private readonly options: UtpEndpointOptions) {
    this.now = options.now ?? (() => performance.now());
    this.socket = createSocket(options.host && isIPv6(options.host) ? 'udp6' : 'udp4');
    this.socket.on('message', (msg, rinfo) => this.onMessage(msg, rinfo));
    this.socket.on('error', () => {});
  }

  /** Whether the connections' clock runs: only while there is a connection (for tests and stats). */
  get ticking(): boolean {
    return this.timer !== undefined;
  }

  /**
   * Starts the connections' clock with the first connection; it stops when
   * the last one goes (`forget`). A 50 ms interval with nothing to run was
   * 20 wake-ups a second of an idle owner or peer.
   */
  private tickWhileConnected(): void {
    this.timer ??= setInterval(() => {
      for (const { conn } of [...this.connections.values()]) conn.tick();
    }, UTP_TICK_MS).unref();
  }

  private forget(key: string): void {
    this.connections.delete(key);
    if (this.connections.size > 0) return;
    clearInterval(this.timer);
    this.timer = undefined;
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  listen(): Promise<{ address: string; port: number }> {
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => {
        const where = formatEndpoint(this.options.host ?? '0.0.0.0', this.options.port);
        const field = this.options.portField ?? '<port>';
        const why: Record<string, string> = {
          EADDRINUSE: `UDP ${where} is already in use`,
          EACCES: `no permission to listen on UDP ${where}`,
          EADDRNOTAVAIL: `${this.options.host} is not an address of this machine`,
        };
        const message = err.code ? why[err.code] : undefined;
        reject(message ? new OptionError(field, message) : err);
      };
      this.socket.once('error', onError);
      this.socket.bind({ port: this.options.port, address: this.options.host }, () => {
        this.socket.off('error', onError);
        // A burst of a whole window must not overflow the kernel's queue (the
        // default ~200 KB drops packets on a fast link); the kernel caps it at rmem_max.
        try {
          this.socket.setRecvBufferSize(UDP_BUFFER_BYTES);
          this.socket.setSendBufferSize(UDP_BUFFER_BYTES);
        } catch {
          // keep the default
        }
        resolve(this.socket.address());
      });
    });
  }

  /** Opens a µTP connection; resolves once the remote answered our SYN. */
  connect(
    host: string,
    port: number,
    options: { signal?: AbortSignal; timeoutMs?: number } = {},
  ): Promise<UtpStream> {
    return new Promise((resolve, reject) => {
      if (this.closed) {
        reject(new Error('µTP endpoint closed'));
        return;
      }
      const stream = new UtpStream(host, port);
      let key = '';
      let settled = false;
      const onAbort = () => stream.destroy(new Error('aborted'));
      const finish = (err?: Error) => {
        if (settled) return;
        settled = true;
        options.signal?.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve(stream);
      };
      const hooks = stream.hooks();
      let id = 0;
      do id = Math.floor(Math.random() * 0xfffe);
      while (this.connections.has(this.key(host, port, id)));
      const conn = UtpConnection.connect(
        {
          ...hooks,
          send: (packet) => this.send(packet, host, port),
          now: this.now,
          deferAck: (flush) => setImmediate(flush),
          connectTimeoutMs: options.timeoutMs ?? DEFAULT_UTP_CONNECT_TIMEOUT_MS,
          onConnect: () => finish(),
          onClose: (error) => {
            this.forget(key);
            finish(error ?? new Error('µTP connection closed'));
            hooks.onClose(error);
          },
        },
        id,
      );
      stream.connection = conn;
      key = this.key(host, port, conn.recvId);
      this.connections.set(key, { conn, stream });
      this.tickWhileConnected();
      stream.on('error', () => {});
      if (options.signal?.aborted) onAbort();
      else options.signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    this.timer = undefined;
    for (const { stream } of [...this.connections.values()]) stream.destroy();
    this.connections.clear();
    await new Promise<void>((resolve) => this.socket.close(() => resolve()));
  }

  private key(host: string, port: number, recvId: number): string {
    return `${host}|${port}|${recvId}`;
  }

  private send(packet: UtpPacket, host: string, port: number): void {
    if (this.closed) return;
    this.socket.send(encodeUtpPacket(packet), port, host);
  }

  private onMessage(datagram: Buffer, rinfo: RemoteInfo): void {
    let packet: UtpPacket;
    try {
      packet = decodeUtpPacket(datagram);
    } catch {
      this.malformed++;
      return;
    }
    const host = rinfo.address;
    const port = rinfo.port;
    if (packet.type === 'syn') {
      const existing = this.connections.get(this.key(host, port, packet.connectionId + 1));
      if (existing) {
        existing.conn.receive(packet);
        return;
      }
      this.accept(packet, host, port);
      return;
    }
    const entry = this.connections.get(this.key(host, port, packet.connectionId));
    if (entry) {
      entry.conn.receive(packet);
      return;
    }
    // Not ours (a connection we forgot): tell the sender, unless it is a RESET itself.
    if (packet.type !== 'reset') {
      this.send(
        {
          type: 'reset',
          connectionId: packet.connectionId,
          timestampUs: Math.floor(this.now() * 1000) >>> 0,
          timestampDiffUs: 0,
          windowSize: 0,
          seq: 0,
          ack: packet.seq,
          payload: new Uint8Array(0),
        },
        host,
        port,
      );
    }
  }

  private accept(syn: UtpPacket, host: string, port: number): void {
    const remote = formatEndpoint(host, port);
    const max = this.options.maxConnections ?? DEFAULT_UTP_MAX_CONNECTIONS;
    if (this.closed || !this.options.onConnection) return;
    if (this.connections.size >= max) {
      this.options.onRefused?.(remote, `too many µTP connections (limit ${max})`);
      return;
    }
    const stream = new UtpStream(host, port);
    const hooks = stream.hooks();
    const key = this.key(host, port, (syn.connectionId + 1) & 0xffff);
    const conn = UtpConnection.accept(
      {
        ...hooks,
        send: (packet) => this.send(packet, host, port),
        now: this.now,
        deferAck: (flush) => setImmediate(flush),
        onClose: (error) => {
          this.forget(key);
          hooks.onClose(error);
        },
      },
      syn,
    );
    stream.connection = conn;
    this.connections.set(key, { conn, stream });
    this.tickWhileConnected();
    stream.on('error', () => {});
    this.options.onConnection(stream);
  }
}

/**
 * The first bytes a remote sends on a new stream (to tell a plaintext
 * handshake from MSE); rejects if it sends nothing within `timeoutMs` or
 * closes first. The stream is left paused for whoever reads it next.
 */
export function firstBytes(stream: Duplex, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const done = (err?: Error, bytes?: Buffer) => {
      clearTimeout(timer);
      stream.off('data', onData);
      stream.off('close', onClose);
      stream.pause();
      if (err) reject(err);
      else resolve(bytes!);
    };
    const onData = (bytes: Buffer) => done(undefined, bytes);
    const onClose = () => done(new Error('closed before sending anything'));
    const timer = setTimeout(
      () => done(new Error(`sent nothing within ${timeoutMs} ms`)),
      timeoutMs,
    );
    timer.unref();
    stream.on('data', onData);
    stream.on('close', onClose);
  });
}
