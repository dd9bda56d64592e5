/**
 * The option-schema machinery owner and peer share: resolveOptions (order,
 * computed defaults, required, unknown keys) and the USAGE lines and
 * parseArgs config made from flags.
 */
import { parseArgs } from 'node:util';
import { OptionError } from '@swarmdrop/protocol';
import { describe, expect, it } from 'vitest';
import {
  endpointValue,
  formatOptionLines,
  integerValue,
  type OptionFlag,
  type OptionSchema,
  parseArgsOptions,
  readFlags,
  resolveOptions,
  switchValue,
  textValue,
} from '../src/index.js';

interface Resolved {
  readonly name: string;
  readonly port: number;
  readonly dir: string;
  readonly fast: boolean;
}

const SCHEMA: OptionSchema<Resolved> = {
  name: { ...textValue((t) => t), required: 'is required', default: '' },
  port: { ...integerValue(0, 65_535), default: 0 },
  dir: { ...textValue((t) => t), default: (o) => `work-${o.port}` },
  fast: { ...switchValue, default: false },
};

const FLAGS: readonly OptionFlag<keyof Resolved>[] = [
  { name: 'port', arg: 'N', key: 'port', help: ['the port', '(default: 0)'] },
  { name: 'a-rather-long-flag-name', arg: 'VALUE', key: 'dir', help: ['wraps below'] },
  { name: 'fast', key: 'fast', help: ['a switch'] },
  { name: 'help', short: 'h', help: ['show this help'] },
];

describe('resolveOptions', () => {
  it('fills defaults in schema order, a computed one from the options before it', () => {
    expect(resolveOptions(SCHEMA, { name: 'x', port: 7 }, 'test')).toEqual({
      name: 'x',
      port: 7,
      dir: 'work-7',
      fast: false,
    });
    expect(resolveOptions(SCHEMA, { name: 'x', dir: 'd', fast: true }, 'test')).toMatchObject({
      dir: 'd',
      fast: true,
    });
  });

  it('refuses a missing required option, an unknown key and a bad value, naming it', () => {
    const cases: Array<[unknown, string]> = [
      [{}, 'name: is required'],
      [{ name: 'x', prt: 1 }, 'options: unknown option prt'],
      [{ name: 'x', port: 70_000 }, 'port: 70000 is out of range (0-65535)'],
      [{ name: 'x', fast: 1 }, 'fast: expected a boolean, got number'],
      [[], 'options: expected an object of test options'],
    ];
    for (const [input, message] of cases) {
      expect(() => resolveOptions(SCHEMA, input, 'test')).toThrow(OptionError);
      expect(() => resolveOptions(SCHEMA, input, 'test')).toThrow(message);
    }
  });

  it('endpointValue checks an object as its text would be checked', () => {
    const listen = endpointValue(true);
    expect(listen.check({ host: '::1', port: 80 }, 'listen')).toEqual({ host: '::1', port: 80 });
    expect(listen.check({}, 'listen')).toEqual({ host: undefined, port: 0 });
    expect(() => endpointValue().check({ port: 0 }, 'owner')).toThrow(
      'owner: port 0 is out of range (1-65535)',
    );
    expect(() => endpointValue().check({ host: 'a b', port: 1 }, 'owner')).toThrow(
      'owner: "a b:1" has an invalid host "a b"',
    );
  });
});

describe('flags', () => {
  it('USAGE lines put help at column 30, below a flag too long for it', () => {
    expect(formatOptionLines(FLAGS)).toBe(
      [
        '  --port N                    the port',
        '                              (default: 0)',
        '  --a-rather-long-flag-name VALUE',
        '                              wraps below',
        '  --fast                      a switch',
        '  -h, --help                  show this help',
        '',
      ].join('\n'),
    );
  });

  it('parseArgs takes the config, and readFlags reads its values through the options', () => {
    const { values } = parseArgs({
      args: ['--port', '80', '--fast', '-h'],
      options: parseArgsOptions(FLAGS),
    });
    expect(readFlags(FLAGS, values, SCHEMA)).toEqual({ port: 80, fast: true });
    expect(() => readFlags(FLAGS, { port: '-1' }, SCHEMA)).toThrow('--port: "-1"');
  });
});
