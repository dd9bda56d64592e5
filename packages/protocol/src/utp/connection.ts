import { Ledbat } from './ledbat.js';
import {
  buildSack,
  sackedSeqs,
  seqAdd,
  seqDiff,
  type UtpPacket,
  type UtpType,
  utpWireBytes,
} from './packet.js';
import { PROCESS_REORDER_BUDGET, type ReorderBudget } from './reorder-budget.js';

/** Payload bytes per packet: with headers, under a 1500-byte MTU on IPv4 and IPv6. */
export const UTP_PACKET_BYTES = 1_300;
/** Receive window we advertise when the reader keeps up. */
export const UTP_RECEIVE_WINDOW_BYTES = 1024 * 1024;
export const DEFAULT_UTP_CONNECT_TIMEOUT_MS = 6_000;
/** Retransmission timeout bounds (BEP 29: at least 500 ms; the first guess 1000 ms). */
export const UTP_MIN_RTO_MS = 500;
export const UTP_INITIAL_RTO_MS = 1_000;
export const UTP_MAX_RTO_MS = 16_000;
/** Consecutive retransmission timeouts after which the connection is dead. */
export const UTP_MAX_TIMEOUTS = 7;
export const DEFAULT_UTP_KEEPALIVE_MS = 29_000;
export const DEFAULT_UTP_IDLE_TIMEOUT_MS = 90_000;
/** Out-of-order packets held ahead of the next expected one. */
export const UTP_MAX_REORDER = 256;
/**
 * Payload bytes one connection holds out of order. UTP_MAX_REORDER packets
 * of a normal size (1,300 to 1,500 bytes) stay under it, so only a remote
 * sending outsize packets (up to 64 KiB fit in a datagram) ever meets it.
 */
export const UTP_REORDER_MAX_BYTES = 512 * 1024;
/**
 * In-order payload taken past the window we advertised: a sender probing a
 * closed window sends one packet, and a datagram carries at most 64 KiB. A
 * sender that ignores the window meets this, not our memory's end.
 */
export const UTP_RECEIVE_OVERRUN_BYTES = 64 * 1024;
/**
 * Until a remote that opened a connection to us has echoed our random
 * sequence number, it may be a forged source address: we send it at most
 * this many times the bytes it sent us (QUIC's anti-amplification limit,
 * RFC 9000 section 8.1), counted on the wire.
 */
export const UTP_AMPLIFICATION_FACTOR = 3;
/**
 * Packets with the wrong ack an unproven connection takes before it is
 * dropped. A real remote's packets all carry the one right ack; a blind
 * sender guessing it has this many tries per SYN out of 65,536.
 */
export const UTP_MAX_UNPROVEN_BAD_ACKS = 4;
/**
 * Most packets we send past the remote's cumulative ack. libtorrent drops,
 * without acknowledging it, a packet more than 953 ahead (its 1 MiB buffer
 * over 1100 bytes a packet), libutp one more than 1024. The byte windows
 * keep full packets under it; many small ones could pass it.
 */
export const UTP_MAX_PACKETS_AHEAD = 900;
/** Selective ACKs past the oldest unacked packet that count it as lost (BEP 29: 3). */
export const UTP_DUPLICATE_ACKS = 3;

/**
 * `syn-sent`: we sent a SYN. `syn-recv`: we answered a SYN, and the remote
 * has not yet shown that it receives our packets (its ack echoes our random
 * sequence number): it takes no data and gets at most
 * UTP_AMPLIFICATION_FACTOR times what it sent.
 */
export type UtpState = 'syn-sent' | 'syn-recv' | 'connected' | 'closed';

export interface UtpConnectionOptions {
  /** Sends one packet to the remote. */
  readonly send: (packet: UtpPacket) => void;
  /** Our clock in milliseconds (fractions allowed). */
  readonly now: () => number;
  /** Bytes the reader can still take (the window we advertise). */
  readonly receiveWindow?: () => number;
  /** Connected: our SYN was answered, or (accepting) the remote proved it receives our packets. */
  readonly onConnect?: () => void;
  readonly onData: (bytes: Uint8Array) => void;
  /** The remote finished sending (its FIN and everything before it arrived). */
  readonly onEnd: () => void;
  /** The connection is over: cleanly (no error) or not. */
  readonly onClose: (error?: Error) => void;
  /** Everything queued by write() has been sent at least once: write more. */
  readonly onDrain?: () => void;
  readonly packetBytes?: number;
  readonly connectTimeoutMs?: number;
  readonly keepAliveMs?: number;
  readonly idleTimeoutMs?: number;
  /** In [0, 1): the accepting side's initial sequence number. Default: crypto.getRandomValues. */
  readonly random?: () => number;
  /** Shared bound on bytes held out of order (default PROCESS_REORDER_BUDGET). */
  readonly reorderBudget?: ReorderBudget;
  /** This connection's bound on bytes held out of order (default UTP_REORDER_MAX_BYTES). */
  readonly reorderMaxBytes?: number;
  /**
   * Runs `flush` soon (after the datagrams already received): ACKs for a
   * burst of packets then go out as one STATE. Without it every packet is
   * acknowledged at once.
   */
  readonly deferAck?: (flush: () => void) => void;
}

interface Outgoing {
  readonly seq: number;
  readonly type: UtpType;
  readonly payload: Uint8Array;
  sentAtMs: number;
  transmissions: number;
  acked: boolean;
  /** Marked lost: to be sent again as the window allows. */
  resend: boolean;
}

/**
 * One µTP (BEP 29) connection, without sockets or timers: packets in through
 * `receive()`, time through `tick()` (the caller runs it every few tens of
 * ms), packets out through `send`. Reliable, ordered bytes both ways: sequence
 * numbers, cumulative and selective ACKs, retransmission on timeout and on
 * three selective ACKs past a hole, keep-alives, LEDBAT for the window, FIN
 * and RESET to end.
 */
export class UtpConnection {
  state: UtpState;
  /** Our receive id: the connection_id the remote puts in its packets. */
  readonly recvId: number;
  readonly sendId: number;
  readonly ledbat: Ledbat;
  /** Counters for tests and stats. */
  readonly stats = {
    sent: 0,
    resent: 0,
    received: 0,
    duplicates: 0,
    timeouts: 0,
    fastResends: 0,
    /** Bytes on the wire (µTP header and payload) both ways. */
    wireBytesSent: 0,
    wireBytesReceived: 0,
    /** Packets ignored for an ack of something we never sent. */
    badAcks: 0,
    /** Packets not sent: an unproven remote's budget was spent. */
    amplificationLimited: 0,
    /** Packets dropped unacknowledged: past the reorder bounds, or past the window. */
    reorderDropped: 0,
    overrunDropped: 0,
  };

  private readonly options: UtpConnectionOptions;
  private readonly packetBytes: number;
  private seqNr: number;
  /** Last in-order seq received from the remote. */
  private ackNr = 0;
  private readonly outQueue: Outgoing[] = [];
  private inFlight = 0;
  /**
   * Bytes after the remote's cumulative ack, selectively acked or not. The
   * remote window bounds these: libtorrent holds out-of-order packets in its
   * receive buffer, and once they fill it, it drops even the packet that
   * fills the hole, for ever (its "not honoring our advertised window").
   */
  private outstanding = 0;
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private readonly reorder = new Map<number, { type: UtpType; payload: Uint8Array }>();
  private reorderBytes = 0;
  private readonly reorderBudget: ReorderBudget;
  private readonly reorderMaxBytes: number;
  private unprovenBadAcks = 0;
  private wasProven = false;
  private lastAdvertisedWindow = 0;
  private remoteWindow = UTP_PACKET_BYTES;
  private rttMs: number | undefined;
  private rttVarMs = 0;
  private rtoMs = UTP_INITIAL_RTO_MS;
  private timeouts = 0;
  private rtoDeadline: number | undefined;
  private lastReceivedMs: number;
  private lastSentMs: number;
  private replyMicro = 0;
  private duplicateAcks = 0;
  private lastAck: number | undefined;
  private finQueued = false;
  private finSeq: number | undefined;
  private remoteFinSeq: number | undefined;
  private remoteEnded = false;
  private readonly startedMs: number;
  private ackScheduled = false;
  private lastLossMs = Number.NEGATIVE_INFINITY;
  /** Packets sent since the deferred ACK was scheduled: any of them carried the ack. */
  private sentSinceAckScheduled = 0;

  private constructor(
    options: UtpConnectionOptions,
    state: UtpState,
    recvId: number,
    sendId: number,
    seqNr: number,
  ) {
    this.options = options;
    this.state = state;
    this.recvId = recvId & 0xffff;
    this.sendId = sendId & 0xffff;
    this.seqNr = seqNr & 0xffff;
    this.packetBytes = options.packetBytes ?? UTP_PACKET_BYTES;
    this.reorderBudget = options.reorderBudget ?? PROCESS_REORDER_BUDGET;
    this.reorderMaxBytes = options.reorderMaxBytes ?? UTP_REORDER_MAX_BYTES;
    this.ledbat = new Ledbat({ packetBytes: this.packetBytes });
    const now = options.now();
    this.lastReceivedMs = now;
    this.lastSentMs = now;
    this.startedMs = now;
  }

  /** Opens a connection: sends SYN with a random receive id. */
  static connect(options: UtpConnectionOptions, recvId?: number): UtpConnection {
    const random = options.random ?? Math.random;
    const id = recvId ?? Math.floor(random() * 0xfffe);
    const conn = new UtpConnection(options, 'syn-sent', id, id + 1, 1);
    conn.queuePacket('syn', new Uint8Array(0));
    conn.flush();
    return conn;
  }

  /**
   * Answers a SYN (`synWireBytes` long on the wire): our receive id is its
   * id + 1, we send on its id. The connection stays `syn-recv` until the
   * remote's ack echoes our random sequence number.
   */
  static accept(
    options: UtpConnectionOptions,
    syn: UtpPacket,
    synWireBytes = utpWireBytes(syn),
  ): UtpConnection {
    const random = options.random ?? secureRandom;
    const conn = new UtpConnection(
      options,
      'syn-recv',
      syn.connectionId + 1,
      syn.connectionId,
      Math.floor(random() * 0x10000),
    );
    conn.stats.wireBytesReceived += synWireBytes;
    conn.ackNr = syn.seq;
    conn.remoteWindow = syn.windowSize;
    conn.noteTimestamp(syn);
    conn.sendState();
    return conn;
  }

  /** True once the remote has shown it receives our packets (always, for a connection we opened). */
  get proven(): boolean {
    return this.state === 'connected' || (this.state === 'closed' && this.wasProven);
  }

  /** Payload bytes held out of order now. */
  get reorderHeldBytes(): number {
    return this.reorderBytes;
  }

  get isClosed(): boolean {
    return this.state === 'closed';
  }

  /** Bytes written but not yet acknowledged. */
  get bufferedBytes(): number {
    return this.pendingBytes + this.inFlight;
  }

  /** Queues bytes to send; false once more than a window's worth waits (wait for onDrain). */
  write(bytes: Uint8Array): boolean {
    if (this.state === 'closed' || this.finQueued) return false;
    if (bytes.length > 0) {
      this.pending.push(bytes);
      this.pendingBytes += bytes.length;
    }
    this.flush();
    return this.pendingBytes < Math.max(64 * 1024, this.ledbat.window);
  }

  /** Sends FIN after everything written. */
  end(): void {
    if (this.state === 'closed' || this.finQueued) return;
    this.finQueued = true;
    this.flush();
  }

  /** Ends at once; tells the remote with RESET unless it is gone already. */
  destroy(error?: Error, sendReset = true): void {
    if (this.state === 'closed') return;
    if (sendReset) this.sendControl('reset');
    this.close(error);
  }

  /**
   * One packet from the remote (already matched to this connection), which
   * took `wireBytes` on the wire (the datagram's length; by default what
   * encoding it would take).
   */
  receive(packet: UtpPacket, wireBytes = utpWireBytes(packet)): void {
    if (this.state === 'closed') return;
    this.stats.wireBytesReceived += wireBytes;
    if (packet.type === 'syn') {
      // Our STATE got lost and the remote asks again.
      this.stats.received++;
      if (packet.seq === this.ackNr) this.sendState();
      return;
    }
    if (!this.acksWhatWeSent(packet.ack)) {
      // Not from the remote (it never saw that seq): forged, or a blind guess.
      // It moves nothing, not even the idle clock.
      this.stats.badAcks++;
      if (this.state === 'syn-recv' && ++this.unprovenBadAcks >= UTP_MAX_UNPROVEN_BAD_ACKS) {
        this.close(new Error('µTP: the remote never echoed our sequence number'));
      }
      return;
    }
    const now = this.options.now();
    this.lastReceivedMs = now;
    this.stats.received++;
    this.noteTimestamp(packet);
    if (packet.type === 'reset') {
      this.close(new Error('reset by remote'));
      return;
    }
    if (this.state === 'syn-sent') {
      if (packet.type !== 'state') return;
      // The remote's first data packet will carry this seq: it is the next we expect.
      this.ackNr = seqAdd(packet.seq, -1);
      this.state = 'connected';
      // Our ack proves to the remote that we receive its packets, which it
      // waits for before it takes data or sends any: unless data of ours
      // carries the ack first, a STATE does.
      this.ackSoon();
      this.options.onConnect?.();
      if (this.isClosed) return;
    } else if (this.state === 'syn-recv') {
      this.state = 'connected';
      this.options.onConnect?.();
      if (this.isClosed) return;
    }
    this.remoteWindow = packet.windowSize;
    this.processAck(packet, now);
    if (this.isClosed) return;
    if (packet.type === 'data' || packet.type === 'fin') this.receiveData(packet);
    this.flush();
    this.maybeFinished();
  }

  /** Runs the clocks: retransmission timeout, keep-alive, idle and connect deadlines. */
  tick(): void {
    if (this.state === 'closed') return;
    const now = this.options.now();
    if (
      this.state !== 'connected' &&
      now - this.startedMs >= (this.options.connectTimeoutMs ?? DEFAULT_UTP_CONNECT_TIMEOUT_MS)
    ) {
      this.close(
        new Error(
          this.state === 'syn-sent'
            ? 'µTP connect timed out'
            : 'µTP: the remote never echoed our sequence number',
        ),
      );
      return;
    }
    if (now - this.lastReceivedMs >= (this.options.idleTimeoutMs ?? DEFAULT_UTP_IDLE_TIMEOUT_MS)) {
      this.destroy(new Error('µTP connection idle'), true);
      return;
    }
    if (this.rtoDeadline !== undefined && now >= this.rtoDeadline) {
      this.onTimeout(now);
      if (this.isClosed) return;
    }
    if (
      this.state === 'connected' &&
      now - this.lastSentMs >= (this.options.keepAliveMs ?? DEFAULT_UTP_KEEPALIVE_MS)
    ) {
      this.sendState();
    }
  }

  /**
   * The reader took bytes: if our window has opened by a packet or more
   * since we last told the remote, tell it. Otherwise the ACKs that go out
   * anyway carry the window, and a fresh stream's first read sent a second
   * STATE after the one answering the SYN.
   */
  windowOpened(): void {
    if (this.state !== 'connected') return;
    if (this.advertisedWindow() - this.lastAdvertisedWindow >= this.packetBytes) this.sendState();
  }

  /**
   * Whether `ack` names a packet we sent (or the one before our first). A
   * connection not yet connected has sent one thing the remote can ack: our
   * SYN, or (accepting) the STATE carrying our initial sequence number.
   */
  private acksWhatWeSent(ack: number): boolean {
    const lastSent = seqAdd(this.seqNr, -1);
    if (this.state !== 'connected') return ack === lastSent;
    return seqDiff(ack, lastSent) <= 0;
  }

  private onTimeout(now: number): void {
    const unacked = this.outQueue.filter((p) => !p.acked);
    if (unacked.length === 0) {
      this.rtoDeadline = undefined;
      return;
    }
    this.stats.timeouts++;
    if (++this.timeouts > UTP_MAX_TIMEOUTS) {
      this.destroy(new Error(`µTP: no acknowledgement after ${UTP_MAX_TIMEOUTS} timeouts`), true);
      return;
    }
    this.ledbat.onTimeout();
    this.rtoMs = Math.min(UTP_MAX_RTO_MS, this.rtoMs * 2);
    for (const p of unacked) {
      if (!p.resend) {
        p.resend = true;
        this.inFlight -= p.payload.length;
      }
    }
    this.rtoDeadline = now + this.rtoMs;
    // A zero window must not stall the resend: the oldest always goes.
    this.transmit(unacked[0]!, now);
    this.flush();
  }

  private processAck(packet: UtpPacket, now: number): void {
    const ack = packet.ack;
    let ackedBytes = 0;
    let rttSample: number | undefined;
    const mark = (p: Outgoing) => {
      if (p.acked) return;
      p.acked = true;
      if (!p.resend) this.inFlight -= p.payload.length;
      ackedBytes += p.payload.length;
      if (p.transmissions === 1) rttSample = now - p.sentAtMs;
    };
    for (const p of this.outQueue) {
      if (seqDiff(p.seq, ack) <= 0) mark(p);
      else break;
    }
    let sackedPast = 0;
    if (packet.sack) {
      const sacked = new Set(sackedSeqs(ack, packet.sack));
      for (const p of this.outQueue) {
        if (sacked.has(p.seq)) {
          mark(p);
          sackedPast++;
        }
      }
    }
    while (this.outQueue.length > 0 && this.outQueue[0]!.acked) {
      this.outstanding -= this.outQueue.shift()!.payload.length;
    }
    if (ackedBytes > 0 || (this.outQueue.length === 0 && rttSample !== undefined)) {
      this.timeouts = 0;
      if (rttSample !== undefined) this.updateRtt(rttSample);
      this.ledbat.onAck(ackedBytes, packet.timestampDiffUs || undefined, now);
      this.rtoDeadline = this.outQueue.length > 0 ? now + this.rtoMs : undefined;
    }
    // Loss: a packet with three or more packets after it selectively acked is
    // gone (BEP 29); so is the oldest one when the same cumulative ack comes
    // three times. Each lost packet is resent at most once per round trip, and
    // the window halves at most once per round trip, so a burst lost at once
    // (a receiver's full socket buffer) is repaired in one round trip, not one
    // retransmission timeout per packet.
    const oldest = this.outQueue.find((p) => !p.acked);
    if (ack === this.lastAck && ackedBytes === 0 && oldest && packet.type === 'state') {
      this.duplicateAcks++;
    } else if (ackedBytes > 0) {
      this.duplicateAcks = 0;
    }
    this.lastAck = ack;
    const lost: Outgoing[] = [];
    if (packet.sack && sackedPast >= UTP_DUPLICATE_ACKS) {
      let sackedAfter = 0;
      for (let i = this.outQueue.length - 1; i >= 0; i--) {
        const p = this.outQueue[i]!;
        if (p.acked) sackedAfter++;
        else if (sackedAfter >= UTP_DUPLICATE_ACKS) lost.push(p);
      }
      lost.reverse();
    } else if (oldest && this.duplicateAcks >= UTP_DUPLICATE_ACKS) {
      lost.push(oldest);
    }
    const roundTripMs = this.rttMs ?? this.rtoMs;
    let resent = false;
    for (const p of lost) {
      if (p.resend || now - p.sentAtMs < roundTripMs) continue;
      this.stats.fastResends++;
      this.transmit(p, now);
      resent = true;
    }
    if (resent) {
      this.duplicateAcks = 0;
      if (now - this.lastLossMs >= roundTripMs) {
        this.lastLossMs = now;
        this.ledbat.onLoss();
      }
    }
  }

  private updateRtt(sampleMs: number): void {
    if (this.rttMs === undefined) {
      this.rttMs = sampleMs;
      this.rttVarMs = sampleMs / 2;
    } else {
      const delta = this.rttMs - sampleMs;
      this.rttVarMs += (Math.abs(delta) - this.rttVarMs) / 4;
      this.rttMs += (sampleMs - this.rttMs) / 8;
    }
    this.rtoMs = Math.min(UTP_MAX_RTO_MS, Math.max(UTP_MIN_RTO_MS, this.rttMs + 4 * this.rttVarMs));
  }

  private receiveData(packet: UtpPacket): void {
    const ahead = seqDiff(packet.seq, this.ackNr);
    if (ahead <= 0) {
      // Already have it: the remote missed our ACK.
      this.stats.duplicates++;
      this.ackSoon();
      return;
    }
    if (ahead > UTP_MAX_REORDER) {
      // Far outside the window: drop, the remote resends.
      this.stats.reorderDropped++;
      return;
    }
    if (ahead > 1) {
      if (this.reorder.has(packet.seq)) {
        this.stats.duplicates++;
      } else {
        const bytes = packet.payload.length;
        // Past either bound the packet is dropped unacknowledged: the remote resends it.
        if (this.reorderBytes + bytes > this.reorderMaxBytes || !this.reorderBudget.take(bytes)) {
          this.stats.reorderDropped++;
          return;
        }
        this.reorderBytes += bytes;
        this.reorder.set(packet.seq, { type: packet.type, payload: Buffer.from(packet.payload) });
      }
      this.ackSoon();
      return;
    }
    const window = this.options.receiveWindow?.();
    if (window !== undefined && packet.payload.length > window + UTP_RECEIVE_OVERRUN_BYTES) {
      // The reader is that far behind and the remote ignores our window: drop, unacknowledged.
      this.stats.overrunDropped++;
      return;
    }
    this.accept(packet.type, packet.payload, packet.seq);
    for (;;) {
      const next = seqAdd(this.ackNr, 1);
      const held = this.reorder.get(next);
      if (!held) break;
      this.reorder.delete(next);
      this.reorderBytes -= held.payload.length;
      this.reorderBudget.release(held.payload.length);
      this.accept(held.type, held.payload, next);
    }
    this.ackSoon();
  }

  private clearReorder(): void {
    this.reorder.clear();
    this.reorderBudget.release(this.reorderBytes);
    this.reorderBytes = 0;
  }

  private accept(type: UtpType, payload: Uint8Array, seq: number): void {
    this.ackNr = seq;
    if (type === 'fin') {
      this.remoteFinSeq = seq;
      this.clearReorder();
      if (!this.remoteEnded) {
        this.remoteEnded = true;
        this.options.onEnd();
      }
      return;
    }
    if (this.remoteFinSeq === undefined && payload.length > 0) this.options.onData(payload);
  }

  private maybeFinished(): void {
    if (this.state !== 'connected') return;
    const ourFinAcked = this.finSeq !== undefined && this.outQueue.length === 0;
    if (ourFinAcked && this.remoteEnded) this.close();
  }

  private flush(): void {
    if (this.state === 'closed') return;
    const now = this.options.now();
    // Lost packets first, oldest first: they are within the remote window already.
    for (const p of this.outQueue) {
      if (!p.resend || p.acked) continue;
      if (this.inFlight + p.payload.length > this.ledbat.window && this.inFlight > 0) return;
      this.transmit(p, now);
    }
    if (this.state !== 'connected') return;
    while (this.pendingBytes > 0) {
      const size = Math.min(this.packetBytes, this.pendingBytes);
      if (this.inFlight + size > this.ledbat.window && this.inFlight > 0) return;
      // A closed remote window still lets one packet out when nothing is outstanding (a probe).
      if (this.outstanding + size > this.remoteWindow && this.outstanding > 0) return;
      // outQueue runs from the remote's cumulative ack + 1: the next seq is this far ahead.
      if (this.outQueue.length + 1 > UTP_MAX_PACKETS_AHEAD) return;
      this.queuePacket('data', this.takePending(size));
    }
    if (this.finQueued && this.finSeq === undefined) {
      this.finSeq = this.seqNr;
      this.queuePacket('fin', new Uint8Array(0));
    }
    if (this.pendingBytes === 0) this.options.onDrain?.();
  }

  private takePending(size: number): Uint8Array {
    const out = Buffer.allocUnsafe(size);
    let at = 0;
    while (at < size) {
      const head = this.pending[0]!;
      const n = Math.min(head.length, size - at);
      out.set(head.subarray(0, n), at);
      at += n;
      if (n === head.length) this.pending.shift();
      else this.pending[0] = head.subarray(n);
    }
    this.pendingBytes -= size;
    return out;
  }

  private queuePacket(type: UtpType, payload: Uint8Array): void {
    const p: Outgoing = {
      seq: this.seqNr,
      type,
      payload,
      sentAtMs: 0,
      transmissions: 0,
      acked: false,
      resend: false,
    };
    this.seqNr = seqAdd(this.seqNr, 1);
    this.outQueue.push(p);
    this.outstanding += payload.length;
    this.transmit(p, this.options.now());
  }

  private transmit(p: Outgoing, now: number): void {
    if (p.transmissions > 0) this.stats.resent++;
    if (p.resend || p.transmissions === 0) this.inFlight += p.payload.length;
    p.resend = false;
    p.transmissions++;
    p.sentAtMs = now;
    this.rtoDeadline ??= now + this.rtoMs;
    this.emit(p.type, p.seq, p.payload);
  }

  private ackSoon(): void {
    const defer = this.options.deferAck;
    if (!defer) {
      this.sendState();
      return;
    }
    if (this.ackScheduled) return;
    this.ackScheduled = true;
    this.sentSinceAckScheduled = 0;
    defer(() => {
      this.ackScheduled = false;
      if (this.state !== 'closed' && this.sentSinceAckScheduled === 0) this.sendState();
    });
  }

  private sendState(): void {
    this.emit('state', this.seqNr, new Uint8Array(0));
  }

  private sendControl(type: 'reset'): void {
    this.emit(type, this.seqNr, new Uint8Array(0));
  }

  private advertisedWindow(): number {
    return Math.max(0, this.options.receiveWindow?.() ?? UTP_RECEIVE_WINDOW_BYTES);
  }

  private emit(type: UtpType, seq: number, payload: Uint8Array): void {
    const now = this.options.now();
    const sack =
      this.reorder.size > 0 ? buildSack(this.ackNr, (s) => this.reorder.has(s)) : undefined;
    const packet: UtpPacket = {
      type,
      // The SYN names the id the remote is to answer on; every other packet the remote's id.
      connectionId: type === 'syn' ? this.recvId : this.sendId,
      timestampUs: Math.floor(now * 1000) >>> 0,
      timestampDiffUs: this.replyMicro,
      windowSize: this.advertisedWindow(),
      seq,
      ack: this.ackNr,
      sack,
      payload,
    };
    const bytes = utpWireBytes(packet);
    if (
      this.state === 'syn-recv' &&
      this.stats.wireBytesSent + bytes > UTP_AMPLIFICATION_FACTOR * this.stats.wireBytesReceived
    ) {
      this.stats.amplificationLimited++;
      return;
    }
    this.lastSentMs = now;
    this.lastAdvertisedWindow = packet.windowSize;
    this.stats.sent++;
    this.stats.wireBytesSent += bytes;
    this.sentSinceAckScheduled++;
    this.options.send(packet);
  }

  private noteTimestamp(packet: UtpPacket): void {
    this.replyMicro = (Math.floor(this.options.now() * 1000) - packet.timestampUs) >>> 0;
  }

  private close(error?: Error): void {
    if (this.state === 'closed') return;
    this.wasProven = this.state === 'connected';
    this.state = 'closed';
    this.rtoDeadline = undefined;
    this.clearReorder();
    this.options.onClose(error);
  }
}

/** A uniform number in [0, 1) from the system's CSPRNG: an initial sequence number a remote cannot predict. */
function secureRandom(): number {
  return globalThis.crypto.getRandomValues(new Uint32Array(1))[0]! / 0x1_0000_0000;
}
