import { bencodeDecode, bencodeEncode } from '../bencoding.js';
import { WireError } from '../errors.js';

/**
 * BEP 10, the extension protocol: one reserved bit in the handshake says a
 * side speaks it; then each side's extended handshake (message 20, id 0)
 * maps extension names to the message ids *it* wants to receive them on.
 */

/**
 * The ids we receive each extension on: fixed, so our logs and tests name
 * the same numbers on every connection. A process announces only those it
 * enables (see ExtensionSettings); an id it does not announce is unknown to it.
 */
export const LOCAL_EXTENSIONS = { ut_metadata: 1, ut_pex: 2 } as const;

export type ExtensionName = keyof typeof LOCAL_EXTENSIONS;

const NAMES = Object.keys(LOCAL_EXTENSIONS) as ExtensionName[];

/** The extended handshake's own id inside message 20. */
export const EXTENDED_HANDSHAKE_ID = 0;

/** BEP 10's bit: reserved byte 5 (counting from 0), 0x10. */
export const EXTENSION_RESERVED_BYTE = 5;
export const EXTENSION_RESERVED_BIT = 0x10;

/**
 * Largest payload of one extended message we accept. A ut_metadata piece is
 * 16 KiB and a short dictionary; a PEX message of 50 added IPv4 and 50 IPv6
 * peers is under 2 KiB; libtorrent's handshakes are a few hundred bytes.
 * 64 KiB leaves room for clients that put more in and bounds what one
 * message can make us buffer.
 */
export const MAX_EXTENDED_PAYLOAD = 64 * 1024;

/** Longest client name (`v`) kept from a remote's handshake; the rest is cut. */
export const MAX_CLIENT_NAME_LENGTH = 64;

/** Whether the remote's 8 reserved handshake bytes say it speaks BEP 10. */
export function supportsExtensions(reserved: Uint8Array): boolean {
  return (
    reserved.length === 8 && (reserved[EXTENSION_RESERVED_BYTE]! & EXTENSION_RESERVED_BIT) !== 0
  );
}

/** A copy of `reserved` with BEP 10's bit set. */
export function withExtensionBit(reserved: Uint8Array): Uint8Array {
  const out = new Uint8Array(8);
  out.set(reserved.subarray(0, 8));
  out[EXTENSION_RESERVED_BYTE]! |= EXTENSION_RESERVED_BIT;
  return out;
}

/** What we announce in our extended handshake. */
export interface LocalHandshake {
  /** The extensions this process serves on this connection (their ids from LOCAL_EXTENSIONS). */
  readonly enabled: readonly ExtensionName[];
  /** `v`: `swarmdrop x.y.z`. */
  readonly version: string;
  /** `p`: our listening port, when known. */
  readonly listenPort?: number | undefined;
  /** `reqq`: how many block requests we queue from the remote before it counts as a flood. */
  readonly reqq?: number | undefined;
  /** `metadata_size`: the info dictionary's size in bytes, when we have it (BEP 9). */
  readonly metadataSize?: number | undefined;
}

/** The remote's extended handshake, validated: only what we read from it. */
export interface RemoteExtensions {
  /** For each extension of ours the remote enabled, the id it receives it on. */
  readonly ids: ReadonlyMap<ExtensionName, number>;
  /** `v`, cut to MAX_CLIENT_NAME_LENGTH characters. */
  readonly client: string | undefined;
  /** `p`, when a valid port. */
  readonly listenPort: number | undefined;
  /** `reqq`, when a positive integer. */
  readonly reqq: number | undefined;
  /** `metadata_size`, when present (a non-negative integer; BEP 9 bounds it further). */
  readonly metadataSize: number | undefined;
}

export function encodeExtendedHandshake(local: LocalHandshake): Buffer {
  const m: Record<string, number> = {};
  for (const name of local.enabled) m[name] = LOCAL_EXTENSIONS[name];
  const dict: Record<string, unknown> = { m, v: local.version };
  if (local.listenPort !== undefined && local.listenPort > 0) dict.p = local.listenPort;
  if (local.reqq !== undefined) dict.reqq = local.reqq;
  if (local.metadataSize !== undefined) dict.metadata_size = local.metadataSize;
  return bencodeEncode(dict);
}

function isDict(value: unknown): value is Record<string, unknown> {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    !(value instanceof Uint8Array)
  );
}

function fail(message: string): WireError {
  return new WireError('ERR_EXTENDED', `extended handshake ${message}`);
}

/**
 * Reads a remote's extended handshake. Throws a WireError (`ERR_EXTENDED`)
 * when it is not a bencoded dictionary, when `m` is not a dictionary, when
 * an extension we know maps to an id that is not 0..255, or when
 * `metadata_size` is not a non-negative integer: a remote that garbles its
 * own announcement cannot be talked to. Unknown keys and unknown extensions
 * are ignored (BEP 10); a `p` or `reqq` that makes no sense is left out.
 */
export function parseExtendedHandshake(payload: Uint8Array): RemoteExtensions {
  let value: unknown;
  try {
    value = bencodeDecode(payload);
  } catch (err) {
    throw fail(`is not bencoded: ${(err as Error).message}`);
  }
  if (!isDict(value)) throw fail('is not a dictionary');
  const ids = new Map<ExtensionName, number>();
  if (value.m !== undefined) {
    if (!isDict(value.m)) throw fail('"m" is not a dictionary');
    for (const name of NAMES) {
      if (!Object.hasOwn(value.m, name)) continue;
      const id = value.m[name];
      if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id > 255)
        throw fail(`"m" gives ${name} the id ${String(id)}, not 0..255`);
      // BEP 10: 0 means the remote turned the extension off.
      if (id > 0) ids.set(name, id);
    }
  }
  let metadataSize: number | undefined;
  if (value.metadata_size !== undefined) {
    const size = value.metadata_size;
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0)
      throw fail('"metadata_size" is not a non-negative integer');
    metadataSize = size;
  }
  const port = value.p;
  const reqq = value.reqq;
  return {
    ids,
    client:
      value.v instanceof Uint8Array
        ? Buffer.from(value.v).toString('utf8').slice(0, MAX_CLIENT_NAME_LENGTH)
        : undefined,
    listenPort:
      typeof port === 'number' && Number.isInteger(port) && port > 0 && port <= 65_535
        ? port
        : undefined,
    reqq: typeof reqq === 'number' && Number.isSafeInteger(reqq) && reqq > 0 ? reqq : undefined,
    metadataSize,
  };
}

/** The local extension a message id of ours stands for, if we enabled it. */
export function localExtensionOf(
  id: number,
  enabled: ReadonlySet<ExtensionName>,
): ExtensionName | undefined {
  for (const name of enabled) if (LOCAL_EXTENSIONS[name] === id) return name;
  return undefined;
}
