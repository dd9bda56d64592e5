/**
 * How the port's sniffer (dual-server.ts) tells a plaintext BitTorrent
 * handshake, HTTP and an MSE public key apart by a connection's first bytes.
 */
import { describe, expect, it } from 'vitest';
import { sniffConnection } from '../src/index.js';

describe('sniffConnection', () => {
  it('tells a plaintext handshake, HTTP and an MSE public key apart', () => {
    const handshake = Buffer.concat([
      Buffer.from('\x13BitTorrent protocol', 'latin1'),
      Buffer.alloc(48),
    ]);
    expect(sniffConnection(handshake)).toBe('bittorrent');
    expect(sniffConnection(handshake.subarray(0, 2))).toBe('bittorrent');
    expect(sniffConnection(Buffer.from('GET /status HTTP/1.1\r\n'))).toBe('http');
    expect(sniffConnection(Buffer.from('OPTIONS * HTTP/1.1\r\n'))).toBe('http');
    expect(sniffConnection(Buffer.from('GE'))).toBe('http');
    expect(sniffConnection(Buffer.from([0x8a, 0x01, 0x13, 0x20]))).toBe('mse');
  });

  // Malformed HTTP must still reach the HTTP server (which answers 400), not MSE.
  it('text that is not a valid request line is still HTTP', () => {
    expect(sniffConnection(Buffer.from('GARBAGE\r\n\r\n'))).toBe('http');
    expect(sniffConnection(Buffer.from('get / http/1.0\r\n'))).toBe('http');
  });

  // A corrupt handshake that starts like one fails as a plaintext handshake (ERR_HANDSHAKE).
  it('0x13 "Bit" with garbage after it is a (broken) plaintext handshake', () => {
    expect(sniffConnection(Buffer.from('\x13BitTorrent protocoX', 'latin1'))).toBe('bittorrent');
  });

  // An MSE key starts with 0x13 one time in 256: the first byte alone would
  // hand it to the plaintext decoder, which would refuse it.
  it('an MSE key that happens to start with 0x13 is MSE, not a plaintext handshake', () => {
    const key = Buffer.alloc(96, 0xaa);
    key[0] = 0x13;
    expect(sniffConnection(key)).toBe('mse');
  });

  it('random 96-byte keys are MSE', () => {
    let seed = 1;
    for (let k = 0; k < 2_000; k++) {
      const key = Buffer.alloc(96);
      for (let i = 0; i < 96; i++) {
        seed = (seed * 1103515245 + 12345) >>> 0;
        key[i] = seed >>> 24;
      }
      // The one key in 2^32 that starts like a handshake is conceded to it.
      if (key.subarray(0, 4).toString('latin1') === '\x13Bit') continue;
      expect(sniffConnection(key)).toBe('mse');
    }
  });
});
