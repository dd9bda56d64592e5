/**
 * A bounded fuzz of the network edge (issue 10, item 9): thousands of random
 * and mutated BitTorrent handshakes and frames (BEP 10 extended handshakes
 * and ut_metadata requests, floods, data and rejects among them), HTTP requests and announce
 * queries, and MSE handshakes (random keys, garbage after a real key,
 * truncated, dribbled, a real key exchange with a mutated offer, a whole
 * handshake followed by hostile frames), each on its own connection from
 * 127.0.0.2, at a live owner and a live peer (in-process). Meanwhile a real
 * peer from 127.0.0.1 downloads
 * from both and merges the file; after it, another one does; and memory
 * stays bounded.
 *
 * The same for µTP: random datagrams, mutated µTP packets and µTP sessions
 * (a SYN answered, then packets with right and wrong acks, out of order,
 * outsize, duplicated, with selective ACKs, FIN and RESET, carrying
 * handshakes and frames) from 127.0.0.2-127.0.0.5 at the UDP side of the
 * same two ports, while a real peer downloads from both over µTP.
 *
 * The inputs come from a seeded generator (mulberry32), so a failure is
 * reproduced with FUZZ_SEED=<the seed printed in the failure>. (An MSE
 * input's Diffie-Hellman key is a real one, so not seeded; what is sent
 * around it is.) The run is
 * bounded by FUZZ_INPUTS (default 4000) and stops by itself.
 */
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import {
  bencodeEncode,
  CRYPTO_PLAINTEXT,
  CRYPTO_RC4,
  encodeExtendedHandshake,
  encodeMessage,
  encodeMetadataMessage,
  encodeUtpPacket,
  type Metainfo,
  MSE_KEY_LENGTH,
  MSE_MAX_PAD,
  makePeerId,
  mseCiphers,
  PROCESS_REORDER_BUDGET,
  req1Hash,
  req23Hash,
  seqAdd,
  UTP_REORDER_PROCESS_MAX_BYTES,
  type UtpPacket,
  withExtensionBit,
  withFastBit,
} from '@swarmdrop/protocol';
import { MAX_MSE_INITIAL_PAYLOAD, MseKeyPair, mseInitiate } from '@swarmdrop/protocol/node';
import {
  CHUNK,
  Cleanup,
  closed,
  freePort,
  MiB,
  merged,
  metricValue,
  RawUtpRemote,
  scrapeMetrics,
  startOwner,
  startPeer,
  type TestPeerProcess,
  within,
} from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const SEED = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
const INPUTS = Number(process.env.FUZZ_INPUTS ?? 4_000);
/** µTP fuzz inputs: one datagram, or one session of several. */
const UTP_INPUTS = Number(process.env.FUZZ_UTP_INPUTS ?? 3_000);
/** How long a µTP session waits for its SYN to be answered (it may be rate-limited). */
const UTP_ANSWER_MS = 300;
const CONCURRENCY = 24;
/** A connection the target has not closed this long after our FIN is closed by us. */
const LINGER_MS = 2_000;
const HANG_MS = 90_000;

/** mulberry32: a tiny seeded PRNG, so every run can be replayed. */
class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  }
  int(max: number): number {
    return Math.floor(this.next() * max);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  bytes(length: number): Buffer {
    const out = Buffer.alloc(length);
    for (let i = 0; i < length; i++) out[i] = this.int(256);
    return out;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
}

/** Byte flips, truncation, duplication and insertion of random bytes. */
function mutate(rng: Rng, input: Buffer): Buffer {
  let out = Buffer.from(input);
  for (let n = 1 + rng.int(3); n > 0; n--) {
    switch (rng.int(4)) {
      case 0:
        if (out.length > 0) out[rng.int(out.length)] = rng.int(256);
        break;
      case 1:
        out = out.subarray(0, rng.int(out.length + 1));
        break;
      case 2: {
        const at = rng.int(out.length + 1);
        const len = rng.int(Math.min(64, out.length - at) + 1);
        out = Buffer.concat([
          out.subarray(0, at + len),
          out.subarray(at, at + len),
          out.subarray(at + len),
        ]);
        break;
      }
      default: {
        const at = rng.int(out.length + 1);
        out = Buffer.concat([out.subarray(0, at), rng.bytes(1 + rng.int(16)), out.subarray(at)]);
      }
    }
  }
  return out;
}

function interestingU32(rng: Rng, metainfo: Metainfo): number {
  const count = metainfo.geometry.pieceCount;
  return rng.pick([
    0,
    1,
    count - 1,
    count,
    16_384,
    16_383,
    131_072,
    131_073,
    CHUNK,
    2 ** 31,
    2 ** 32 - 1,
    rng.int(2 ** 32),
  ]);
}

function handshake(rng: Rng, metainfo: Metainfo): Buffer {
  return encodeMessage({
    type: 'handshake',
    // Plain, offering BEP 10 (so that the extended frames below reach the extension handlers),
    // both BEP 10 and BEP 6 (so that the fast messages are taken), BEP 6 alone, or random bits.
    reserved: rng.chance(0.3)
      ? new Uint8Array(8)
      : rng.chance(0.85)
        ? rng.pick([
            withExtensionBit(new Uint8Array(8)),
            withFastBit(withExtensionBit(new Uint8Array(8))),
            withFastBit(new Uint8Array(8)),
          ])
        : rng.bytes(8),
    infoHash: rng.chance(0.9) ? metainfo.infoHash : rng.bytes(20),
    peerId: rng.chance(0.5) ? makePeerId(1 + rng.int(65_535)) : rng.bytes(20),
  });
}

/** One length-prefixed frame: mostly well-formed messages with hostile fields, some garbage. */
function frame(rng: Rng, metainfo: Metainfo, kind = rng.int(18)): Buffer {
  const u32 = () => interestingU32(rng, metainfo);
  const bitfieldLength = Math.ceil(metainfo.geometry.pieceCount / 8);
  const raw = (id: number, body: Buffer) => {
    const out = Buffer.alloc(5 + body.length);
    out.writeUInt32BE(1 + body.length, 0);
    out[4] = id;
    body.copy(out, 5);
    return out;
  };
  const ints = (...values: number[]) => {
    const out = Buffer.alloc(values.length * 4);
    values.forEach((v, i) => {
      out.writeUInt32BE(v >>> 0, i * 4);
    });
    return out;
  };
  const extended = (id: number, payload: Buffer) =>
    raw(20, Buffer.concat([Buffer.from([id]), payload]));
  const metadataPiece = () => rng.pick([0, 1, 2, 0xffff_ffff, 2 ** 31, -1, rng.int(100)]);
  switch (kind) {
    case 0:
      return Buffer.alloc(4); // keep-alive
    case 1:
      return raw(rng.int(4), Buffer.alloc(0)); // choke, unchoke, interested, not interested
    case 2:
      return raw(4, ints(u32()));
    case 3:
      return raw(5, rng.chance(0.7) ? rng.bytes(bitfieldLength) : rng.bytes(rng.int(40)));
    case 4:
    case 5:
      return raw(6, ints(u32(), u32(), u32()));
    case 6:
      return raw(8, ints(u32(), u32(), u32()));
    case 7:
      return raw(7, Buffer.concat([ints(u32(), u32()), rng.bytes(rng.int(600))]));
    case 8:
      return raw(9, rng.bytes(2));
    case 9:
      return raw(20 + rng.int(200), rng.bytes(rng.int(100)));
    case 11: {
      // An extended handshake: ours, or one with hostile fields, or garbage.
      const payload = rng.pick([
        () =>
          encodeExtendedHandshake({
            enabled: rng.chance(0.5) ? ['ut_metadata'] : ['ut_metadata', 'ut_pex'],
            version: 'fuzz',
            metadataSize: rng.pick([1, 100, 9 * MiB, 2 ** 40, metainfo.infoBytes.length]),
          }),
        () =>
          bencodeEncode({
            m: rng.pick([{ ut_metadata: rng.int(300) }, 5, 'x', { ut_pex: -1 }, {}]),
            metadata_size: rng.pick([-1, 0, 'big', 2 ** 53, 10]),
            p: rng.pick([0, 70_000, 'port']),
            reqq: rng.pick([-5, 0, 2 ** 40]),
            v: rng.bytes(rng.int(200)),
          }),
        () => rng.bytes(rng.int(200)),
      ])();
      return extended(0, rng.chance(0.2) ? mutate(rng, payload) : payload);
    }
    case 12:
    case 13: {
      // ut_metadata on our id (1): requests (some in floods), data, rejects, garbage.
      const kind = rng.int(4);
      if (kind === 0) {
        const n = rng.chance(0.2) ? 50 + rng.int(200) : 1;
        return Buffer.concat(
          Array.from({ length: n }, () =>
            extended(1, Buffer.from(`d8:msg_typei0e5:piecei${metadataPiece()}ee`, 'latin1')),
          ),
        );
      }
      if (kind === 1)
        return extended(
          1,
          encodeMetadataMessage({
            type: 'data',
            piece: rng.int(3),
            totalSize: rng.int(2 ** 20),
            data: rng.bytes(rng.int(2000)),
          }),
        );
      if (kind === 2)
        return extended(1, encodeMetadataMessage({ type: 'reject', piece: rng.int(5) }));
      return extended(1 + rng.int(3), mutate(rng, Buffer.from('d8:msg_typei0e5:piecei0ee')));
    }
    case 10: {
      // A length prefix that lies.
      const out = rng.bytes(5 + rng.int(20));
      out.writeUInt32BE(rng.pick([0xffff_ffff, 2 ** 24, 1 + rng.int(2 ** 20), 0]), 0);
      return out;
    }
    // BEP 6: suggest and allowed fast; have all and have none; reject request.
    case 14:
      return raw(rng.chance(0.5) ? 13 : 17, ints(u32()));
    case 15:
      return raw(rng.chance(0.5) ? 14 : 15, Buffer.alloc(0));
    case 16:
      return raw(16, ints(u32(), u32(), u32()));
    default:
      return rng.bytes(rng.int(40));
  }
}

function percent(bytes: Uint8Array): string {
  return [...bytes].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');
}

function announceQuery(rng: Rng, metainfo: Metainfo): string {
  const params: string[] = [];
  if (rng.chance(0.9))
    params.push(
      `info_hash=${percent(rng.chance(0.8) ? metainfo.infoHash : rng.bytes(rng.int(30)))}`,
    );
  if (rng.chance(0.9))
    params.push(`peer_id=${percent(rng.bytes(rng.chance(0.9) ? 20 : rng.int(30)))}`);
  if (rng.chance(0.9))
    params.push(
      `port=${rng.pick(['0', '1', '6881', '65535', '65536', '-1', 'x', String(rng.int(70_000))])}`,
    );
  if (rng.chance(0.5))
    params.push(`left=${rng.pick(['0', '1', '-5', 'lots', String(rng.int(2 ** 31))])}`);
  if (rng.chance(0.5))
    params.push(`numwant=${rng.pick(['0', '5', '200', '100000', '-1', 'all', '99999999999'])}`);
  if (rng.chance(0.5))
    params.push(`event=${rng.pick(['started', 'stopped', 'completed', '', 'bogus', '%ff'])}`);
  if (rng.chance(0.3)) params.push(rng.pick(['compact=0', 'compact=1', 'key=%zz', '%', '=', '&&']));
  return `/announce?${params.join('&')}`;
}

function httpRequest(rng: Rng, metainfo: Metainfo): Buffer {
  const method = rng.pick(['GET', 'GET', 'GET', 'HEAD', 'POST', 'PUT', 'OPTIONS', 'BREW', 'G']);
  const path = rng.pick([
    '/',
    '/status',
    '/metainfo.torrent',
    `/${metainfo.name}.torrent`,
    '/%zz',
    '//x',
    '*',
    'http://[',
    `/${'a'.repeat(rng.int(4_000))}`,
    `/${percent(rng.bytes(rng.int(50)))}`,
    announceQuery(rng, metainfo),
    announceQuery(rng, metainfo),
    announceQuery(rng, metainfo),
  ]);
  const headers = [`Host: ${rng.pick(['127.0.0.1', 'x', '', '[::1]:1', 'a'.repeat(300)])}`];
  if (rng.chance(0.2))
    headers.push(`Content-Length: ${rng.pick(['0', '5', '-1', 'x', '99999999'])}`);
  if (rng.chance(0.1)) headers.push('Transfer-Encoding: chunked');
  if (rng.chance(0.2)) headers.push(`X-${rng.int(100)}: ${'v'.repeat(rng.int(2_000))}`);
  if (rng.chance(0.1)) headers.push(rng.bytes(rng.int(30)).toString('latin1'));
  let text = `${method} ${path} HTTP/1.${rng.int(2)}\r\n${headers.join('\r\n')}\r\n\r\n`;
  if (rng.chance(0.2)) text += rng.bytes(rng.int(100)).toString('latin1');
  if (rng.chance(0.2)) text += `GET /status HTTP/1.1\r\nHost: x\r\n\r\n`; // pipelined
  return Buffer.from(text, 'latin1');
}

/** One fuzz input: what kind it is (for the tally) and its bytes. */
function input(rng: Rng, metainfo: Metainfo): { kind: string; bytes: Buffer } {
  const kind = rng.pick([
    'random',
    'handshake',
    'frames',
    'frames',
    'extended',
    'http',
    'http',
    'announce',
  ]);
  let bytes: Buffer;
  switch (kind) {
    case 'random':
      bytes = rng.bytes(rng.int(300));
      if (rng.chance(0.5) && bytes.length > 0) bytes[0] = 0x13;
      break;
    case 'handshake':
      bytes = mutate(rng, handshake(rng, metainfo));
      break;
    case 'frames': {
      const frames = Array.from({ length: 1 + rng.int(30) }, () => frame(rng, metainfo));
      bytes = Buffer.concat([handshake(rng, metainfo), ...frames]);
      if (rng.chance(0.3)) bytes = mutate(rng, bytes);
      break;
    }
    case 'extended': {
      // BEP 10 and ut_metadata alone: a bad frame among the others would make the decoder drop
      // the whole read, handshake and all, before the extension handlers saw anything.
      const frames = Array.from({ length: 1 + rng.int(8) }, () =>
        frame(rng, metainfo, rng.chance(0.3) ? 11 : 12),
      );
      bytes = Buffer.concat([
        encodeMessage({
          type: 'handshake',
          reserved: withExtensionBit(new Uint8Array(8)),
          infoHash: metainfo.infoHash,
          peerId: makePeerId(1 + rng.int(65_535)),
        }),
        ...frames,
      ]);
      break;
    }
    case 'announce':
      bytes = Buffer.from(
        `GET ${announceQuery(rng, metainfo)} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`,
        'latin1',
      );
      if (rng.chance(0.2)) bytes = mutate(rng, bytes);
      break;
    default:
      bytes = httpRequest(rng, metainfo);
      if (rng.chance(0.2)) bytes = mutate(rng, bytes);
  }
  return { kind, bytes };
}

const UTP_TYPES: readonly UtpPacket['type'][] = ['data', 'fin', 'state', 'reset', 'syn'];

/** A µTP packet with hostile fields: any type, id, seq, ack, window, selective ACK and payload. */
function utpPacket(rng: Rng, metainfo: Metainfo): UtpPacket {
  const sackBytes = rng.pick([0, 0, 4, 8, 32]);
  return {
    type: rng.pick(UTP_TYPES),
    connectionId: rng.pick([0, 1, 0xfffe, 0xffff, rng.int(0x10000)]),
    timestampUs: rng.int(2 ** 32),
    timestampDiffUs: rng.int(2 ** 32),
    windowSize: rng.pick([0, 1, 1 << 20, 2 ** 32 - 1, rng.int(2 ** 32)]),
    seq: rng.int(0x10000),
    ack: rng.int(0x10000),
    sack: sackBytes > 0 ? rng.bytes(sackBytes) : undefined,
    payload: rng.chance(0.5) ? wirePayload(rng, metainfo) : rng.bytes(rng.int(200)),
  };
}

/** A handshake and frames, as a µTP payload. */
function wirePayload(rng: Rng, metainfo: Metainfo): Buffer {
  const frames = Array.from({ length: rng.int(10) }, () => frame(rng, metainfo));
  return Buffer.concat([handshake(rng, metainfo), ...frames]);
}

/** One µTP datagram: random bytes, or a µTP packet, mutated or not. */
function utpDatagram(rng: Rng, metainfo: Metainfo): Buffer {
  if (rng.chance(0.3)) {
    const bytes = rng.bytes(rng.int(120));
    if (bytes.length > 0 && rng.chance(0.5)) bytes[0] = (rng.int(6) << 4) | 1; // version 1
    return bytes;
  }
  const encoded = encodeUtpPacket(utpPacket(rng, metainfo));
  return rng.chance(0.5) ? mutate(rng, encoded) : encoded;
}

/**
 * A µTP session from `remote`: a SYN, and once it is answered (the remote
 * is not blind), packets on that connection with the right ack and with
 * wrong ones, in order and not, outsize, repeated, ending or not.
 */
async function utpSession(rng: Rng, remote: RawUtpRemote, metainfo: Metainfo): Promise<string> {
  const id = rng.int(0xfffe);
  const answered = remote.next((p) => p.type === 'state' && p.connectionId === id, UTP_ANSWER_MS);
  remote.send({ type: 'syn', connectionId: id, seq: 1 });
  let ours: number;
  try {
    ours = (await answered).seq;
  } catch {
    return 'utp-syn-unanswered';
  }
  const rightAck = seqAdd(ours, -1);
  let seq = 2;
  for (let n = 1 + rng.int(20); n > 0; n--) {
    const kind = rng.int(8);
    const ack = rng.chance(0.8) ? rightAck : rng.int(0x10000);
    const packet = {
      connectionId: (id + 1) & 0xffff,
      ack,
      windowSize: rng.pick([0, 1 << 20]),
      sack: rng.chance(0.2) ? rng.bytes(4) : undefined,
    };
    if (kind <= 2) {
      remote.send({ ...packet, type: 'data', seq, payload: wirePayload(rng, metainfo) });
      seq = seqAdd(seq, 1);
    } else if (kind === 3) {
      // Far ahead of a hole, outsize: what the reorder buffer holds.
      const ahead = 1 + rng.int(300);
      const size = rng.pick([1, 1_300, 30_000, 60_000]);
      remote.send({ ...packet, type: 'data', seq: seqAdd(seq, ahead), payload: rng.bytes(size) });
    } else if (kind === 4) {
      remote.send({ ...packet, type: 'state', seq });
    } else if (kind === 5) {
      remote.send({
        ...packet,
        type: 'data',
        seq: seqAdd(seq, -1 - rng.int(3)),
        payload: rng.bytes(9),
      });
    } else if (kind === 6) {
      remote.send({ ...packet, type: rng.pick(['fin', 'reset'] as const), seq });
      break;
    } else {
      remote.sendBytes(mutate(rng, encodeUtpPacket({ ...utpPacket(rng, metainfo), ...packet })));
    }
  }
  return 'utp-session';
}

const MSE_VARIANTS = [
  'random-key',
  'truncated',
  'key-then-garbage',
  'dribbled',
  'mutated-offer',
  'handshake-then-frames',
] as const;
type MseVariant = (typeof MSE_VARIANTS)[number];

/** A first byte that starts neither a plaintext handshake nor HTTP: the port's sniffer calls it MSE. */
function mseFirstByte(bytes: Buffer, rng: Rng): Buffer {
  if (bytes.length > 0) bytes[0] = 0x80 + rng.int(0x80);
  return bytes;
}

/** Bytes to read before going on, or fewer if the remote closes or `ms` passes. */
function readAtLeast(socket: Socket, length: number, ms: number): Promise<Buffer> {
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    let got = 0;
    const done = () => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', done);
      socket.pause();
      resolve(Buffer.concat(parts));
    };
    const onData = (chunk: Buffer) => {
      parts.push(chunk);
      got += chunk.length;
      if (got >= length) done();
    };
    const timer = setTimeout(done, ms);
    socket.on('data', onData);
    socket.on('close', done);
    socket.resume();
  });
}

/**
 * Everything random about one MSE input, drawn at once (before any await),
 * so that the seed alone decides it, as it does for the other inputs.
 */
interface MsePlan {
  readonly variant: MseVariant;
  /** random-key, truncated: the whole input. */
  readonly raw: Buffer;
  readonly pad: Buffer;
  /** key-then-garbage: what follows our key once the remote answered. */
  readonly garbage: Buffer;
  /** dribbled: how many bytes of key and tail go out one at a time. */
  readonly dribble: number;
  readonly dribbleTail: Buffer;
  /** mutated-offer: the fields of step 3. */
  readonly wrongTorrent: Buffer | undefined;
  readonly badReq1: Buffer | undefined;
  readonly badVc: Buffer | undefined;
  readonly provide: number;
  readonly padC: number;
  readonly padCBytes: Buffer;
  readonly ia: number;
  readonly iaBytes: Buffer;
  /** mutated-offer: a seed for mutate() over the finished step 3, or undefined. */
  readonly mutateSeed: number | undefined;
  /** handshake-then-frames. */
  readonly policy: 'require' | 'prefer';
  readonly frames: Buffer;
}

function planMse(rng: Rng, metainfo: Metainfo): MsePlan {
  const variant = rng.pick(MSE_VARIANTS);
  const padC = rng.chance(0.8) ? rng.int(MSE_MAX_PAD + 1) : MSE_MAX_PAD + 1 + rng.int(60_000);
  const ia = rng.chance(0.8)
    ? rng.int(200)
    : rng.pick([MAX_MSE_INITIAL_PAYLOAD, MAX_MSE_INITIAL_PAYLOAD + 1, 0xffff]);
  const frames = Array.from({ length: 1 + rng.int(30) }, () => frame(rng, metainfo));
  let payload: Buffer = Buffer.concat([handshake(rng, metainfo), ...frames]);
  if (rng.chance(0.3)) payload = mutate(rng, payload);
  const truncatedLength = 1 + rng.int(MSE_KEY_LENGTH - 1);
  return {
    variant,
    // Anything as Ya (0, 1, p-1 and numbers past p included), then garbage; or part of a key.
    raw: mseFirstByte(
      variant === 'truncated'
        ? rng.bytes(truncatedLength)
        : Buffer.concat([rng.bytes(MSE_KEY_LENGTH), rng.bytes(rng.int(MSE_MAX_PAD + 1))]),
      rng,
    ),
    pad: rng.bytes(rng.int(MSE_MAX_PAD + 1)),
    garbage: rng.bytes(rng.int(2 * MSE_MAX_PAD + 100)),
    dribble: rng.int(MSE_KEY_LENGTH + 65),
    dribbleTail: rng.bytes(64),
    wrongTorrent: rng.chance(0.2) ? rng.bytes(20) : undefined,
    badReq1: rng.chance(0.1) ? rng.bytes(20) : undefined,
    badVc: rng.chance(0.1) ? rng.bytes(8) : undefined,
    provide: rng.pick([
      CRYPTO_RC4,
      CRYPTO_PLAINTEXT,
      CRYPTO_RC4 | CRYPTO_PLAINTEXT,
      0,
      rng.int(2 ** 32),
    ]),
    padC,
    padCBytes: rng.bytes(Math.min(padC, 600)),
    ia,
    iaBytes: rng.bytes(Math.min(ia, 300)),
    mutateSeed: rng.chance(0.3) ? rng.int(2 ** 31) : undefined,
    policy: rng.chance(0.5) ? 'require' : 'prefer',
    frames: payload,
  };
}

/**
 * Plays one hostile MSE initiator on a connected socket. Returns whether a
 * whole handshake went through (then hostile frames followed it).
 */
async function playMse(socket: Socket, plan: MsePlan, metainfo: Metainfo): Promise<boolean> {
  switch (plan.variant) {
    case 'random-key':
    case 'truncated':
      socket.write(plan.raw);
      return false;
    case 'key-then-garbage': {
      socket.write(new MseKeyPair().publicKey);
      if ((await readAtLeast(socket, MSE_KEY_LENGTH, LINGER_MS)).length < MSE_KEY_LENGTH)
        return false;
      socket.write(plan.garbage);
      return false;
    }
    case 'dribbled': {
      const bytes = Buffer.concat([new MseKeyPair().publicKey, plan.dribbleTail]);
      socket.setNoDelay(true);
      for (let i = 0; i < plan.dribble && !socket.destroyed; i++) {
        socket.write(bytes.subarray(i, i + 1));
        // Pacing, not synchronisation: one byte a millisecond, so each is its own segment.
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
      return false;
    }
    case 'mutated-offer': {
      const keys = new MseKeyPair();
      socket.write(Buffer.concat([keys.publicKey, plan.pad]));
      const reply = await readAtLeast(socket, MSE_KEY_LENGTH, LINGER_MS);
      if (reply.length < MSE_KEY_LENGTH) return false;
      let secret: Buffer;
      try {
        secret = keys.secret(reply.subarray(0, MSE_KEY_LENGTH));
      } catch {
        return false;
      }
      const infoHash = plan.wrongTorrent ?? metainfo.infoHash;
      const { encrypt } = mseCiphers(secret, infoHash, true);
      const head = Buffer.alloc(8 + 4 + 2);
      plan.badVc?.copy(head, 0);
      head.writeUInt32BE(plan.provide, 8);
      head.writeUInt16BE(plan.padC & 0xffff, 12);
      const iaLength = Buffer.alloc(2);
      iaLength.writeUInt16BE(plan.ia, 0);
      let step3: Buffer = Buffer.concat([
        plan.badReq1 ?? req1Hash(secret),
        req23Hash(infoHash, secret),
        encrypt.update(Buffer.concat([head, plan.padCBytes, iaLength, plan.iaBytes])),
      ]);
      if (plan.mutateSeed !== undefined) step3 = mutate(new Rng(plan.mutateSeed), step3);
      socket.write(step3);
      return false;
    }
    case 'handshake-then-frames': {
      let mse: Awaited<ReturnType<typeof mseInitiate>>;
      try {
        mse = await mseInitiate(socket, {
          infoHash: metainfo.infoHash,
          policy: plan.policy,
          timeoutMs: LINGER_MS,
        });
      } catch {
        return false;
      }
      mse.socket.on('error', () => {});
      mse.socket.resume();
      mse.socket.end(plan.frames);
      return true;
    }
  }
}

/** Connects from 127.0.0.2, plays one MSE variant, half-closes, and waits (bounded) for the target to close. */
async function sendMse(port: number, plan: MsePlan, metainfo: Metainfo): Promise<boolean> {
  const socket = connect({ host: '127.0.0.1', port, localAddress: '127.0.0.2' });
  socket.on('error', () => {});
  const socketClosed = closed(socket);
  const timer = setTimeout(() => socket.destroy(), 4 * LINGER_MS);
  try {
    await once(socket, 'connect');
    const completed = await playMse(socket, plan, metainfo);
    if (!completed) socket.end();
    socket.resume();
    await socketClosed;
    return completed;
  } catch {
    return false; // refused or reset: the target turned it away, which is fine
  } finally {
    clearTimeout(timer);
    socket.destroy();
  }
}

/** Sends `bytes` from 127.0.0.2, half-closes, and waits (bounded) for the target to close. */
async function send(port: number, bytes: Buffer): Promise<void> {
  const socket = connect({ host: '127.0.0.1', port, localAddress: '127.0.0.2' });
  socket.on('error', () => {});
  socket.resume();
  const socketClosed = closed(socket);
  const timer = setTimeout(() => socket.destroy(), LINGER_MS);
  try {
    await once(socket, 'connect');
    socket.end(bytes);
    await socketClosed;
  } catch {
    // refused or reset: the target turned it away, which is fine
  } finally {
    clearTimeout(timer);
    socket.destroy();
  }
}

describe(`fuzzing the network edge (FUZZ_SEED=${SEED})`, { timeout: 120_000 }, () => {
  it('an owner and a peer survive thousands of hostile inputs and keep serving real peers', async () => {
    const size = 30 * CHUNK - 999;
    const {
      owner,
      data,
      log: ownerLog,
    } = await startOwner(cleanup, { size, options: { expectedPeers: 2 } });
    // Peer A: the live peer under fuzz. It gets half from the owner as its
    // batch, the rest by fallback, then serves whoever connects.
    const a = await startPeer(cleanup, {
      ownerPort: owner.port,
      port: 0,
      neighbourPort: await freePort(),
      options: { fallbackAfterMs: 300 },
    });
    await within(merged(a.log), HANG_MS, () => a.log.tail());
    const rssBefore = process.memoryUsage().rss;

    const realPeer = async (name: string): Promise<TestPeerProcess> => {
      const p = await startPeer(cleanup, {
        ownerPort: owner.port,
        port: 0,
        neighbourPort: a.peer.port,
      });
      const path = await within(merged(p.log), HANG_MS, () => `${name}: ${p.log.tail()}`);
      expect((await readFile(path)).equals(data), `${name} merged a different file`).toBe(true);
      return p;
    };

    const rng = new Rng(SEED);
    const tally = new Map<string, number>();
    const targets = [owner.port, a.peer.port];
    let next = 0;
    let mseCompleted = 0;
    const fuzz = async () => {
      while (next < INPUTS) {
        const n = next++;
        // One input in five is an MSE handshake, played interactively.
        if (rng.chance(0.2)) {
          const plan = planMse(rng, owner.metainfo);
          const kind = `mse:${plan.variant}`;
          tally.set(kind, (tally.get(kind) ?? 0) + 1);
          if (await sendMse(targets[n % 2]!, plan, owner.metainfo)) mseCompleted++;
          continue;
        }
        const { kind, bytes } = input(rng, owner.metainfo);
        tally.set(kind, (tally.get(kind) ?? 0) + 1);
        await send(targets[n % 2]!, bytes);
      }
    };
    // A real peer downloads from the owner and from peer A during the fuzz.
    const [during] = await Promise.all([
      realPeer('peer during the fuzz'),
      Promise.all(Array.from({ length: CONCURRENCY }, fuzz)),
    ]);
    expect(next).toBe(INPUTS);
    // The inputs reached the parsers of both: each closed connections for
    // protocol errors (printed, or counted in a log-suppressed line).
    for (const [name, log] of [
      ['owner', ownerLog],
      ['peer', a.log],
    ] as const) {
      const refusedFromFuzz =
        log.filter('protocol-error', (f) => f.peer?.startsWith('127.0.0.2:') ?? false).length +
        log
          .filter('log-suppressed', { from: '127.0.0.2' })
          .filter((l) => /protocol-error/.test(l.fields.events ?? '')).length;
      expect(refusedFromFuzz, `${name} saw no protocol error from the fuzz`).toBeGreaterThan(0);
    }
    // The extended frames reached the extension protocol and the metadata server of both.
    for (const [name, log] of [
      ['owner', ownerLog],
      ['peer', a.log],
    ] as const) {
      const fromFuzz = (event: string) =>
        log.filter(event, (f) => (f.peer ?? f.from)?.startsWith('127.0.0.2:') ?? false).length +
        log
          .filter('log-suppressed', { from: '127.0.0.2' })
          .filter((l) => new RegExp(event).test(l.fields.events ?? '')).length;
      expect(fromFuzz('extended-handshake'), `${name}: no extended handshake`).toBeGreaterThan(0);
      expect(fromFuzz('metadata-requested'), `${name}: no metadata request`).toBeGreaterThan(0);
    }
    expect(during.log.filter('chunk-received', { via: 'neighbour' }).length).toBeGreaterThan(0);
    // The MSE inputs reached the handshake of both: refused as failed handshakes, and some went all the way.
    for (const [name, log] of [
      ['owner', ownerLog],
      ['peer', a.log],
    ] as const) {
      const mseRefused =
        log.filter(
          'connection-refused',
          (f) => (f.from?.startsWith('127.0.0.2:') ?? false) && /MSE/.test(f.reason ?? ''),
        ).length +
        log
          .filter('log-suppressed', { from: '127.0.0.2' })
          .filter((l) => /connection-refused/.test(l.fields.events ?? '')).length;
      expect(mseRefused, `${name} refused no MSE handshake from the fuzz`).toBeGreaterThan(0);
    }
    expect(mseCompleted, 'no fuzzed MSE handshake went through').toBeGreaterThan(0);

    // Both still serve a real peer after it.
    const after = await realPeer('peer after the fuzz');
    expect(after.log.filter('chunk-received', { via: 'neighbour' }).length).toBeGreaterThan(0);
    const status = owner.status() as { peerCount: number };
    expect(status.peerCount).toBeLessThanOrEqual(3 * 64 + 10);
    // Memory: generous, it only catches state that grows with every input.
    const grownMiB = (process.memoryUsage().rss - rssBefore) / MiB;
    expect(grownMiB, `RSS grew ${grownMiB.toFixed(1)} MiB over ${INPUTS} inputs`).toBeLessThan(256);
    expect([...tally.values()].reduce((s, n) => s + n, 0)).toBe(INPUTS);
  });
});

describe(`fuzzing µTP (FUZZ_SEED=${SEED})`, { timeout: 120_000 }, () => {
  it('an owner and a peer survive thousands of hostile µTP datagrams and sessions while a real peer downloads over µTP', async () => {
    const size = 30 * CHUNK - 999;
    const { owner, data } = await startOwner(cleanup, { size, options: { expectedPeers: 2 } });
    const a = await startPeer(cleanup, {
      ownerPort: owner.port,
      port: 0,
      neighbourPort: await freePort(),
      options: { fallbackAfterMs: 300 },
    });
    await within(merged(a.log), HANG_MS, () => a.log.tail());
    const rssBefore = process.memoryUsage().rss;
    const realPeer = async (name: string): Promise<TestPeerProcess> => {
      const p = await startPeer(cleanup, {
        ownerPort: owner.port,
        port: 0,
        neighbourPort: a.peer.port,
        options: { transport: 'utp' },
      });
      const path = await within(merged(p.log), HANG_MS, () => `${name}: ${p.log.tail()}`);
      expect((await readFile(path)).equals(data), `${name} merged a different file`).toBe(true);
      for (const line of p.log.filter('connected')) expect(line.fields.transport).toBe('utp');
      return p;
    };

    const rng = new Rng(SEED ^ 0x5a5a);
    const tally = new Map<string, number>();
    const targets = [owner.port, a.peer.port];
    const remotes = await Promise.all(
      [2, 3, 4, 5].flatMap((host) =>
        targets.map((port) => RawUtpRemote.open(cleanup, `127.0.0.${host}`, { port })),
      ),
    );
    let next = 0;
    let reorderPeak = 0;
    const fuzz = async (remote: RawUtpRemote) => {
      while (next < UTP_INPUTS) {
        next++;
        let kind: string;
        if (rng.chance(0.25)) {
          kind = await utpSession(rng, remote, owner.metainfo);
        } else {
          kind = 'utp-datagram';
          remote.sendBytes(utpDatagram(rng, owner.metainfo));
          // Let the target read: a datagram burst past the socket buffer only tests the kernel.
          await new Promise((resolve) => setImmediate(resolve));
        }
        reorderPeak = Math.max(reorderPeak, PROCESS_REORDER_BUDGET.held);
        tally.set(kind, (tally.get(kind) ?? 0) + 1);
      }
    };
    const [during] = await Promise.all([
      realPeer('peer during the µTP fuzz'),
      Promise.all(remotes.map(fuzz)),
    ]);
    expect(next).toBe(UTP_INPUTS);
    expect(during.log.filter('chunk-received', { via: 'neighbour' }).length).toBeGreaterThan(0);
    // The fuzz reached both decoders and both state machines.
    for (const port of targets) {
      const malformed = metricValue(
        await scrapeMetrics(port),
        'swarmdrop_utp_malformed_datagrams_total',
      );
      expect(malformed, `port ${port} saw no malformed µTP datagram`).toBeGreaterThan(0);
    }
    expect(tally.get('utp-session') ?? 0, JSON.stringify([...tally])).toBeGreaterThan(0);
    expect(reorderPeak).toBeLessThanOrEqual(UTP_REORDER_PROCESS_MAX_BYTES);

    await realPeer('peer after the µTP fuzz');
    const grownMiB = (process.memoryUsage().rss - rssBefore) / MiB;
    expect(grownMiB, `RSS grew ${grownMiB.toFixed(1)} MiB over ${UTP_INPUTS} inputs`).toBeLessThan(
      256,
    );
  });
});
