/**
 * The peer's command-line options that are not about addresses or
 * encryption (those have their own files): rate limits and --quiet.
 */
import { describe, expect, it } from 'vitest';
import { parsePeerArgs } from '../src/args.js';

describe('parsePeerArgs', () => {
  it('has no rate limit and shows the status line by default', () => {
    expect(parsePeerArgs(['7000', '7001'])).toMatchObject({
      uploadLimitBytesPerSecond: 0,
      downloadLimitBytesPerSecond: 0,
      quiet: false,
    });
  });

  it('reads --upload-limit and --download-limit in bytes/s (k = 1000, Ki = 1024), and --quiet', () => {
    expect(
      parsePeerArgs([
        '7000',
        '7001',
        '--upload-limit',
        '500k',
        '--download-limit',
        '2MiB',
        '--quiet',
      ]),
    ).toMatchObject({
      uploadLimitBytesPerSecond: 500_000,
      downloadLimitBytesPerSecond: 2_097_152,
      quiet: true,
    });
    expect(parsePeerArgs(['7000', '7001', '--upload-limit', '0'])).toMatchObject({
      uploadLimitBytesPerSecond: 0,
    });
    expect(() => parsePeerArgs(['7000', '7001', '--download-limit', '2 Mbit'])).toThrow(
      /^--download-limit: "2 Mbit" is not a rate in bytes per second/,
    );
  });
});
