/**
 * BEP 10, the extension protocol: the message codec, the extended
 * handshake's parser, and a Connection at each end of a loopback pair
 * offering it (or not, as swarmdrop 0.1 did).
 */
import { Cleanup, HANG_MS, socketPair, within } from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import {
  Bitfield,
  bencodeEncode,
  buildMetainfo,
  encodeExtendedHandshake,
  encodeMessage,
  FrameDecoder,
  LOCAL_EXTENSIONS,
  type LocalHandshake,
  MAX_EXTENDED_PAYLOAD,
  makePeerId,
  parseExtendedHandshake,
  supportsExtensions,
  WireError,
  withExtensionBit,
} from '../src/index.js';
import {
  Connection,
  type ConnectionEvents,
  MAX_EXTENDED_HANDSHAKES,
  PeerWire,
} from '../src/node/index.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const PIECE = 32_768;
const PIECES = 4;
const { metainfo } = buildMetainfo({
  name: 'f.bin',
  length: PIECE * PIECES,
  pieceLength: PIECE,
  pieceHashes: Array.from({ length: PIECES }, (_, i) => new Uint8Array(20).fill(i)),
});

function decoder(): FrameDecoder {
  return new FrameDecoder({ geometry: metainfo.geometry, expectHandshake: false });
}

function frame(id: number, body: Uint8Array): Buffer {
  const out = Buffer.alloc(5 + body.length);
  out.writeUInt32BE(1 + body.length, 0);
  out[4] = id;
  out.set(body, 5);
  return out;
}

describe('extended messages on the wire', () => {
  it('round-trips through the encoder and decoder, whole or a byte at a time', () => {
    const payload = Buffer.from('d1:md11:ut_metadatai3eee');
    const bytes = encodeMessage({ type: 'extended', id: 0, payload });
    expect(bytes.subarray(0, 6)).toEqual(Buffer.from([0, 0, 0, 2 + payload.length, 20, 0]));
    expect(decoder().push(bytes)).toEqual([{ type: 'extended', id: 0, payload }]);
    const slow = decoder();
    const out = [];
    for (const byte of bytes) out.push(...slow.push(Buffer.from([byte])));
    expect(out).toEqual([{ type: 'extended', id: 0, payload }]);
  });

  it('takes an empty payload and refuses a message with no extension id', () => {
    expect(decoder().push(frame(20, Buffer.from([7])))).toEqual([
      { type: 'extended', id: 7, payload: Buffer.alloc(0) },
    ]);
    expect(() => decoder().push(frame(20, Buffer.alloc(0)))).toThrow(/extended message/);
  });

  it('refuses a payload over MAX_EXTENDED_PAYLOAD on its header, before the body', () => {
    const header = Buffer.alloc(6);
    header.writeUInt32BE(2 + MAX_EXTENDED_PAYLOAD + 1, 0);
    header[4] = 20;
    const d = decoder();
    let error: unknown;
    try {
      d.push(header);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(WireError);
    expect((error as WireError).code).toBe('ERR_MESSAGE_LENGTH');
    // The largest allowed one passes.
    const ok = decoder().push(
      encodeMessage({ type: 'extended', id: 1, payload: Buffer.alloc(MAX_EXTENDED_PAYLOAD) }),
    );
    expect(ok).toHaveLength(1);
  });

  it('sets and reads the reserved bit (byte 5, 0x10) and leaves other bits alone', () => {
    const zero = new Uint8Array(8);
    expect(supportsExtensions(zero)).toBe(false);
    const set = withExtensionBit(zero);
    expect([...set]).toEqual([0, 0, 0, 0, 0, 0x10, 0, 0]);
    expect(supportsExtensions(set)).toBe(true);
    const other = new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0x05]);
    expect([...withExtensionBit(other)]).toEqual([0, 0, 0, 0, 0, 0x10, 0, 0x05]);
    expect(supportsExtensions(other)).toBe(false);
    expect(zero.every((b) => b === 0)).toBe(true);
  });
});

describe('the extended handshake', () => {
  it('encodes what we announce and parses it back', () => {
    const local: LocalHandshake = {
      enabled: ['ut_metadata', 'ut_pex'],
      version: 'swarmdrop 9.9.9',
      listenPort: 7001,
      reqq: 1024,
      metadataSize: 31_337,
    };
    const remote = parseExtendedHandshake(encodeExtendedHandshake(local));
    expect(Object.fromEntries(remote.ids)).toEqual(LOCAL_EXTENSIONS);
    expect(remote).toMatchObject({
      client: 'swarmdrop 9.9.9',
      listenPort: 7001,
      reqq: 1024,
      metadataSize: 31_337,
    });
  });

  it('ignores unknown keys and extensions, and an extension turned off (id 0)', () => {
    const remote = parseExtendedHandshake(
      bencodeEncode({
        m: { ut_metadata: 0, ut_pex: 9, lt_donthave: 7, upload_only: 3 },
        yourip: Buffer.from([127, 0, 0, 1]),
        e: 1,
        p: 70_000,
        reqq: -1,
        v: 'x'.repeat(500),
      }),
    );
    expect([...remote.ids]).toEqual([['ut_pex', 9]]);
    expect(remote.listenPort).toBeUndefined();
    expect(remote.reqq).toBeUndefined();
    expect(remote.client).toHaveLength(64);
  });

  it.each([
    ['not bencode', Buffer.from('d1:m')],
    ['not a dictionary', bencodeEncode([1, 2])],
    ['"m" not a dictionary', bencodeEncode({ m: 5 })],
    ['an id past 255', bencodeEncode({ m: { ut_metadata: 256 } })],
    ['an id that is a string', bencodeEncode({ m: { ut_pex: 'two' } })],
    ['a negative metadata_size', bencodeEncode({ m: {}, metadata_size: -1 })],
    ['a metadata_size that is a string', bencodeEncode({ m: {}, metadata_size: '9' })],
  ])('refuses %s with ERR_EXTENDED', (_, payload) => {
    let error: unknown;
    try {
      parseExtendedHandshake(payload);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(WireError);
    expect((error as WireError).code).toBe('ERR_EXTENDED');
    expect((error as Error).message).not.toMatch(/\n/);
  });
});

interface Side {
  readonly offer: boolean;
  readonly enabled?: LocalHandshake['enabled'];
}

/** Two live connections; each offers BEP 10 (the bit, and a handshake) or not. */
async function pair(aSide: Side, bSide: Side): Promise<{ a: Connection; b: Connection }> {
  const [left, right] = await socketPair(cleanup);
  const make = (socket: typeof left, id: number, side: Side) =>
    new Connection({
      wire: new PeerWire({
        socket,
        metainfo,
        peerId: makePeerId(id),
        ...(side.offer ? { reserved: withExtensionBit(new Uint8Array(8)) } : {}),
      }),
      pieceCount: PIECES,
      localHas: new Bitfield(PIECES),
      ...(side.offer
        ? { extensions: { enabled: side.enabled ?? [], version: `test ${id}`, reqq: 64 } }
        : {}),
    });
  const a = make(left, 1, aSide);
  const b = make(right, 2, bSide);
  cleanup.add(() => {
    a.close('test over');
    b.close('test over');
  });
  await within(Promise.all([a.wire.ready(), b.wire.ready()]), HANG_MS, () => 'no handshakes');
  return { a, b };
}

function next<E extends keyof ConnectionEvents>(
  connection: Connection,
  event: E,
): Promise<Parameters<ConnectionEvents[E]>> {
  return within(
    new Promise((resolve) => {
      connection.once(event, ((...args: Parameters<ConnectionEvents[E]>) =>
        resolve(args)) as ConnectionEvents[E]);
    }),
    HANG_MS,
    () => `no ${String(event)} event on ${connection.label}`,
  );
}

/** Sends a raw frame from `from`'s socket, past its Connection. */
function raw(from: Connection, bytes: Buffer): void {
  from.wire.socket.write(bytes);
}

describe('Connection with BEP 10', () => {
  it("exchanges extended handshakes and keeps the remote's ids", async () => {
    const { a, b } = await pair(
      { offer: true, enabled: ['ut_metadata'] },
      { offer: true, enabled: ['ut_metadata', 'ut_pex'] },
    );
    const [fromB] = await next(a, 'extendedHandshake');
    expect([...fromB.ids.keys()]).toEqual(['ut_metadata', 'ut_pex']);
    expect(fromB.client).toBe('test 2');
    expect(fromB.reqq).toBe(64);
    if (!b.remoteExtensions) await next(b, 'extendedHandshake');
    expect([...(b.remoteExtensions?.ids.keys() ?? [])]).toEqual(['ut_metadata']);
    expect(a.extensionsActive && b.extensionsActive).toBe(true);

    const got = next(b, 'extended');
    expect(a.sendExtended('ut_metadata', Buffer.from('hello'))).toBe(true);
    const [name, payload] = await got;
    expect(name).toBe('ut_metadata');
    expect(Buffer.from(payload).toString()).toBe('hello');
    // b announced ut_pex, a did not: a may send it, b may not.
    expect(b.sendExtended('ut_pex', Buffer.from('x'))).toBe(false);
    expect(a.sendExtended('ut_pex', Buffer.from('x'))).toBe(true);
  });

  it('sends nothing extended to a remote that did not set the bit, and ignores what it sends', async () => {
    const { a, b } = await pair({ offer: true, enabled: ['ut_metadata'] }, { offer: false });
    const seen: string[] = [];
    b.wire.onMessage = ((original) => (message) => {
      seen.push(message.type);
      original(message);
    })(b.wire.onMessage);
    expect(a.extensionsActive).toBe(false);
    expect(a.sendExtended('ut_metadata', Buffer.from('x'))).toBe(false);
    // An extended message from the remote that never offered BEP 10 is dropped, counted.
    raw(b, encodeMessage({ type: 'extended', id: 1, payload: Buffer.from('x') }));
    const have = next(a, 'have');
    raw(b, encodeMessage({ type: 'have', index: 1 }));
    await have;
    expect(a.unknownExtended).toBe(1);
    expect(a.remoteExtensions).toBeUndefined();
    b.close('done');
    await a.wire.closed;
    expect(seen).toEqual([]);
  });

  it('ignores an extended message on an id we did not announce, and stays open', async () => {
    const { a, b } = await pair(
      { offer: true, enabled: ['ut_metadata'] },
      { offer: true, enabled: [] },
    );
    let extended = 0;
    a.on('extended', () => extended++);
    raw(b, encodeMessage({ type: 'extended', id: 2, payload: Buffer.from('pex?') }));
    raw(b, encodeMessage({ type: 'extended', id: 77, payload: Buffer.from('??') }));
    const have = next(a, 'have');
    raw(b, encodeMessage({ type: 'have', index: 2 }));
    await have;
    expect(extended).toBe(0);
    expect(a.unknownExtended).toBe(2);
    expect(a.state).toBe('live');
  });

  it('a bitfield after the extended handshake is still the first message', async () => {
    const { a, b } = await pair({ offer: true }, { offer: true });
    await next(a, 'extendedHandshake');
    const bitfield = next(a, 'bitfield');
    const full = new Bitfield(PIECES);
    full.set(0);
    full.set(3);
    b.sendBitfield(full);
    const [remote] = await bitfield;
    expect(remote.heldIds()).toEqual([0, 3]);
  });

  it('closes only that connection on a malformed extended handshake, with one line', async () => {
    const { a, b } = await pair({ offer: true }, { offer: true });
    raw(b, encodeMessage({ type: 'extended', id: 0, payload: Buffer.from('d1:mi5ee') }));
    const close = await a.wire.closed;
    expect(close.reason).toMatch(/^ERR_EXTENDED: extended handshake "m" is not a dictionary$/);
    expect((close.error as WireError).code).toBe('ERR_EXTENDED');
  });

  it(`takes updates, then closes after ${MAX_EXTENDED_HANDSHAKES} handshakes`, async () => {
    const { a, b } = await pair({ offer: true }, { offer: true });
    await next(a, 'extendedHandshake');
    let updates = 0;
    a.on('extendedHandshake', () => updates++);
    const again = encodeExtendedHandshake({ enabled: [], version: 'v', metadataSize: 5 });
    for (let i = 0; i < MAX_EXTENDED_HANDSHAKES; i++)
      raw(b, encodeMessage({ type: 'extended', id: 0, payload: again }));
    const close = await a.wire.closed;
    expect(updates).toBe(MAX_EXTENDED_HANDSHAKES - 1);
    expect(a.remoteExtensions?.metadataSize).toBe(5);
    expect(close.reason).toMatch(/more than 8 extended handshakes/);
  });
});
