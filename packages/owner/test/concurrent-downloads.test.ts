/**
 * The owner serves many peers at once: every connection is its own task, and
 * one peer that stops reading holds up nobody else.
 */
import { encodeMessage } from '@swarmdrop/protocol';
import { Cleanup, startOwner, type TestOwner, TestPeer } from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';

const CLIENTS = 50;
const FILE_SIZE = 2 * 1024 * 1024; // 21 chunks of 100 KiB, the last one shorter

describe('many downloads at once', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  function start(): Promise<TestOwner> {
    return startOwner(cleanup, { size: FILE_SIZE, name: 'two-mib.bin' });
  }

  async function connectPeer(o: TestOwner): Promise<TestPeer> {
    const client = await TestPeer.connect(o.port, { metainfo: o.metainfo });
    cleanup.add(() => client.destroy());
    return client;
  }

  it(`serves ${CLIENTS} simultaneous clients every chunk, byte-identical, overlapping in time`, async () => {
    const o = await start();
    const { owner, log, metainfo } = o;
    const chunks = metainfo.geometry.pieceCount;
    expect(chunks).toBe(21);

    // All connect and handshake at once.
    const clients = await Promise.all(Array.from({ length: CLIENTS }, () => connectPeer(o)));
    await Promise.all(clients.map((c) => c.ready()));
    for (const c of clients) expect(c.remoteBitfield?.isComplete()).toBe(true);
    await Promise.all(clients.map((c) => c.interested()));

    // Phase 1: each client fetches one chunk (a different one per client),
    // then stops asking. Only an owner that serves every connection while the
    // others are still open gets all 50 past this point; one that served a
    // connection to the end before the next would leave the rest waiting
    // here until the bound.
    await Promise.all(clients.map((c, i) => c.fetchChunks([i % chunks])));
    // All 50 are mid-download at this moment, and the owner counts them all.
    expect(owner.status().connections).toBe(CLIENTS);
    for (const c of clients) expect(c.closed).toBe(false);
    const midway = clients.map((c) => c.blocks.size);
    expect(midway.every((n) => n > 0 && n < FILE_SIZE / 16_384)).toBe(true);

    // Phase 2: everyone asks for everything else, all pipelined at once.
    await Promise.all(
      clients.map((c, i) =>
        c.fetchChunks(Array.from({ length: chunks }, (_, k) => k).filter((k) => k !== i % chunks)),
      ),
    );
    for (const c of clients) {
      // fetchChunks checked each chunk's SHA-1 against the metainfo; the whole file too:
      expect(c.file().equals(o.data)).toBe(true);
      expect(c.decodeError).toBeUndefined();
    }

    // The owner's own account agrees: one chunk-sent line per chunk per client.
    expect(log.filter('connected')).toHaveLength(CLIENTS);
    expect(log.filter('chunk-sent')).toHaveLength(CLIENTS * chunks);
    const perClient = new Map<string, number>();
    for (const l of log.filter('chunk-sent'))
      perClient.set(l.fields.to!, (perClient.get(l.fields.to!) ?? 0) + 1);
    expect([...perClient.keys()].sort()).toEqual(clients.map((c) => c.label).sort());
    expect([...perClient.values()].every((n) => n === chunks)).toBe(true);
    const status = owner.status();
    expect(status.chunksServed).toBe(CLIENTS * chunks);
    expect(status.bytesServed).toBe(CLIENTS * FILE_SIZE);
  });

  it('keeps serving others while a client that never reads has a large backlog', async () => {
    const o = await start();
    const { log, metainfo } = o;
    const { geometry } = metainfo;

    const stalled = await connectPeer(o);
    await stalled.ready();
    await stalled.interested();
    // Stop reading, then ask for 500 blocks of nearly a whole chunk each
    // (~50 MB) in one go: more than the kernel's socket buffers hold (here at
    // most ~37 MB), so the owner's writes to this connection back up and its
    // sender must wait. Each is a different block (a request already pending
    // is ignored, as libtorrent does): the rest of a chunk from a growing offset.
    stalled.socket.pause();
    const all = Array.from({ length: geometry.pieceCount }, (_, k) => k);
    const requested = Array.from({ length: 500 }, (_, k) => {
      const index = k % geometry.pieceCount;
      const begin = Math.floor(k / geometry.pieceCount);
      return { index, begin, length: geometry.pieceSize(index) - begin };
    });
    stalled.send({ type: 'request', ...requested[0]! });
    stalled.sendRaw(
      Buffer.concat(requested.slice(1).map((r) => encodeMessage({ type: 'request', ...r }))),
    );
    await log.waitFor('request-received', { from: stalled.label });

    // Meanwhile a second client downloads the whole file.
    const good = await connectPeer(o);
    await good.ready();
    await good.interested();
    await good.fetchChunks(all);
    expect(good.file().equals(o.data)).toBe(true);

    // The stalled one was neither cut off nor finished: it is still
    // connected, and the owner is still holding back part of its backlog.
    expect(stalled.closed).toBe(false);
    const sentBeforeResume = log.filter('chunk-sent', { to: stalled.label }).length;
    expect(sentBeforeResume).toBeLessThan(requested.length);

    // Once it reads again it gets every chunk it asked for, in order and correct.
    let pieces = 0;
    let wrong = 0;
    stalled.record = false;
    stalled.onMessage = (m) => {
      if (m.type !== 'piece') return;
      const r = requested[pieces++];
      const at = m.index * metainfo.pieceLength + m.begin;
      const ok =
        r !== undefined &&
        m.index === r.index &&
        m.begin === r.begin &&
        Buffer.from(m.block).equals(o.data.subarray(at, at + r.length));
      if (!ok) wrong++;
    };
    stalled.socket.resume();
    await stalled.until(() => pieces >= requested.length, `${requested.length} pieces`);
    expect(wrong).toBe(0);
    expect(stalled.closed).toBe(false);
    // chunk-sent says a chunk's last byte went out; these blocks overlap, so count chunks, not requests.
    const sentChunks = new Set(log.chunks('chunk-sent', { to: stalled.label }));
    expect(sentChunks.size).toBe(geometry.pieceCount);
  });
});
