/** parseEndpoint: PORT, HOST:PORT and [IPv6]:PORT, and refusals with ERR_ADDRESS. */

import { thrown } from '@swarmdrop/testkit';
import { describe, expect, it } from 'vitest';
import { formatEndpoint, OptionError, parseEndpoint, sourceKey, unmapIPv4 } from '../src/index.js';

describe('parseEndpoint', () => {
  it.each([
    ['7001', undefined, 7001],
    ['host:7001', 'host', 7001],
    ['127.0.0.1:7001', '127.0.0.1', 7001],
    ['peer-3.example.org:65535', 'peer-3.example.org', 65_535],
    ['[::1]:7001', '::1', 7001],
    ['[fe80::1%eth0]:7001', 'fe80::1%eth0', 7001],
    [' 7001 ', undefined, 7001],
    ['1', undefined, 1],
  ])('%j -> host %j, port %j', (text, host, port) => {
    expect(parseEndpoint(text, 'ownerPort')).toEqual({ host, port });
  });

  it.each([
    ['abc'],
    ['70000'],
    ['65536'],
    ['0'],
    ['host:0'],
    ['a:b'],
    [''],
    ['-1'],
    ['7001.5'],
    ['1e3'],
    ['::1:7001'],
    ['[::1]'],
    ['[::1]:'],
    ['host:'],
    [':7001'],
    ['bad host:7001'],
    ['host/x:7001'],
  ])('%j is refused with OptionError ERR_ADDRESS naming the field', (text) => {
    const err = thrown(() => parseEndpoint(text, 'peerPort'));
    expect(err).toBeInstanceOf(OptionError);
    expect(err).toMatchObject({ code: 'ERR_ADDRESS', field: 'peerPort' });
  });

  it('accepts port 0 only when allowZero says so', () => {
    expect(parseEndpoint('0', 'port', true)).toEqual({ host: undefined, port: 0 });
    expect(parseEndpoint('127.0.0.1:0', 'port', true)).toEqual({ host: '127.0.0.1', port: 0 });
    expect(thrown(() => parseEndpoint('0', 'port'))).toMatchObject({ code: 'ERR_ADDRESS' });
  });
});

describe('formatEndpoint', () => {
  it('brackets IPv6, unmaps IPv4-mapped addresses and defaults the host', () => {
    expect(formatEndpoint('::1', 7001)).toBe('[::1]:7001');
    expect(formatEndpoint('::ffff:10.0.0.2', 7001)).toBe('10.0.0.2:7001');
    expect(formatEndpoint('10.0.0.2', 7001)).toBe('10.0.0.2:7001');
    expect(formatEndpoint(undefined, 7001)).toBe('127.0.0.1:7001');
    expect(unmapIPv4('::ffff:1.2.3.4')).toBe('1.2.3.4');
    expect(unmapIPv4('::ffff:abcd')).toBe('::ffff:abcd');
  });

  it('what formatEndpoint writes, parseEndpoint reads back', () => {
    for (const [host, port] of [
      ['::1', 1],
      ['10.0.0.2', 65_535],
      ['example.org', 7001],
    ] as const) {
      expect(parseEndpoint(formatEndpoint(host, port), 'x')).toEqual({ host, port });
    }
  });
});

describe('sourceKey', () => {
  it('keeps an IPv4 address (mapped or not) and groups IPv6 by its /64', () => {
    expect(sourceKey('127.0.0.2')).toBe('127.0.0.2');
    expect(sourceKey('::ffff:10.1.2.3')).toBe('10.1.2.3');
    expect(sourceKey('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
    expect(sourceKey('2001:db8:1:2:bbbb:cccc:dddd:eeee')).toBe('2001:db8:1:2::/64');
    expect(sourceKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(sourceKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(sourceKey('::1')).toBe('0:0:0:0::/64');
  });
});
