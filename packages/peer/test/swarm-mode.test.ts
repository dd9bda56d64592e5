/**
 * Swarm mode through the Peer: an in-process owner and peers started
 * without a download neighbour, which take each other from the owner's
 * tracker and trade (swarm/swarm-session.ts).
 */
import { readFile } from 'node:fs/promises';
import {
  CHUNK,
  Cleanup,
  freePorts,
  type LogCapture,
  merged,
  startOwner,
  startPeer,
  type TestPeerProcess,
} from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { parsePeerArgs } from '../src/args.js';
import { DEFAULT_MAX_PEERS } from '../src/swarm/swarm-session.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

/** Every chunk received exactly once, and what was received from X was logged by X as sent to us. */
function checkTrades(
  name: string,
  log: LogCapture,
  chunks: number,
  byLabel: ReadonlyMap<string, LogCapture>,
  self: string,
): void {
  const received = log.filter('chunk-received');
  expect(
    received.map((l) => Number(l.fields.chunk)).sort((a, b) => a - b),
    `${name} received each chunk once`,
  ).toEqual([...Array(chunks).keys()]);
  for (const line of received) {
    const sender = byLabel.get(line.fields.from!);
    expect(sender, `${name}: chunk ${line.fields.chunk} from a known process`).toBeDefined();
    expect(
      sender!.filter('chunk-sent', { chunk: line.fields.chunk!, to: self }).length,
      `${line.fields.from} logged chunk-sent ${line.fields.chunk} to ${name}`,
    ).toBeGreaterThan(0);
    // One request-sent line per chunk, to the link that delivered it (or an endgame duplicate).
    expect(
      log.filter('request-sent', { chunk: line.fields.chunk! }).length,
      `${name} requested chunk ${line.fields.chunk}`,
    ).toBeGreaterThan(0);
  }
}

describe('swarm mode on the command line', () => {
  it('is chosen by leaving out the neighbour, or by --swarm next to one', () => {
    const bare = parsePeerArgs(['6881', '7001']);
    expect(bare).toMatchObject({ swarm: true, neighbour: undefined, maxPeers: DEFAULT_MAX_PEERS });
    const flagged = parsePeerArgs(['6881', '7001', '7002', '--swarm', '--max-peers', '12']);
    expect(flagged).toMatchObject({ swarm: true, neighbour: { port: 7002 }, maxPeers: 12 });
    expect(parsePeerArgs(['6881', '7001', '7002'])).toMatchObject({ swarm: false });
  });
});

describe('swarm mode', () => {
  it('four peers without neighbours take each other from the tracker, trade, merge and exit', async () => {
    const chunks = 37;
    const {
      owner,
      data,
      log: ownerLog,
    } = await startOwner(cleanup, {
      size: chunks * CHUNK - 321,
      options: { expectedPeers: 4 },
    });
    const ports = await freePorts(4);
    const peers: TestPeerProcess[] = [];
    // One at a time, as the seed starts them: each later one finds the earlier ones on the tracker.
    for (const port of ports) {
      peers.push(
        await startPeer(cleanup, {
          ownerPort: owner.port,
          port,
          options: { exitWhenDone: true, lingerMs: 0 },
        }),
      );
    }
    const paths = await Promise.all(peers.map((p) => merged(p.log)));
    const codes = await Promise.all(peers.map((p) => p.peer.finished));
    expect(codes).toEqual([0, 0, 0, 0]);

    const ownerLabel = `127.0.0.1:${owner.port}`;
    const byLabel = new Map<string, LogCapture>([[ownerLabel, ownerLog]]);
    for (const [i, port] of ports.entries()) byLabel.set(`127.0.0.1:${port}`, peers[i]!.log);
    let fromPeers = 0;
    for (const [i, { log }] of peers.entries()) {
      expect((await readFile(paths[i]!)).equals(data), `peer ${i}'s file`).toBe(true);
      checkTrades(`peer ${i}`, log, chunks, byLabel, `127.0.0.1:${ports[i]}`);
      expect(log.filter('connected', { peer: ownerLabel, role: 'owner' })).toHaveLength(1);
      expect(log.filter('idlist-received', { from: ownerLabel }).length).toBe(1);
      expect(log.filter('idlist-sent').length).toBeGreaterThan(0);
      expect(log.filter('done')).toHaveLength(1);
      expect(log.filter('listening', { mode: 'swarm' })).toHaveLength(1);
      // Every other peer is connected to it, in one direction or the other (a full mesh of four).
      for (const [j, port] of ports.entries()) {
        if (j === i) continue;
        expect(
          log.filter('connected', { peer: `127.0.0.1:${port}`, role: 'swarm' }).length,
          `peer ${i} connected to peer ${j}`,
        ).toBeGreaterThan(0);
      }
      fromPeers += log.filter('chunk-received', { via: 'swarm' }).length;
      const mergedLine = log.filter('merged')[0]!;
      expect(Number(mergedLine.fields.owner) + Number(mergedLine.fields.swarm)).toBe(chunks);
    }
    // The last peer started after the first had merged, or while it was trading: either way the
    // earlier peers, unchoked by their choker on its interest, served it.
    expect(fromPeers).toBeGreaterThan(0);
    expect(peers[3]!.log.filter('chunk-received', { via: 'swarm' }).length).toBeGreaterThan(0);
  });

  it('ring peers and swarm peers in one swarm all complete', async () => {
    const chunks = 23;
    const {
      owner,
      data,
      log: ownerLog,
    } = await startOwner(cleanup, {
      size: chunks * CHUNK - 99,
      options: { expectedPeers: 4 },
    });
    const ports = await freePorts(4);
    const [swarmA, ringA, ringB, swarmB] = ports as [number, number, number, number];
    const at = (port: number) => `127.0.0.1:${port}`;
    // Ring A downloads from swarm peer A, ring B from ring A: the ring peers get the
    // swarm peers' batches only through the swarm (their owner fallback is out of reach).
    const s1 = await startPeer(cleanup, { ownerPort: owner.port, port: swarmA });
    const a = await startPeer(cleanup, {
      ownerPort: owner.port,
      port: ringA,
      neighbourPort: swarmA,
    });
    const b = await startPeer(cleanup, {
      ownerPort: owner.port,
      port: ringB,
      neighbourPort: ringA,
    });
    // --swarm next to a neighbour: the neighbour is one more swarm peer to dial.
    const s2 = await startPeer(cleanup, {
      ownerPort: owner.port,
      port: swarmB,
      neighbourPort: ringB,
      options: { swarm: true },
    });
    const all = [s1, a, b, s2];
    const paths = await Promise.all(all.map((p) => merged(p.log)));
    for (const [i, path] of paths.entries())
      expect((await readFile(path)).equals(data), `peer ${i}'s file`).toBe(true);
    const byLabel = new Map<string, LogCapture>([[at(owner.port), ownerLog]]);
    for (const [i, port] of ports.entries()) byLabel.set(at(port), all[i]!.log);
    checkTrades('s1', s1.log, chunks, byLabel, at(swarmA));
    checkTrades('s2', s2.log, chunks, byLabel, at(swarmB));
    for (const ring of [a, b]) {
      expect(ring.log.filter('fallback')).toHaveLength(0);
      expect(ring.log.filter('listening', { mode: 'ring' })).toHaveLength(1);
    }
    expect(s2.log.filter('listening', { mode: 'swarm' })).toHaveLength(1);
    // Ring A took from swarm peer A as its download neighbour, which served it as a swarm member.
    expect(
      a.log.filter('chunk-received', { from: at(swarmA), via: 'neighbour' }).length,
    ).toBeGreaterThan(0);
    expect(
      s1.log.filter('connected', { peer: at(ringA), role: 'swarm', dir: 'in' }).length,
    ).toBeGreaterThan(0);
    // s2 dialled ring B (its extra peer) once, though the tracker listed it too.
    expect(s2.log.filter('connected', { peer: at(ringB), dir: 'out' })).toHaveLength(1);
    expect(b.log.filter('connected', { peer: at(swarmB), role: 'in' })).toHaveLength(1);
  });

  it('the owner seeds swarm peers piece by piece: no chunk goes out twice before nearly all went out once', async () => {
    const chunks = 60;
    const {
      owner,
      data,
      log: ownerLog,
    } = await startOwner(cleanup, {
      size: chunks * CHUNK - 1,
      options: { expectedPeers: 4 },
    });
    const ports = await freePorts(4);
    const peers = await Promise.all(
      ports.map((port) => startPeer(cleanup, { ownerPort: owner.port, port })),
    );
    const paths = await Promise.all(peers.map((p) => merged(p.log)));
    for (const path of paths) expect((await readFile(path)).equals(data)).toBe(true);
    // Each swarm peer got an empty chunk ID list from the owner, then offers (`have`s).
    for (const port of ports) {
      const to = `127.0.0.1:${port}`;
      expect(ownerLog.filter('idlist-sent', { to, chunks: '0' })).toHaveLength(1);
      expect(ownerLog.filter('have-sent', { to }).length).toBeGreaterThan(0);
    }
    // A chunk is offered a second time only once every chunk was offered (InitialSeeder), and
    // at most 4 offers per peer are outstanding: so before the first chunk the owner sends twice,
    // it has sent all but 4 x 4 of the chunks. A whole bitfield would let the peers' random
    // first picks collide at once.
    const sent = ownerLog.chunks('chunk-sent');
    const seen = new Set<number>();
    let beforeRepeat = sent.length;
    for (const [k, index] of sent.entries()) {
      if (seen.has(index)) {
        beforeRepeat = k;
        break;
      }
      seen.add(index);
    }
    expect(
      seen.size,
      `distinct chunks out before the first repeat (${beforeRepeat} sends)`,
    ).toBeGreaterThanOrEqual(chunks - 16);
    expect(new Set(sent).size).toBe(chunks);
  });
});
