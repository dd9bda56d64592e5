import { MiB, toolAvailable } from '@swarmdrop/testkit';
import { describe, expect, it } from 'vitest';
import { runScenario } from '../src/scenario.js';
import { parseTopology } from '../src/topology.js';

// CI installs aria2 (.ci/run) and must run this; elsewhere the title says why it did not.
const noAria2 = !toolAvailable('aria2c');

describe('a stock BitTorrent client in the swarm', () => {
  it.skipIf(noAria2)(
    'one of the five peers is aria2c (needs aria2c on PATH) and the swarm still completes',
    async () => {
      const { topology } = parseTopology({
        description: 'ring with p3 replaced by aria2c',
        peers: [
          { id: 'p1', neighbours: ['p2'] },
          { id: 'p2', neighbours: ['p3'] },
          { id: 'p3', neighbours: ['p4'], client: 'aria2c' },
          { id: 'p4', neighbours: ['p5'] },
          { id: 'p5', neighbours: ['p1'] },
        ],
        start: ['p1', 'p2', 'p3', 'p4', 'p5'],
      });
      const result = await runScenario({
        name: 'interop-aria2c',
        topology,
        size: 4 * MiB + 99,
        fallbackAfterMs: 20_000,
      });
      expect(result.problems).toEqual([]);
      // p2's download neighbour is aria2c: it must have received chunks from it over the wire.
      const aria2Port = result.swarm.peer('p3').port;
      const fromAria2 = result.swarm
        .events('p2')
        .filter((e) => e.event === 'chunk-received' && e.fields.from?.endsWith(`:${aria2Port}`));
      expect(fromAria2.length, 'p2 received chunks from aria2c').toBeGreaterThan(0);
      // aria2c dials every peer the tracker lists with MSE; the peers' default (prefer)
      // answers it with RC4. (aria2c keeps one connection per peer id: p2's own
      // connection to it is the one that must survive, whichever dialled first.)
      const encrypted = ['p1', 'p2', 'p4', 'p5'].flatMap((id) =>
        result.swarm
          .events(id)
          .filter(
            (e) =>
              e.event === 'connected' && e.fields.dir === 'in' && e.fields.encryption === 'rc4',
          ),
      );
      expect(encrypted.length, 'aria2c reached the peers over MSE').toBeGreaterThan(0);
    },
  );
});
