/**
 * BEP 6, the fast extension: its bit in the handshake's reserved bytes.
 * Its five messages (suggest, have all, have none, reject request, allowed
 * fast) are legal only where both handshakes set it; from a remote that did
 * not, or towards one, they are a protocol error (the BEP's words).
 */

/** reserved[7] & 0x04, as libtorrent, aria2 and the BEP set it. */
const FAST_BYTE = 7;
const FAST_MASK = 0x04;

/** The message types BEP 6 adds. */
export const FAST_MESSAGE_TYPES: ReadonlySet<string> = new Set([
  'suggest',
  'haveAll',
  'haveNone',
  'reject',
  'allowedFast',
]);

/** True when a handshake's 8 reserved bytes offer the fast extension. */
export function supportsFast(reserved: Uint8Array): boolean {
  return reserved.length === 8 && (reserved[FAST_BYTE]! & FAST_MASK) !== 0;
}

/** Sets the fast extension's bit in `reserved` (8 bytes) and returns it. */
export function withFastBit(reserved: Uint8Array): Uint8Array {
  if (reserved.length !== 8) throw new RangeError('reserved must be 8 bytes');
  reserved[FAST_BYTE] = reserved[FAST_BYTE]! | FAST_MASK;
  return reserved;
}
