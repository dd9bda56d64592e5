import { createSocket, type Socket } from 'node:dgram';
import { decodeUtpPacket, encodeUtpPacket, type UtpPacket } from '@swarmdrop/protocol';
import type { Cleanup } from './cleanup.js';
import { HANG_MS } from './env.js';

/** A packet as RawUtpRemote.send takes it: everything but type and ids has a default. */
export type RawUtpPacket = Partial<UtpPacket> & Pick<UtpPacket, 'type' | 'connectionId'>;

/**
 * A µTP remote written by hand: one UDP socket on a local address of its
 * own (127.0.0.x), that sends the packets a test builds and records every
 * datagram that comes back, with the bytes both ways. For what no
 * well-behaved endpoint sends: forged sources, blind guesses, floods,
 * packets out of order. Datagrams between one pair of loopback sockets
 * arrive in order, so a reply to the last packet sent says the earlier ones
 * have been read.
 */
export class RawUtpRemote {
  /** µTP bytes (header and payload) sent and received, as the wire counts them. */
  bytesSent = 0;
  bytesReceived = 0;
  /** Every packet received, in order. */
  readonly received: UtpPacket[] = [];
  private waiters: Array<{ match: (p: UtpPacket) => boolean; resolve: (p: UtpPacket) => void }> =
    [];

  private constructor(
    private readonly socket: Socket,
    readonly address: string,
    readonly port: number,
    private readonly target: { host: string; port: number },
  ) {
    socket.on('message', (datagram: Buffer) => {
      this.bytesReceived += datagram.length;
      let packet: UtpPacket;
      try {
        packet = decodeUtpPacket(datagram);
      } catch {
        return;
      }
      this.received.push(packet);
      for (const w of [...this.waiters]) {
        if (w.match(packet)) {
          this.waiters = this.waiters.filter((x) => x !== w);
          w.resolve(packet);
        }
      }
    });
  }

  /** Binds on `address` (port 0) and aims at `target`; closed by `cleanup`. */
  static async open(
    cleanup: Cleanup,
    address: string,
    target: { host?: string; port: number },
  ): Promise<RawUtpRemote> {
    const socket = createSocket('udp4');
    socket.on('error', () => {});
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, address, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    cleanup.add(() => new Promise<void>((r) => socket.close(() => r())));
    return new RawUtpRemote(socket, address, socket.address().port, {
      host: target.host ?? '127.0.0.1',
      port: target.port,
    });
  }

  /** Sends one packet (defaults: seq 1, ack 0, 1 MiB window, no payload). */
  send(packet: RawUtpPacket): void {
    this.sendBytes(
      encodeUtpPacket({
        timestampUs: 0,
        timestampDiffUs: 0,
        windowSize: 1 << 20,
        seq: 1,
        ack: 0,
        payload: new Uint8Array(0),
        ...packet,
      }),
    );
  }

  /** Sends a datagram as it is, µTP or not. */
  sendBytes(datagram: Uint8Array): void {
    this.bytesSent += datagram.length;
    this.socket.send(datagram, this.target.port, this.target.host);
  }

  /** The first packet received from now on that `match` accepts; rejects after `timeoutMs`. */
  next(match: (p: UtpPacket) => boolean, timeoutMs = HANG_MS): Promise<UtpPacket> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.resolve !== done);
        reject(new Error(`${this.address}: no matching µTP packet within ${timeoutMs} ms`));
      }, timeoutMs);
      const done = (p: UtpPacket) => {
        clearTimeout(timer);
        resolve(p);
      };
      this.waiters.push({ match, resolve: done });
    });
  }

  /**
   * Sends a DATA packet for a connection id nobody has and waits for the
   * RESET it draws: by then every packet sent before it has been read.
   * (It costs one of the target's RESET tokens for this address.)
   */
  async barrier(unknownConnectionId = 0x7a7a): Promise<void> {
    const reset = this.next((p) => p.type === 'reset' && p.connectionId === unknownConnectionId);
    this.send({ type: 'data', connectionId: unknownConnectionId, seq: 1, ack: 0 });
    await reset;
  }
}
