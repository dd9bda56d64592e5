/**
 * MSE/PE, the pure parts: RC4 against RFC 6229's vectors (including the
 * keystream after the 1024 bytes MSE drops), the hashes both sides derive,
 * and the policy table. How the port's sniffer tells MSE from the rest is the
 * service's (service/test/sniff.test.ts).
 */
import { createDiffieHellman } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  CRYPTO_PLAINTEXT,
  CRYPTO_RC4,
  cryptoProvide,
  cryptoSelect,
  MSE_GENERATOR,
  MSE_KEY_LENGTH,
  MSE_PRIME_HEX,
  mseCiphers,
  mseHash,
  OptionError,
  padKey,
  parseEncryptionPolicy,
  RC4_DROP,
  Rc4,
  req1Hash,
  req2FromReq23,
  req2Hash,
  req23Hash,
} from '../src/index.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

describe('Rc4', () => {
  // RFC 6229 section 2, keystream of key 0x0102030405 at offsets 0 and 1024.
  it('matches RFC 6229 for a 40-bit key at offset 0 and, dropped, at offset 1024', () => {
    const key = hex('0102030405');
    expect(new Rc4(key).update(Buffer.alloc(16))).toEqual(
      hex('b2 39 63 05 f0 3d c0 27 cc c3 52 4a 0a 11 18 a8'),
    );
    expect(new Rc4(key, RC4_DROP).update(Buffer.alloc(16))).toEqual(
      hex('30 ab bc c7 c2 0b 01 60 9f 23 ee 2d 5f 6b b7 df'),
    );
  });

  it('matches RFC 6229 for a 128-bit key at offset 1024 across split calls', () => {
    const rc4 = new Rc4(hex('0102030405060708090a0b0c0d0e0f10'), RC4_DROP);
    const out = Buffer.concat([rc4.process(Buffer.alloc(5)), rc4.process(Buffer.alloc(11))]);
    expect(out).toEqual(hex('bd f0 32 4e 60 83 dc c6 d3 ce dd 3c a8 c5 3c 16'));
  });

  it('matches the classic "Key"/"Plaintext" vector and decrypts what it encrypts', () => {
    const cipher = new Rc4(Buffer.from('Key')).process(Buffer.from('Plaintext'));
    expect(cipher).toEqual(hex('bbf316e8d940af0ad3'));
    expect(new Rc4(Buffer.from('Key')).process(cipher).toString()).toBe('Plaintext');
  });

  it('process leaves its input alone; update works in place', () => {
    const data = Buffer.from('same bytes');
    const copy = Buffer.from(data);
    new Rc4(Buffer.from('k')).process(data);
    expect(data).toEqual(copy);
    new Rc4(Buffer.from('k')).update(data);
    expect(data).not.toEqual(copy);
  });

  it('refuses an empty key', () => {
    expect(() => new Rc4(new Uint8Array(0))).toThrow(RangeError);
  });
});

describe('MSE hashes and keys', () => {
  const dh = () => {
    const d = createDiffieHellman(Buffer.from(MSE_PRIME_HEX, 'hex'), MSE_GENERATOR);
    d.generateKeys();
    return d;
  };

  it('both sides of a 768-bit exchange reach the same 96-byte secret and the same req1', () => {
    const a = dh();
    const b = dh();
    const sa = padKey(a.computeSecret(b.getPublicKey()));
    const sb = padKey(b.computeSecret(a.getPublicKey()));
    expect(sa.length).toBe(MSE_KEY_LENGTH);
    expect(sa).toEqual(sb);
    expect(req1Hash(sa)).toEqual(mseHash('req1', sb));
  });

  it("req2^req3 gives the responder HASH('req2', SKEY) back, and only for the right secret", () => {
    const secret = Buffer.alloc(96, 5);
    const infoHash = Buffer.alloc(20, 9);
    const sent = req23Hash(infoHash, secret);
    expect(req2FromReq23(sent, secret)).toEqual(req2Hash(infoHash));
    expect(req2FromReq23(sent, Buffer.alloc(96, 6))).not.toEqual(req2Hash(infoHash));
    // The spec's definition, spelled out: SHA-1('req2' + SKEY) xor SHA-1('req3' + S).
    const a = mseHash('req2', infoHash);
    const b = mseHash('req3', secret);
    expect(sent).toEqual(Buffer.from(a.map((x, i) => x ^ b[i]!)));
  });

  it("A's sending stream is B's receiving stream and the other way round, keyed keyA/keyB", () => {
    const secret = Buffer.alloc(96, 1);
    const infoHash = Buffer.alloc(20, 2);
    const a = mseCiphers(secret, infoHash, true);
    const b = mseCiphers(secret, infoHash, false);
    const message = Buffer.from('hello from A');
    expect(b.decrypt.process(a.encrypt.process(message))).toEqual(message);
    const reply = Buffer.from('hello from B');
    expect(a.decrypt.process(b.encrypt.process(reply))).toEqual(reply);
    const keyA = new Rc4(mseHash('keyA', secret, infoHash), RC4_DROP);
    expect(mseCiphers(secret, infoHash, true).encrypt.process(message)).toEqual(
      keyA.process(message),
    );
  });

  it('padKey left-pads a short big-endian number', () => {
    expect(padKey(Buffer.from([1, 2]), 4)).toEqual(Buffer.from([0, 0, 1, 2]));
    expect(() => padKey(Buffer.alloc(5), 4)).toThrow(RangeError);
  });
});

describe('encryption policy', () => {
  it('parses prefer, require and off, defaults to prefer, and names the flag on anything else', () => {
    expect(parseEncryptionPolicy(undefined)).toBe('prefer');
    expect(parseEncryptionPolicy('require')).toBe('require');
    expect(parseEncryptionPolicy('off')).toBe('off');
    expect(() => parseEncryptionPolicy('yes')).toThrow(OptionError);
    expect(() => parseEncryptionPolicy('yes')).toThrow(/--encryption/);
  });

  it('offers rc4 only under require, rc4 and plaintext under prefer', () => {
    expect(cryptoProvide('require')).toBe(CRYPTO_RC4);
    expect(cryptoProvide('prefer')).toBe(CRYPTO_RC4 | CRYPTO_PLAINTEXT);
  });

  it.each([
    ['prefer', CRYPTO_RC4 | CRYPTO_PLAINTEXT, CRYPTO_RC4],
    ['prefer', CRYPTO_PLAINTEXT, CRYPTO_PLAINTEXT],
    ['prefer', CRYPTO_RC4, CRYPTO_RC4],
    ['require', CRYPTO_RC4 | CRYPTO_PLAINTEXT, CRYPTO_RC4],
    ['require', CRYPTO_PLAINTEXT, undefined],
    ['off', CRYPTO_RC4 | CRYPTO_PLAINTEXT, undefined],
    ['off', CRYPTO_PLAINTEXT, undefined],
    ['off', CRYPTO_RC4, undefined],
    ['prefer', 0, undefined],
    ['prefer', 0x10, undefined],
  ] as const)('%s answers provide=%i with %s', (policy, provide, select) => {
    expect(cryptoSelect(provide, policy)).toBe(select);
  });
});
