import { createHash, timingSafeEqual } from 'node:crypto';
import { type Endpoint, formatEndpoint, OptionError, parseEndpoint } from '@swarmdrop/protocol';

/** Environment variable holding the swarm token when --token-file is not given. */
export const TOKEN_ENV = 'SWARMDROP_TOKEN';
/** A token shorter than this is too easy to guess; `openssl rand -hex 32` gives 64. */
export const MIN_TOKEN_LENGTH = 16;
export const MAX_TOKEN_LENGTH = 256;

/**
 * Checks a swarm token: URL-safe characters only (it travels as `key=` in
 * tracker URLs and in a Bearer header, unescaped), 16-256 of them.
 * `source` names where it came from in the error.
 */
export function parseToken(text: string, source: string): string {
  const token = text.replace(/\r?\n$/, '');
  if (token.length < MIN_TOKEN_LENGTH || token.length > MAX_TOKEN_LENGTH) {
    throw new OptionError(
      source,
      `the token must be ${MIN_TOKEN_LENGTH}-${MAX_TOKEN_LENGTH} characters, not ${token.length} (make one with: openssl rand -hex 32)`,
    );
  }
  if (!/^[A-Za-z0-9._~-]+$/.test(token)) {
    throw new OptionError(
      source,
      'the token may hold only letters, digits and . _ ~ - (make one with: openssl rand -hex 32)',
    );
  }
  return token;
}

/** Compares a presented token with ours in constant time (both hashed first, so lengths do not leak). */
export function tokenMatches(expected: string, presented: string | undefined): boolean {
  if (presented === undefined) return false;
  const a = createHash('sha256').update(expected).digest();
  const b = createHash('sha256').update(presented).digest();
  return timingSafeEqual(a, b);
}

/** A pinned owner: where it is and which content it must serve. */
export interface SwarmdropLink {
  readonly owner: Endpoint;
  /** 20 bytes. */
  readonly infoHash: Buffer;
}

export const LINK_SCHEME = 'swarmdrop:';

/** `swarmdrop://HOST:PORT/INFOHASH` (info-hash as 40 hex digits). */
export function formatLink(host: string, port: number, infoHash: Uint8Array): string {
  return `swarmdrop://${formatEndpoint(host, port)}/${Buffer.from(infoHash).toString('hex')}`;
}

/** True when `text` is meant as a link (so a bad one gets the link's error, not a port's). */
export function looksLikeLink(text: string): boolean {
  return text.toLowerCase().startsWith('swarmdrop://');
}

/** Parses `swarmdrop://HOST:PORT/INFOHASH`; an OptionError naming `field` otherwise. */
export function parseLink(text: string, field: string): SwarmdropLink {
  const match = /^swarmdrop:\/\/([^/]+)\/([^/?#]*)$/i.exec(text.trim());
  if (!match) {
    throw new OptionError(
      field,
      `"${text.slice(0, 200)}" is not a link of the form swarmdrop://HOST:PORT/INFOHASH`,
      'ERR_ADDRESS',
    );
  }
  const owner = parseEndpoint(match[1]!, field);
  if (owner.host === undefined)
    throw new OptionError(field, `"${text}" names no host: swarmdrop://HOST:PORT/INFOHASH`);
  return { owner, infoHash: parseInfoHash(match[2]!, field) };
}

/** 40 hex digits (an info-hash) to its 20 bytes; an OptionError naming `field` otherwise. */
export function parseInfoHash(text: string, field: string): Buffer {
  if (!/^[0-9a-fA-F]{40}$/.test(text))
    throw new OptionError(field, `"${text.slice(0, 100)}" is not an info-hash (40 hex digits)`);
  return Buffer.from(text, 'hex');
}

/** 64 hex digits (a SHA-256) to its 32 bytes; an OptionError naming `field` otherwise. */
export function parseSha256(text: string, field: string): Buffer {
  if (!/^[0-9a-fA-F]{64}$/.test(text))
    throw new OptionError(field, `"${text.slice(0, 100)}" is not a SHA-256 (64 hex digits)`);
  return Buffer.from(text, 'hex');
}
