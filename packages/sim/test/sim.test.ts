import { describe, expect, it } from 'vitest';
import { parseScenario } from '../src/scenario.js';
import { simulate } from '../src/sim.js';

/**
 * The simulator's numbers are deterministic for a seed, so these bounds are
 * on simulated time, not on this machine's speed: they sit just above what
 * the engine reached when they were written (seed 1: p50 3.39, max 4.13,
 * owner 5.18 copies), so a change that makes the swarm slower fails here.
 */
describe('simulated swarm, the real engine over modelled links', () => {
  it('200 peers, 100 pieces, flash crowd: all complete within the ratio bounds', async () => {
    const r = await simulate(parseScenario({ peers: 200, seed: 1 }));
    expect(r.completed).toBe(200);
    expect(r.survivors).toBe(200);
    expect(r.ratio.p50).toBeGreaterThanOrEqual(1);
    expect(r.ratio.p50).toBeLessThanOrEqual(3.5);
    expect(r.ratio.max).toBeLessThanOrEqual(4.4);
    expect(r.ownerCopies).toBeGreaterThanOrEqual(1);
    expect(r.ownerCopies).toBeLessThanOrEqual(5.4);
    expect(r.allPiecesOutAt).toBeDefined();
    expect(r.allPiecesOutAt!).toBeLessThan(
      r.peers.reduce((m, p) => Math.max(m, p.completedAt ?? 0), 0),
    );
  });

  it('gives the same numbers for the same seed, and others for another seed', async () => {
    const scenario = {
      peers: 30,
      crash: { share: 0.1, atMs: 500, returnShare: 0.5, returnAfterMs: 300 },
    };
    const a = await simulate(parseScenario({ ...scenario, seed: 7 }));
    const b = await simulate(parseScenario({ ...scenario, seed: 7 }));
    const c = await simulate(parseScenario({ ...scenario, seed: 8 }));
    expect(b.peers).toEqual(a.peers);
    expect(b.ratio).toEqual(a.ratio);
    expect(b.messages).toBe(a.messages);
    expect(c.peers).not.toEqual(a.peers);
    // Every survivor completes; the ones killed for good are not counted.
    expect(a.survivors).toBe(30 - 1);
    expect(a.completed).toBe(a.survivors);
  });

  it('refuses a bad scenario with a line naming the field', () => {
    expect(() => parseScenario({ peers: 0 })).toThrow(/peers must be within/);
    expect(() => parseScenario({ classes: [{ share: 0.5, up: 1, down: 1 }] })).toThrow(
      /classes shares must add up to 1/,
    );
    expect(() => parseScenario({ peerz: 3 })).toThrow(/peerz is unknown/);
  });
});
