import { WireError } from '../errors.js';

/**
 * BEP 9, `ut_metadata`: the info dictionary sent in 16 KiB pieces over a
 * BEP 10 extension. Each message is a bencoded dictionary (`msg_type`,
 * `piece`, and in a data message `total_size`), a data message's piece
 * bytes following the dictionary.
 */

/** Bytes per metadata piece (BEP 9: every piece but the last is exactly this). */
export const METADATA_PIECE_SIZE = 16_384;

/**
 * The largest info dictionary we fetch from peers. The remote names the
 * size; a fetcher holds it all in memory before it can check the SHA-1, so
 * the cap is what one remote can make us allocate. 8 MiB holds 419,000
 * chunk hashes: a 40 GiB file at the default 100 KiB chunk, 6.5 TiB at the
 * largest; a larger torrent still downloads from its `.torrent` (whose own
 * cap is MAX_METAINFO_BYTES). libtorrent's default is about the same order.
 */
export const MAX_METADATA_SIZE = 8 * 1024 * 1024;

export type MetadataMessage =
  | { readonly type: 'request'; readonly piece: number }
  | {
      readonly type: 'data';
      readonly piece: number;
      readonly totalSize: number;
      readonly data: Uint8Array;
    }
  | { readonly type: 'reject'; readonly piece: number };

const MSG_TYPE = { request: 0, data: 1, reject: 2 } as const;

/** Pieces in metadata of `size` bytes. */
export function metadataPieceCount(size: number): number {
  return Math.ceil(size / METADATA_PIECE_SIZE);
}

/** The length of piece `piece` of metadata of `size` bytes. */
export function metadataPieceLength(size: number, piece: number): number {
  return Math.min(METADATA_PIECE_SIZE, size - piece * METADATA_PIECE_SIZE);
}

export function encodeMetadataMessage(message: MetadataMessage): Buffer {
  // Keys in bencode's sorted order; written by hand, as the data follows the dictionary raw.
  let dict = `d8:msg_typei${MSG_TYPE[message.type]}e5:piecei${message.piece}e`;
  if (message.type === 'data') dict += `10:total_sizei${message.totalSize}e`;
  dict += 'e';
  const head = Buffer.from(dict, 'latin1');
  return message.type === 'data' ? Buffer.concat([head, message.data]) : head;
}

/** Keys one ut_metadata dictionary may carry before it counts as garbage. */
const MAX_KEYS = 16;

function fail(message: string): WireError {
  return new WireError('ERR_EXTENDED', `ut_metadata ${message}`);
}

/**
 * The flat dictionary at the start of a ut_metadata payload: integer values
 * by key (string values are skipped, as unknown keys), and where it ends.
 * Nothing nested: BEP 9 has no lists or dictionaries here.
 */
function readDict(bytes: Uint8Array): { values: Map<string, number>; end: number } {
  const n = bytes.length;
  let pos = 0;
  const digits = (what: string, allowMinus: boolean): string => {
    const start = pos;
    if (allowMinus && bytes[pos] === 0x2d) pos++;
    while (pos < n && bytes[pos]! >= 0x30 && bytes[pos]! <= 0x39) pos++;
    if (pos === start || pos - start > 16) throw fail(`${what} is not a number at byte ${start}`);
    return Buffer.from(bytes.subarray(start, pos)).toString('latin1');
  };
  const string = (): Uint8Array => {
    const length = Number(digits('a string length', false));
    if (bytes[pos] !== 0x3a) throw fail(`expected ":" at byte ${pos}`);
    pos++;
    if (length > n - pos) throw fail('string runs past the end');
    pos += length;
    return bytes.subarray(pos - length, pos);
  };
  if (bytes[pos] !== 0x64 /* d */) throw fail('is not a dictionary');
  pos++;
  const values = new Map<string, number>();
  let keys = 0;
  while (pos < n && bytes[pos] !== 0x65 /* e */) {
    if (++keys > MAX_KEYS) throw fail(`has more than ${MAX_KEYS} keys`);
    const key = Buffer.from(string()).toString('latin1');
    if (bytes[pos] === 0x69 /* i */) {
      pos++;
      const value = Number(digits(`"${key}"`, true));
      if (bytes[pos] !== 0x65) throw fail(`"${key}" is not an integer`);
      pos++;
      values.set(key, value);
    } else if (bytes[pos]! >= 0x30 && bytes[pos]! <= 0x39) {
      string();
    } else {
      throw fail(`"${key}" has a value that is neither an integer nor a string`);
    }
  }
  if (pos >= n) throw fail('dictionary is not closed');
  return { values, end: pos + 1 };
}

/**
 * Reads one ut_metadata message. Throws a WireError (`ERR_EXTENDED`) on
 * anything BEP 9 does not allow: no dictionary, a missing or negative
 * `piece`, a data message without `total_size` or whose bytes are more than
 * one piece. An unknown `msg_type` is returned as undefined (BEP 9: ignore
 * it); ranges against the metadata's size are the caller's to check.
 */
export function decodeMetadataMessage(payload: Uint8Array): MetadataMessage | undefined {
  const { values, end } = readDict(payload);
  const type = values.get('msg_type');
  const piece = values.get('piece');
  if (type === undefined) throw fail('has no msg_type');
  if (type !== MSG_TYPE.request && type !== MSG_TYPE.data && type !== MSG_TYPE.reject)
    return undefined;
  if (piece === undefined || !Number.isSafeInteger(piece) || piece < 0)
    throw fail('has no valid piece');
  if (type === MSG_TYPE.request) {
    if (end !== payload.length) throw fail('request carries bytes after its dictionary');
    return { type: 'request', piece };
  }
  if (type === MSG_TYPE.reject) return { type: 'reject', piece };
  const totalSize = values.get('total_size');
  if (totalSize === undefined || !Number.isSafeInteger(totalSize) || totalSize < 0)
    throw fail('data has no valid total_size');
  const data = payload.subarray(end);
  if (data.length > METADATA_PIECE_SIZE)
    throw fail(`data of ${data.length} bytes is more than one piece`);
  return { type: 'data', piece, totalSize, data };
}
