/**
 * The tracker's table stays bounded and every record expires (issue 10,
 * item 2). Before, after 3000 announces with stock peer ids and new ports
 * from three addresses, all 3003 records stayed in memory and in /status
 * for good (only swarmdrop peers' records expired), and `numwant=5` got all
 * of them. Time is the owner's injected clock, moved forward by the test.
 */
import { Agent, request } from 'node:http';
import {
  bencodeDecode,
  decodeCompactPeers,
  ManualClock,
  makePeerId,
  percentEncodeBytes,
} from '@swarmdrop/protocol';
import { announcePath, Cleanup, HANG_MS, startOwner, stockPeerId } from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ANNOUNCE_EXPIRY_MS,
  DEFAULT_NUMWANT,
  DEFAULT_TRACKER_MAX_PER_ADDRESS,
  MAX_NUMWANT,
  parseAnnounce,
  STATUS_MAX_PEERS,
  TrackerRegistry,
} from '../src/index.js';

/** `host:port` of each peer in a compact list. */
function compactList(bytes: unknown): string[] {
  return decodeCompactPeers(bytes as Uint8Array).map((p) => `${p.host}:${p.port}`);
}

describe('TrackerRegistry', () => {
  it('expires every record, stock or not, after the expiry since its last announce', () => {
    const clock = new ManualClock();
    const t = new TrackerRegistry({ clock });
    t.announce('10.0.0.1', 6881, { left: 100 });
    t.announce('10.0.0.2', 7001, { left: 100 });
    clock.advance(ANNOUNCE_EXPIRY_MS / 2);
    t.announce('10.0.0.2', 7001, { left: 100 }); // keeps 7001 fresh
    clock.advance(ANNOUNCE_EXPIRY_MS / 2 + 1);
    expect(t.expire()).toEqual(['10.0.0.1:6881']);
    expect(t.has('10.0.0.2:7001')).toBe(true);
    clock.advance(ANNOUNCE_EXPIRY_MS);
    const { forgotten } = t.announce('10.0.0.3', 6881, {});
    expect(forgotten).toEqual(['10.0.0.2:7001']);
    expect(t.size).toBe(1);
  });

  it('keeps at most maxPerAddress per source, replacing that source’s oldest', () => {
    const clock = new ManualClock();
    const t = new TrackerRegistry({ clock, maxPerAddress: 3, maxPeers: 100 });
    t.announce('10.0.0.9', 1, {});
    for (let port = 100; port < 103; port++) {
      clock.advance(1);
      t.announce('10.0.0.1', port, {});
    }
    clock.advance(1);
    t.announce('10.0.0.1', 100, {}); // a re-announce makes 100 the newest
    const { forgotten } = t.announce('10.0.0.1', 103, {});
    expect(forgotten).toEqual(['10.0.0.1:101']);
    expect(t.size).toBe(4);
    expect(t.has('10.0.0.9:1')).toBe(true);
    // IPv6 counts by /64: ever new addresses in one /64 are one source.
    for (let i = 1; i <= 5; i++) t.announce(`2001:db8::${i}`, 6881, {});
    expect(t.size).toBe(7);
  });

  it('keeps at most maxPeers in all, replacing the least recently announced', () => {
    const clock = new ManualClock();
    const t = new TrackerRegistry({ clock, maxPerAddress: 1_000, maxPeers: 10 });
    for (let port = 1; port <= 25; port++) t.announce(`10.0.${port}.1`, port, {});
    expect(t.size).toBe(10);
    expect(t.has('10.0.25.1:25')).toBe(true);
    expect(t.has('10.0.15.1:15')).toBe(false);
  });

  it('answers up to `count` distinct peers other than the asker, with seed counts', () => {
    const clock = new ManualClock();
    const t = new TrackerRegistry({ clock });
    for (let port = 1; port <= 40; port++)
      t.announce('10.0.0.1', port, { left: port <= 10 ? 0 : 5 });
    const { peers, seeds, leechers } = t.peers('10.0.0.1:1', 5);
    expect(peers).toHaveLength(5);
    expect(new Set(peers.map((p) => p.port)).size).toBe(5);
    expect(peers.some((p) => p.port === 1)).toBe(false);
    expect([seeds, leechers]).toEqual([10, 30]);
    expect(t.peers('10.0.0.1:1', 0).peers).toEqual([]);
    expect(t.peers('10.0.0.1:1', 100).peers).toHaveLength(39);
    t.announce('10.0.0.1', 2, { event: 'stopped' });
    expect(t.has('10.0.0.1:2')).toBe(false);
  });
});

describe('TrackerRegistry at a fleet’s size', () => {
  it('never holds more than its bounds; the next announce replaces the oldest, of its address or of all', () => {
    const clock = new ManualClock();
    const t = new TrackerRegistry({ clock, maxPeers: 300, maxPerAddress: 7 });
    expect(t.bounds).toEqual({ maxPeers: 300, maxPerAddress: 7 });
    const perSource = new Map<string, number>();
    for (let n = 0; n < 3_000; n++) {
      clock.advance(1);
      // 100 addresses, ever new ports, some re-announcing, some stopping.
      const host = `10.1.${n % 100}.1`;
      const port = n % 7 === 3 ? 1 + (n % 5) : 1_000 + n;
      const event = n % 11 === 0 ? 'stopped' : undefined;
      t.announce(host, port, { event, left: n % 3 });
      expect(t.size).toBeLessThanOrEqual(300);
    }
    for (let i = 0; i < 100; i++) {
      const { peers } = t.peers('nobody:1', 1_000);
      for (const p of peers) perSource.set(p.host, (perSource.get(p.host) ?? 0) + 1);
      expect(Math.max(...perSource.values())).toBeLessThanOrEqual(7);
      perSource.clear();
    }
    // Full: the next one costs the least recently announced of all.
    const t2 = new TrackerRegistry({ clock, maxPeers: 3, maxPerAddress: 3 });
    for (const host of ['10.0.0.1', '10.0.0.2', '10.0.0.3']) {
      clock.advance(1);
      t2.announce(host, 80, {});
    }
    expect(t2.announce('10.0.0.4', 80, {}).forgotten).toEqual(['10.0.0.1:80']);
    expect(t2.size).toBe(3);
    // Its own address full: its own oldest goes, not another's.
    expect(t2.announce('10.0.0.4', 81, {}).forgotten).toEqual(['10.0.0.2:80']);
    const t3 = new TrackerRegistry({ clock, maxPeers: 10, maxPerAddress: 2 });
    t3.announce('10.0.0.9', 1, {});
    t3.announce('10.0.0.1', 1, {});
    t3.announce('10.0.0.1', 2, {});
    expect(t3.announce('10.0.0.1', 3, {}).forgotten).toEqual(['10.0.0.1:1']);
    expect(t3.has('10.0.0.9:1')).toBe(true);
  });

  it('at 10,000 records, answers distinct peers spread over the whole table, seeds counted through churn', () => {
    const clock = new ManualClock();
    const t = new TrackerRegistry({ clock, maxPeers: 10_000, maxPerAddress: 10_000 });
    for (let n = 0; n < 10_000; n++) t.announce(`10.2.${n >> 8}.${n & 255}`, 6881, { left: n % 4 });
    expect(t.size).toBe(10_000);
    // Churn: a quarter stop, others complete; the counts must follow.
    for (let n = 0; n < 10_000; n += 4)
      t.announce(`10.2.${n >> 8}.${n & 255}`, 6881, { event: 'stopped' });
    for (let n = 1; n < 10_000; n += 4) t.announce(`10.2.${n >> 8}.${n & 255}`, 6881, { left: 0 });
    const asker = '10.2.0.1:6881';
    const seen = new Set<string>();
    for (let i = 0; i < 400; i++) {
      const { peers, seeds, leechers } = t.peers(asker, 49);
      expect([seeds, leechers]).toEqual([2_500, 5_000]);
      const keys = peers.map((p) => `${p.host}:${p.port}`);
      expect(new Set(keys).size).toBe(49);
      expect(keys).not.toContain(asker);
      for (const k of keys) {
        expect(t.has(k), k).toBe(true);
        seen.add(k);
      }
    }
    // 400 answers of 49 out of 7,499 others: about 93% of them seen, not just the newest 49.
    expect(seen.size).toBeGreaterThan(6_000);
    // Asked for more than there are: all the others, once each.
    const small = new TrackerRegistry({ clock });
    for (let port = 1; port <= 6; port++) small.announce('10.0.0.1', port, {});
    const all = small.peers('10.0.0.1:4', 50).peers.map((p) => p.port);
    expect(all.sort()).toEqual([1, 2, 3, 5, 6]);
    expect(small.peers('10.0.0.9:1', 50).peers).toHaveLength(6);
  });
});

describe('parseAnnounce numwant', () => {
  const base = `info_hash=${percentEncodeBytes(Buffer.alloc(20, 1))}&peer_id=${percentEncodeBytes(Buffer.alloc(20, 2))}&port=6881`;
  it('has a default and a cap, and ignores a value that is not a number', () => {
    expect(parseAnnounce(base).numwant).toBe(DEFAULT_NUMWANT);
    expect(parseAnnounce(`${base}&numwant=5`).numwant).toBe(5);
    expect(parseAnnounce(`${base}&numwant=0`).numwant).toBe(0);
    expect(parseAnnounce(`${base}&numwant=100000`).numwant).toBe(MAX_NUMWANT);
    expect(parseAnnounce(`${base}&numwant=-3`).numwant).toBe(DEFAULT_NUMWANT);
    expect(parseAnnounce(`${base}&numwant=lots`).numwant).toBe(DEFAULT_NUMWANT);
  });
});

describe('the owner’s tracker under a flood of announces', { timeout: 120_000 }, () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());
  let port = 0;

  function announceFrom(
    agent: Agent,
    localAddress: string,
    path: string,
  ): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const req = request(
        { host: '127.0.0.1', port, path, agent, localAddress, timeout: HANG_MS },
        (res) => {
          const parts: Buffer[] = [];
          res.on('data', (b: Buffer) => parts.push(b));
          res.on('end', () =>
            resolve(bencodeDecode(Buffer.concat(parts)) as Record<string, unknown>),
          );
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error('announce timed out')));
      req.on('error', reject);
      req.end();
    });
  }

  it('3000 stock announces from three addresses: bounded table, numwant honoured, all expire', async () => {
    const clock = new ManualClock();
    const { owner: o } = await startOwner(cleanup, { size: 300_000, components: { clock } });
    port = o.port;
    const sources = ['127.0.0.1', '127.0.0.2', '127.0.0.3'];
    const perSource = sources.map(() => {
      const agent = new Agent({ keepAlive: true, maxSockets: 4 });
      cleanup.add(() => agent.destroy());
      return agent;
    });
    const path = (port: number, extra = '') =>
      announcePath({
        infoHash: o.metainfo.infoHash,
        peerId: stockPeerId(),
        port,
        left: 1,
        event: 'started',
      }) + extra;
    for (let batch = 0; batch < 3000; batch += 60) {
      await Promise.all(
        Array.from({ length: 60 }, (_, k) => {
          const n = batch + k;
          return announceFrom(perSource[n % 3]!, sources[n % 3]!, path(10_000 + n));
        }),
      );
    }

    // numwant=5 gets five peers (the owner first), the default at most DEFAULT_NUMWANT.
    const five = await announceFrom(perSource[0]!, sources[0]!, path(9_000, '&numwant=5'));
    const fivePeers = compactList(five.peers);
    expect(fivePeers).toHaveLength(5);
    expect(fivePeers[0]).toBe(`127.0.0.1:${o.port}`);
    const plain = await announceFrom(perSource[1]!, sources[1]!, path(9_001));
    expect(compactList(plain.peers)).toHaveLength(DEFAULT_NUMWANT);

    // The table holds the per-address share of each source, not all 3000.
    const status = o.status() as { peerCount: number; peers: unknown[] };
    expect(status.peerCount).toBe(3 * DEFAULT_TRACKER_MAX_PER_ADDRESS);
    expect(status.peers).toHaveLength(STATUS_MAX_PEERS);
    expect(Number(five.incomplete) + Number(five.complete)).toBeLessThanOrEqual(
      3 * DEFAULT_TRACKER_MAX_PER_ADDRESS + 1,
    );

    // None of them announces again: past the expiry, every record is gone.
    clock.advance(ANNOUNCE_EXPIRY_MS + 1);
    expect((o.status() as { peerCount: number }).peerCount).toBe(0);
    const after = await announceFrom(perSource[2]!, sources[2]!, path(9_002));
    expect(compactList(after.peers)).toEqual([`127.0.0.1:${o.port}`]);
    // A swarmdrop peer's record expires the same way.
    await announceFrom(
      perSource[0]!,
      sources[0]!,
      announcePath({
        infoHash: o.metainfo.infoHash,
        peerId: makePeerId(7001),
        port: 7001,
        left: 1,
        event: 'started',
      }),
    );
    clock.advance(ANNOUNCE_EXPIRY_MS + 1);
    expect((o.status() as { peerCount: number }).peerCount).toBe(0);
  });
});
