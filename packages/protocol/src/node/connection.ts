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
import { FAST_MESSAGE_TYPES, supportsFast } from '../wire/fast.js';
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

/**
 * BEP 6: how long after a choke a request it left standing may go
 * unanswered (neither piece nor reject) before we void it ourselves
 * (`expireChoked`). Stock clients reject at the choke, in the same write;
 * a remote that never does must not keep our requests for good.
 */
export const DEFAULT_CHOKED_REQUEST_GRACE_MS = 10_000;
/** BEP 6: `allowed fast` pieces kept per remote; more are ignored (libtorrent offers 5, others 10). */
export const MAX_ALLOWED_FAST = 64;
/** BEP 6: `suggest`s kept per remote, the latest; older ones fall out. */
export const MAX_SUGGESTED = 32;

/** How our list of pieces went out: BEP 3's bitfield, or BEP 6's have all / have none. */
export type IdListForm = 'bitfield' | 'have-all' | 'have-none';

/** Why we answered a request with BEP 6's `reject request`. */
export type RejectReason = 'choked' | 'cancelled' | 'queue-full' | 'refused';

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
  /**
   * The remote's first-message bitfield, already stored in `remoteHas`;
   * `form` says whether it came as BEP 6's have all / have none.
   */
  bitfield: (remoteHas: Bitfield, form: IdListForm) => void;
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
  /**
   * The remote choked us. BEP 3: every request we had in flight is void,
   * listed in `dropped`. With BEP 6 nothing is void by the choke itself:
   * `dropped` is empty and each request ends with its piece or a `rejected`
   * (or, if the remote says nothing, `expireChoked`).
   */
  choke: (dropped: readonly OutgoingRequest[]) => void;
  /** BEP 6: the remote refused one of our requests; it is no longer in `outgoing`. */
  rejected: (request: OutgoingRequest) => void;
  /** BEP 6: we refused `count` of the remote's requests with `reject request`. */
  rejectsSent: (count: number, reason: RejectReason) => void;
  /** BEP 6: the remote lets us ask for piece `index` while it chokes us (kept in `allowedFast`). */
  allowedFast: (index: number) => void;
  /** BEP 6: the remote suggests piece `index` (kept in `suggested`). */
  suggest: (index: number) => void;
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
  /**
   * BEP 6: our handshake offered the fast extension (openConnection sets
   * both). Where the remote's offers it too, its messages flow both ways;
   * otherwise one from the remote is a protocol error.
   */
  readonly fast?: boolean;
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
  private readonly fastOffered: boolean;
  private fastOn = false;
  private readonly allowedFastSet = new Set<number>();
  private readonly suggestedSet = new Set<number>();
  /**
   * BEP 6: our requests a choke left standing, with when: each must end
   * with a piece or a reject; `expireChoked` voids the ones that do not.
   */
  private readonly awaitingReject = new Map<string, number>();
  /** Requests refused over the queue bound, over the connection's life: past a queue's worth it is a flood. */
  private overQueue = 0;

  constructor(options: ConnectionOptions<W>) {
    super();
    this.wire = options.wire;
    this.clock = options.clock ?? MONOTONIC_CLOCK;
    this.localHas = options.localHas;
    this.maxRemoteRequests = options.maxRemoteRequests ?? DEFAULT_MAX_REMOTE_REQUESTS;
    this.fastOffered = options.fast === true;
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
      this.fastOn = this.fastOffered && supportsFast(handshake.reserved);
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

  /** BEP 6 is on: both handshakes offered the fast extension. */
  get fastActive(): boolean {
    return this.fastOn;
  }
  /** BEP 6: pieces the remote lets us ask for while it chokes us (at most MAX_ALLOWED_FAST). */
  get allowedFast(): ReadonlySet<number> {
    return this.allowedFastSet;
  }
  /** BEP 6: pieces the remote suggested, oldest first (the latest MAX_SUGGESTED). */
  get suggested(): ReadonlySet<number> {
    return this.suggestedSet;
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

  /**
   * Sends what we hold; BEP 3 wants it first, so call it right after the
   * remote's handshake. With BEP 6, all or nothing goes as `have all` /
   * `have none`, as stock clients send it. Returns the form it took.
   */
  sendBitfield(held: Bitfield): IdListForm {
    if (this.fastOn && held.isComplete()) {
      this.wire.send({ type: 'haveAll' });
      return 'have-all';
    }
    if (this.fastOn && held.count() === 0) {
      this.wire.send({ type: 'haveNone' });
      return 'have-none';
    }
    this.wire.send({ type: 'bitfield', bytes: held.toBytes() });
    return 'bitfield';
  }

  sendHave(index: number): void {
    this.wire.send({ type: 'have', index });
  }

  /**
   * Chokes the remote; returns its requests that this voids (BEP 3), which
   * nobody will serve now. With BEP 6 each of them is rejected, right after
   * the choke (we give no allowed-fast pieces, so none stays).
   */
  choke(): BlockRef[] {
    if (this.amChokingNow || this.stateNow === 'closed') return [];
    this.amChokingNow = true;
    const dropped = [...this.theirs.values()];
    this.theirs.clear();
    this.batch(() => {
      this.wire.send({ type: 'choke' });
      for (const request of dropped) this.sendReject(request);
    });
    if (this.fastOn && dropped.length > 0) this.emit('rejectsSent', dropped.length, 'choked');
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
    if (this.stateNow === 'closed') return false;
    // BEP 6: an allowed-fast piece may be asked for while choked.
    if (this.peerChokingNow && !this.allowedFastSet.has(block.index)) return false;
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
    this.forget(request);
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

  /**
   * Refuses one of their queued requests: it leaves `incoming`, and with
   * BEP 6 the remote is told with a reject (without it, BEP 3 has only
   * silence). False when it was not pending.
   */
  reject(request: BlockRef): boolean {
    const key = keyOf(request);
    const pending = this.theirs.get(key);
    if (!pending || pending.length !== request.length) return false;
    this.theirs.delete(key);
    this.sendReject(pending);
    if (this.fastOn) this.emit('rejectsSent', 1, 'refused');
    return true;
  }

  /**
   * BEP 6: voids every request a choke left standing at least `graceMs` ago
   * that got neither its piece nor a reject, and returns them for another
   * link (the scheduler's tick calls it). Without it a remote that chokes
   * and never rejects would keep those blocks asked of it until it closed.
   */
  expireChoked(graceMs = DEFAULT_CHOKED_REQUEST_GRACE_MS): OutgoingRequest[] {
    if (this.awaitingReject.size === 0) return [];
    const now = this.clock.now();
    const out: OutgoingRequest[] = [];
    for (const [key, atMs] of this.awaitingReject) {
      if (now - atMs < graceMs) continue;
      const request = this.ours.get(key);
      this.awaitingReject.delete(key);
      if (!request) continue;
      this.forget(request);
      this.noteWithdrawn(request);
      out.push(request);
    }
    return out;
  }

  close(reason: string, error?: SwarmdropError | Error): void {
    this.wire.close(reason, error);
  }

  /** Takes one of our requests out of `outgoing`, whatever ended it. */
  private forget(request: BlockRef): void {
    const key = keyOf(request);
    const pending = this.ours.get(key);
    if (!pending) return;
    this.ours.delete(key);
    this.oursBytes -= pending.length;
    this.awaitingReject.delete(key);
  }

  /** BEP 6's answer to a request we will not serve; nothing without it (BEP 3's silence). */
  private sendReject(request: BlockRef): void {
    if (!this.fastOn || this.stateNow === 'closed') return;
    this.wire.send({
      type: 'reject',
      index: request.index,
      begin: request.begin,
      length: request.length,
    });
  }

  private receiveFast(message: Message, first: boolean): void {
    switch (message.type) {
      case 'haveAll':
      case 'haveNone': {
        const remote = new Bitfield(this.remoteHas.size);
        if (message.type === 'haveAll') for (let i = 0; i < remote.size; i++) remote.set(i);
        this.receiveIdList(remote, first, message.type === 'haveAll' ? 'have-all' : 'have-none');
        return;
      }
      case 'reject':
        this.receiveReject(message);
        return;
      case 'allowedFast':
        // Bounded; a remote may also offer a piece we already hold (BEP 6), which is harmless.
        if (this.allowedFastSet.has(message.index)) return;
        if (this.allowedFastSet.size >= MAX_ALLOWED_FAST) return;
        this.allowedFastSet.add(message.index);
        this.emit('allowedFast', message.index);
        return;
      case 'suggest':
        this.suggestedSet.delete(message.index);
        this.suggestedSet.add(message.index);
        if (this.suggestedSet.size > MAX_SUGGESTED)
          this.suggestedSet.delete(this.suggestedSet.values().next().value!);
        this.emit('suggest', message.index);
        return;
    }
  }

  private receiveReject(reject: BlockRef): void {
    const key = keyOf(reject);
    const request = this.ours.get(key);
    if (request && request.length === reject.length) {
      this.forget(request);
      this.emit('rejected', request);
      return;
    }
    // One we withdrew (a cancel, an expiry) crossed the reject on the wire: nothing to do.
    if (this.withdrawn.has(`${key}:${reject.length}`)) return;
    // BEP 6: a reject for a request never sent is a reason to close.
    this.close(
      `ERR_FAST: rejected a request we never sent (chunk ${reject.index} at ${reject.begin}+${reject.length})`,
      new WireError('ERR_FAST', 'reject for a request never sent'),
    );
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
    if (FAST_MESSAGE_TYPES.has(message.type)) {
      // BEP 6: its messages where either handshake did not offer it are a protocol error.
      if (!this.fastOn) {
        this.close(
          `ERR_FAST: ${message.type} without the fast extension on both sides`,
          new WireError('ERR_FAST', `${message.type} without the fast extension`),
        );
        return;
      }
      this.receiveFast(message, first);
      return;
    }
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
        this.receiveIdList(remote, first, 'bitfield');
        return;
      }
      case 'have':
        if (this.remoteHas.set(message.index)) this.emit('have', message.index);
        return;
      case 'choke': {
        if (this.peerChokingNow) return;
        this.peerChokingNow = true;
        if (this.fastOn) {
          // BEP 6: the remote rejects what it will not serve; each request stands until then.
          const now = this.clock.now();
          for (const [key, request] of this.ours) {
            if (!this.allowedFastSet.has(request.index) && !this.awaitingReject.has(key))
              this.awaitingReject.set(key, now);
          }
          this.emit('choke', []);
          return;
        }
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
        // BEP 6: a cancelled request still gets its answer, the piece or a reject.
        this.sendReject(pending);
        this.emit('cancel', pending);
        if (this.fastOn) this.emit('rejectsSent', 1, 'cancelled');
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

  /** A bitfield, have all or have none: the first message, or a later one in place of `have`s. */
  private receiveIdList(remote: Bitfield, first: boolean, form: IdListForm): void {
    if (!first) {
      this.laterBitfield(remote);
      return;
    }
    for (const index of remote.heldIds()) this.remoteHas.set(index);
    this.emit('bitfield', this.remoteHas, form);
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
    // It crossed our choke on the wire: BEP 3 says choked requests are dropped, not an offence;
    // BEP 6 has them rejected.
    if (this.amChokingNow) {
      if (this.fastOn) {
        this.sendReject(request);
        this.emit('rejectsSent', 1, 'choked');
      }
      return;
    }
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
      // BEP 6: refused with a reject, not a cut; a remote that keeps on past another
      // queue's worth of rejects is flooding all the same.
      if (this.fastOn && ++this.overQueue <= this.maxRemoteRequests) {
        this.sendReject(request);
        this.emit('rejectsSent', 1, 'queue-full');
        return;
      }
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
    if (request) this.forget(request);
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
    this.awaitingReject.clear();
    this.theirs.clear();
    this.emit('closed', { ...close, unanswered });
  }
}
