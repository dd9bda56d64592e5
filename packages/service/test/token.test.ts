/** Links that pin content, tokens, and the hex values a user pastes. */

import { OptionError } from '@swarmdrop/protocol';
import { thrown } from '@swarmdrop/testkit';
import { describe, expect, it } from 'vitest';
import {
  formatLink,
  parseInfoHash,
  parseLink,
  parseSha256,
  parseToken,
  tokenMatches,
} from '../src/index.js';

describe('swarmdrop:// links', () => {
  it('round-trip host, port and info-hash, IPv6 bracketed', () => {
    const hash = Buffer.alloc(20, 0xab);
    for (const host of ['127.0.0.1', 'owner.example.lan', '::1']) {
      const link = formatLink(host, 6881, hash);
      const parsed = parseLink(link, '<owner>');
      expect(parsed.owner).toEqual({ host, port: 6881 });
      expect(parsed.infoHash.equals(hash)).toBe(true);
    }
    expect(formatLink('::1', 1, hash)).toBe(`swarmdrop://[::1]:1/${'ab'.repeat(20)}`);
  });

  it.each([
    ['no info-hash', 'swarmdrop://h:1/'],
    ['a short info-hash', 'swarmdrop://h:1/abcd'],
    ['no port', `swarmdrop://h/${'a'.repeat(40)}`],
    ['no host', `swarmdrop://1/${'a'.repeat(40)}`],
    ['a path', `swarmdrop://h:1/x/${'a'.repeat(40)}`],
    ['another scheme', `http://h:1/${'a'.repeat(40)}`],
  ])('refuse %s, naming the field', (_what, text) => {
    const err = thrown(() => parseLink(text, '<owner>'));
    expect(err).toBeInstanceOf(OptionError);
    expect((err as OptionError).field).toBe('<owner>');
  });

  it('hex values must be exactly 40 or 64 digits', () => {
    expect(parseInfoHash('AB'.repeat(20), 'x').equals(Buffer.alloc(20, 0xab))).toBe(true);
    expect(() => parseInfoHash('ab'.repeat(19), '--infohash')).toThrow(/--infohash/);
    expect(parseSha256('0f'.repeat(32), 'x').length).toBe(32);
    expect(() => parseSha256('zz'.repeat(32), '--sha256')).toThrow(/--sha256/);
  });
});

describe('tokens', () => {
  it('accept 16-256 URL-safe characters and drop one trailing newline', () => {
    expect(parseToken('abcdefghijklmnop\n', 'f')).toBe('abcdefghijklmnop');
    expect(() => parseToken('short', 'f')).toThrow(/16-256/);
    expect(() => parseToken('has space in it, long enough', 'f')).toThrow(/letters, digits/);
    expect(() => parseToken('x'.repeat(257), 'f')).toThrow(/16-256/);
  });

  it('compare exactly', () => {
    expect(tokenMatches('abcdefghijklmnop', 'abcdefghijklmnop')).toBe(true);
    expect(tokenMatches('abcdefghijklmnop', 'abcdefghijklmnoq')).toBe(false);
    expect(tokenMatches('abcdefghijklmnop', 'abcdefghijklmno')).toBe(false);
    expect(tokenMatches('abcdefghijklmnop', undefined)).toBe(false);
  });
});
