/** bencodeEncode / bencodeDecode: canonical output, strict input. */

import { thrown } from '@swarmdrop/testkit';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bencodeDecode, bencodeEncode } from '../src/index.js';

/** Bencodable values: integers, byte strings, lists and dictionaries. */
const { value: valueArb } = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.integer(),
    fc.uint8Array({ maxLength: 20 }),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(fc.string({ maxLength: 8 }), tie('value'), { maxKeys: 4 }),
  ),
}));

describe('bencode', () => {
  it('encodes canonically: dictionary keys sorted', () => {
    expect(bencodeEncode({ b: 1, a: Buffer.from('x'), c: [1, 'yz'] }).toString()).toBe(
      'd1:a1:x1:bi1e1:cli1e2:yzee',
    );
  });

  it('decodes strings as bytes, integers as numbers', () => {
    const decoded = bencodeDecode(Buffer.from('d5:peers6:abcdef8:intervali1800ee'));
    expect(decoded).toEqual({ peers: new Uint8Array(Buffer.from('abcdef')), interval: 1800 });
  });

  it.each([
    ['empty input', ''],
    ['a bare word', 'hello'],
    ['an unterminated dictionary', 'd1:a'],
    ['a string past the end', '5:abc'],
    ['an integer without digits', 'ie'],
    ['a float', 'i1.5e'],
    ['a non-string key', 'di1ei2ee'],
    ['nesting 100 deep', `${'l'.repeat(100)}${'e'.repeat(100)}`],
  ])('refuses %s with an Error', (_what, text) => {
    expect(thrown(() => bencodeDecode(Buffer.from(text)))).toBeInstanceOf(Error);
  });

  it('property: decode(encode(v)) re-encodes to the same bytes', () => {
    fc.assert(
      fc.property(valueArb, (value) => {
        const bytes = bencodeEncode(value);
        expect(bencodeEncode(bencodeDecode(bytes)).equals(bytes)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('property: random bytes decode or throw an Error, and never hang', () => {
    fc.assert(
      fc.property(
        fc
          .array(fc.constantFrom('d', 'l', 'i', 'e', '-', ':', '0', '1', '3', 'x'), {
            maxLength: 40,
          })
          .map((parts) => Buffer.from(parts.join(''))),
        (bytes) => {
          try {
            bencodeDecode(bytes);
          } catch (err) {
            expect(err).toBeInstanceOf(Error);
          }
        },
      ),
      { numRuns: 2000 },
    );
  });
});
