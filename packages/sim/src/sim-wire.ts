import type { Handshake, Message } from '@swarmdrop/protocol';
import type { MessageWire, WireClose } from '@swarmdrop/protocol/node';
import type { Flow, Host, Network } from './network.js';

/**
 * Bytes a message takes on the wire (BEP 3 framing: a 4-byte length, a
 * 1-byte id, the payload), so a `have` costs its 9 bytes like a piece its 13
 * plus the block.
 */
export function wireBytes(message: Message, pieceCount: number): number {
  switch (message.type) {
    case 'keepAlive':
      return 4;
    case 'handshake':
      return 68;
    case 'choke':
    case 'unchoke':
    case 'interested':
    case 'notInterested':
      return 5;
    case 'have':
      return 9;
    case 'bitfield':
      return 5 + Math.ceil(pieceCount / 8);
    case 'request':
    case 'cancel':
      return 17;
    case 'piece':
      return 13 + message.block.length;
    default:
      return 5;
  }
}

/**
 * How many bytes queued on a flow make a sender wait (`needsDrain`): the
 * socket's buffer. A piece or two of 100 KiB are in flight beyond the
 * sender's reach once written, as with a kernel send buffer.
 */
export const SOCKET_BUFFER_BYTES = 128 * 1024;

/**
 * One end of a simulated connection: a MessageWire that carries `Message`
 * objects over the Network's flows instead of bytes over a socket. The
 * engine's Connection runs on it unchanged.
 */
export class SimWire implements MessageWire {
  readonly label: string;
  remoteHandshake: Handshake | undefined;
  onHandshake: (handshake: Handshake) => void = () => {};
  onMessage: (message: Message) => void = () => {};
  readonly closed: Promise<WireClose>;
  peer!: SimWire;
  private ended = false;
  private resolveClosed!: (close: WireClose) => void;
  private readonly net: Network;
  private readonly out: Flow;
  private readonly pieceCount: number;
  private drainWaiters: Array<() => void> = [];

  constructor(net: Network, out: Flow, label: string, pieceCount: number) {
    this.net = net;
    this.out = out;
    this.label = label;
    this.pieceCount = pieceCount;
    this.closed = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
    out.onProgress = () => this.progress();
  }

  /** A connected pair: `a` at `from` names its remote `labelOfB`, and the other way round. */
  static pair(
    net: Network,
    from: Host,
    to: Host,
    labels: { readonly ofFrom: string; readonly ofTo: string },
    pieceCount: number,
  ): [SimWire, SimWire] {
    const a = new SimWire(net, net.flow(from, to), labels.ofTo, pieceCount);
    const b = new SimWire(net, net.flow(to, from), labels.ofFrom, pieceCount);
    a.peer = b;
    b.peer = a;
    return [a, b];
  }

  get isClosed(): boolean {
    return this.ended;
  }

  get needsDrain(): boolean {
    return this.out.queuedBytes > SOCKET_BUFFER_BYTES;
  }

  /** Sends our handshake (the remote's wire turns live when it arrives). */
  sendHandshake(handshake: Handshake): void {
    this.transmit(handshake, false);
  }

  send(message: Message): boolean {
    if (this.ended) return false;
    this.transmit(message, false);
    return !this.needsDrain;
  }

  sendPiece(index: number, begin: number, block: Uint8Array): boolean {
    if (this.ended) return false;
    this.out.from.pieceBytesUp += block.length;
    this.transmit({ type: 'piece', index, begin, block }, true);
    return !this.needsDrain;
  }

  drained(): Promise<void> {
    if (this.ended || !this.needsDrain) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  batch(fn: () => void): void {
    fn();
  }

  close(reason: string, error?: Error): void {
    if (this.ended) return;
    this.end(error ? { reason, error } : { reason });
    // The remote learns of it one latency later (a FIN, or the RST of a killed process).
    const remote = this.peer;
    this.net.close(this.out);
    this.net.clock.setTimeout(
      () => remote.end({ reason: 'connection closed by the remote' }),
      this.net.latency(this.out.from, this.out.to),
    );
  }

  private end(close: WireClose): void {
    if (this.ended) return;
    this.ended = true;
    this.net.close(this.out);
    this.progress();
    this.resolveClosed(close);
  }

  private transmit(message: Message, payload: boolean): void {
    const remote = this.peer;
    this.net.send(this.out, wireBytes(message, this.pieceCount), payload, () =>
      remote.receive(message),
    );
  }

  private receive(message: Message): void {
    if (this.ended) return;
    if (message.type === 'handshake') {
      if (this.remoteHandshake) return;
      this.remoteHandshake = message;
      this.onHandshake(message);
      return;
    }
    if (!this.remoteHandshake) return;
    this.onMessage(message);
  }

  private progress(): void {
    if (this.drainWaiters.length === 0 || (this.needsDrain && !this.ended)) return;
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const resolve of waiters) resolve();
  }
}
