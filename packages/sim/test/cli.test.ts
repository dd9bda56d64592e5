import { describe, expect, it } from 'vitest';
import { parseRate, parseSize, scenarioFromArgs } from '../src/cli.js';
import { MBIT } from '../src/scenario.js';

describe('pnpm sim flags', () => {
  it('reads rates in bits and bytes and sizes with binary and decimal units', () => {
    expect(parseRate('10Mbit', '--up')).toBe(10 * MBIT);
    expect(parseRate('1Gbit', '--up')).toBe(1000 * MBIT);
    expect(parseRate('12.5MB', '--up')).toBe(12_500_000);
    expect(parseSize('1GiB', '--file-size')).toBe(2 ** 30);
    expect(parseSize('25000000', '--file-size')).toBe(25_000_000);
    expect(() => parseRate('fast', '--up')).toThrow(/--up: not a rate/);
    expect(() => parseSize('1XB', '--file-size')).toThrow(/--file-size: not a size/);
  });

  it('builds the scenario from flags', () => {
    const { scenario } = scenarioFromArgs([
      '--peers',
      '20',
      '--up',
      '10Mbit',
      '--down',
      '1Gbit',
      '--crash',
      '0.1',
      '--crash-at-s',
      '2',
    ]);
    expect(scenario.peers).toBe(20);
    expect(scenario.classes[0]!.up).toBe(10 * MBIT);
    expect(scenario.classes[0]!.down).toBe(1000 * MBIT);
    expect(scenario.owner.up).toBe(10 * MBIT);
    expect(scenario.crash).toMatchObject({ share: 0.1, atMs: 2000 });
    expect(() => scenarioFromArgs(['--crash', '2'])).toThrow(/--crash: not a share/);
  });
});
