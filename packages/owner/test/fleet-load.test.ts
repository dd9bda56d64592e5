/**
 * The owner under a small fleet's load, as CI can afford it: hundreds of
 * distinct peers announcing from a hundred loopback addresses and four dozen
 * BitTorrent connections downloading, while a real peer completes. The
 * assertions are on completion and on the bounds (tracker table, per
 * address, connections held); speed is `pnpm bench:fleet`'s.
 */
import { readFile } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { bencodeDecode, decodeCompactPeers, sourceKey } from '@swarmdrop/protocol';
import {
  announceLoad,
  announcePath,
  Cleanup,
  FleetConnections,
  fleetAddress,
  freePort,
  HANG_MS,
  httpGet,
  MiB,
  merged,
  startOwner,
  startPeer,
  stockPeerId,
} from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';

const MAX_PEERS = 150;
const MAX_PER_ADDRESS = 3;
const CONNECTIONS = 48;

interface TrackerStatus {
  peers: number;
  maxPeers: number;
  maxPerAddress: number;
}

/** Every peer the tracker holds, by asking for more than it has. */
function everyPeer(port: number, infoHash: Uint8Array): Promise<string[]> {
  const agent = new Agent({ keepAlive: false });
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        agent,
        localAddress: fleetAddress(65_000),
        path: `${announcePath({ infoHash, peerId: stockPeerId(), port: 1, event: 'stopped' })}&numwant=200`,
        timeout: HANG_MS,
      },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (b: Buffer) => parts.push(b));
        res.on('end', () => {
          const answer = bencodeDecode(Buffer.concat(parts)) as { peers: Uint8Array };
          resolve(decodeCompactPeers(answer.peers).map((p) => `${p.host}:${p.port}`));
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('announce timed out')));
    req.on('error', reject);
    req.end();
  });
}

describe('the owner under a small fleet', { timeout: 180_000 }, () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('400 peers announcing and 48 connections downloading: a real peer completes, the bounds hold', async () => {
    const o = await startOwner(cleanup, {
      size: 4 * MiB,
      options: {
        trackerMaxPeers: MAX_PEERS,
        trackerMaxPerAddress: MAX_PER_ADDRESS,
        maxConnections: CONNECTIONS + 16,
        maxConnectionsPerAddress: 8,
      },
    });
    const tracker = () => (o.owner.status() as { tracker: TrackerStatus }).tracker;
    expect(tracker()).toEqual({ peers: 0, maxPeers: MAX_PEERS, maxPerAddress: MAX_PER_ADDRESS });

    // 400 peers, four to each of 100 addresses: 400 > the per-address room (300) > MAX_PEERS.
    const announcing = announceLoad({
      port: o.port,
      infoHash: o.metainfo.infoHash,
      peers: 400,
      addresses: 100,
      perSecond: 400,
      count: 800,
    });
    let largest = 0;
    const sampler = setInterval(() => {
      largest = Math.max(largest, tracker().peers);
    }, 20);
    cleanup.add(() => clearInterval(sampler));
    const fleet = await FleetConnections.open({
      port: o.port,
      metainfo: o.metainfo,
      connections: CONNECTIONS,
      addresses: 8,
    });
    cleanup.add(() => fleet.close());
    fleet.start();
    const peer = await startPeer(cleanup, {
      ownerPort: o.port,
      port: await freePort(),
      options: { transport: 'tcp' },
    });
    const path = await merged(peer.log);
    const load = await announcing;
    clearInterval(sampler);

    expect((await readFile(path)).equals(o.data)).toBe(true);
    expect(load.failed, load.firstFailure).toBe(0);
    expect(load.answered).toBe(800);
    expect(largest).toBeLessThanOrEqual(MAX_PEERS);
    expect(tracker().peers).toBe(MAX_PEERS);
    const held = await everyPeer(o.port, o.metainfo.infoHash);
    // The owner first, then every record but the asker's (it sent `stopped`).
    const others = held.slice(1).filter((a) => a.startsWith('127.10.'));
    expect(others.length).toBeLessThanOrEqual(MAX_PEERS);
    const perSource = new Map<string, number>();
    for (const a of others) {
      const key = sourceKey(a.slice(0, a.lastIndexOf(':')));
      perSource.set(key, (perSource.get(key) ?? 0) + 1);
    }
    expect(Math.max(...perSource.values())).toBeLessThanOrEqual(MAX_PER_ADDRESS);

    // Every fleet connection was served and is still held.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(fleet.members.map((m) => m.ended).filter(Boolean)).toEqual([]);
    expect(fleet.held).toBe(CONNECTIONS);
    expect(Math.min(...fleet.bytesPerMember())).toBeGreaterThan(0);
    expect((o.owner.status() as { connections: number }).connections).toBeGreaterThanOrEqual(
      CONNECTIONS,
    );

    // What an operator sees: the swarm in aggregate in /status, bounded, and every peer by page.
    const statusResponse = await httpGet(o.port, '/status');
    const status = JSON.parse(statusResponse.body.toString('utf8')) as {
      peerCount: number;
      peers: unknown[];
      swarm: {
        peers: number;
        connected: number;
        complete: number;
        progress: number[];
        slowest: { address: string; holds: number }[];
        topServed: { address: string; bytesServed: number }[];
      };
    };
    const { swarm } = status;
    expect(swarm.peers).toBe(status.peerCount);
    expect(swarm.peers).toBeGreaterThan(MAX_PEERS);
    expect(swarm.progress).toHaveLength(11);
    expect(swarm.progress.reduce((a, b) => a + b, 0)).toBe(swarm.peers);
    expect(swarm.connected).toBeGreaterThanOrEqual(CONNECTIONS);
    // One announcing peer in ten says left=0: complete, though never connected to us.
    expect(swarm.complete).toBeGreaterThan(5);
    expect(swarm.slowest).toHaveLength(10);
    const holds = swarm.slowest.map((p) => p.holds);
    expect(holds).toEqual([...holds].sort((a, b) => a - b));
    expect(swarm.topServed).toHaveLength(10);
    const served = swarm.topServed.map((p) => p.bytesServed);
    expect(served).toEqual([...served].sort((a, b) => b - a));
    expect(Math.min(...served)).toBeGreaterThan(0);
    expect(statusResponse.body.length).toBeLessThan(64 * 1024);
    const listed: string[] = [];
    let pages = 1;
    for (let page = 0; page < pages; page++) {
      const answer = JSON.parse(
        (await httpGet(o.port, `/status/peers?page=${page}`)).body.toString('utf8'),
      ) as { pages: number; total: number; peers: { address: string }[] };
      pages = answer.pages;
      expect(answer.peers.length).toBeLessThanOrEqual(100);
      listed.push(...answer.peers.map((p) => p.address));
    }
    expect(pages).toBeGreaterThan(1);
    expect(new Set(listed).size).toBe(listed.length);
    // Peers come and go between pages (announces expire, connections close): nearly all, once each.
    expect(listed.length).toBeGreaterThanOrEqual(swarm.peers - 5);
    const beyond = await httpGet(o.port, `/status/peers?page=${pages}`);
    expect([beyond.status, beyond.body.toString().trim()]).toEqual([
      400,
      `page: ${pages} is out of range (0-${pages - 1})`,
    ]);
    expect((await httpGet(o.port, '/status/peers?page=-1')).status).toBe(400);
  });
});
