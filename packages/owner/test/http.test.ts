/**
 * The owner's HTTP side: the .torrent (announce rewritten to the Host the
 * client used), the JSON status, and IPv6 peers for the tracker.
 */
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { OwnerOptions } from '@swarmdrop/owner';
import { bencodeDecode, makePeerId, parseMetainfo } from '@swarmdrop/protocol';
import {
  announcePath,
  Cleanup,
  httpGet,
  rawExchange,
  startOwner,
  type TestOwner,
  TestPeer,
} from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';

async function ipv6Loopback(): Promise<boolean> {
  const server = createServer();
  try {
    server.listen(0, '::1');
    await once(server, 'listening');
    return true;
  } catch {
    return false;
  } finally {
    server.close();
  }
}
const hasIPv6 = await ipv6Loopback();

describe('HTTP endpoints', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  async function start(
    name = 'data.bin',
    options: Partial<OwnerOptions> = {},
  ): Promise<TestOwner & { o: TestOwner['owner'] }> {
    const started = await startOwner(cleanup, { size: 250_000, name, options });
    return { ...started, o: started.owner };
  }

  it('serves the .torrent under its name and /metainfo.torrent, announcing to the Host used', async () => {
    const { o } = await start();
    for (const path of ['/data.bin.torrent', '/metainfo.torrent']) {
      const res = await httpGet(o.port, path);
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toBe('application/x-bittorrent');
      expect(res.headers['content-disposition']).toContain('data.bin.torrent');
      const meta = parseMetainfo(res.body);
      expect(meta.infoHash.equals(o.metainfo.infoHash)).toBe(true);
      expect(meta.announce).toBe(`http://127.0.0.1:${o.port}/announce`);
    }
    const viaName = parseMetainfo(
      (await httpGet(o.port, '/data.bin.torrent', { headers: { host: 'owner.example:8080' } }))
        .body,
    );
    expect(viaName.announce).toBe('http://owner.example:8080/announce');
    expect(viaName.infoHash.equals(o.metainfo.infoHash)).toBe(true);
    // A Host that is no host name falls back to the .torrent as written on disk.
    const raw = await rawExchange(
      o.port,
      'GET /metainfo.torrent HTTP/1.1\r\nHost: evil/"x\r\nConnection: close\r\n\r\n',
    );
    expect(raw).toMatch(/^HTTP\/1\.1 200 /);
    const body = Buffer.from(raw.slice(raw.indexOf('\r\n\r\n') + 4), 'latin1');
    expect(body.equals(await readFile(o.torrentPath))).toBe(true);

    const head = await httpGet(o.port, '/data.bin.torrent', { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(Number(head.headers['content-length'])).toBeGreaterThan(0);
    expect(head.body.length).toBe(0);
  });

  // Pins a bug: only the exact encodeURIComponent spelling of the name matched,
  // so a client that escaped "(" (or did not escape it) got a 404.
  it('finds the .torrent of a name with spaces and parentheses however it is escaped', async () => {
    const { o } = await start('my file (1).bin');
    for (const path of [
      '/my%20file%20(1).bin.torrent',
      '/my%20file%20%281%29.bin.torrent',
      '/my%20file%20%281%29%2Ebin.torrent',
    ]) {
      const res = await httpGet(o.port, path);
      expect(res.status, path).toBe(200);
      expect(parseMetainfo(res.body).name).toBe('my file (1).bin');
    }
  });

  it('writes --public-host into the .torrent on disk', async () => {
    const { o } = await start('data.bin', { publicHost: 'files.example.org' });
    const onDisk = parseMetainfo(await readFile(o.torrentPath));
    expect(onDisk.announce).toBe(`http://files.example.org:${o.port}/announce`);
  });

  it('serves the dashboard to a browser at /, with what it sent and what peers report', async () => {
    const { o } = await start();
    const page = await httpGet(o.port, '/', { headers: { accept: 'text/html' } });
    expect(page.status).toBe(200);
    expect(page.body.toString()).toContain('owner of data.bin');
    const client = await TestPeer.connect(o.port, { metainfo: o.metainfo });
    cleanup.add(() => client.destroy());
    await client.ready();
    await client.interested();
    await client.fetchChunks([0, 1]);
    const chunks = o.metainfo.geometry.pieceCount;
    await httpGet(
      o.port,
      announcePath({ infoHash: o.metainfo.infoHash, peerId: makePeerId(7001), port: 7001 }),
    );
    const report = {
      port: 7001,
      map: `1n${chunks - 1}.`,
      connections: 1,
      done: false,
      links: [
        { peer: client.label, kind: 'stock', down: 1000, up: 0, bytesIn: 102_400, bytesOut: 0 },
      ],
    };
    const posted = await httpGet(o.port, '/dashboard/report', {
      method: 'POST',
      body: JSON.stringify(report),
    });
    expect(posted.status).toBe(204);
    const bad = await httpGet(o.port, '/dashboard/report', {
      method: 'POST',
      body: JSON.stringify({ ...report, map: '1n' }),
    });
    expect(bad.status).toBe(400);
    expect(bad.body.toString()).toBe(`map: 1 chunks, expected ${chunks}\n`);
    const state = JSON.parse((await httpGet(o.port, '/dashboard/state')).body.toString()) as {
      nodes: { i: number; id: string; kind: string; map: string }[];
      edges: { a: number; b: number; bytes: number }[];
    };
    const node = (id: string) => state.nodes.find((n) => n.id === id)!;
    const self = node(`127.0.0.1:${o.port}`);
    expect(self).toMatchObject({ kind: 'owner', map: `${chunks}o` });
    // The stock client: the chunks we sent it, source unknown.
    expect(node(client.label)).toMatchObject({ kind: 'stock', map: `2h${chunks - 2}.` });
    expect(node('127.0.0.1:7001').map).toBe(report.map);
    const edges = state.edges.map((e) => [
      state.nodes.find((n) => n.i === e.a)!.id,
      state.nodes.find((n) => n.i === e.b)!.id,
      e.bytes,
    ]);
    expect(edges).toContainEqual([self.id, client.label, 2 * 102_400]);
    expect(edges).toContainEqual([client.label, '127.0.0.1:7001', 102_400]);
  });

  // A report named its node by its source address and whatever port it claimed:
  // from a real peer's address it rewrote that peer (0%, 1 TB/s, a made-up
  // event), and 300 made-up ports filled the table and evicted the real peer.
  it('takes a report only for a port announced from its address: none can rename or evict a peer', async () => {
    const { o } = await start();
    const chunks = o.metainfo.geometry.pieceCount;
    const announceFrom = (port: number, localAddress: string) =>
      httpGet(
        o.port,
        announcePath({ infoHash: o.metainfo.infoHash, peerId: makePeerId(port), port }),
        { localAddress },
      );
    const post = (port: number, localAddress: string, map = `${chunks}n`) =>
      httpGet(o.port, '/dashboard/report', {
        method: 'POST',
        localAddress,
        body: JSON.stringify({ port, map, connections: 1, done: true, links: [] }),
      });
    const nodes = async () =>
      new Map(
        (
          JSON.parse((await httpGet(o.port, '/dashboard/state')).body.toString()) as {
            nodes: { id: string; map: string }[];
          }
        ).nodes.map((n) => [n.id, n.map]),
      );
    await announceFrom(7001, '127.0.0.1');
    expect((await post(7001, '127.0.0.1')).status).toBe(204);
    // The right address with a port it never announced, and the real port from elsewhere.
    const unannounced = await post(7002, '127.0.0.1', `${chunks}.`);
    expect(unannounced.status).toBe(403);
    expect(unannounced.body.toString()).toBe(
      'report for 127.0.0.1:7002: no announce from that address and port\n',
    );
    expect((await post(7001, '127.0.0.2', `${chunks}.`)).status).toBe(403);
    // 300 ports from one address: not announced, all refused; announced, the
    // tracker keeps that address's newest 64, and the table keeps the real peer.
    for (let p = 0; p < 300; p++) expect((await post(20_000 + p, '127.0.0.3')).status).toBe(403);
    let taken = 0;
    for (let p = 0; p < 300; p++) {
      await announceFrom(20_000 + p, '127.0.0.3');
      if ((await post(20_000 + p, '127.0.0.3')).status === 204) taken++;
    }
    expect(taken).toBe(300);
    for (let p = 0; p < 300; p++) if ((await post(20_000 + p, '127.0.0.3')).status === 204) taken++;
    expect(taken - 300).toBe(64);
    const after = await nodes();
    expect(after.get('127.0.0.1:7001')).toBe(`${chunks}n`);
    expect(after.has('127.0.0.1:7002')).toBe(false);
    expect(after.has('127.0.0.2:7001')).toBe(false);
  });

  it('reports the swarm in /status, and forgets stock connections once they close', async () => {
    const { o, log, data } = await start();
    const index = await httpGet(o.port, '/');
    expect(index.status).toBe(200);
    expect(index.body.toString()).toContain('/data.bin.torrent');

    await httpGet(
      o.port,
      announcePath({ infoHash: o.metainfo.infoHash, peerId: makePeerId(7001), port: 7001 }),
    );
    const client = await TestPeer.connect(o.port, { metainfo: o.metainfo });
    cleanup.add(() => client.destroy());
    await client.ready();
    await client.interested();
    await client.fetchChunks([0, 1, 2]);
    expect(client.file().equals(data)).toBe(true);

    const res = await httpGet(o.port, '/status');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('application/json');
    const status = JSON.parse(res.body.toString()) as {
      role: string;
      name: string;
      chunks: number;
      infoHash: string;
      port: number;
      connections: number;
      bytesServed: number;
      chunksServed: number;
      peers: Array<{
        address: string;
        client: string;
        connected: boolean;
        batch: string | null;
        bytesServed: number;
      }>;
    };
    expect(status).toMatchObject({
      role: 'owner',
      name: 'data.bin',
      chunks: 3,
      infoHash: o.metainfo.infoHash.toString('hex'),
      port: o.port,
      connections: 1,
      bytesServed: 250_000,
      chunksServed: 3,
    });
    const byAddress = new Map(status.peers.map((p) => [p.address, p]));
    expect(byAddress.get('127.0.0.1:7001')).toMatchObject({
      client: 'swarmdrop',
      batch: '0',
      connected: false,
    });
    expect(byAddress.get(client.label)).toMatchObject({
      client: 'TS0001',
      connected: true,
      bytesServed: 250_000,
    });

    client.destroy();
    await log.waitFor('disconnected', { peer: client.label });
    const after = o.status() as { connections: number; peers: Array<{ address: string }> };
    expect(after.connections).toBe(0);
    expect(after.peers.map((p) => p.address)).toEqual(['127.0.0.1:7001']);
  });

  it.skipIf(!hasIPv6)('lists IPv6 peers, the owner included, under peers6 (BEP 7)', async () => {
    const o = await startOwner(cleanup, {
      size: 50_000,
      name: 'data.bin',
      options: { host: '::1' },
    });
    const res = await httpGet(
      o.port,
      announcePath({ infoHash: o.metainfo.infoHash, peerId: makePeerId(7001), port: 7001 }),
      { host: '::1' },
    );
    expect(res.status).toBe(200);
    const body = bencodeDecode(res.body) as Record<string, Uint8Array>;
    expect(Buffer.from(body.peers!).length).toBe(0);
    const peers6 = Buffer.from(body.peers6!);
    expect(peers6.length).toBe(18);
    expect(
      peers6.subarray(0, 16).equals(Buffer.from('00000000000000000000000000000001', 'hex')),
    ).toBe(true);
    expect(peers6.readUInt16BE(16)).toBe(o.port);
  });
});
