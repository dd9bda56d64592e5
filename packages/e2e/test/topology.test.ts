import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadTopology, parseTopology, ringTopology, TopologyError } from '../src/topology.js';
import { TOPOLOGIES } from './helpers.js';

describe('topology files', () => {
  it('the shipped ring is valid and fully reachable', async () => {
    const { topology, warnings } = await loadTopology(join(TOPOLOGIES, 'ring.json'));
    expect(topology.peers.map((p) => p.neighbours[0])).toEqual(['p2', 'p3', 'p4', 'p5', 'p1']);
    expect(warnings).toEqual([]);
  });

  it('the split topology warns that each cycle needs the owner for the other cycle', async () => {
    const { warnings } = await loadTopology(join(TOPOLOGIES, 'split.json'));
    expect(warnings).toHaveLength(5);
    expect(warnings[0]).toContain('"p1" cannot get the batches of "p3", "p4", "p5"');
  });

  it('a ring with a chord is fully reachable', async () => {
    expect((await loadTopology(join(TOPOLOGIES, 'ring-chord.json'))).warnings).toEqual([]);
  });

  it('swarm peers need no neighbours, and make everything reachable for the ring peers downloading from them', async () => {
    const swarm = await loadTopology(join(TOPOLOGIES, 'swarm.json'));
    expect(swarm.topology.peers.every((p) => p.swarm && p.neighbours.length === 0)).toBe(true);
    expect(swarm.warnings).toEqual([]);
    const mixed = await loadTopology(join(TOPOLOGIES, 'ring-and-swarm.json'));
    expect(mixed.warnings).toEqual([]);
    expect(mixed.topology.peers.find((p) => p.id === 's2')).toMatchObject({
      swarm: true,
      neighbours: ['r3'],
    });
  });

  it('rejects a peer with neither neighbours nor "swarm", and "swarm" on a stock client', () => {
    expect(() => parseTopology({ peers: [{ id: 'a' }] })).toThrow(/"swarm": true/);
    expect(() => parseTopology({ peers: [{ id: 'a', swarm: true, client: 'aria2c' }] })).toThrow(
      /"swarm" is for swarmdrop peers/,
    );
  });

  it('rejects an unknown neighbour', () => {
    expect(() => parseTopology({ peers: [{ id: 'a', neighbours: ['zz'] }] })).toThrow(
      /unknown neighbour "zz"/,
    );
  });

  it('rejects a duplicate id', () => {
    expect(() =>
      parseTopology({
        peers: [
          { id: 'a', neighbours: ['a2'] },
          { id: 'a', neighbours: ['a'] },
          { id: 'a2', neighbours: ['a'] },
        ],
      }),
    ).toThrow(/duplicate peer id "a"/);
  });

  it('rejects a duplicate port', () => {
    expect(() =>
      parseTopology({
        peers: [
          { id: 'a', neighbours: ['b'], port: 7001 },
          { id: 'b', neighbours: ['a'], port: 7001 },
        ],
      }),
    ).toThrow(/duplicate port 7001 \(peers "a" and "b"\)/);
  });

  it('rejects a start order that is not every peer once', () => {
    const peers = ringTopology(3).peers;
    expect(() => parseTopology({ peers, start: ['p1', 'p1', 'p2'] })).toThrow(TopologyError);
  });

  it('rejects a peer that is its own neighbour, and a bad client', () => {
    expect(() => parseTopology({ peers: [{ id: 'a', neighbours: ['a'] }] })).toThrow(
      /its own neighbour/,
    );
    expect(() =>
      parseTopology({
        peers: [
          { id: 'a', neighbours: ['b'], client: 'utorrent' },
          { id: 'b', neighbours: ['a'] },
        ],
      }),
    ).toThrow(/client/);
  });

  it('a file that is not JSON is named in the error', async () => {
    await expect(loadTopology(join(TOPOLOGIES, '..', 'package.json.nope'))).rejects.toThrow(
      /cannot read/,
    );
  });
});
