/** Command-line option parsing: whole numbers in range, log formats; OptionError names the field. */

import { OptionError } from '@swarmdrop/protocol';
import { thrown } from '@swarmdrop/testkit';
import { describe, expect, it } from 'vitest';
import { parseIntegerOption, parseLogFormat } from '../src/index.js';

describe('parseIntegerOption', () => {
  it('reads whole numbers within [min, max]', () => {
    expect(parseIntegerOption('5', '--pipeline', 1, 10)).toBe(5);
    expect(parseIntegerOption(' 10 ', '--pipeline', 1, 10)).toBe(10);
    expect(parseIntegerOption('1', '--pipeline', 1, 10)).toBe(1);
  });

  it.each([undefined, '', 'abc', '-1', '1.5', '1e3', '0', '11', '0x5'])(
    '%j is refused with OptionError ERR_OPTION naming the field',
    (text) => {
      const err = thrown(() => parseIntegerOption(text, '--pipeline', 1, 10));
      expect(err).toBeInstanceOf(OptionError);
      expect(err).toMatchObject({ code: 'ERR_OPTION', field: '--pipeline' });
    },
  );
});

describe('parseLogFormat', () => {
  it('defaults to text and accepts text and json', () => {
    expect(parseLogFormat(undefined)).toBe('text');
    expect(parseLogFormat('text')).toBe('text');
    expect(parseLogFormat('json')).toBe('json');
  });

  it('refuses anything else naming --log-format', () => {
    expect(thrown(() => parseLogFormat('yaml'))).toMatchObject({
      code: 'ERR_OPTION',
      field: '--log-format',
    });
  });
});
