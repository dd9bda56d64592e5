import { type Endpoint, formatEndpoint, parseEndpoint } from './address.js';
import { OptionError } from './errors.js';

/**
 * What a magnet link (BEP 9's `magnet:?xt=urn:btih:…`) tells a peer: the
 * content, and where to look for it.
 */
export interface MagnetLink {
  /** 20 bytes: the v1 info-hash (`xt=urn:btih:`). */
  readonly infoHash: Buffer;
  /** `dn`: a display name only; the metadata's own name is the one used. */
  readonly name?: string | undefined;
  /** `tr`: tracker announce URLs, in the order given. */
  readonly trackers: readonly string[];
  /** `x.pe`: peers to ask for the metadata and the pieces. */
  readonly peers: readonly Endpoint[];
}

/** A magnet link longer than this is not one a person pastes; refused before parsing. */
export const MAX_MAGNET_LENGTH = 8_192;
/** `tr` and `x.pe` kept at most each: a link is a hint, not a peer list. */
export const MAX_MAGNET_ENTRIES = 32;

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** True when `text` is meant as a magnet link (so a bad one gets the magnet's error). */
export function looksLikeMagnet(text: string): boolean {
  return text.trim().toLowerCase().startsWith('magnet:');
}

/**
 * Parses a magnet link. The info-hash may be 40 hex digits or 32 base32
 * characters (both are in use); unknown parameters are ignored, as other
 * clients do. `field` names the argument in the error.
 */
export function parseMagnet(text: string, field: string): MagnetLink {
  const value = text.trim();
  const shown = `"${value.slice(0, 120)}${value.length > 120 ? '…' : ''}"`;
  if (value.length > MAX_MAGNET_LENGTH)
    throw new OptionError(
      field,
      `a magnet link of ${value.length} characters is too long (at most ${MAX_MAGNET_LENGTH})`,
      'ERR_ADDRESS',
    );
  const match = /^magnet:\?(.*)$/is.exec(value);
  if (!match)
    throw new OptionError(
      field,
      `${shown} is not a magnet link (magnet:?xt=urn:btih:…)`,
      'ERR_ADDRESS',
    );
  let infoHash: Buffer | undefined;
  let name: string | undefined;
  const trackers: string[] = [];
  const peers: Endpoint[] = [];
  for (const part of match[1]!.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const key = (eq < 0 ? part : part.slice(0, eq)).toLowerCase();
    let raw: string;
    try {
      raw = decodeURIComponent((eq < 0 ? '' : part.slice(eq + 1)).replace(/\+/g, ' '));
    } catch {
      throw new OptionError(
        field,
        `${shown}: the value of ${key} is not valid percent-encoding`,
        'ERR_ADDRESS',
      );
    }
    if (key === 'xt') {
      const urn = /^urn:btih:(.*)$/i.exec(raw);
      // A v2-only link (urn:btmh:) is another info-hash we cannot serve; skip it if a v1 one is there.
      if (!urn) continue;
      const hash = parseBtih(urn[1]!);
      if (!hash)
        throw new OptionError(
          field,
          `${shown}: "${urn[1]!.slice(0, 64)}" is not an info-hash (40 hex digits or 32 base32 characters)`,
          'ERR_ADDRESS',
        );
      if (infoHash && !infoHash.equals(hash))
        throw new OptionError(field, `${shown} names two different info-hashes`, 'ERR_ADDRESS');
      infoHash = hash;
    } else if (key === 'dn') {
      name = raw;
    } else if (key === 'tr') {
      if (trackers.length >= MAX_MAGNET_ENTRIES) continue;
      if (!/^(https?|udp):\/\//i.test(raw))
        throw new OptionError(
          field,
          `${shown}: tracker "${raw.slice(0, 100)}" is not an http://, https:// or udp:// URL`,
          'ERR_ADDRESS',
        );
      trackers.push(raw);
    } else if (key === 'x.pe') {
      if (peers.length >= MAX_MAGNET_ENTRIES) continue;
      const peer = parseEndpoint(raw, `${field} x.pe`);
      if (peer.host === undefined)
        throw new OptionError(
          field,
          `${shown}: peer "${raw}" names no host (x.pe=HOST:PORT)`,
          'ERR_ADDRESS',
        );
      peers.push(peer);
    }
  }
  if (!infoHash)
    throw new OptionError(
      field,
      `${shown} has no BitTorrent v1 info-hash (xt=urn:btih:…)`,
      'ERR_ADDRESS',
    );
  return { infoHash, name, trackers, peers };
}

/** `magnet:?xt=urn:btih:HEX&dn=NAME&tr=URL…&x.pe=HOST:PORT…`, each value percent-encoded. */
export function formatMagnet(link: {
  readonly infoHash: Uint8Array;
  readonly name?: string | undefined;
  readonly trackers?: readonly string[];
  readonly peers?: readonly Endpoint[];
}): string {
  const parts = [`xt=urn:btih:${Buffer.from(link.infoHash).toString('hex')}`];
  if (link.name !== undefined) parts.push(`dn=${encodeURIComponent(link.name)}`);
  for (const tracker of link.trackers ?? []) parts.push(`tr=${encodeURIComponent(tracker)}`);
  // HOST:PORT stays readable: ':' and '[' ']' are allowed in a query (RFC 3986).
  for (const peer of link.peers ?? []) parts.push(`x.pe=${formatEndpoint(peer.host, peer.port)}`);
  return `magnet:?${parts.join('&')}`;
}

/** 40 hex digits or 32 base32 characters to 20 bytes; undefined otherwise. */
function parseBtih(text: string): Buffer | undefined {
  if (/^[0-9a-f]{40}$/i.test(text)) return Buffer.from(text, 'hex');
  if (!/^[A-Z2-7]{32}$/i.test(text)) return undefined;
  const out = Buffer.alloc(20);
  let bits = 0;
  let value = 0;
  let at = 0;
  for (const char of text.toUpperCase()) {
    value = (value << 5) | BASE32.indexOf(char);
    bits += 5;
    if (bits >= 8) {
      out[at++] = (value >>> (bits - 8)) & 0xff;
      bits -= 8;
    }
  }
  return out;
}
