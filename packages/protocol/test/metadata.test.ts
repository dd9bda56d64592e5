/**
 * BEP 9 (ut_metadata): the message codec, the assembly of one remote's
 * pieces, the server every connection runs, and the fetcher against
 * honest and hostile remotes over loopback socket pairs, on a ManualClock.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { Cleanup, HANG_MS, socketPair, within } from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import {
  Bitfield,
  buildMetainfo,
  CLIENT_NAME,
  decodeMetadataMessage,
  encodeExtendedHandshake,
  encodeMessage,
  encodeMetadataMessage as encodeMetadata,
  MAX_METADATA_SIZE,
  ManualClock,
  METADATA_PIECE_SIZE,
  MetadataAssembly,
  MetadataRemoteError,
  makePeerId,
  parseInfoDictionary,
  type WireError,
  withExtensionBit,
} from '../src/index.js';
import {
  ChunkStore,
  Connection,
  type ConnectionEvents,
  DEFAULT_MAX_REMOTE_REQUESTS,
  MAX_METADATA_OVERRUN,
  MetadataFetcher,
  type MetadataFetcherEvents,
  MetadataServer,
  type OpenedSocket,
  openConnection,
  PeerWire,
} from '../src/node/index.js';
import { storeWith } from './sockets.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

/** A torrent whose info dictionary spans 3 metadata pieces (2 whole, 1 short). */
const PIECES = 2_000;
const { metainfo } = buildMetainfo({
  name: 'big.bin',
  length: PIECES * 16_384,
  pieceLength: 16_384,
  pieceHashes: Array.from({ length: PIECES }, (_, i) =>
    createHash('sha1').update(String(i)).digest(),
  ),
});
const INFO = metainfo.infoBytes;

describe('ut_metadata messages', () => {
  it('round-trip request, data and reject', () => {
    const data = INFO.subarray(0, METADATA_PIECE_SIZE);
    for (const message of [
      { type: 'request', piece: 3 },
      { type: 'reject', piece: 0 },
      { type: 'data', piece: 1, totalSize: INFO.length, data },
    ] as const) {
      const bytes = encodeMetadata(message);
      expect(decodeMetadataMessage(bytes)).toEqual(message);
    }
    // The BEP's own example of a request.
    expect(decodeMetadataMessage(Buffer.from('d8:msg_typei0e5:piecei0ee'))).toEqual({
      type: 'request',
      piece: 0,
    });
  });

  it('skips unknown keys, string values and unknown msg_types', () => {
    expect(
      decodeMetadataMessage(Buffer.from('d1:x3:abc8:msg_typei2e5:piecei7e4:zzzzi-1ee')),
    ).toEqual({ type: 'reject', piece: 7 });
    expect(decodeMetadataMessage(Buffer.from('d8:msg_typei9e5:piecei0ee'))).toBeUndefined();
  });

  it.each([
    ['no dictionary', 'i1e'],
    ['an unclosed dictionary', 'd8:msg_typei0e5:piecei0e'],
    ['no msg_type', 'd5:piecei0ee'],
    ['no piece', 'd8:msg_typei0ee'],
    ['a negative piece', 'd8:msg_typei0e5:piecei-1ee'],
    ['a nested value', 'd8:msg_typei0e5:pieceli0eee'],
    ['data without total_size', 'd8:msg_typei1e5:piecei0eeXYZ'],
    ['a request with bytes after it', 'd8:msg_typei0e5:piecei0eeXYZ'],
    ['a string past the end', 'd99:msg_typei0ee'],
    ['too many keys', `d${Array.from({ length: 17 }, (_, i) => `2:k${i % 10}i0e`).join('')}e`],
  ])('refuses %s with ERR_EXTENDED', (_, text) => {
    let error: unknown;
    try {
      decodeMetadataMessage(Buffer.from(text, 'latin1'));
    } catch (err) {
      error = err;
    }
    expect((error as WireError).code).toBe('ERR_EXTENDED');
  });

  it('refuses a data message of more than one piece', () => {
    const bytes = encodeMetadata({
      type: 'data',
      piece: 0,
      totalSize: 1 << 20,
      data: Buffer.alloc(METADATA_PIECE_SIZE + 1),
    });
    expect(() => decodeMetadataMessage(bytes)).toThrow(/more than one piece/);
  });
});

describe('MetadataAssembly', () => {
  const assembly = (size = INFO.length, infoHash = metainfo.infoHash) =>
    new MetadataAssembly({ infoHash, size });
  const piece = (i: number) =>
    INFO.subarray(i * METADATA_PIECE_SIZE, Math.min(INFO.length, (i + 1) * METADATA_PIECE_SIZE));

  it('asks for every piece once, bounded in flight, and verifies the whole', () => {
    const a = assembly();
    expect(a.pieces).toBe(3);
    expect(a.take(2)).toEqual([0, 1]);
    expect(a.take(2)).toEqual([]);
    expect(a.accept(1, INFO.length, piece(1))).toBe(false);
    expect(a.take(2)).toEqual([2]);
    expect(a.accept(0, INFO.length, piece(0))).toBe(false);
    expect(a.accept(2, INFO.length, piece(2))).toBe(true);
    expect(a.verified().equals(INFO)).toBe(true);
    expect(parseInfoDictionary(a.verified()).infoHash.equals(metainfo.infoHash)).toBe(true);
  });

  it.each([0, -5, 1.5, MAX_METADATA_SIZE + 1])('refuses a metadata_size of %s', (size) => {
    expect(() => assembly(size)).toThrow(MetadataRemoteError);
  });

  it('refuses a piece not asked for, of the wrong length, or with another total_size', () => {
    const a = assembly();
    a.take(1);
    expect(() => a.accept(1, INFO.length, piece(1))).toThrow(/not asked for/);
    expect(() => a.accept(0, INFO.length, piece(0).subarray(1))).toThrow(/expected 16384/);
    expect(() => a.accept(0, INFO.length + 1, piece(0))).toThrow(/total_size/);
    // A piece it already has is not asked for any more.
    a.accept(0, INFO.length, piece(0));
    expect(() => a.accept(0, INFO.length, piece(0))).toThrow(/not asked for/);
  });

  it('refuses metadata whose SHA-1 is not the info-hash', () => {
    const a = assembly(INFO.length, Buffer.alloc(20, 1));
    for (const i of a.take(3)) a.accept(i, INFO.length, piece(i));
    expect(() => a.verified()).toThrow(/is not the info-hash/);
  });
});

type Remote = (socket: OpenedSocket['socket']) => void;

/** A serving end: a Connection offering ut_metadata with `info` and `size` (both may lie). */
function serving(
  clock: ManualClock,
  options: { info?: Buffer; size?: number; offer?: boolean; serve?: boolean } = {},
): Remote {
  return (socket) => {
    const info = options.info ?? INFO;
    const offer = options.offer ?? true;
    const connection = new Connection({
      wire: new PeerWire({
        socket,
        metainfo,
        peerId: makePeerId(9),
        clock,
        ...(offer ? { reserved: withExtensionBit(new Uint8Array(8)) } : {}),
      }),
      pieceCount: metainfo.geometry.pieceCount,
      localHas: new Bitfield(metainfo.geometry.pieceCount),
      clock,
      ...(offer
        ? {
            extensions: {
              enabled: ['ut_metadata'],
              version: 'remote',
              metadataSize: options.size ?? info.length,
            },
          }
        : {}),
    });
    if (options.serve !== false) new MetadataServer({ connection, infoBytes: info, clock });
    cleanup.add(() => connection.close('test over'));
  };
}

/** A fetcher whose candidates are the given remotes, each over its own loopback pair. */
function fetcher(clock: ManualClock, remotes: Remote[], extra: { pieceTimeoutMs?: number } = {}) {
  const queue = [...remotes];
  const events: Array<[keyof MetadataFetcherEvents, ...unknown[]]> = [];
  const f = new MetadataFetcher({
    infoHash: metainfo.infoHash,
    peerId: makePeerId(1),
    clock,
    maxInFlight: 2,
    ...extra,
    dial: async () => {
      const remote = queue.shift();
      if (!remote) return undefined;
      const [ours, theirs] = await socketPair(cleanup);
      remote(theirs);
      return { socket: ours, encryption: 'plaintext', transport: 'tcp' };
    },
  });
  for (const name of ['connected', 'requesting', 'piece', 'dropped', 'fetched'] as const)
    f.on(name, (...args: unknown[]) => events.push([name, ...args]));
  return { f, events };
}

const dropped = (events: Array<[string, ...unknown[]]>) =>
  events.filter((e) => e[0] === 'dropped').map((e) => String(e[2]));

describe('MetadataFetcher', () => {
  it('fetches the info dictionary from a remote that serves it, and closes that connection', async () => {
    const clock = new ManualClock();
    const { f, events } = fetcher(clock, [serving(clock)]);
    const got = await within(f.run(), HANG_MS, () => 'no metadata');
    expect(got.infoBytes.equals(INFO)).toBe(true);
    expect(got.metainfo.infoHash.equals(metainfo.infoHash)).toBe(true);
    expect(got.metainfo.geometry.pieceCount).toBe(PIECES);
    expect(events.filter((e) => e[0] === 'piece').map((e) => e[2])).toEqual([0, 1, 2]);
    expect(events.at(-1)).toEqual(['fetched', got.from, INFO.length]);
  });

  it('drops a remote that sends wrong pieces and gets it from the next', async () => {
    const clock = new ManualClock();
    const wrong = Buffer.from(INFO);
    wrong[20_000] = wrong[20_000]! ^ 0xff;
    const { f, events } = fetcher(clock, [serving(clock, { info: wrong }), serving(clock)]);
    const got = await within(f.run(), HANG_MS, () => 'no metadata');
    expect(got.infoBytes.equals(INFO)).toBe(true);
    expect(dropped(events)).toEqual([expect.stringMatching(/SHA-1 .* is not the info-hash/)]);
  });

  it('drops a remote announcing an oversized metadata_size before asking it anything', async () => {
    const clock = new ManualClock();
    const { f, events } = fetcher(clock, [
      serving(clock, { size: MAX_METADATA_SIZE + 1 }),
      serving(clock),
    ]);
    await within(f.run(), HANG_MS, () => 'no metadata');
    expect(dropped(events)).toEqual([expect.stringMatching(/over the cap of 8388608 bytes/)]);
    expect(events.filter((e) => e[0] === 'piece')).toHaveLength(3);
  });

  it('drops a remote whose pieces are not the size it announced', async () => {
    const clock = new ManualClock();
    const { f, events } = fetcher(clock, [serving(clock, { size: INFO.length + 10 })]);
    await expect(within(f.run(), HANG_MS, () => 'hang')).rejects.toThrow(
      /no remote gave the metadata \(1 tried: .*total_size/,
    );
    expect(dropped(events)).toHaveLength(1);
  });

  it('drops a remote whose extended handshake is malformed, and gets it from the next', async () => {
    const clock = new ManualClock();
    const { f, events } = fetcher(clock, [
      (socket) => {
        const wire = new PeerWire({
          socket,
          metainfo,
          peerId: makePeerId(7),
          clock,
          reserved: withExtensionBit(new Uint8Array(8)),
        });
        wire.onHandshake = () => {
          wire.send({ type: 'extended', id: 0, payload: Buffer.from('d1:mi1ee') });
        };
        cleanup.add(() => wire.close('test over'));
      },
      serving(clock),
    ]);
    const got = await within(f.run(), HANG_MS, () => 'no metadata');
    expect(got.infoBytes.equals(INFO)).toBe(true);
    expect(dropped(events)).toEqual(['ERR_EXTENDED: extended handshake "m" is not a dictionary']);
  });

  it('drops a remote without BEP 10, and one without ut_metadata', async () => {
    const clock = new ManualClock();
    const { f, events } = fetcher(clock, [
      serving(clock, { offer: false }),
      (socket) => {
        const connection = new Connection({
          wire: new PeerWire({
            socket,
            metainfo,
            peerId: makePeerId(8),
            clock,
            reserved: withExtensionBit(new Uint8Array(8)),
          }),
          pieceCount: metainfo.geometry.pieceCount,
          localHas: new Bitfield(metainfo.geometry.pieceCount),
          clock,
          extensions: { enabled: [], version: 'no metadata' },
        });
        cleanup.add(() => connection.close('test over'));
      },
      serving(clock),
    ]);
    await within(f.run(), HANG_MS, () => 'no metadata');
    expect(dropped(events)).toEqual([
      'the remote does not offer BEP 10',
      'the remote does not offer ut_metadata',
    ]);
  });

  it('drops a remote that goes silent, after the piece timeout on the injected clock', async () => {
    const clock = new ManualClock();
    const { f, events } = fetcher(clock, [serving(clock, { serve: false }), serving(clock)], {
      pieceTimeoutMs: 5_000,
    });
    const run = f.run();
    await within(
      new Promise<void>((resolve) => f.once('requesting', () => resolve())),
      HANG_MS,
      () => 'no extended handshake',
    );
    // The silent remote answers no request: nothing happens until the clock moves.
    clock.advance(4_999);
    expect(dropped(events)).toEqual([]);
    clock.advance(1);
    await within(run, HANG_MS, () => 'no metadata');
    expect(dropped(events)).toEqual(['no metadata piece within 5000 ms']);
  });

  it('fails with one line when no candidate is left, and stops on abort', async () => {
    const clock = new ManualClock();
    await expect(fetcher(clock, []).f.run()).rejects.toThrow(
      /^no remote gave the metadata \(0 tried\)$/,
    );
    const controller = new AbortController();
    controller.abort();
    const f = new MetadataFetcher({
      infoHash: metainfo.infoHash,
      peerId: makePeerId(1),
      clock,
      signal: controller.signal,
      dial: async () => undefined,
    });
    await expect(f.run()).rejects.toThrow(/abort/);
  });
});

describe('MetadataServer', () => {
  /** A raw remote that speaks BEP 10 and asks the server for pieces by hand. */
  async function served() {
    const clock = new ManualClock();
    const [ours, theirs] = await socketPair(cleanup);
    const reserved = withExtensionBit(new Uint8Array(8));
    const server = new Connection({
      wire: new PeerWire({ socket: ours, metainfo, peerId: makePeerId(2), clock, reserved }),
      pieceCount: metainfo.geometry.pieceCount,
      localHas: new Bitfield(metainfo.geometry.pieceCount),
      clock,
      extensions: { enabled: ['ut_metadata'], version: 's', metadataSize: INFO.length },
    });
    const metadata = new MetadataServer({ connection: server, infoBytes: INFO, clock });
    const client = new Connection({
      wire: new PeerWire({
        socket: theirs,
        infoHash: metainfo.infoHash,
        peerId: makePeerId(3),
        clock,
        reserved,
      }),
      pieceCount: 0,
      localHas: { has: () => false },
      clock,
      extensions: { enabled: ['ut_metadata'], version: 'c' },
    });
    cleanup.add(() => {
      server.close('test over');
      client.close('test over');
    });
    const got: unknown[] = [];
    client.on('extended', (_, payload) => got.push(decodeMetadataMessage(payload)));
    await within(
      new Promise<void>((resolve) => client.once('extendedHandshake', () => resolve())),
      HANG_MS,
      () => 'no extended handshake',
    );
    const ask = (piece: number) =>
      client.sendExtended('ut_metadata', encodeMetadata({ type: 'request', piece }));
    return { clock, server, client, metadata, got, ask };
  }

  it('announces metadata_size and answers requests with data, and a piece out of range with a reject', async () => {
    const { client, metadata, got, ask } = await served();
    expect(client.remoteExtensions?.metadataSize).toBe(INFO.length);
    const rejected: string[] = [];
    metadata.on('rejected', (_, reason) => rejected.push(reason));
    ask(2);
    ask(3);
    await within(
      (async () => {
        while (got.length < 2) await new Promise((r) => setTimeout(r, 5));
      })(),
      HANG_MS,
      () => 'no answers',
    );
    expect(got[0]).toMatchObject({ type: 'data', piece: 2, totalSize: INFO.length });
    expect(
      Buffer.from((got[0] as { data: Uint8Array }).data).equals(INFO.subarray(2 * 16_384)),
    ).toBe(true);
    expect(got[1]).toEqual({ type: 'reject', piece: 3 });
    expect(rejected).toEqual(['no piece 3 of 3']);
  });

  it('rejects requests over its allowance, then cuts off a flood (that connection only)', async () => {
    const { server, metadata, ask, clock } = await served();
    const counts = { sent: 0, rejected: 0 };
    metadata.on('sent', () => counts.sent++);
    metadata.on('rejected', () => counts.rejected++);
    const flood = metadata.allowance + MAX_METADATA_OVERRUN + 1;
    for (let i = 0; i < flood; i++) ask(i % 3);
    const close = await within(server.wire.closed, HANG_MS, () => 'flood not cut off');
    expect(close.reason).toMatch(/^ERR_REQUEST_FLOOD: more than \d+ metadata requests/);
    // The allowance went out or waited for our socket; past it, each request had a reject.
    expect(counts.rejected).toBe(MAX_METADATA_OVERRUN);
    expect(counts.sent).toBeGreaterThan(0);
    expect(counts.sent).toBeLessThanOrEqual(metadata.allowance);
    expect(clock.now()).toBe(0);
  });

  it('gives a new allowance in the next window', async () => {
    const { metadata, ask, clock, got } = await served();
    const total = metadata.allowance + 5;
    for (let i = 0; i < total; i++) ask(0);
    const settle = async (n: number) =>
      within(
        (async () => {
          while (got.length < n) await new Promise((r) => setTimeout(r, 5));
        })(),
        HANG_MS,
        () => `only ${got.length} answers`,
      );
    await settle(total);
    expect(got.filter((m) => (m as { type: string }).type === 'reject')).toHaveLength(5);
    clock.advance(60_000);
    ask(1);
    await settle(total + 1);
    expect(got.at(-1)).toMatchObject({ type: 'data', piece: 1 });
  });

  it('closes a connection that sends a malformed ut_metadata message', async () => {
    const { server, client } = await served();
    client.sendExtended('ut_metadata', Buffer.from('garbage'));
    const close = await within(server.wire.closed, HANG_MS, () => 'not closed');
    expect(close.reason).toMatch(/^ERR_EXTENDED: ut_metadata is not a dictionary$/);
  });
});

describe('a connection without a geometry (fetching metadata)', () => {
  it('skips the messages about chunks, checks their lengths, and still takes extended ones', async () => {
    const [ours, theirs] = await socketPair(cleanup);
    const seen: string[] = [];
    const wire = new PeerWire({ socket: ours, infoHash: metainfo.infoHash, peerId: makePeerId(4) });
    wire.onMessage = (m) => seen.push(m.type);
    cleanup.add(() => wire.close('test over'));
    theirs.write(
      encodeMessage({
        type: 'handshake',
        reserved: new Uint8Array(8),
        infoHash: metainfo.infoHash,
        peerId: makePeerId(5),
      }),
    );
    theirs.write(encodeMessage({ type: 'bitfield', bytes: Buffer.alloc(250, 0xff) }));
    theirs.write(encodeMessage({ type: 'have', index: 99_999 }));
    theirs.write(encodeMessage({ type: 'unchoke' }));
    theirs.write(
      encodeMessage({
        type: 'extended',
        id: 0,
        payload: encodeExtendedHandshake({ enabled: [], version: 'x' }),
      }),
    );
    await within(
      (async () => {
        while (seen.length < 2) await new Promise((r) => setTimeout(r, 5));
      })(),
      HANG_MS,
      () => `saw ${seen.join(',')}`,
    );
    expect(seen).toEqual(['unchoke', 'extended']);
    // A bitfield longer than any torrent we take still closes it, on its header.
    const header = Buffer.alloc(5);
    header.writeUInt32BE(2 + 256 * 1024, 0);
    header[4] = 5;
    theirs.write(header);
    const close = await within(wire.closed, HANG_MS, () => 'not closed');
    expect(close.reason).toMatch(/^ERR_FRAME_TOO_LARGE/);
  });

  it('refuses to build without a metainfo or an info-hash', () => {
    expect(() => new PeerWire({ socket: undefined as never, peerId: makePeerId(1) })).toThrow(
      /metainfo or an info-hash/,
    );
  });
});

describe('openConnection serves the metadata', () => {
  async function opened(privateSwarm: boolean) {
    const { dir, metainfo: plain } = await storeWith(cleanup, Buffer.alloc(300_000, 7));
    const { metainfo: torrent } = buildMetainfo({
      name: plain.name,
      length: plain.length,
      pieceLength: plain.pieceLength,
      pieceHashes: plain.pieceHashes,
      private: privateSwarm,
    });
    const { store } = await ChunkStore.open({
      dir: join(dir, 'src'),
      metainfo: torrent,
      trustExisting: true,
    });
    cleanup.add(() => store.close());
    const [ours, theirs] = await socketPair(cleanup);
    const server = openConnection({
      opened: { socket: ours, encryption: 'plaintext', transport: 'tcp' },
      store,
      peerId: makePeerId(7001),
      clock: new ManualClock(),
    });
    const client = new Connection({
      wire: new PeerWire({
        socket: theirs,
        infoHash: torrent.infoHash,
        peerId: makePeerId(2),
        reserved: withExtensionBit(new Uint8Array(8)),
      }),
      pieceCount: 0,
      localHas: { has: () => false },
      extensions: { enabled: ['ut_metadata'], version: 'c' },
    });
    cleanup.add(() => {
      server.connection.close('test over');
      client.close('test over');
    });
    const [remote] = await within(
      new Promise<Parameters<ConnectionEvents['extendedHandshake']>>((resolve) =>
        client.once('extendedHandshake', (...args) => resolve(args)),
      ),
      HANG_MS,
      () => 'no extended handshake',
    );
    return { server, remote, torrent };
  }

  it('in a public swarm: ut_metadata and metadata_size announced, with our port and reqq', async () => {
    const { server, remote, torrent } = await opened(false);
    expect(server.metadata).toBeInstanceOf(MetadataServer);
    expect([...remote.ids]).toEqual([['ut_metadata', 1]]);
    expect(remote).toMatchObject({
      metadataSize: torrent.infoBytes.length,
      client: CLIENT_NAME,
      listenPort: 7001,
      reqq: DEFAULT_MAX_REMOTE_REQUESTS,
    });
  });

  it('in a private swarm (BEP 27): neither, and no server', async () => {
    const { server, remote } = await opened(true);
    expect(server.metadata).toBeUndefined();
    expect(remote.ids.size).toBe(0);
    expect(remote.metadataSize).toBeUndefined();
  });
});
