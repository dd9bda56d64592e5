/**
 * Pins a bug: formatText quoted only values with whitespace, `"` or `=`. A
 * value holding U+2028 or U+2029 (quoted, but JSON.stringify leaves them raw)
 * made parseTextLine return undefined, since they end a line for JavaScript
 * regexes; and control characters such as ESC went out raw, so a value from
 * the remote (a peer id, an error message) could send terminal escapes.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatText, type LogFields, parseTextLine } from '../src/index.js';

const TIME = new Date('2024-05-06T12:00:01.234Z');
// biome-ignore lint/suspicious/noControlCharactersInRegex: looking for control characters is the point
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

function roundTrip(fields: LogFields) {
  const line = formatText({
    time: TIME,
    role: 'peer',
    port: 7001,
    event: 'protocol-error',
    fields,
  });
  return { line, parsed: parseTextLine(line) };
}

describe('unprintable characters in log values', () => {
  it.each([
    ['U+2028', 'a\u2028b'],
    ['U+2029', 'a\u2029b'],
    ['ESC', '\u001b[31mred\u001b[0m'],
    ['NUL', 'a\u0000b'],
    ['DEL', 'a\u007fb'],
    ['C1 CSI', 'a\u009b2J'],
    ['NEL', '\u0085'],
  ])('%s is escaped on the line and parsed back', (_name, value) => {
    const { line, parsed } = roundTrip({ peer: value });
    expect(line).not.toMatch(UNPRINTABLE);
    expect(parsed?.fields).toEqual({ peer: value });
  });

  it('property: strings of tricky characters round-trip and leave the line printable', () => {
    const tricky = fc
      .array(
        fc.constantFrom(
          'a',
          'Z',
          '0',
          ' ',
          '"',
          '=',
          '\\',
          "'",
          '\t',
          '\n',
          '\r',
          '\u2028',
          '\u2029',
          '\u0085',
          '\u001b',
          '\u0000',
          '\u007f',
          '\u009b',
          '\u00a0',
          'é',
          '✓',
          '😀',
          '\ufeff',
        ),
        { maxLength: 12 },
      )
      .map((parts) => parts.join(''));
    fc.assert(
      fc.property(fc.array(tricky, { minLength: 1, maxLength: 4 }), (values) => {
        const fields = Object.fromEntries(values.map((v, i) => [`k${i}`, v]));
        const { line, parsed } = roundTrip(fields);
        expect(line).not.toMatch(UNPRINTABLE);
        expect(parsed?.fields).toEqual(fields);
      }),
      { numRuns: 1000 },
    );
  });
});
