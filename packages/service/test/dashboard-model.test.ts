import { ManualClock } from '@swarmdrop/protocol';
import { thrown } from '@swarmdrop/testkit';
import { describe, expect, it } from 'vitest';
import {
  DashboardModel,
  type DashboardUpdate,
  DomainEvents,
  decodeRuns,
  encodeRuns,
  MAX_REPORT_RATE,
  parseReport,
  ReportError,
} from '../src/index.js';

const OWNER = '127.0.0.1:7000';
const FILE = { name: 'f.bin', size: 1000 * 102_400, chunks: 1000, chunkSize: 102_400 };

function ownerModel(clock = new ManualClock()) {
  const events = new DomainEvents();
  const model = new DashboardModel({ clock, selfId: OWNER, selfKind: 'owner' });
  model.setFile(FILE, () => true, 'o');
  model.attach(events);
  return { clock, events, model };
}

function codes(map: string): string {
  return map.replace(/(\d+)(.)/g, (_, n: string, c: string) => c.repeat(Number(n)));
}

interface WireNode {
  i: number;
  id?: string;
  kind?: string;
  map?: string;
  set?: string;
  held: number;
  conns: number;
}

/** Applies updates as the browser does, to check that deltas rebuild the full state. */
function replay(updates: DashboardUpdate[]) {
  const nodes = new Map<number, { id: string; map: string[]; held: number }>();
  const edges = new Map<string, { rate: number; bytes: number }>();
  for (const u of updates) {
    if (u.type === 'full') {
      nodes.clear();
      edges.clear();
    }
    for (const n of (u.nodes ?? []) as WireNode[]) {
      const node = nodes.get(n.i) ?? { id: n.id ?? '?', map: [], held: 0 };
      if (n.map !== undefined) node.map = codes(n.map).split('');
      for (const [, code, index] of (n.set ?? '').matchAll(/(\D)(\d+)/g))
        node.map[Number(index)] = code!;
      node.held = n.held;
      nodes.set(n.i, node);
    }
    for (const e of (u.edges ?? []) as { a: number; b: number; rate: number; bytes: number }[])
      edges.set(`${e.a}>${e.b}`, e);
    for (const k of (u.removedEdges ?? []) as string[]) edges.delete(k);
  }
  return { nodes, edges };
}

describe('run-length chunk maps', () => {
  it('round-trips and refuses a map of the wrong length or with unknown codes', () => {
    const map = new TextEncoder().encode(`${'o'.repeat(120)}${'n'.repeat(30)}.s.fdh`);
    const runs = encodeRuns(map);
    expect(runs).toBe('120o30n1.1s1.1f1d1h');
    expect(decodeRuns(runs, map.length)).toEqual(map);
    expect(thrown(() => decodeRuns(runs, map.length + 1))).toMatchObject({
      code: 'ERR_DASHBOARD_REPORT',
    });
    expect(thrown(() => decodeRuns('3o2x', 5))).toBeInstanceOf(ReportError);
    expect(thrown(() => decodeRuns('3o0n', 3))).toBeInstanceOf(ReportError);
    expect(thrown(() => decodeRuns('3o2', 5))).toBeInstanceOf(ReportError);
    expect(thrown(() => decodeRuns('6o', 5))).toBeInstanceOf(ReportError);
  });
});

describe('parseReport', () => {
  const good = {
    port: 7001,
    map: '10o',
    connections: 2,
    done: false,
    links: [{ peer: '127.0.0.1:7002', kind: 'swarmdrop', down: 5, up: 0, bytesIn: 9, bytesOut: 0 }],
  };
  it('accepts a well-formed report', () => {
    expect(parseReport(good)).toMatchObject({ port: 7001, connections: 2 });
  });
  it.each([
    ['not an object', []],
    ['a port out of range', { ...good, port: 70_000 }],
    ['a negative count', { ...good, connections: -1 }],
    ['a rate that is not a number', { ...good, links: [{ ...good.links[0], down: 'fast' }] }],
    ['a peer that is not an address', { ...good, links: [{ ...good.links[0], peer: '<b>' }] }],
    ['an unknown kind', { ...good, links: [{ ...good.links[0], kind: 'robot' }] }],
    ['too many links', { ...good, links: Array(300).fill(good.links[0]) }],
    ['done missing', { ...good, done: undefined }],
    ['an event that is not notable', { ...good, events: [{ event: 'chunk-sent', text: 'x' }] }],
    ['an event text too long', { ...good, events: [{ event: 'fallback', text: 'x'.repeat(301) }] }],
    ['too many events', { ...good, events: Array(21).fill({ event: 'fallback', text: 'x' }) }],
    // A forged report showed a peer at 1 TB/s: no link carries that.
    ['a rate of 1 TB/s', { ...good, links: [{ ...good.links[0], down: 1e12 }] }],
    [
      'links adding up to more than the bound',
      { ...good, links: [0, 1].map(() => ({ ...good.links[0], up: MAX_REPORT_RATE })) },
    ],
    [
      'a rate that is not finite (1e400 in JSON)',
      JSON.parse(
        `{"port":7001,"connections":0,"done":false,"links":[{"peer":"127.0.0.1:7002","kind":"swarmdrop","down":1e400,"up":0,"bytesIn":0,"bytesOut":0}]}`,
      ),
    ],
    ['a byte count that is not whole', { ...good, links: [{ ...good.links[0], bytesIn: 0.5 }] }],
    ['a billion connections', { ...good, connections: 1e9 }],
  ])('refuses %s with a one-line ReportError', (_, value) => {
    const err = thrown(() => parseReport(value));
    expect(err).toBeInstanceOf(ReportError);
    expect((err as Error).message).not.toContain('\n');
  });
});

describe('DashboardModel', () => {
  // A report could carry U+202E (RIGHT-TO-LEFT OVERRIDE) into the owner's list raw.
  it('escapes control and bidi characters in event text, reported or its own', () => {
    const { events, model } = ownerModel();
    model.delta();
    const report = parseReport({
      port: 7001,
      connections: 0,
      done: false,
      links: [],
      events: [{ event: 'fallback', text: 'reason=\u202eatad tpurroc\u0007\nx' }],
    });
    model.applyReport('127.0.0.1', report);
    events.publish('protocol-error', { peer: '127.0.0.1:7003', reason: 'bad \u2066name\u2069' });
    const texts = (model.delta()!.events as { text: string }[]).map((e) => e.text);
    expect(texts).toEqual([
      'peer=127.0.0.1:7001 reason=\\u202eatad tpurroc\\u0007\\u000ax',
      'peer=127.0.0.1:7003 reason=bad \\u2066name\\u2069',
    ]);
    // Escaping cannot push a text past the bound, nor leave half an escape at its end.
    model.applyReport('127.0.0.1', {
      ...report,
      events: [{ event: 'fallback', text: '\u202e'.repeat(300) }],
    });
    const [long] = (model.delta()!.events as { text: string }[]).map((e) => e.text);
    expect(long!.length).toBeLessThanOrEqual(300);
    expect(long).toMatch(/(\\u202e)+$/);
  });

  // 300 reports with new ports from one address filled the 256-node table and
  // evicted a real peer (the least recently seen went first, whatever its age).
  it('evicts only nodes unheard of for nodeStaleMs: a burst of newcomers cannot push out a live peer', () => {
    const { clock, model } = ownerModel();
    const real = { port: 7001, map: '1000s', connections: 0, done: true, links: [] };
    model.applyReport('127.0.0.2', real);
    clock.advance(1_000);
    for (let p = 0; p < 300; p++)
      model.applyReport('127.0.0.9', { port: 20_000 + p, connections: 0, done: false, links: [] });
    const ids = () => (model.full().nodes as { id: string }[]).map((n) => n.id);
    expect(ids()).toHaveLength(256);
    expect(ids()).toContain('127.0.0.2:7001');
    // The real peer keeps reporting; the flood stops. Once the flood is stale it makes room.
    clock.advance(20_000);
    model.applyReport('127.0.0.2', real);
    clock.advance(15_000);
    model.applyReport('127.0.0.3', { ...real, port: 7002 });
    expect(ids()).toContain('127.0.0.3:7002');
    expect(ids()).toContain('127.0.0.2:7001');
    expect(ids()).toHaveLength(256);
    expect(ids()).not.toContain('127.0.0.9:20000');
  });

  it("a report's links join nodes already known, never make new ones", () => {
    const { events, model } = ownerModel();
    events.publish('connected', { peer: '127.0.0.1:7002', dir: 'in', client: 'swarmdrop' });
    const link = { kind: 'swarmdrop' as const, down: 10, up: 0, bytesIn: 10, bytesOut: 0 };
    model.applyReport('127.0.0.1', {
      port: 7001,
      connections: 200,
      done: false,
      links: [
        { ...link, peer: '127.0.0.1:7002' },
        ...Array.from({ length: 200 }, (_, n) => ({ ...link, peer: `10.0.${n}.1:6881` })),
      ],
    });
    const full = model.full();
    expect((full.nodes as { id: string }[]).map((n) => n.id).sort()).toEqual(
      [OWNER, '127.0.0.1:7001', '127.0.0.1:7002'].sort(),
    );
    expect(full.edges).toHaveLength(1);
  });

  it('builds nodes, edges with rates, and chunk maps by source from events and reports', () => {
    const { clock, events, model } = ownerModel();
    events.publish('connected', { peer: '127.0.0.1:7001', dir: 'in', client: 'swarmdrop' });
    events.publish('connected', { peer: '127.0.0.1:50000', dir: 'in', client: 'TR3000' });
    for (let i = 0; i < 10; i++) {
      clock.advance(100);
      events.publish('chunk-sent', { chunk: i, to: '127.0.0.1:7001', bytes: 102_400 });
    }
    events.publish('have-received', { chunk: 500, from: '127.0.0.1:50000' });
    model.applyReport(
      '127.0.0.1',
      parseReport({
        port: 7002,
        map: encodeRuns(new TextEncoder().encode(`${'s'.repeat(5)}${'.'.repeat(995)}`)),
        connections: 2,
        done: false,
        links: [
          {
            peer: '127.0.0.1:7001',
            kind: 'swarmdrop',
            down: 4096,
            up: 0,
            bytesIn: 512_000,
            bytesOut: 0,
          },
          { peer: OWNER, kind: 'owner', down: 0, up: 0, bytesIn: 0, bytesOut: 0 },
        ],
      }),
    );
    const full = model.full();
    const nodes = full.nodes as {
      i: number;
      id: string;
      kind: string;
      map: string;
      held: number;
    }[];
    const byId = new Map(nodes.map((n) => [n.id, n]));
    expect([...byId.keys()].sort()).toEqual(
      [OWNER, '127.0.0.1:50000', '127.0.0.1:7001', '127.0.0.1:7002'].sort(),
    );
    expect(byId.get('127.0.0.1:50000')!.kind).toBe('stock');
    expect(byId.get(OWNER)!.held).toBe(1000);
    // What the owner sent is held (source unknown until that peer reports).
    expect(codes(byId.get('127.0.0.1:7001')!.map).slice(0, 11)).toBe('hhhhhhhhhh.');
    expect(codes(byId.get('127.0.0.1:7002')!.map).slice(0, 6)).toBe('sssss.');
    const edges = full.edges as { a: number; b: number; rate: number; bytes: number }[];
    const named = edges.map((e) => ({
      from: nodes.find((n) => n.i === e.a)!.id,
      to: nodes.find((n) => n.i === e.b)!.id,
      rate: e.rate,
      bytes: e.bytes,
    }));
    // 10 chunks over the 0.9 s since the link's first byte.
    expect(named).toContainEqual({
      from: OWNER,
      to: '127.0.0.1:7001',
      rate: Math.round(1_024_000 / 0.9),
      bytes: 1_024_000,
    });
    expect(named).toContainEqual({
      from: '127.0.0.1:7001',
      to: '127.0.0.1:7002',
      rate: 4096,
      bytes: 512_000,
    });
    // The report's link to the owner is the owner's own to measure: no second edge.
    expect(named.filter((e) => e.to === '127.0.0.1:7002')).toHaveLength(1);
  });

  it('keeps the notable events in a bounded ring and sends only the new ones in a delta', () => {
    const clock = new ManualClock();
    const events = new DomainEvents();
    const model = new DashboardModel({
      clock,
      selfId: '127.0.0.1:7001',
      selfKind: 'swarmdrop',
      recentEvents: 3,
    });
    model.attach(events);
    model.delta();
    for (let i = 0; i < 5; i++)
      events.publish('fallback', { from: OWNER, count: i, chunks: `${i}`, reason: 'stalled' });
    events.publish('chunk-received', { chunk: 1, from: OWNER, bytes: 10, via: 'owner' });
    const delta = model.delta()!;
    expect((delta.events as { event: string }[]).map((e) => e.event)).toEqual([
      'fallback',
      'fallback',
      'fallback',
    ]);
    expect((model.full().events as unknown[]).length).toBe(3);
    events.publish('protocol-error', { peer: '127.0.0.1:7003', reason: 'bad bitfield' });
    expect((model.delta()!.events as { text: string }[])[0]!.text).toContain('bad bitfield');
  });

  it("a peer's report carries its notable events once, and the owner lists them under that peer", () => {
    const clock = new ManualClock();
    const peerEvents = new DomainEvents();
    const peer = new DashboardModel({ clock, selfId: '127.0.0.1:7001', selfKind: 'swarmdrop' });
    peer.setFile(FILE, () => false, 'd');
    peer.attach(peerEvents);
    peerEvents.publish('fallback', { from: OWNER, count: 3, chunks: '7-9', reason: 'stalled' });
    peerEvents.publish('chunk-rejected', { chunk: 4, from: '127.0.0.1:7002', reason: 'sha1' });
    const first = parseReport(JSON.parse(JSON.stringify(peer.report(7001, false))));
    expect(first.events?.map((e) => e.event)).toEqual(['fallback', 'chunk-rejected']);
    // Refused (not acknowledged): the next report carries them again.
    expect(peer.report(7001, false).events).toHaveLength(2);
    peer.reportAccepted();
    expect(peer.report(7001, false).events).toBeUndefined();
    const { model } = ownerModel(clock);
    model.delta();
    model.applyReport('127.0.0.1', first);
    const listed = model.delta()!.events as { event: string; text: string }[];
    expect(listed.map((e) => e.text)).toEqual([
      'peer=127.0.0.1:7001 from=127.0.0.1:7000 count=3 chunks=7-9 reason=stalled',
      'peer=127.0.0.1:7001 chunk=4 from=127.0.0.1:7002 reason=sha1',
    ]);
  });

  it('deltas rebuild exactly the full state', () => {
    const { clock, events, model } = ownerModel();
    const updates: DashboardUpdate[] = [model.full()];
    model.delta();
    for (let step = 0; step < 40; step++) {
      clock.advance(250);
      for (let p = 1; p <= 5; p++) {
        events.publish('chunk-sent', {
          chunk: step * 5 + p,
          to: `127.0.0.1:${7000 + p}`,
          bytes: 100,
        });
      }
      if (step % 4 === 0) {
        model.applyReport('127.0.0.1', {
          port: 7003,
          map: encodeRuns(new TextEncoder().encode('n'.repeat(step * 5).padEnd(1000, '.'))),
          connections: 1,
          done: false,
          links: [
            {
              peer: '127.0.0.1:7002',
              kind: 'swarmdrop',
              down: step,
              up: 0,
              bytesIn: step,
              bytesOut: 0,
            },
          ],
        });
      }
      const delta = model.delta();
      if (delta) updates.push(delta);
    }
    const rebuilt = replay(updates);
    const direct = replay([model.full()]);
    expect(rebuilt.nodes).toEqual(direct.nodes);
    expect(rebuilt.edges).toEqual(direct.edges);
  });

  it('stays cheap at 1,000 chunks and 50 peers: bounded delta size and count', () => {
    const { clock, events, model } = ownerModel();
    const peers = Array.from({ length: 50 }, (_, p) => `127.0.0.1:${7001 + p}`);
    for (const peer of peers) events.publish('connected', { peer, dir: 'in', client: 'swarmdrop' });
    const FLUSH_MS = 250;
    const REPORT_MS = 1000;
    const DURATION_MS = 60_000;
    const held = peers.map(() => new Uint8Array(1000).fill('.'.charCodeAt(0)));
    const sizes: number[] = [];
    sizes.push(JSON.stringify(model.full()).length);
    model.delta();
    let chunkEvents = 0;
    // Every 10 ms one chunk arrives at every peer (each from the owner or a
    // neighbour), so all 50 hold all 1,000 chunks after 10 s; the owner sees
    // its own chunk-sent and a report per peer per second.
    for (let t = 10; t <= DURATION_MS; t += 10) {
      clock.advance(10);
      const chunk = t / 10 - 1;
      if (chunk < 1000) {
        peers.forEach((peer, p) => {
          if ((chunk + p) % 5 === 0) {
            events.publish('chunk-sent', { chunk, to: peer, bytes: 102_400 });
            held[p]![chunk] = 'o'.charCodeAt(0);
          } else held[p]![chunk] = 's'.charCodeAt(0);
          chunkEvents++;
        });
      }
      if (t % REPORT_MS === 0) {
        peers.forEach((peer, p) => {
          model.applyReport('127.0.0.1', {
            port: Number(peer.split(':')[1]),
            map: encodeRuns(held[p]!),
            connections: 4,
            done: chunk >= 999,
            links: [1, 2, 3, 4].map((d) => ({
              peer: peers[(p + d) % 50]!,
              kind: 'swarmdrop' as const,
              down: 100_000 * d,
              up: 0,
              bytesIn: t * d,
              bytesOut: 0,
            })),
          });
        });
      }
      if (t % FLUSH_MS === 0) {
        const delta = model.delta();
        if (delta) sizes.push(JSON.stringify(delta).length);
      }
    }
    expect(chunkEvents).toBe(50_000);
    // At most one update per flush (plus the first full state), whatever the event count.
    expect(sizes.length).toBeLessThanOrEqual(DURATION_MS / FLUSH_MS + 1);
    // Every chunk of every peer reached the browser: the last full state shows all held.
    const final = replay([model.full()]);
    expect([...final.nodes.values()].filter((n) => n.held === 1000)).toHaveLength(51);
    // Measured: the largest delta is about 36 KB (50 reports' worth of changed chunks at
    // once), the whole run about 1.1 MB; these bounds leave room and still catch a
    // full state per flush (about 60 KB x 240 = 14 MB) or a message per chunk.
    expect(Math.max(...sizes)).toBeLessThan(64 * 1024);
    expect(sizes.reduce((a, b) => a + b, 0)).toBeLessThan(3 * 1024 * 1024);
    // Once quiet, nothing is sent at all.
    clock.advance(20_000);
    model.delta();
    expect(model.delta()).toBeUndefined();
  });
});

describe('the swarm in aggregate', () => {
  it('sends the owner’s summary in the full state, and in a delta only when it changed', () => {
    const clock = new ManualClock();
    let summary = { peers: 9_000, complete: 10 };
    const model = new DashboardModel({
      clock,
      selfId: OWNER,
      selfKind: 'owner',
      swarm: () => summary,
    });
    model.setFile(FILE, () => true, 'o');
    expect(model.full().swarm).toEqual({ peers: 9_000, complete: 10 });
    expect(model.delta()?.swarm).toEqual({ peers: 9_000, complete: 10 });
    expect(model.delta()).toBeUndefined();
    summary = { peers: 9_000, complete: 11 };
    expect(model.delta()?.swarm).toEqual({ peers: 9_000, complete: 11 });
    // Without a summary there is no `swarm` at all.
    expect('swarm' in ownerModel().model.full()).toBe(false);
  });
});
