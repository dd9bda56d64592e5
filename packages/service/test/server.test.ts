/**
 * In-process sockets on 127.0.0.1, port 0: DualServer routes HTTP and
 * BitTorrent by the first byte; PeerWire pairs exchange handshake, bitfield
 * and pieces served by a Connection and a BlockServer from a ChunkStore, as
 * the owner serves; a bad connection is
 * closed with a WireError while good ones go on; maxConnections turns
 * connections away. Waits are on events, never on wall-clock sleeps.
 */
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { get, type IncomingMessage } from 'node:http';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import {
  buildMetainfo,
  DEFAULT_CHUNK_SIZE,
  encodeMessage,
  type Message,
  type MessageOf,
  type Metainfo,
  makePeerId,
  WireError,
} from '@swarmdrop/protocol';
import {
  BlockServer,
  ChunkStore,
  Connection,
  MAX_REDUNDANT_BITFIELDS,
  PeerWire,
  sha1,
  splitFile,
  type WireClose,
} from '@swarmdrop/protocol/node';
import { Cleanup, pseudoRandomBytes } from '@swarmdrop/testkit';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  DualServer,
  type DualServerOptions,
  type LogEventName,
  type LogFields,
} from '../src/index.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

/** Messages a PeerWire received, and a way to wait for the next one of a type. */
class Inbox {
  readonly all: Message[] = [];
  private readonly unread: Message[] = [];
  private readonly waiters: Array<{ type: Message['type']; resolve: (m: Message) => void }> = [];

  readonly push = (message: Message): void => {
    this.all.push(message);
    const at = this.waiters.findIndex((w) => w.type === message.type);
    if (at >= 0) this.waiters.splice(at, 1)[0]!.resolve(message);
    else this.unread.push(message);
  };

  next<T extends Message['type']>(type: T): Promise<MessageOf<T>> {
    const at = this.unread.findIndex((m) => m.type === type);
    if (at >= 0) return Promise.resolve(this.unread.splice(at, 1)[0] as MessageOf<T>);
    return new Promise((resolve) =>
      this.waiters.push({ type, resolve: (m) => resolve(m as MessageOf<T>) }),
    );
  }
}

interface ServerSide {
  wire: PeerWire;
  connection: Connection;
  blocks: BlockServer;
}

/** An owner-like process: a split file, its store, and a DualServer serving it. */
async function startOwner(options: Partial<DualServerOptions> = {}, handshakeTimeoutMs?: number) {
  const dir = await cleanup.tempDir();
  const source = join(dir, 'source.bin');
  const data = pseudoRandomBytes(3 * DEFAULT_CHUNK_SIZE + 500, 21);
  await writeFile(source, data);
  const split = await splitFile({ source, dir: join(dir, 'owner') });
  const { metainfo } = buildMetainfo({
    name: 'source.bin',
    length: split.length,
    pieceHashes: split.pieceHashes,
    sha256: split.sha256,
  });
  const { store } = await ChunkStore.open({ dir: join(dir, 'owner'), metainfo });
  cleanup.add(() => store.close());

  const log: Array<{ event: LogEventName; fields: LogFields }> = [];
  const wires: ServerSide[] = [];
  const wireWaiters: Array<(side: ServerSide) => void> = [];
  const refused: string[] = [];
  const refusedWaiters: Array<(reason: string) => void> = [];
  let peerId = makePeerId(1);
  const server = new DualServer({
    host: '127.0.0.1',
    port: 0,
    onHttp(req, res) {
      res.setHeader('content-type', 'text/plain');
      res.end(`hello ${req.method} ${req.url}`);
    },
    onWire(socket, initial) {
      const wire = new PeerWire({
        socket,
        initial,
        metainfo,
        peerId,
        ...(handshakeTimeoutMs !== undefined ? { handshakeTimeoutMs } : {}),
      });
      // Served as the owner serves a ring peer: the whole bitfield, unchoke on interest.
      const connection = new Connection({
        wire,
        pieceCount: metainfo.geometry.pieceCount,
        localHas: store.held,
      });
      const blocks = new BlockServer({ connection, store });
      const publish = (event: LogEventName, fields: LogFields) => log.push({ event, fields });
      connection.on('ready', () => {
        connection.sendBitfield(store.held);
        publish('idlist-sent', { to: wire.label, chunks: store.held.count(), of: store.held.size });
      });
      connection.on('interested', () => connection.unchoke());
      connection.on('bitfield', (remote) =>
        publish('idlist-received', { from: wire.label, chunks: remote.count(), of: remote.size }),
      );
      connection.on('have', (index) =>
        publish('have-received', { chunk: index, from: wire.label }),
      );
      blocks.on('requestReceived', (index) =>
        publish('request-received', { chunk: index, from: wire.label }),
      );
      blocks.on('chunkSent', (index, bytes) =>
        publish('chunk-sent', { chunk: index, to: wire.label, bytes }),
      );
      const side = { wire, connection, blocks };
      wires.push(side);
      wireWaiters.shift()?.(side);
    },
    onRefused(_remote, reason) {
      refused.push(reason);
      refusedWaiters.shift()?.(reason);
    },
    ...options,
  });
  const address = await server.listen();
  cleanup.add(() => server.close());
  peerId = makePeerId(address.port);
  return {
    server,
    port: address.port,
    metainfo,
    store,
    data,
    dir,
    log,
    wires,
    refused,
    peerId: () => peerId,
    /** The next server-side wire to be created. */
    nextWire: () => new Promise<ServerSide>((resolve) => wireWaiters.push(resolve)),
    nextRefusal: () => new Promise<string>((resolve) => refusedWaiters.push(resolve)),
  };
}

async function openSocket(
  port: number,
  allowHalfOpen = false,
  localAddress?: string,
): Promise<Socket> {
  const socket = connect({
    host: '127.0.0.1',
    port,
    allowHalfOpen,
    ...(localAddress ? { localAddress } : {}),
  });
  socket.on('error', () => {});
  cleanup.add(() => socket.destroy());
  await once(socket, 'connect');
  return socket;
}

/** Reads and drops anything left, so the remote's FIN is seen, and waits for 'close'. */
async function untilClosed(socket: Socket): Promise<void> {
  if (socket.destroyed) return;
  const closed = once(socket, 'close');
  socket.resume();
  await closed;
}

/** A client PeerWire on a fresh connection, with its inbox. */
async function openClient(port: number, metainfo: Metainfo) {
  const socket = await openSocket(port);
  const wire = new PeerWire({ socket, metainfo, peerId: makePeerId(40_000) });
  cleanup.add(() => wire.close('test over'));
  const inbox = new Inbox();
  wire.onMessage = inbox.push;
  return { socket, wire, inbox };
}

function httpGet(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path, agent: false }, (res: IncomingMessage) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    }).on('error', reject);
  });
}

/** Requests every block of chunk `index` and returns the chunk assembled from the pieces. */
async function fetchChunk(
  client: { wire: PeerWire; inbox: Inbox },
  metainfo: Metainfo,
  index: number,
): Promise<Buffer> {
  const blocks = metainfo.geometry.blocks(index);
  for (const block of blocks) client.wire.send({ type: 'request', index, ...block });
  const chunk = Buffer.alloc(metainfo.geometry.pieceSize(index));
  for (let i = 0; i < blocks.length; i++) {
    const piece = await client.inbox.next('piece');
    expect(piece.index).toBe(index);
    chunk.set(piece.block, piece.begin);
  }
  return chunk;
}

function wireErrorCode(close: WireClose): string | undefined {
  expect(close.error).toBeInstanceOf(WireError);
  return close.error instanceof WireError ? close.error.code : undefined;
}

describe('DualServer + PeerWire + Connection and BlockServer over real sockets', {
  timeout: 20_000,
}, () => {
  it('routes an HTTP GET to onHttp', async () => {
    const owner = await startOwner();
    expect(await httpGet(owner.port, '/meta.torrent')).toEqual({
      status: 200,
      body: 'hello GET /meta.torrent',
    });
    expect(owner.wires).toHaveLength(0);
  });

  it('routes HTTP whose first read is a single byte', async () => {
    const owner = await startOwner();
    const socket = await openSocket(owner.port);
    const response: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => response.push(chunk));
    socket.write('G');
    // Give the server a chance to read "G" alone; the result must be the same either way.
    await new Promise((resolve) => setTimeout(resolve, 50));
    socket.end('ET /split HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    await once(socket, 'close');
    const text = Buffer.concat(response).toString();
    expect(text).toMatch(/^HTTP\/1\.1 200 /);
    expect(text).toContain('hello GET /split');
  });

  it('a PeerWire pair exchanges handshakes, the bitfield and a chunk served from the store', async () => {
    const owner = await startOwner();
    const serverWire = owner.nextWire();
    const client = await openClient(owner.port, owner.metainfo);

    const remote = await client.wire.ready();
    expect(Buffer.from(remote.infoHash).equals(owner.metainfo.infoHash)).toBe(true);
    expect(Buffer.from(remote.peerId).equals(owner.peerId())).toBe(true);
    expect(client.wire.remoteListenPort).toBe(owner.port);
    const server = await serverWire;
    expect(server.wire.remoteListenPort).toBe(40_000);

    const bitfield = await client.inbox.next('bitfield');
    expect(Buffer.from(bitfield.bytes).equals(Buffer.from(owner.store.held.toBytes()))).toBe(true);

    client.wire.send({ type: 'interested' });
    await client.inbox.next('unchoke');

    // A full chunk (7 blocks of up to 16 KiB) and the short last one.
    for (const index of [1, 3]) {
      const chunk = await fetchChunk(client, owner.metainfo, index);
      expect(sha1(chunk).equals(owner.metainfo.pieceHashes.get(index)!)).toBe(true);
      expect(
        chunk.equals(
          owner.data.subarray(index * DEFAULT_CHUNK_SIZE, (index + 1) * DEFAULT_CHUNK_SIZE),
        ),
      ).toBe(true);
    }
    // The client stores what it received through its own verified store.
    const clientDir = await cleanup.tempDir();
    const { store: clientStore } = await ChunkStore.open({
      dir: clientDir,
      metainfo: owner.metainfo,
    });
    cleanup.add(() => clientStore.close());
    expect(await clientStore.put(3, await fetchChunk(client, owner.metainfo, 3))).toBe(true);

    // A have from the server reaches the client.
    server.connection.sendHave(2);
    expect(await client.inbox.next('have')).toEqual({ type: 'have', index: 2 });

    const events = owner.log.map((e) => `${e.event} ${String(e.fields.chunk ?? '')}`);
    expect(events).toContain('idlist-sent ');
    expect(events).toContain('request-received 1');
    expect(events).toContain('chunk-sent 1');
    expect(events).toContain('chunk-sent 3');
    expect(
      owner.log.find((e) => e.event === 'chunk-sent' && e.fields.chunk === 1)?.fields.bytes,
    ).toBe(DEFAULT_CHUNK_SIZE);
    expect(server.blocks.chunksSent).toBe(3);
    expect(server.wire.isClosed).toBe(false);
  });

  it('a garbage-sending client is closed with a WireError while a good connection keeps working', async () => {
    const owner = await startOwner();
    const goodServer = owner.nextWire();
    const good = await openClient(owner.port, owner.metainfo);
    await good.wire.ready();
    await goodServer;
    await good.inbox.next('bitfield');

    // Starts like a handshake (0x13), so it is routed to the wire, then breaks it.
    const badServer = owner.nextWire();
    const bad = await openSocket(owner.port);
    bad.write(
      Buffer.concat([Buffer.from([19]), Buffer.from('BitTorrent protocoX'), Buffer.alloc(48)]),
    );
    const badClose = await (await badServer).wire.closed;
    expect(wireErrorCode(badClose)).toBe('ERR_HANDSHAKE');
    await untilClosed(bad);

    // A valid handshake followed by an absurd frame length.
    const worseServer = owner.nextWire();
    const worse = await openSocket(owner.port);
    worse.write(
      Buffer.concat([
        encodeMessage({
          type: 'handshake',
          reserved: new Uint8Array(8),
          infoHash: owner.metainfo.infoHash,
          peerId: makePeerId(5),
        }),
        Buffer.from([0xff, 0xff, 0xff, 0xff]),
      ]),
    );
    expect(wireErrorCode(await (await worseServer).wire.closed)).toBe('ERR_FRAME_TOO_LARGE');
    await untilClosed(worse);

    // The good connection is untouched and still gets served.
    good.wire.send({ type: 'interested' });
    await good.inbox.next('unchoke');
    const chunk = await fetchChunk(good, owner.metainfo, 0);
    expect(sha1(chunk).equals(owner.metainfo.pieceHashes.get(0)!)).toBe(true);
    expect(good.wire.isClosed).toBe(false);

    // And a new good connection is still welcome.
    const another = await openClient(owner.port, owner.metainfo);
    await another.wire.ready();
    await another.inbox.next('bitfield');
  });

  it('a handshake for another torrent is refused with ERR_INFO_HASH', async () => {
    const owner = await startOwner();
    const { metainfo: other } = buildMetainfo({
      name: 'other.bin',
      length: owner.metainfo.length,
      pieceHashes: [...owner.metainfo.pieceHashes].map((h) => sha1(h)),
    });
    const serverWire = owner.nextWire();
    const client = await openClient(owner.port, other);
    expect(wireErrorCode(await (await serverWire).wire.closed)).toBe('ERR_INFO_HASH');
    const clientClose = await client.wire.closed;
    expect(client.wire.isClosed).toBe(true);
    expect(clientClose.reason).not.toBe('');
    await expect(client.wire.ready()).rejects.toThrow();
  });

  it('a request for a chunk the server does not hold closes that connection', async () => {
    const owner = await startOwner();
    await owner.store.drop(2);
    const serverWire = owner.nextWire();
    const client = await openClient(owner.port, owner.metainfo);
    await client.wire.ready();
    const bitfield = await client.inbox.next('bitfield');
    expect(Array.from(bitfield.bytes)).toEqual([0b1101_0000]);
    client.wire.send({ type: 'interested' });
    await client.inbox.next('unchoke');
    client.wire.send({ type: 'request', index: 2, begin: 0, length: 16_384 });
    expect(wireErrorCode(await (await serverWire).wire.closed)).toBe('ERR_PIECE_INDEX');
  });

  it('repeated bitfields that add nothing close the connection after MAX_REDUNDANT_BITFIELDS', async () => {
    // Pins a flood: 50,000 repeated bitfields were accepted, each rescanned
    // and each writing a log line.
    const owner = await startOwner();
    const serverWire = owner.nextWire();
    const client = await openClient(owner.port, owner.metainfo);
    await client.wire.ready();
    const full = new Uint8Array([0b1111_0000]);
    for (let i = 0; i < 50; i++) client.wire.send({ type: 'bitfield', bytes: full });
    const close = await (await serverWire).wire.closed;
    expect(wireErrorCode(close)).toBe('ERR_BITFIELD_REPEATED');
    expect(close.reason).toMatch(`more than ${MAX_REDUNDANT_BITFIELDS} bitfields that add nothing`);
    expect(owner.log.filter((l) => l.event === 'idlist-received')).toHaveLength(1);
    expect(owner.log.filter((l) => l.event === 'have-received')).toHaveLength(0);
  });

  it('a later bitfield is taken as the haves it adds (aria2 sends one in place of haves)', async () => {
    const owner = await startOwner();
    const serverWire = owner.nextWire();
    const client = await openClient(owner.port, owner.metainfo);
    await client.wire.ready();
    // BEP 3: the bitfield is the first message; the second is taken as haves.
    client.wire.send({ type: 'bitfield', bytes: new Uint8Array([0b1000_0000]) });
    client.wire.send({ type: 'bitfield', bytes: new Uint8Array([0b1010_0000]) });
    client.wire.send({ type: 'interested' });
    await client.inbox.next('unchoke');
    client.wire.send({ type: 'request', index: 1, begin: 0, length: 16_384 });
    await client.inbox.next('piece');
    const side = await serverWire;
    expect(side.connection.remoteHas.heldIds()).toEqual([0, 2]);
    expect(owner.log.filter((l) => l.event === 'have-received').map((l) => l.fields.chunk)).toEqual(
      [2],
    );
    // One that takes a chunk back is a protocol error.
    client.wire.send({ type: 'bitfield', bytes: new Uint8Array([0b0010_0000]) });
    const close = await side.wire.closed;
    expect(wireErrorCode(close)).toBe('ERR_BITFIELD_REPEATED');
    expect(close.reason).toMatch(/takes back chunk 0/);
  });

  it('drops requests received while it chokes the remote (BEP 3), and serves them once unchoked', async () => {
    const owner = await startOwner();
    const client = await openClient(owner.port, owner.metainfo);
    await client.wire.ready();
    await client.inbox.next('bitfield');
    // Not interested yet, so still choked: this request must be dropped...
    client.wire.send({ type: 'request', index: 0, begin: 0, length: 16_384 });
    client.wire.send({ type: 'interested' });
    await client.inbox.next('unchoke');
    // ...and this one served. Requests are served in order, so had the
    // first been queued its piece would have come first.
    client.wire.send({ type: 'request', index: 1, begin: 0, length: 16_384 });
    const piece = await client.inbox.next('piece');
    expect([piece.index, piece.begin]).toEqual([1, 0]);
    expect(client.inbox.all.filter((m) => m.type === 'piece')).toHaveLength(1);
    expect(
      owner.log.filter((l) => l.event === 'request-received').map((l) => l.fields.chunk),
    ).toEqual([1]);
  });

  it('a connection that never completes its handshake is closed by the handshake timer', async () => {
    const owner = await startOwner({}, 100);
    const serverWire = owner.nextWire();
    const socket = await openSocket(owner.port);
    socket.write(Buffer.from([19]));
    const close = await (await serverWire).wire.closed;
    expect(close.reason).toMatch(/no handshake/);
    await untilClosed(socket);
  });

  it('a connection that sends nothing is turned away after firstByteTimeoutMs', async () => {
    const owner = await startOwner({ firstByteTimeoutMs: 100 });
    const refusal = owner.nextRefusal();
    const socket = await openSocket(owner.port);
    expect(await refusal).toMatch(/sent nothing/);
    await untilClosed(socket);
    expect(owner.wires).toHaveLength(0);
  });

  it('maxConnections turns away a BitTorrent connection past the limit, and frees the slot on close', async () => {
    const owner = await startOwner({ maxConnections: 1 });
    const firstServer = owner.nextWire();
    const first = await openClient(owner.port, owner.metainfo);
    await first.wire.ready();
    const firstSide = await firstServer;
    expect(owner.server.counts.wire).toBe(1);

    const refusal = owner.nextRefusal();
    const second = await openSocket(owner.port);
    second.write(Buffer.from([19]));
    expect(await refusal).toBe('too many BitTorrent connections (limit 1)');
    await untilClosed(second);
    expect(owner.wires).toHaveLength(1);

    first.wire.close('done');
    await firstSide.wire.closed;
    expect(owner.server.connectionCount).toBe(0);
    const thirdServer = owner.nextWire();
    const third = await openClient(owner.port, owner.metainfo);
    await third.wire.ready();
    await thirdServer;
    expect(owner.refused).toHaveLength(1);
    expect(owner.server.stats.refusedTotalCap).toBe(1);
  });

  it('maxConnectionsPerAddress turns away a source past its cap while other sources get in', async () => {
    const owner = await startOwner({ maxConnectionsPerAddress: 2 });
    // Loopback sources differ by localAddress: 127.0.0.2 plays one address.
    for (let i = 0; i < 2; i++) {
      const server = owner.nextWire();
      const socket = await openSocket(owner.port, false, '127.0.0.2');
      socket.write(Buffer.from([19]));
      await server;
    }
    const refusal = owner.nextRefusal();
    const third = await openSocket(owner.port, false, '127.0.0.2');
    third.write(Buffer.from([19]));
    expect(await refusal).toBe(
      'too many BitTorrent connections from 127.0.0.2 (limit 2 per address)',
    );
    await untilClosed(third);
    expect(owner.server.stats.refusedAddressCap).toBe(1);
    // Another source is not held to 127.0.0.2's count, and HTTP from 127.0.0.2 has a budget of its own.
    const other = owner.nextWire();
    const fromOther = await openSocket(owner.port, false, '127.0.0.3');
    fromOther.write(Buffer.from([19]));
    await other;
    const http = await openSocket(owner.port, false, '127.0.0.2');
    http.write('GET /x HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(((await once(http, 'data'))[0] as Buffer).toString()).toMatch(/hello GET \/x/);
  });

  it('a wire full of BitTorrent connections still serves HTTP: the budgets are apart', async () => {
    // Pins the shared cap: one count of 256 for both let a full wire refuse the metainfo.
    const owner = await startOwner({ maxConnections: 3 });
    for (let i = 0; i < 3; i++) {
      const server = owner.nextWire();
      const client = await openClient(owner.port, owner.metainfo);
      await client.wire.ready();
      await server;
    }
    const refusal = owner.nextRefusal();
    const fourth = await openSocket(owner.port);
    fourth.write(Buffer.from([19]));
    expect(await refusal).toMatch(/too many BitTorrent connections/);
    const replies = await Promise.all([1, 2, 3].map((i) => httpGet(owner.port, `/${i}`)));
    expect(replies.map((r) => r.body)).toEqual(['hello GET /1', 'hello GET /2', 'hello GET /3']);
    expect(owner.server.counts.wire).toBe(3);
    expect(owner.server.stats).toMatchObject({ refusedTotalCap: 1, refusedHttpCap: 0 });
  });

  it('a new HTTP connection closes the oldest idle one when its source is at the cap', async () => {
    const owner = await startOwner({ maxHttpConnectionsPerAddress: 2, requestTimeoutMs: 60_000 });
    // Two keep-alive connections from 127.0.0.2, answered: idle, no response under way.
    const a = await openSocket(owner.port, false, '127.0.0.2');
    a.write('GET /a HTTP/1.1\r\nHost: x\r\n\r\n');
    await once(a, 'data');
    const b = await openSocket(owner.port, false, '127.0.0.2');
    b.write('GET /b HTTP/1.1\r\nHost: x\r\n\r\n');
    await once(b, 'data');
    expect(owner.server.counts.http).toBe(2);
    const evicted = owner.nextRefusal();
    const c = await openSocket(owner.port, false, '127.0.0.2');
    c.write('GET /c HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(await evicted).toBe('idle HTTP connection closed for a newer one (limit 2 per address)');
    expect(((await once(c, 'data'))[0] as Buffer).toString()).toMatch(/hello GET \/c/);
    await untilClosed(a);
    expect(b.destroyed).toBe(false);
    expect(owner.server.stats).toMatchObject({ evicted: 1, refusedHttpCap: 0 });
  });

  it('a connection that has sent nothing is closed for a newcomer when its source has the most waiting', async () => {
    const owner = await startOwner({ maxPendingConnectionsPerAddress: 2 });
    const sockets = [];
    const evicted = owner.nextRefusal();
    // Accepted in the order they connected: the third finds the first two waiting.
    for (let i = 0; i < 2; i++) sockets.push(await openSocket(owner.port, false, '127.0.0.2'));
    const newcomer = await openSocket(owner.port, false, '127.0.0.2');
    expect(await evicted).toBe(
      'sent nothing while newer connections came from 127.0.0.2 (limit 2 waiting per address)',
    );
    await untilClosed(sockets[0]!);
    newcomer.write('GET /late HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(((await once(newcomer, 'data'))[0] as Buffer).toString()).toMatch(/hello GET \/late/);
    expect(owner.server.stats.evicted).toBe(1);
  });

  it('an HTTP connection that sent one byte is closed by its deadline', async () => {
    // Pins the slow-loris lock-out: the HTTP server is handed sockets and
    // never listens, so Node never armed headersTimeout, and the first-byte
    // timer was cleared once a byte came: "G" held a slot for ever.
    const owner = await startOwner({ requestTimeoutMs: 200 });
    const refusal = owner.nextRefusal();
    const socket = await openSocket(owner.port);
    socket.write('G');
    expect(await refusal).toMatch(/no complete HTTP request within 200 ms/);
    await untilClosed(socket);
    expect(owner.server.stats.timedOut).toBe(1);
  });

  it('an HTTP keep-alive connection idle after its response is closed by its deadline', async () => {
    const owner = await startOwner({ requestTimeoutMs: 200 });
    const socket = await openSocket(owner.port);
    const refusal = owner.nextRefusal();
    socket.write('GET /one HTTP/1.1\r\nHost: x\r\n\r\nGET /tw');
    expect((await once(socket, 'data'))[0].toString()).toMatch(/hello GET \/one/);
    expect(await refusal).toMatch(/no complete HTTP request within 200 ms/);
    await untilClosed(socket);
  });

  it('close() ends a refused connection too, instead of waiting for its destroy timer', async () => {
    // Pins a bug: refused sockets were not tracked, so close() waited for the
    // 1 s timer that destroys them. With that timer faked, close() hung.
    const owner = await startOwner({ maxConnections: 1 });
    const first = await openClient(owner.port, owner.metainfo);
    await first.wire.ready();
    // This client never ends its side, even after the server's FIN: only the
    // server can close the connection.
    const second = await openSocket(owner.port, true);
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    cleanup.add(() => vi.useRealTimers());
    const refusal = owner.nextRefusal();
    second.write(Buffer.from([19]));
    await refusal;
    // Resolves only once every connection, the refused one included, is gone.
    await owner.server.close();
    expect(second.destroyed).toBe(false);
  });

  it('close() ends open connections and resolves', async () => {
    const owner = await startOwner();
    const client = await openClient(owner.port, owner.metainfo);
    await client.wire.ready();
    const socket = await openSocket(owner.port);
    socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await once(socket, 'data');
    await owner.server.close();
    expect((await client.wire.closed).reason).toBe('closed by remote');
    await untilClosed(socket);
    expect(owner.server.connectionCount).toBe(0);
  });
});
