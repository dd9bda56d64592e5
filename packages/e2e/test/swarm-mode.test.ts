import { parseTextLine } from '@swarmdrop/service';
import { MiB, toolAvailable } from '@swarmdrop/testkit';
import { describe, expect, it } from 'vitest';
import { CHUNK_SIZE, runScenario } from '../src/scenario.js';
import { parseTopology, swarmTopology } from '../src/topology.js';
import { topology } from './helpers.js';

/** Every chunk of a swarm peer came from the owner or another swarm member, each once. */
function expectAllChunks(
  summary: Awaited<ReturnType<typeof runScenario>>['summary'],
  count: number,
) {
  for (const peer of summary) {
    expect(peer.sha256Match, `${peer.id}'s file`).toBe(true);
    if (peer.client !== 'swarmdrop') continue;
    expect(
      peer.fromOwner + peer.fromNeighbours + peer.fromFallback + peer.fromSwarm,
      `${peer.id}: chunks received`,
    ).toBe(count);
  }
}

// Swarm mode through the real bins: peers without download neighbours, which take each
// other from the owner's tracker. Each run checks byte-identical files, the seed's log
// lines at every peer, that both ends of every transfer logged it, and the storage layout.
describe('swarm topologies', () => {
  it('five swarm peers, each exiting once it and every peer it is connected to are done', async () => {
    const ids = ['s1', 's2', 's3', 's4', 's5'];
    const result = await runScenario(
      {
        name: 'swarm-5',
        topology: await topology('swarm'),
        size: 4 * MiB + 4_321,
        // A peer that merged leaves once every peer it is connected to holds everything, or,
        // with nobody connected (the last one up, its elders gone), after the linger.
        extraPeerArgs: ['--exit-when-done', '--linger-ms', '2000'],
      },
      // Before the harness stops them: each peer says `done` (and exits) by itself.
      (r) =>
        Promise.all(
          ids.map((id) =>
            r.swarm.processes
              .get(id)!
              .waitFor((l) => parseTextLine(l)?.event === 'done', 'done line', 60_000),
          ),
        ).then(() => {}),
    );
    expect(result.problems).toEqual([]);
    expectAllChunks(result.summary, result.chunkCount);
    // Whether these five traded depends on who was still up when the next came (peers here
    // leave when done); the twenty below stay up and must trade.
    for (const id of ['s1', 's2', 's3', 's4', 's5']) {
      const events = result.swarm.events(id);
      expect(
        events.filter((e) => e.event === 'connected' && e.fields.role === 'owner'),
        `${id} connected to the owner`,
      ).toHaveLength(1);
    }
  });

  it('twenty swarm peers on loopback, a small file', async () => {
    const result = await runScenario({
      name: 'swarm-20',
      topology: swarmTopology(20),
      size: 40 * CHUNK_SIZE - 1_234,
      timeoutMs: 240_000,
    });
    expect(result.problems).toEqual([]);
    expectAllChunks(result.summary, result.chunkCount);
    expect(result.summary.reduce((sum, p) => sum + p.fromSwarm, 0)).toBeGreaterThan(0);
  });

  it('ring peers and swarm peers in one swarm', async () => {
    const result = await runScenario({
      name: 'ring-and-swarm',
      topology: await topology('ring-and-swarm'),
      size: 3 * MiB + 999,
    });
    expect(result.problems).toEqual([]);
    expectAllChunks(result.summary, result.chunkCount);
    // r1's download neighbour is swarm peer s1: it served r1 over the wire.
    const s1 = result.swarm.peer('s1').port;
    const fromS1 = result.swarm
      .events('r1')
      .filter((e) => e.event === 'chunk-received' && e.fields.from?.endsWith(`:${s1}`));
    expect(fromS1.length, 'r1 received chunks from swarm peer s1').toBeGreaterThan(0);
    // s2 dialled r3 (its neighbour next to --swarm) as a swarm peer.
    const r3 = result.swarm.peer('r3').port;
    expect(
      result.swarm
        .events('s2')
        .some((e) => e.event === 'connected' && e.fields.peer?.endsWith(`:${r3}`)),
    ).toBe(true);
  });

  // CI installs aria2 (.ci/run) and must run this; elsewhere the title says why it did not.
  it.skipIf(!toolAvailable('aria2c'))(
    'a mixed swarm: four swarm peers and aria2c (needs aria2c on PATH)',
    async () => {
      const { topology: mixed } = parseTopology({
        description: 'swarm peers and a stock client that takes the same tracker',
        peers: [
          { id: 's1', swarm: true },
          { id: 's2', swarm: true },
          // aria2c ignores neighbours: it takes the .torrent and the tracker like any stock client.
          { id: 'a1', client: 'aria2c', neighbours: ['s1'] },
          { id: 's3', swarm: true },
          { id: 's4', swarm: true },
        ],
        start: ['s1', 's2', 'a1', 's3', 's4'],
      });
      const result = await runScenario({
        name: 'swarm-aria2c',
        topology: mixed,
        // Big enough that aria2c is still downloading when it dials the swarm peers it was given.
        size: 24 * MiB + 5,
      });
      expect(result.problems).toEqual([]);
      expectAllChunks(result.summary, result.chunkCount);
      // aria2c is on the tracker and dials whom it is given: a BitTorrent connection between it
      // and a swarm peer was made one way (a swarm peer dialled aria2c's port) or the other (a
      // swarm peer got a bitfield from an address that is neither the owner nor swarmdrop's).
      const aria2Port = result.swarm.peer('a1').port;
      const known = new Set([
        result.swarm.ownerPort,
        ...['s1', 's2', 's3', 's4'].map((id) => result.swarm.peer(id).port),
      ]);
      const portOf = (address: string | undefined) =>
        Number(address?.slice(address.lastIndexOf(':') + 1));
      const withAria2 = ['s1', 's2', 's3', 's4'].flatMap((id) =>
        result.swarm
          .events(id)
          .filter(
            (e) =>
              (e.event === 'connected' && portOf(e.fields.peer) === aria2Port) ||
              (e.event === 'idlist-received' && !known.has(portOf(e.fields.from))),
          ),
      );
      expect(withAria2.length, 'a swarm peer and aria2c connected').toBeGreaterThan(0);
      // Requests to aria2c are 16 KiB blocks (it refuses more): a chunk asked of it in whole
      // would have cut the connection with a protocol error.
      for (const id of ['s1', 's2', 's3', 's4']) {
        const errors = result.swarm
          .events(id)
          .filter((e) => e.event === 'protocol-error' && e.fields.peer?.startsWith('127.0.0.1:'));
        expect(errors, `${id}: no protocol errors`).toEqual([]);
      }
    },
  );
});
