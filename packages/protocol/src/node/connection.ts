import { Bitfield } from '../bitfield.js';
import { type SwarmdropError, WireError } from '../errors.js';
import { TypedEmitter } from '../events/typed-emitter.js';
import { RateEstimator } from '../rate/rate-estimator.js';
import { type Clock, MONOTONIC_CLOCK } from '../time/clock.js';
import {
  EXTENDED_HANDSHAKE_ID,
  type ExtensionName,
  encodeExtendedHandshake,
  type LocalHandshake,
  localExtensionOf,
  parseExtendedHandshake,
  type RemoteExtensions,
  supportsExtensions,
} from '../wire/extended.js';
import type { Handshake, Message } from '../wire/messages.js';
import type { MessageWire } from './message-wire.js';
import type { PeerWire, WireClose } from './peer-wire.js';

/** Block requests a remote may have queued with us before it counts as a flood and is cut off. */
export const DEFAULT_MAX_REMOTE_REQUESTS = 1_024;
/**
 * Later bitfields that tell us nothing new, tolerated per connection. aria2
 * sends a bitfield in place of several `have`s (its checkHave), at times
 * one that repeats the first; a remote sending more is flooding.
 */
export const MAX_REDUNDANT_BITFIELDS = 8;

/**
 * Extended handshakes taken from one remote. BEP 10 lets a side send another
 * to update what it announced (libtorrent does once it has the metadata); a
 * remote sending more is flooding.
 */
export const MAX_EXTENDED_HANDSHAKES = 8;

/** Withdrawn requests remembered per connection (see Connection.withdrawn): a pipeline's worth and more. */
const MAX_WITHDRAWN = 1_024;

/** One block of one piece: the unit of `request`, `cancel` and `piece`. */
export interface BlockRef {
  readonly index: number;
  readonly begin: number;
  readonly length: number;
}

/** A request we sent and have not had answered, with when it went out (Clock ms). */
export interface OutgoingRequest extends BlockRef {
  readonly sentAtMs: number;
}

export interface PieceEvent {
  readonly index: number;
  readonly begin: number;
  /** Valid during the `piece` event only: the decoder may reuse it (copy what you keep). */
  readonly block: Uint8Array;
  /**
   * False for a block we had not asked for, or no longer asked for: BEP 3
   * lets one arrive after a choke or a cancel crossed it on the wire. It still
   * counts towards the download rate, because it crossed the link.
   */
  readonly requested: boolean;
}

export interface ConnectionClose extends WireClose {
  /** Our requests still unanswered when the connection ended: the picker must give them back. */
  readonly unanswered: readonly OutgoingRequest[];
}

/** The lifecycle of a connection: it only moves forward. */
export type ConnectionState = 'handshaking' | 'live' | 'closed';

/** What a Connection tells the level above; nothing else about the remote is kept anywhere else. */
export type ConnectionEvents = {
  /** The handshake arrived: the connection is live. */
  ready: (handshake: Handshake) => void;
  /** The remote's first-message bitfield, already stored in `remoteHas`. */
  bitfield: (remoteHas: Bitfield) => void;
  /**
   * The remote gained a piece (duplicates of a piece it already announced are
   * not re-emitted). A later bitfield arrives as the `have`s of what it adds.
   */
  have: (index: number) => void;
  piece: (piece: PieceEvent) => void;
  /** The remote asked us for a block; answer with `sendPiece` unless it is cancelled first. */
  request: (request: BlockRef) => void;
  /** The remote withdrew a request it had queued with us. */
  cancel: (request: BlockRef) => void;
  /** The remote choked us; BEP 3: every request we had in flight is void, listed in `dropped`. */
  choke: (dropped: readonly OutgoingRequest[]) => void;
  unchoke: () => void;
  interested: () => void;
  notInterested: () => void;
  /** BEP 10: the remote's extended handshake, validated and kept as `remoteExtensions` (again on an update). */
  extendedHandshake: (remote: RemoteExtensions) => void;
  /** BEP 10: a message of one of the extensions we enabled, on our id for it. */
  extended: (name: ExtensionName, payload: Uint8Array) => void;
  closed: (close: ConnectionClose) => void;
};

export interface ConnectionOptions<W extends MessageWire = PeerWire> {
  readonly wire: W;
  /** Pieces in the torrent: the size of the remote's bitfield. */
  readonly pieceCount: number;
  /** What we hold: a request for anything else is a protocol violation and closes the connection. */
  readonly localHas: { has(index: number): boolean };
  readonly clock?: Clock;
  readonly maxRemoteRequests?: number;
  /** Window of the download and upload rate estimators. */
  readonly rateWindowMs?: number;
  /**
   * BEP 10: what our extended handshake announces. Give it only when our
   * handshake set the extension bit (openConnection does both); without it
   * no extended message is sent or taken.
   */
  readonly extensions?: LocalHandshake;
}

function keyOf(r: BlockRef): string {
  return `${r.index}:${r.begin}`;
}

/**
 * One remote, and all the state about it: its bitfield, the four BEP 3
 * choke/interest flags, the requests in flight in both directions, and the
 * rates each way. Everything else subscribes to its events instead of keeping
 * a second copy (webtorrent's bittorrent-protocol `Wire` is the model).
 *
 * The rules it enforces itself, so that no caller can forget them:
 * - the bitfield is the first message or none (BEP 3); stock clients
 *   (aria2) send a later one in place of `have`s, so a later one counts as
 *   the `have`s of what it adds, and one that takes a piece back, or a run
 *   of them adding nothing, closes (`ERR_BITFIELD_REPEATED`);
 * - a choke from them voids our requests (emitted with `choke`), a choke from
 *   us voids theirs (returned by `choke()`), as BEP 3 says;
 * - a request while we choke them is dropped (it crossed our choke);
 * - their queued requests are bounded; a flood closes the connection.
 *
 * It takes over the wire's `onHandshake` and `onMessage`: subscribe to its
 * events instead.
 */
export class Connection<W extends MessageWire = PeerWire> extends TypedEmitter<ConnectionEvents> {
  readonly wire: W;
  /** What the remote holds, from its bitfield and haves. */
  readonly remoteHas: Bitfield;
  readonly download: RateEstimator;
  readonly upload: RateEstimator;
  /** When this object was created (Clock ms): the choker favours new connections. */
  readonly openedAtMs: number;
  /** When the last block of payload arrived (Clock ms), or undefined before the first. */
  lastPieceAtMs: number | undefined;

  private stateNow: ConnectionState;
  private amChokingNow = true;
  private amInterestedNow = false;
  private peerChokingNow = true;
  private peerInterestedNow = false;
  private readonly ours = new Map<string, OutgoingRequest>();
  private oursBytes = 0;
  /**
   * Our requests withdrawn lately (a cancel, a choke), as `index:begin:length`:
   * their pieces may still be on the wire. One of them arriving while a
   * request of another length is out for the same block (endgame re-asks a
   * cancelled whole chunk as one 16 KiB block) crossed the cancel; it is not
   * the remote answering with the wrong amount.
   */
  private readonly withdrawn = new Set<string>();
  private readonly theirs = new Map<string, BlockRef>();
  private readonly localHas: { has(index: number): boolean };
  private readonly clock: Clock;
  private readonly maxRemoteRequests: number;
  /** Whether any message other than a keep-alive has arrived: after that, a bitfield is a later one. */
  private sawMessage = false;
  private redundantBitfields = 0;
  private readonly localExtensions: LocalHandshake | undefined;
  private readonly enabledExtensions: ReadonlySet<ExtensionName>;
  /** Both sides set BEP 10's bit: extended messages may flow. */
  private extensionsOn = false;
  private remoteExtensionsNow: RemoteExtensions | undefined;
  private extendedHandshakes = 0;
  /** Extended messages dropped: an id we did not announce, or the remote never offered BEP 10. */
  unknownExtended = 0;

  constructor(options: ConnectionOptions<W>) {
    super();
    this.wire = options.wire;
    this.clock = options.clock ?? MONOTONIC_CLOCK;
    this.localHas = options.localHas;
    this.maxRemoteRequests = options.maxRemoteRequests ?? DEFAULT_MAX_REMOTE_REQUESTS;
    this.remoteHas = new Bitfield(options.pieceCount);
    const rate = { clock: this.clock, windowMs: options.rateWindowMs };
    this.download = new RateEstimator(rate);
    this.upload = new RateEstimator(rate);
    this.openedAtMs = this.clock.now();
    this.stateNow = this.wire.isClosed
      ? 'closed'
      : this.wire.remoteHandshake
        ? 'live'
        : 'handshaking';
    // A listener that throws is our bug or theirs; either way this one connection ends, not the process.
    this.onListenerError = (error, event) =>
      this.close(`${String(event)} handler failed: ${(error as Error).message}`, error as Error);
    this.localExtensions = options.extensions;
    this.enabledExtensions = new Set(options.extensions?.enabled ?? []);
    this.wire.onHandshake = (handshake) => {
      if (this.stateNow !== 'handshaking') return;
      this.stateNow = 'live';
      this.extensionsOn =
        this.localExtensions !== undefined && supportsExtensions(handshake.reserved);
      this.emit('ready', handshake);
      // After the listeners, so that a bitfield they send goes first, as BEP 3 wants it.
      if (this.extensionsOn && this.localExtensions && this.stateNow === 'live') {
        this.wire.send({
          type: 'extended',
          id: EXTENDED_HANDSHAKE_ID,
          payload: encodeExtendedHandshake(this.localExtensions),
        });
      }
    };
    this.wire.onMessage = (message) => this.receive(message);
    void this.wire.closed.then((close) => this.ended(close));
  }

  get state(): ConnectionState {
    return this.stateNow;
  }
  /** We refuse to serve them. */
  get amChoking(): boolean {
    return this.amChokingNow;
  }
  /** We want something they have. */
  get amInterested(): boolean {
    return this.amInterestedNow;
  }
  /** They refuse to serve us. */
  get peerChoking(): boolean {
    return this.peerChokingNow;
  }
  /** They want something we have. */
  get peerInterested(): boolean {
    return this.peerInterestedNow;
  }
  get label(): string {
    return this.wire.label;
  }
  /** Our requests to them, not yet answered. */
  get outgoing(): ReadonlyMap<string, OutgoingRequest> {
    return this.ours;
  }
  /** Bytes we asked of them and have not received: what a pipeline limit is measured against. */
  get bytesInFlight(): number {
    return this.oursBytes;
  }
  /** Their requests to us, not yet served. */
  get incoming(): ReadonlyMap<string, BlockRef> {
    return this.theirs;
  }
  /** BEP 10 is on for this connection: we offered it, and the remote's handshake set the bit. */
  get extensionsActive(): boolean {
    return this.extensionsOn;
  }
  /** The remote's extended handshake (the latest, if it sent an update), once it arrived. */
  get remoteExtensions(): RemoteExtensions | undefined {
    return this.remoteExtensionsNow;
  }

  /**
   * Sends one message of extension `name` on the id the remote announced for
   * it. False, and nothing sent, when the remote did not announce `name` (or
   * turned it off), or the connection is closed.
   */
  sendExtended(name: ExtensionName, payload: Uint8Array): boolean {
    if (this.stateNow !== 'live' || !this.extensionsOn) return false;
    const id = this.remoteExtensionsNow?.ids.get(name);
    if (id === undefined) return false;
    this.wire.send({ type: 'extended', id, payload });
    return true;
  }

  /** True when the socket buffer is full or the upload limit in debt: wait for `drained()` before sending more pieces. */
  get needsDrain(): boolean {
    return this.wire.needsDrain;
  }

  drained(): Promise<void> {
    return this.wire.drained();
  }

  /** Runs several sends in one corked write. */
  batch(fn: () => void): void {
    this.wire.batch(fn);
  }

  /** Sends our bitfield; BEP 3 wants it first, so call it right after the handshake. */
  sendBitfield(held: Bitfield): void {
    this.wire.send({ type: 'bitfield', bytes: held.toBytes() });
  }

  sendHave(index: number): void {
    this.wire.send({ type: 'have', index });
  }

  /** Chokes the remote; returns its requests that this voids (BEP 3), which nobody will serve now. */
  choke(): BlockRef[] {
    if (this.amChokingNow || this.stateNow === 'closed') return [];
    this.amChokingNow = true;
    this.wire.send({ type: 'choke' });
    const dropped = [...this.theirs.values()];
    this.theirs.clear();
    return dropped;
  }

  unchoke(): void {
    if (!this.amChokingNow || this.stateNow === 'closed') return;
    this.amChokingNow = false;
    this.wire.send({ type: 'unchoke' });
  }

  /** Says whether we want something; sends only on a change, so callers may call it freely. */
  setInterested(interested: boolean): void {
    if (interested === this.amInterestedNow || this.stateNow === 'closed') return;
    this.amInterestedNow = interested;
    this.wire.send({ type: interested ? 'interested' : 'notInterested' });
  }

  /**
   * Asks for one block. False, and nothing sent, when they choke us, the
   * block is already asked for here, or the connection is closed: a request
   * made while choked would be void anyway.
   */
  request(block: BlockRef): boolean {
    if (this.stateNow === 'closed' || this.peerChokingNow) return false;
    const key = keyOf(block);
    if (this.ours.has(key)) return false;
    this.ours.set(key, {
      index: block.index,
      begin: block.begin,
      length: block.length,
      sentAtMs: this.clock.now(),
    });
    this.oursBytes += block.length;
    this.wire.send({
      type: 'request',
      index: block.index,
      begin: block.begin,
      length: block.length,
    });
    return true;
  }

  /** Withdraws one of our requests (endgame duplicates, a link that is too slow); false if it was not pending. */
  cancel(block: BlockRef): boolean {
    const request = this.ours.get(keyOf(block));
    if (!request) return false;
    this.ours.delete(keyOf(block));
    this.oursBytes -= request.length;
    this.noteWithdrawn(request);
    if (this.stateNow !== 'closed') {
      this.wire.send({
        type: 'cancel',
        index: request.index,
        begin: request.begin,
        length: request.length,
      });
    }
    return true;
  }

  /** Withdraws every request we have in flight here and returns them, for another link to take. */
  cancelAll(): OutgoingRequest[] {
    const all = [...this.ours.values()];
    this.batch(() => {
      for (const request of all) this.cancel(request);
    });
    return all;
  }

  /**
   * Answers one of their requests. False, and nothing sent, when it is no
   * longer pending (they cancelled it, or we choked them since): the block
   * was read from disk in vain, but not sent in vain.
   */
  sendPiece(index: number, begin: number, block: Uint8Array): boolean {
    const key = keyOf({ index, begin, length: block.length });
    const pending = this.theirs.get(key);
    if (!pending || pending.length !== block.length || this.stateNow === 'closed') return false;
    this.theirs.delete(key);
    this.wire.sendPiece(index, begin, block);
    this.upload.record(block.length);
    return true;
  }

  close(reason: string, error?: SwarmdropError | Error): void {
    this.wire.close(reason, error);
  }

  private receive(message: Message): void {
    if (this.stateNow === 'closed') return;
    if (message.type === 'keepAlive' || message.type === 'handshake') return;
    // Not counted as a first message: a bitfield after the remote's extended handshake is still its first.
    if (message.type === 'extended') {
      this.receiveExtended(message.id, message.payload);
      return;
    }
    const first = !this.sawMessage;
    this.sawMessage = true;
    switch (message.type) {
      case 'bitfield': {
        let remote: Bitfield;
        try {
          remote = Bitfield.fromBytes(message.bytes, this.remoteHas.size);
        } catch (err) {
          const error = err as WireError;
          this.close(`${error.code}: ${error.message}`, error);
          return;
        }
        if (!first) {
          this.laterBitfield(remote);
          return;
        }
        for (const index of remote.heldIds()) this.remoteHas.set(index);
        this.emit('bitfield', this.remoteHas);
        return;
      }
      case 'have':
        if (this.remoteHas.set(message.index)) this.emit('have', message.index);
        return;
      case 'choke': {
        if (this.peerChokingNow) return;
        this.peerChokingNow = true;
        const dropped = [...this.ours.values()];
        for (const request of dropped) this.noteWithdrawn(request);
        this.ours.clear();
        this.oursBytes = 0;
        this.emit('choke', dropped);
        return;
      }
      case 'unchoke':
        if (!this.peerChokingNow) return;
        this.peerChokingNow = false;
        this.emit('unchoke');
        return;
      case 'interested':
        if (this.peerInterestedNow) return;
        this.peerInterestedNow = true;
        this.emit('interested');
        return;
      case 'notInterested':
        if (!this.peerInterestedNow) return;
        this.peerInterestedNow = false;
        this.emit('notInterested');
        return;
      case 'request':
        this.receiveRequest(message);
        return;
      case 'cancel': {
        const key = keyOf(message);
        const pending = this.theirs.get(key);
        if (!pending) return; // already served or voided by a choke: the cancel crossed it
        this.theirs.delete(key);
        this.emit('cancel', pending);
        return;
      }
      case 'piece':
        this.receivePiece(message.index, message.begin, message.block);
        return;
    }
  }

  private receiveExtended(id: number, payload: Uint8Array): void {
    if (!this.extensionsOn) {
      this.unknownExtended++;
      return;
    }
    if (id === EXTENDED_HANDSHAKE_ID) {
      if (++this.extendedHandshakes > MAX_EXTENDED_HANDSHAKES) {
        this.close(
          `ERR_EXTENDED: more than ${MAX_EXTENDED_HANDSHAKES} extended handshakes`,
          new WireError('ERR_EXTENDED', 'extended handshake flood'),
        );
        return;
      }
      let remote: RemoteExtensions;
      try {
        remote = parseExtendedHandshake(payload);
      } catch (err) {
        const error = err as WireError;
        this.close(`${error.code}: ${error.message}`, error);
        return;
      }
      this.remoteExtensionsNow = remote;
      this.emit('extendedHandshake', remote);
      return;
    }
    const name = localExtensionOf(id, this.enabledExtensions);
    if (name === undefined) {
      this.unknownExtended++;
      return;
    }
    this.emit('extended', name, payload);
  }

  private laterBitfield(remote: Bitfield): void {
    for (const index of this.remoteHas.heldIds()) {
      if (!remote.has(index)) {
        this.close(
          `ERR_BITFIELD_REPEATED: a later bitfield takes back chunk ${index}`,
          new WireError('ERR_BITFIELD_REPEATED', `bitfield takes back chunk ${index}`),
        );
        return;
      }
    }
    let added = 0;
    for (const index of remote.heldIds()) {
      if (!this.remoteHas.set(index)) continue;
      added++;
      this.emit('have', index);
      if (this.stateNow === 'closed') return;
    }
    if (added === 0 && ++this.redundantBitfields > MAX_REDUNDANT_BITFIELDS) {
      this.close(
        `ERR_BITFIELD_REPEATED: more than ${MAX_REDUNDANT_BITFIELDS} bitfields that add nothing`,
        new WireError('ERR_BITFIELD_REPEATED', 'repeated bitfields'),
      );
    }
  }

  private receiveRequest(request: BlockRef): void {
    // It crossed our choke on the wire: BEP 3 says choked requests are dropped, not an offence.
    if (this.amChokingNow) return;
    if (!this.localHas.has(request.index)) {
      this.close(
        `requested chunk ${request.index}, which we do not hold`,
        new WireError('ERR_PIECE_INDEX', `request for chunk ${request.index} not held`),
      );
      return;
    }
    const key = keyOf(request);
    if (this.theirs.has(key)) return;
    if (this.theirs.size >= this.maxRemoteRequests) {
      this.close(
        `more than ${this.maxRemoteRequests} requests pending`,
        new WireError('ERR_REQUEST_FLOOD', 'request flood'),
      );
      return;
    }
    const ref = { index: request.index, begin: request.begin, length: request.length };
    this.theirs.set(key, ref);
    this.emit('request', ref);
  }

  private receivePiece(index: number, begin: number, block: Uint8Array): void {
    this.download.record(block.length);
    this.lastPieceAtMs = this.clock.now();
    const key = keyOf({ index, begin, length: block.length });
    let request = this.ours.get(key);
    if (
      request &&
      request.length !== block.length &&
      this.withdrawn.has(`${key}:${block.length}`)
    ) {
      // It answers a request we withdrew, not the one now out for this block.
      request = undefined;
    } else if (request && request.length !== block.length) {
      // It answered our request with the wrong amount: broken or hostile, and the piece would never complete.
      this.close(
        `sent ${block.length} bytes for a block of ${request.length} (chunk ${index} at ${begin})`,
        new WireError('ERR_BLOCK_RANGE', 'block of the wrong length'),
      );
      return;
    }
    if (request) {
      this.ours.delete(key);
      this.oursBytes -= request.length;
    }
    this.emit('piece', { index, begin, block, requested: request !== undefined });
  }

  private noteWithdrawn(request: BlockRef): void {
    this.withdrawn.add(`${keyOf(request)}:${request.length}`);
    // Bounded: the oldest go first; their pieces arrived long ago or never will.
    if (this.withdrawn.size > MAX_WITHDRAWN)
      this.withdrawn.delete(this.withdrawn.values().next().value!);
  }

  private ended(close: WireClose): void {
    this.stateNow = 'closed';
    const unanswered = [...this.ours.values()];
    this.ours.clear();
    this.oursBytes = 0;
    this.theirs.clear();
    this.emit('closed', { ...close, unanswered });
  }
}
