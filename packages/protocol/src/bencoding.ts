import bencode from 'bencode';

/** Bencodes a value (dictionaries get sorted keys), for tracker responses and the like. */
export function bencodeEncode(value: unknown): Buffer {
  return Buffer.from(bencode.encode(value));
}

/** Decodes bencode; strings come back as Uint8Array. Throws on malformed input. */
export function bencodeDecode(bytes: Uint8Array): unknown {
  return bencode.decode(bytes);
}
