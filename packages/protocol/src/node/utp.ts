import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { Duplex } from 'node:stream';
import { formatEndpoint, sourceKey } from '../address.js';
import { OptionError } from '../errors.js';
import { AddressRate } from '../utp/address-rate.js';
import {
  DEFAULT_UTP_CONNECT_TIMEOUT_MS,
  UTP_RECEIVE_WINDOW_BYTES,
  UtpConnection,
  type UtpConnectionOptions,
} from '../utp/connection.js';
import { decodeUtpPacket, encodeUtpPacket, type UtpPacket } from '../utp/packet.js';
import type { ReorderBudget } from '../utp/reorder-budget.js';

/** How often the connections' clocks run (retransmission, keep-alive, deadlines). */
export const UTP_TICK_MS = 50;
/**
 * Connections remotes opened to us and proved, at once (the services pass
 * --max-connections). Our own outgoing connections do not count, as on TCP.
 */
export const DEFAULT_UTP_MAX_CONNECTIONS = 256;
/** Proven connections from one source address (an IPv6 /64), as TCP's DEFAULT_MAX_CONNECTIONS_PER_ADDRESS. */
export const DEFAULT_UTP_MAX_CONNECTIONS_PER_ADDRESS = 64;
/**
 * Answered SYNs whose remote has not yet proven it receives our packets.
 * They count apart from the connection cap, so SYNs from forged addresses
 * never take a real remote's place; past this, the oldest is forgotten. A
 * real remote proves itself in one round trip, so a flood has to answer
 * with this many SYNs per round trip to push it out.
 */
export const UTP_MAX_UNPROVEN = 256;
/** Unproven connections from one source address: past this its SYNs are dropped. */
export const UTP_MAX_UNPROVEN_PER_ADDRESS = 16;
/**
 * SYNs answered per source address: a bucket of UTP_SYN_BURST, refilled at
 * UTP_SYN_PER_SECOND. A host opens one connection per remote and resends a
 * SYN after a second; a test swarm of a few dozen peers on one loopback
 * address fits in the burst. A dropped SYN is resent by its sender.
 */
export const UTP_SYN_PER_SECOND = 20;
export const UTP_SYN_BURST = 40;
/** RESETs sent per source address (to packets for connections we do not have). */
export const UTP_RESET_PER_SECOND = 10;
export const UTP_RESET_BURST = 20;
/** Source addresses whose SYN and RESET buckets are remembered; the least recent goes first. */
export const UTP_RATE_ADDRESSES = 4_096;
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
  /** Default DEFAULT_UTP_MAX_CONNECTIONS. */
  readonly maxConnections?: number;
  /** Default DEFAULT_UTP_MAX_CONNECTIONS_PER_ADDRESS. */
  readonly maxConnectionsPerAddress?: number;
  /** Injected clock in ms (tests); default performance.now. */
  readonly now?: () => number;
  /** Bound on bytes held out of order by all connections (default the process's). */
  readonly reorderBudget?: ReorderBudget;
}

interface Entry {
  readonly conn: UtpConnection;
  readonly stream: UtpStream;
  /** Source address key (sourceKey) of a connection the remote opened; undefined for ours. */
  readonly source: string | undefined;
  /** Which of its source's counts this connection is in. */
  counted: 'unproven' | 'proven' | 'none';
}

/** What the endpoint turned away or forgot, for tests and stats. */
export interface UtpEndpointStats {
  /** SYNs over their address's rate. */
  synsRateLimited: number;
  /** SYNs from an address already holding UTP_MAX_UNPROVEN_PER_ADDRESS unproven connections. */
  synsUnprovenCapped: number;
  /** Unproven connections forgotten to make room for newer ones. */
  unprovenEvicted: number;
  /** RESETs not sent, over their address's rate. */
  resetsRateLimited: number;
}

/**
 * µTP on one UDP port: demultiplexes datagrams to connections by remote
 * address and connection id, accepts SYNs, opens outgoing connections, and
 * runs every connection's clock. A datagram that is not µTP is dropped.
 */
export class UtpEndpoint {
  private readonly socket: UdpSocket;
  private readonly connections = new Map<string, Entry>();
  /** Accepted connections not yet proven, oldest first. */
  private readonly unproven = new Set<Entry>();
  /** Per source address: proven incoming connections, and unproven ones. */
  private readonly perSource = new Map<string, { proven: number; unproven: number }>();
  /** Proven incoming connections, all sources. */
  private accepted = 0;
  private readonly synRate: AddressRate;
  private readonly resetRate: AddressRate;
  /** Runs the connections' clocks; only while there is a connection (an idle port sleeps). */
  private timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;
  private closed = false;
  /** Datagrams dropped as malformed (for tests and stats). */
  malformed = 0;
  readonly stats: UtpEndpointStats = {
    synsRateLimited: 0,
    synsUnprovenCapped: 0,
    unprovenEvicted: 0,
    resetsRateLimited: 0,
  };

  constructor(private readonly options: UtpEndpointOptions) {
    this.now = options.now ?? (() => performance.now());
    const rate = (perSecond: number, burst: number) =>
      new AddressRate({ perSecond, burst, maxAddresses: UTP_RATE_ADDRESSES, now: this.now });
    this.synRate = rate(UTP_SYN_PER_SECOND, UTP_SYN_BURST);
    this.resetRate = rate(UTP_RESET_PER_SECOND, UTP_RESET_BURST);
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

  /** Connections held: ours, proven remotes' and unproven ones. */
  get connectionCount(): number {
    return this.connections.size;
  }

  /** Accepted connections whose remote has not yet proven it receives our packets. */
  get unprovenCount(): number {
    return this.unproven.size;
  }

  /** Connections counted against maxConnections: those remotes opened and proved. */
  get acceptedCount(): number {
    return this.accepted;
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
      let entry: Entry | undefined;
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
          ...(this.options.reorderBudget ? { reorderBudget: this.options.reorderBudget } : {}),
          connectTimeoutMs: options.timeoutMs ?? DEFAULT_UTP_CONNECT_TIMEOUT_MS,
          onConnect: () => finish(),
          onClose: (error) => {
            if (entry) this.forget(key, entry);
            finish(error ?? new Error('µTP connection closed'));
            hooks.onClose(error);
          },
        },
        id,
      );
      stream.connection = conn;
      key = this.key(host, port, conn.recvId);
      entry = { conn, stream, source: undefined, counted: 'none' };
      this.connections.set(key, entry);
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
    for (const { conn, stream } of [...this.connections.values()]) {
      // An unproven remote was never handed up: it gets no RESET, and no stream to close.
      if (conn.state === 'syn-recv') conn.destroy(undefined, false);
      else stream.destroy();
    }
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
      // Each SYN is answered, so each costs a token, repeated or new.
      if (!this.synRate.take(sourceKey(host))) {
        this.stats.synsRateLimited++;
        return;
      }
      const existing = this.connections.get(
        this.key(host, port, (packet.connectionId + 1) & 0xffff),
      );
      if (existing) {
        existing.conn.receive(packet, datagram.length);
        return;
      }
      this.accept(packet, host, port, datagram.length);
      return;
    }
    const entry = this.connections.get(this.key(host, port, packet.connectionId));
    if (entry) {
      entry.conn.receive(packet, datagram.length);
      return;
    }
    // Not ours (a connection we forgot): tell the sender, unless it is a RESET
    // itself. Rate-limited: the sender may be forging a victim's address.
    if (packet.type !== 'reset') {
      if (!this.resetRate.take(sourceKey(host))) {
        this.stats.resetsRateLimited++;
        return;
      }
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

  private accept(syn: UtpPacket, host: string, port: number, wireBytes: number): void {
    if (this.closed || !this.options.onConnection) return;
    const remote = formatEndpoint(host, port);
    const source = sourceKey(host);
    const counts = this.perSource.get(source) ?? { proven: 0, unproven: 0 };
    // The caps are checked once the remote is proven: until then its address
    // may be forged, and a refusal logged for it would name a bystander.
    if (counts.unproven >= UTP_MAX_UNPROVEN_PER_ADDRESS) {
      // Not logged: the address may be forged, and the log is not a flood's to fill.
      this.stats.synsUnprovenCapped++;
      return;
    }
    if (this.unproven.size >= UTP_MAX_UNPROVEN) {
      const oldest = this.unproven.values().next().value;
      if (oldest) {
        this.stats.unprovenEvicted++;
        oldest.conn.destroy(undefined, false);
      }
    }
    const stream = new UtpStream(host, port);
    const hooks = stream.hooks();
    const key = this.key(host, port, (syn.connectionId + 1) & 0xffff);
    let entry: Entry | undefined;
    const conn = UtpConnection.accept(
      {
        ...hooks,
        send: (packet) => this.send(packet, host, port),
        now: this.now,
        deferAck: (flush) => setImmediate(flush),
        ...(this.options.reorderBudget ? { reorderBudget: this.options.reorderBudget } : {}),
        onConnect: () => {
          if (entry) this.proven(entry, remote);
        },
        onClose: (error) => {
          if (entry) this.forget(key, entry);
          // Only a stream that was handed up has anyone to tell.
          if (conn.proven) hooks.onClose(error);
        },
      },
      syn,
      wireBytes,
    );
    stream.connection = conn;
    entry = { conn, stream, source, counted: 'unproven' };
    this.connections.set(key, entry);
    this.unproven.add(entry);
    this.perSource.set(source, { proven: counts.proven, unproven: counts.unproven + 1 });
    this.tickWhileConnected();
    stream.on('error', () => {});
  }

  /** Why a remote at `source` holding `proven` connections may not have one more, if it may not. */
  private capRefusal(source: string, proven: number): string | undefined {
    const max = this.options.maxConnections ?? DEFAULT_UTP_MAX_CONNECTIONS;
    const perSource =
      this.options.maxConnectionsPerAddress ?? DEFAULT_UTP_MAX_CONNECTIONS_PER_ADDRESS;
    if (this.accepted >= max) return `too many µTP connections (limit ${max})`;
    if (proven >= perSource)
      return `too many µTP connections from ${source} (limit ${perSource} per address)`;
    return undefined;
  }

  /** The remote echoed our sequence number: within the caps it becomes a connection like any other. */
  private proven(entry: Entry, remote: string): void {
    this.uncount(entry);
    const source = entry.source!;
    const counts = this.perSource.get(source) ?? { proven: 0, unproven: 0 };
    const refusal = this.capRefusal(source, counts.proven);
    if (refusal || this.closed || !this.options.onConnection) {
      if (refusal) this.options.onRefused?.(remote, refusal);
      // It is proven now: a RESET reaches the real remote, and it stops resending.
      entry.stream.destroy();
      return;
    }
    entry.counted = 'proven';
    this.accepted++;
    this.perSource.set(source, { ...counts, proven: counts.proven + 1 });
    this.options.onConnection(entry.stream);
  }

  private forget(key: string, entry: Entry): void {
    if (this.connections.get(key) === entry) this.connections.delete(key);
    this.uncount(entry);
    if (this.connections.size > 0) return;
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Takes `entry` out of its source's counts (and the unproven set). */
  private uncount(entry: Entry): void {
    const source = entry.source;
    if (source === undefined || entry.counted === 'none') return;
    if (entry.counted === 'unproven') this.unproven.delete(entry);
    else this.accepted--;
    const counts = this.perSource.get(source);
    if (counts) {
      counts[entry.counted]--;
      if (counts.proven <= 0 && counts.unproven <= 0) this.perSource.delete(source);
    }
    entry.counted = 'none';
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
