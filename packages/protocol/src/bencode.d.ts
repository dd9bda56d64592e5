// bencode 4 ships no types; this is the part swarmdrop uses.
declare module 'bencode' {
  interface Decode {
    (data: Uint8Array, encoding?: string): unknown;
    data: Uint8Array;
    position: number;
    encoding: string | null;
    next(): unknown;
    buffer(): Uint8Array;
  }
  const bencode: {
    encode(value: unknown): Uint8Array;
    decode: Decode;
  };
  export default bencode;
}
