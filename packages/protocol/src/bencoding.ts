import bencode from 'bencode';

/** Bencodes a value (dictionaries get sorted keys), for tracker responses and the like. */
export function bencodeEncode(value: unknown): Buffer {
  return Buffer.from(bencode.encode(value));
}

/**
 * Decodes bencode; strings come back as Uint8Array. Throws an Error on
 * malformed or empty input. The input is checked strictly first: bencode's
 * own decoder loops forever on a negative string length (`d1:a-3:e`).
 */
export function bencodeDecode(bytes: Uint8Array): unknown {
  scanBencode(bytes, (why) => new Error(`not valid bencode: ${why}`));
  return bencode.decode(bytes);
}

/** Deepest nesting accepted (a metainfo needs 4); bounds the scan and bencode's recursion. */
const MAX_BENCODE_DEPTH = 64;

/**
 * Checks that `bytes` starts with one well-formed bencoded value (string
 * lengths are plain digits and stay inside the input, integers are
 * `i-?<digits>e`, nesting is bounded) and, when it is a dictionary, returns
 * the exact bytes of each top-level value by key (keys as latin1, so they keep
 * their bytes): the info-hash is taken over the info dictionary as written.
 * Throws `fail(why)` otherwise. Trailing bytes after the value are ignored, as
 * bencode.decode ignores them. Not exported from the package.
 */
export function scanBencode(
  bytes: Uint8Array,
  onError: (why: string) => Error,
): Map<string, Uint8Array> {
  const n = bytes.length;
  let pos = 0;
  const fail = (why: string): Error => onError(`${why} at byte ${pos}`);
  const digits = (): number => {
    const start = pos;
    while (pos < n && bytes[pos]! >= 0x30 && bytes[pos]! <= 0x39) pos++;
    if (pos === start) throw fail('expected a digit');
    if (pos - start > 20) throw fail('number too long');
    return Number(Buffer.from(bytes.subarray(start, pos)).toString('latin1'));
  };
  /** A string at `pos`: returns its content's bounds. */
  const string = (): [number, number] => {
    const length = digits();
    if (bytes[pos] !== 0x3a /* : */) throw fail('expected ":" after a string length');
    pos++;
    if (length > n - pos) throw fail('string runs past the end');
    pos += length;
    return [pos - length, pos];
  };
  if (n === 0) throw fail('empty input');
  const top = new Map<string, Uint8Array>();
  /** Open containers: true for a dictionary expecting a key next, false for a list or a value. */
  const stack: Array<{ dict: boolean; wantKey: boolean }> = [];
  let topKey = '';
  let topValueStart = 0;
  for (;;) {
    const frame = stack[stack.length - 1];
    if (frame && bytes[pos] === 0x65 /* e */ && (!frame.dict || frame.wantKey)) {
      pos++;
      stack.pop();
    } else if (frame?.dict && frame.wantKey) {
      const [start, end] = string();
      if (stack.length === 1) topKey = Buffer.from(bytes.subarray(start, end)).toString('latin1');
      frame.wantKey = false;
      continue;
    } else {
      if (pos >= n) throw fail('unexpected end');
      if (stack.length === 1) topValueStart = pos;
      const c = bytes[pos]!;
      if (c === 0x64 /* d */ || c === 0x6c /* l */) {
        if (stack.length >= MAX_BENCODE_DEPTH) throw fail('nested too deeply');
        pos++;
        stack.push({ dict: c === 0x64, wantKey: true });
        continue;
      }
      if (c === 0x69 /* i */) {
        pos++;
        if (bytes[pos] === 0x2d /* - */) pos++;
        digits();
        if (bytes[pos] !== 0x65 /* e */) throw fail('expected "e" after an integer');
        pos++;
      } else if (c >= 0x30 && c <= 0x39) {
        string();
      } else {
        throw fail(`unexpected byte 0x${c.toString(16)}`);
      }
    }
    // A value (or a container) just ended.
    if (stack.length === 0) return top;
    const parent = stack[stack.length - 1]!;
    if (parent.dict) parent.wantKey = true;
    if (stack.length === 1 && parent.dict) top.set(topKey, bytes.subarray(topValueStart, pos));
  }
}
