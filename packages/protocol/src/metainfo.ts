import { createHash } from 'node:crypto';
import bencode from 'bencode';
import { scanBencode } from './bencoding.js';
import { DEFAULT_CHUNK_SIZE, MAX_PIECE_COUNT, MAX_PIECE_LENGTH } from './constants.js';
import { MetainfoError } from './errors.js';
import { Geometry } from './geometry.js';
import { escapeUnsafe, UNSAFE_CHARS } from './unsafe-text.js';

/**
 * The SHA-1 of every chunk, kept in one buffer of 20 bytes per chunk: a
 * hostile metainfo of millions of pieces must not become millions of Buffer
 * objects (8 Mi of them cost a peer 2.1 GB). `get` hands out views.
 */
export class PieceHashes implements Iterable<Buffer> {
  /** All hashes, back to back. */
  readonly bytes: Buffer;
  readonly count: number;

  constructor(bytes: Uint8Array) {
    if (bytes.length % 20 !== 0) throw new RangeError('piece hashes must be 20 bytes each');
    this.bytes = Buffer.isBuffer(bytes)
      ? bytes
      : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.count = bytes.length / 20;
  }

  static from(hashes: readonly Uint8Array[]): PieceHashes {
    return new PieceHashes(Buffer.concat(hashes.map((h) => Buffer.from(h))));
  }

  /** The SHA-1 of chunk `index` (a view, not a copy), or undefined out of range. */
  get(index: number): Buffer | undefined {
    if (!Number.isInteger(index) || index < 0 || index >= this.count) return undefined;
    return this.bytes.subarray(index * 20, index * 20 + 20);
  }

  /** True when chunk `index`'s SHA-1 is `digest`, without making a view. */
  matches(index: number, digest: Uint8Array): boolean {
    if (!Number.isInteger(index) || index < 0 || index >= this.count || digest.length !== 20)
      return false;
    return this.bytes.compare(digest, 0, 20, index * 20, index * 20 + 20) === 0;
  }

  *[Symbol.iterator](): Iterator<Buffer> {
    for (let i = 0; i < this.count; i++) yield this.get(i)!;
  }
}

/** A parsed single-file v1 metainfo, validated. */
export interface Metainfo {
  readonly name: string;
  readonly length: number;
  readonly pieceLength: number;
  /** One 20-byte SHA-1 per chunk, in one buffer. */
  readonly pieceHashes: PieceHashes;
  /** SHA-256 of the whole file, when the info dictionary carries swarmdrop's `sha256` key. */
  readonly sha256: Buffer | undefined;
  readonly announce: string | undefined;
  /** BEP 27: `private=1` in the info dictionary; clients keep it off DHT and PEX. */
  readonly private: boolean;
  /** SHA-1 of the bencoded info dictionary exactly as it appears in the torrent. */
  readonly infoHash: Buffer;
  /** The bencoded info dictionary exactly as it appears in the torrent: what BEP 9 serves. */
  readonly infoBytes: Buffer;
  readonly geometry: Geometry;
}

export interface MetainfoInput {
  readonly name: string;
  readonly length: number;
  readonly pieceLength?: number;
  readonly pieceHashes: PieceHashes | readonly Uint8Array[];
  readonly sha256?: Uint8Array;
  readonly announce?: string;
  /** BEP 27 private flag; it is part of the info dictionary, so it changes the info-hash. */
  readonly private?: boolean;
}

/** Largest .torrent we parse: MAX_PIECE_COUNT hashes of 20 bytes (40 MiB), plus room. */
export const MAX_METAINFO_BYTES = 20 * MAX_PIECE_COUNT + 64 * 1024;

/**
 * Builds a single-file v1 `.torrent`. Layout (bencoded dictionary, keys sorted):
 *   { announce?, created by, creation date, info: { length, name, piece length, pieces, sha256? } }
 * Returns the bytes and their parsed form.
 */
export function buildMetainfo(input: MetainfoInput): { bytes: Buffer; metainfo: Metainfo } {
  const info: Record<string, unknown> = {
    length: input.length,
    name: input.name,
    'piece length': input.pieceLength ?? DEFAULT_CHUNK_SIZE,
    pieces:
      input.pieceHashes instanceof PieceHashes
        ? input.pieceHashes.bytes
        : Buffer.concat(input.pieceHashes.map((h) => Buffer.from(h))),
  };
  if (input.sha256) info.sha256 = Buffer.from(input.sha256);
  if (input.private) info.private = 1;
  const torrent: Record<string, unknown> = { 'created by': 'swarmdrop', info };
  if (input.announce) torrent.announce = input.announce;
  const bytes = Buffer.from(bencode.encode(torrent));
  return { bytes, metainfo: parseMetainfo(bytes) };
}

/** Returns the same torrent with another announce URL; the info-hash is unchanged. */
export function withAnnounce(torrent: Uint8Array, announce: string): Buffer {
  // Splice raw values instead of decode + encode, which would re-sort and
  // re-encode the info dictionary and so change the info-hash of a torrent
  // whose info dictionary is not in canonical form.
  const spans = scanTorrent(torrent);
  spans.set('announce', Buffer.from(bencode.encode(announce)));
  const keys = [...spans.keys()].sort(); // latin1 keys: code unit order is byte order
  const parts: Uint8Array[] = [Buffer.from('d')];
  for (const key of keys) {
    parts.push(Buffer.from(bencode.encode(Buffer.from(key, 'latin1'))), spans.get(key)!);
  }
  parts.push(Buffer.from('e'));
  return Buffer.concat(parts);
}

/**
 * Parses and validates a `.torrent`. Refuses, naming the field: a name that
 * could escape the download directory, multi-file torrents, a piece length of
 * zero or past MAX_PIECE_LENGTH, a piece count that does not match the length.
 */
export function parseMetainfo(bytes: Uint8Array): Metainfo {
  if (bytes.length > MAX_METAINFO_BYTES) {
    throw new MetainfoError(
      'torrent',
      `is ${bytes.length} bytes, larger than ${MAX_METAINFO_BYTES}`,
    );
  }
  // Checked strictly first: bencode.decode loops forever on a negative string length.
  const infoBytes = scanTorrent(bytes).get('info');
  const top = bencode.decode(bytes);
  if (!isDict(top)) throw new MetainfoError('torrent', 'is not a dictionary');
  const info = top.info;
  if (!isDict(info) || infoBytes === undefined) {
    throw new MetainfoError('info', 'is missing or not a dictionary');
  }
  if (info.files !== undefined)
    throw new MetainfoError('info.files', 'multi-file torrents are not supported');

  const name = checkName(info.name);
  const length = info.length;
  if (typeof length !== 'number' || !Number.isSafeInteger(length) || length < 0) {
    throw new MetainfoError('info.length', 'must be a non-negative integer');
  }
  const pieceLength = info['piece length'];
  if (typeof pieceLength !== 'number' || !Number.isSafeInteger(pieceLength) || pieceLength <= 0) {
    throw new MetainfoError('info.piece length', 'must be a positive integer');
  }
  if (pieceLength > MAX_PIECE_LENGTH) {
    throw new MetainfoError(
      'info.piece length',
      `${pieceLength} is larger than ${MAX_PIECE_LENGTH}`,
    );
  }
  const pieces = info.pieces;
  if (!(pieces instanceof Uint8Array) || pieces.length % 20 !== 0) {
    throw new MetainfoError('info.pieces', 'must be a string of 20-byte SHA-1 hashes');
  }
  const geometry = new Geometry(length, pieceLength);
  if (pieces.length / 20 !== geometry.pieceCount) {
    throw new MetainfoError(
      'info.pieces',
      `holds ${pieces.length / 20} hashes but length ${length} needs ${geometry.pieceCount}`,
    );
  }
  if (geometry.pieceCount > MAX_PIECE_COUNT) {
    throw new MetainfoError(
      'info.pieces',
      `${geometry.pieceCount} chunks is more than ${MAX_PIECE_COUNT}`,
    );
  }
  let sha256: Buffer | undefined;
  if (info.sha256 !== undefined) {
    if (!(info.sha256 instanceof Uint8Array) || info.sha256.length !== 32) {
      throw new MetainfoError('info.sha256', 'must be 32 bytes');
    }
    sha256 = Buffer.from(info.sha256);
  }
  let announce: string | undefined;
  if (top.announce !== undefined) {
    if (!(top.announce instanceof Uint8Array))
      throw new MetainfoError('announce', 'must be a string');
    announce = Buffer.from(top.announce).toString('utf8');
  }
  return {
    name,
    length,
    pieceLength,
    private: info.private === 1,
    // A view into the decoded torrent, not a copy and not one object per piece.
    pieceHashes: new PieceHashes(pieces),
    sha256,
    announce,
    infoHash: createHash('sha1').update(infoBytes).digest(),
    infoBytes: Buffer.from(infoBytes),
    geometry,
  };
}

/**
 * A metainfo from a bare info dictionary (BEP 9 metadata), its info-hash
 * that of exactly these bytes; `announce` as given (a magnet link's `tr`).
 * Validated as parseMetainfo validates a `.torrent`.
 */
export function parseInfoDictionary(infoBytes: Uint8Array, announce?: string): Metainfo {
  return parseMetainfo(torrentFromInfo(infoBytes, announce));
}

/**
 * A `.torrent` around a bare info dictionary, its bytes spliced in as they
 * are (re-encoding could change the info-hash), with `announce` if given.
 */
export function torrentFromInfo(infoBytes: Uint8Array, announce?: string): Buffer {
  const head = Buffer.from('d8:announce', 'latin1');
  const parts: Buffer[] = [];
  // Keys in sorted order, as bencode wants them: announce < info.
  if (announce !== undefined) {
    const url = Buffer.from(announce, 'utf8');
    parts.push(head, Buffer.from(`${url.length}:`, 'latin1'), url);
  } else parts.push(Buffer.from('d', 'latin1'));
  parts.push(Buffer.from('4:info', 'latin1'), Buffer.from(infoBytes), Buffer.from('e', 'latin1'));
  return Buffer.concat(parts);
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

function checkName(value: unknown): string {
  if (!(value instanceof Uint8Array))
    throw new MetainfoError('info.name', 'is missing or not a string');
  let name: string;
  try {
    // Invalid bytes would silently become U+FFFD: the name on disk would not be the one named.
    name = UTF8.decode(value);
  } catch {
    throw new MetainfoError('info.name', 'is not valid UTF-8');
  }
  if (name.length === 0) throw new MetainfoError('info.name', 'is empty');
  if (name.includes('/') || name.includes('\\')) {
    throw new MetainfoError('info.name', `"${printable(name)}" contains a path separator`);
  }
  if (name === '.' || name === '..')
    throw new MetainfoError('info.name', `"${name}" is not a file name`);
  if (/^[a-zA-Z]:/.test(name))
    throw new MetainfoError('info.name', `"${printable(name)}" is an absolute path`);
  // Control characters and bidi overrides (U+202E makes "gpj.exe" read as "exe.jpg") are
  // refused, not escaped: the name becomes a file name, shown by every file manager.
  if (UNSAFE_CHARS.test(name)) {
    throw new MetainfoError(
      'info.name',
      `"${printable(name)}" contains control or bidi characters`,
    );
  }
  if (Buffer.byteLength(name) > 255)
    throw new MetainfoError('info.name', 'is longer than 255 bytes');
  return name;
}

function printable(s: string): string {
  return escapeUnsafe(s.slice(0, 80));
}

/** Longest file name most file systems allow, in bytes. */
export const MAX_FILE_NAME_BYTES = 255;

/**
 * `name + suffix`, with `name` cut (on a character boundary) so that the
 * result plus `reserveBytes` more (a `.tmp` added while writing) fits in
 * MAX_FILE_NAME_BYTES: a 255-byte name is legal, `<name>.torrent.tmp` is not.
 */
export function fitFileName(name: string, suffix: string, reserveBytes = 0): string {
  const room = MAX_FILE_NAME_BYTES - Buffer.byteLength(suffix) - reserveBytes;
  let cut = name;
  while (Buffer.byteLength(cut) > room) cut = [...cut].slice(0, -1).join('');
  return cut + suffix;
}

/** The metainfo's file name on disk, `<name>.torrent`, shortened if `<name>.torrent.tmp` would not fit. */
export function torrentFileName(name: string): string {
  return fitFileName(name, '.torrent', '.tmp'.length);
}

function isDict(value: unknown): value is Record<string, unknown> {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    !(value instanceof Uint8Array)
  );
}

/** A torrent's top-level values by key, as written; MetainfoError('torrent') if malformed. */
function scanTorrent(bytes: Uint8Array): Map<string, Uint8Array> {
  if (bytes[0] !== 0x64 /* d */) {
    throw new MetainfoError('torrent', 'is not valid bencode: the torrent is not a dictionary');
  }
  return scanBencode(bytes, (why) => new MetainfoError('torrent', `is not valid bencode: ${why}`));
}
