import { WireError } from '../errors.js';

/**
 * µTP (BEP 29) packets: a 20-byte header, optional extensions, then payload.
 *   0       4       8               16              24              32
 *   +-------+-------+---------------+---------------+---------------+
 *   | type  | ver=1 | extension     | connection_id                 |
 *   | timestamp_microseconds                                        |
 *   | timestamp_difference_microseconds                             |
 *   | wnd_size                                                      |
 *   | seq_nr                        | ack_nr                        |
 *   +---------------------------------------------------------------+
 * Each extension is <next type u8><length u8><bytes>; type 1 is the selective
 * ACK, a bitmask whose bit i, least significant bit of each byte first,
 * acknowledges ack_nr + 2 + i. BEP 29 asks for a multiple of 4 bytes, and we
 * send that; libtorrent sends (span + 7) / 8 bytes, so any length is taken.
 */
export const UTP_TYPE = {
  data: 0,
  fin: 1,
  state: 2,
  reset: 3,
  syn: 4,
} as const;
export type UtpType = keyof typeof UTP_TYPE;
const TYPE_NAMES: readonly UtpType[] = ['data', 'fin', 'state', 'reset', 'syn'];

export const UTP_VERSION = 1;
export const UTP_HEADER_LENGTH = 20;
export const UTP_EXTENSION_SACK = 1;
/** Sequence and ack numbers are 16 bits and wrap. */
export const UTP_SEQ_MASK = 0xffff;
/**
 * Longest selective-ACK bitmask we send: 32 bytes covers 256 packets. A
 * longer one received is read in full (its length byte bounds it at 255).
 */
export const MAX_SACK_BYTES = 32;

export interface UtpPacket {
  readonly type: UtpType;
  readonly connectionId: number;
  /** Sender's clock in microseconds, modulo 2^32. */
  readonly timestampUs: number;
  /** Sender's latest one-way delay sample of our packets, microseconds modulo 2^32. */
  readonly timestampDiffUs: number;
  /** Bytes the sender can still receive. */
  readonly windowSize: number;
  readonly seq: number;
  readonly ack: number;
  /** Selective ACK bitmask, when present. */
  readonly sack?: Uint8Array | undefined;
  readonly payload: Uint8Array;
}

/** Why a datagram is not a µTP packet. A bad packet is dropped, never answered. */
export class UtpPacketError extends WireError {
  constructor(message: string) {
    super('ERR_UTP_PACKET', message);
  }
}

/** Bytes `encodeUtpPacket` makes of `packet`: what it costs on the wire, UDP and IP headers aside. */
export function utpWireBytes(packet: UtpPacket): number {
  return UTP_HEADER_LENGTH + (packet.sack ? 2 + packet.sack.length : 0) + packet.payload.length;
}

/** Encodes one packet in a single allocation. */
export function encodeUtpPacket(packet: UtpPacket): Buffer {
  const sack = packet.sack;
  if (sack && (sack.length === 0 || sack.length % 4 !== 0 || sack.length > MAX_SACK_BYTES)) {
    throw new RangeError(`selective ACK of ${sack.length} bytes`);
  }
  const out = Buffer.allocUnsafe(utpWireBytes(packet));
  out[0] = (UTP_TYPE[packet.type] << 4) | UTP_VERSION;
  out[1] = sack ? UTP_EXTENSION_SACK : 0;
  out.writeUInt16BE(packet.connectionId & 0xffff, 2);
  out.writeUInt32BE(packet.timestampUs >>> 0, 4);
  out.writeUInt32BE(packet.timestampDiffUs >>> 0, 8);
  out.writeUInt32BE(Math.max(0, Math.min(packet.windowSize, 0xffffffff)) >>> 0, 12);
  out.writeUInt16BE(packet.seq & UTP_SEQ_MASK, 16);
  out.writeUInt16BE(packet.ack & UTP_SEQ_MASK, 18);
  let at = UTP_HEADER_LENGTH;
  if (sack) {
    out[at] = 0; // no further extension
    out[at + 1] = sack.length;
    out.set(sack, at + 2);
    at += 2 + sack.length;
  }
  out.set(packet.payload, at);
  return out;
}

/**
 * Decodes one datagram. Throws UtpPacketError on anything malformed: too
 * short, another version, an unknown type, an extension running past the
 * end. Unknown extensions are skipped; the payload is a view, not a copy.
 */
export function decodeUtpPacket(datagram: Uint8Array): UtpPacket {
  if (datagram.length < UTP_HEADER_LENGTH) {
    throw new UtpPacketError(`datagram of ${datagram.length} bytes is shorter than a µTP header`);
  }
  const view = Buffer.from(datagram.buffer, datagram.byteOffset, datagram.length);
  const version = view[0]! & 0x0f;
  if (version !== UTP_VERSION) throw new UtpPacketError(`µTP version ${version}`);
  const type = TYPE_NAMES[view[0]! >> 4];
  if (type === undefined) throw new UtpPacketError(`µTP packet type ${view[0]! >> 4}`);
  let extension = view[1]!;
  let at = UTP_HEADER_LENGTH;
  let sack: Uint8Array | undefined;
  let hops = 0;
  while (extension !== 0) {
    if (++hops > 8) throw new UtpPacketError('more than 8 µTP extensions');
    if (at + 2 > view.length) throw new UtpPacketError('µTP extension header past the end');
    const next = view[at]!;
    const length = view[at + 1]!;
    if (at + 2 + length > view.length) throw new UtpPacketError('µTP extension past the end');
    // Any length: libtorrent sizes the bitmask to the packets it holds (1, 3,
    // 5... bytes). Refusing those dropped every ACK it sent while it held a
    // hole, and the connection died of timeouts. An empty one acknowledges nothing.
    if (extension === UTP_EXTENSION_SACK && length > 0) {
      sack = view.subarray(at + 2, at + 2 + length);
    }
    extension = next;
    at += 2 + length;
  }
  return {
    type,
    connectionId: view.readUInt16BE(2),
    timestampUs: view.readUInt32BE(4),
    timestampDiffUs: view.readUInt32BE(8),
    windowSize: view.readUInt32BE(12),
    seq: view.readUInt16BE(16),
    ack: view.readUInt16BE(18),
    sack,
    payload: view.subarray(at),
  };
}

/** a - b in sequence space: negative when a is before b (16-bit wrap-around). */
export function seqDiff(a: number, b: number): number {
  const d = (a - b) & UTP_SEQ_MASK;
  return d >= 0x8000 ? d - 0x10000 : d;
}

export function seqAdd(a: number, n: number): number {
  return (a + n) & UTP_SEQ_MASK;
}

/** Builds a selective-ACK bitmask for the seqs after `ack + 1` that `has` holds, or undefined if none. */
export function buildSack(
  ack: number,
  has: (seq: number) => boolean,
  maxBytes = MAX_SACK_BYTES,
): Uint8Array | undefined {
  let last = -1;
  const bits = new Uint8Array(maxBytes);
  for (let i = 0; i < maxBytes * 8; i++) {
    if (has(seqAdd(ack, 2 + i))) {
      bits[i >> 3]! |= 1 << (i & 7);
      last = i;
    }
  }
  if (last < 0) return undefined;
  const length = (Math.floor(last / 32) + 1) * 4;
  return bits.subarray(0, length);
}

/** The seqs a selective-ACK bitmask acknowledges. */
export function sackedSeqs(ack: number, sack: Uint8Array): number[] {
  const out: number[] = [];
  for (let i = 0; i < sack.length * 8; i++) {
    if (sack[i >> 3]! & (1 << (i & 7))) out.push(seqAdd(ack, 2 + i));
  }
  return out;
}
