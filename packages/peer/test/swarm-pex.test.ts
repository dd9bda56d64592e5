/**
 * SwarmPex, swarm mode's peer exchange, on a ManualClock with fake
 * connections: what each remote is sent and when, what a hostile remote's
 * messages do (close that one connection, or nothing), and how many dials a
 * PEX message can cause.
 */
import {
  bencodeEncode,
  decodePex,
  encodePex,
  ManualClock,
  PEX_INTERVAL_MS,
  type PexPeer,
  type WireError,
} from '@swarmdrop/protocol';
import { describe, expect, it } from 'vitest';
import {
  PEX_DIAL_BURST,
  PEX_DIALS_PER_MESSAGE,
  PEX_DIALS_PER_SOURCE,
} from '../src/swarm/pex-policy.js';
import { PEX_ROUND_MS, type PexRemote, SwarmPex } from '../src/swarm/swarm-pex.js';

const peer = (i: number): PexPeer => ({ host: `10.0.0.${i}`, port: 7000 + i, flags: 0 });
const label = (i: number) => `10.0.0.${i}:${7000 + i}`;

class FakeRemote implements PexRemote {
  constructor(readonly source = `host-${Math.random()}`) {}
  readonly sent: ReturnType<typeof decodePex>[] = [];
  failed: WireError | undefined;
  send(payload: Buffer): boolean {
    this.sent.push(decodePex(payload));
    return true;
  }
  fail(error: WireError): void {
    this.failed = error;
  }
}

function setup(options: { slots?: number } = {}) {
  const clock = new ManualClock();
  const holding = new Map<string, PexPeer>();
  const dialled: string[] = [];
  const state = { slots: options.slots ?? 30 };
  const pex = new SwarmPex({
    clock,
    listed: () => holding,
    known: (l) => holding.has(l) || dialled.includes(l),
    freeSlots: () => state.slots,
    dial: (host, port) => {
      dialled.push(`${host}:${port}`);
      state.slots--;
    },
  });
  const hold = (i: number) => holding.set(label(i), peer(i));
  return { clock, pex, holding, hold, dialled, state };
}

/** A message from a remote listing peers `from` .. `from + count - 1` (10.0.x.y). */
const listing = (count: number, from = 100) =>
  encodePex({
    added: Array.from({ length: count }, (_, i) => ({
      host: `10.0.${(from + i) >> 8}.${(from + i) & 0xff}`,
      port: 6881,
      flags: 0,
    })),
    dropped: [],
  });

describe('SwarmPex', () => {
  it('sends each remote the others we hold at once, then changes at most once a minute', () => {
    const { clock, pex, hold, holding } = setup();
    hold(1);
    hold(2);
    hold(3);
    const a = new FakeRemote();
    pex.add(label(1), a);
    expect(a.sent).toEqual([{ added: [peer(2), peer(3)], dropped: [] }]);
    holding.delete(label(3));
    hold(4);
    clock.advance(PEX_INTERVAL_MS - PEX_ROUND_MS);
    expect(a.sent).toHaveLength(1);
    clock.advance(PEX_ROUND_MS);
    expect(a.sent[1]).toEqual({
      added: [peer(4)],
      dropped: [{ host: peer(3).host, port: peer(3).port }],
    });
    // Ten quiet minutes: nothing new, nothing sent.
    clock.advance(10 * PEX_INTERVAL_MS);
    expect(a.sent).toHaveLength(2);
  });

  it('a flood of PEX messages closes that one remote (ERR_PEX_FLOOD); the others go on', () => {
    const { clock, pex } = setup();
    const flooder = new FakeRemote();
    const quiet = new FakeRemote();
    pex.add(label(1), flooder);
    pex.add(label(2), quiet);
    for (let i = 0; i < 3; i++) {
      pex.receive(label(1), listing(1, 100 + i));
      clock.advance(100);
    }
    expect(flooder.failed).toBeUndefined();
    pex.receive(label(1), listing(1, 200));
    expect(flooder.failed?.code).toBe('ERR_PEX_FLOOD');
    pex.receive(label(2), listing(1, 300));
    expect(quiet.failed).toBeUndefined();
  });

  it('a message that does not decode closes that remote (ERR_PEX_MESSAGE) and dials nothing', () => {
    const { pex, dialled } = setup();
    const bad = new FakeRemote();
    pex.add(label(1), bad);
    pex.receive(label(1), bencodeEncode({ added: Buffer.alloc(7) }));
    expect(bad.failed?.code).toBe('ERR_PEX_MESSAGE');
    expect(bad.failed?.message).toMatch(/^ut_pex: added has 7 bytes/);
    expect(dialled).toEqual([]);
  });

  it('ignores PEX from a remote that never offered it', () => {
    const { pex, dialled } = setup();
    pex.receive(label(9), listing(5));
    expect(dialled).toEqual([]);
    expect(pex.waiting).toBe(0);
  });

  it('dials at most PEX_DIALS_PER_MESSAGE of a message listing 50, none it holds, and none twice', () => {
    const { pex, dialled, hold } = setup();
    hold(1);
    const remote = new FakeRemote();
    pex.add(label(1), remote);
    pex.receive(
      label(1),
      encodePex({
        added: [peer(1), ...Array.from({ length: 49 }, (_, i) => peer(100 + i))],
        dropped: [],
      }),
    );
    expect(dialled).toHaveLength(PEX_DIALS_PER_MESSAGE);
    expect(dialled).not.toContain(label(1));
    expect(new Set(dialled).size).toBe(dialled.length);
  });

  it('connections from one host share its per-source budget: reconnecting does not reset it', () => {
    /** Three connections 20 s apart (the total budget refills meanwhile), each listing 50. */
    const run = (hostOf: (r: number) => string) => {
      const { clock, pex, dialled } = setup({ slots: 1_000 });
      for (let r = 0; r < 3; r++) {
        const l = `${hostOf(r)}:${5000 + r}`;
        pex.add(l, new FakeRemote(hostOf(r)));
        pex.receive(l, listing(50, 2_000 + r * 50));
        pex.remove(l);
        clock.advance(20_000);
      }
      return dialled.length;
    };
    expect(run(() => '10.2.0.1')).toBe(PEX_DIALS_PER_SOURCE);
    expect(run((r) => `10.2.0.${r + 1}`)).toBe(3 * PEX_DIALS_PER_MESSAGE);
  });

  it('fifty remotes each listing fifty addresses cause at most the total budget of dials at once', () => {
    const { pex, dialled } = setup({ slots: 1_000 });
    for (let r = 0; r < 50; r++) {
      const l = `10.1.0.${r}:1`;
      pex.add(l, new FakeRemote());
      pex.receive(l, listing(50, 1_000 + r * 50));
    }
    expect(dialled).toHaveLength(PEX_DIAL_BURST);
  });

  it('keeps what it learnt while slots are full, and dials it once one frees', () => {
    const { clock, pex, dialled, state } = setup({ slots: 0 });
    pex.add(label(1), new FakeRemote());
    pex.receive(label(1), listing(3));
    expect(dialled).toEqual([]);
    expect(pex.waiting).toBe(3);
    state.slots = 2;
    clock.advance(PEX_ROUND_MS);
    expect(dialled).toEqual(['10.0.0.100:6881', '10.0.0.101:6881']);
    state.slots = 1;
    pex.dialFree();
    expect(dialled).toHaveLength(3);
  });

  it('a second connection under one label takes over its exchange; the first one closing later leaves it', () => {
    const { clock, pex, hold } = setup();
    hold(2);
    const first = new FakeRemote('10.0.0.1');
    const second = new FakeRemote('10.0.0.1');
    pex.add(label(1), first);
    pex.add(label(1), second);
    // The second starts afresh: it is told of everyone at once.
    expect(second.sent).toEqual([{ added: [peer(2)], dropped: [] }]);
    pex.remove(label(1), first);
    pex.receive(label(1), listing(1), first);
    expect(first.failed).toBeUndefined();
    hold(3);
    clock.advance(PEX_INTERVAL_MS);
    expect(second.sent).toHaveLength(2);
    expect(first.sent).toHaveLength(1);
  });

  it('after close sends, reads and dials nothing', () => {
    const { clock, pex, hold, dialled } = setup();
    const remote = new FakeRemote();
    hold(2);
    pex.add(label(1), remote);
    pex.close();
    hold(3);
    clock.advance(10 * PEX_INTERVAL_MS);
    pex.receive(label(1), listing(5));
    expect(remote.sent).toHaveLength(1);
    expect(dialled).toEqual([]);
  });
});
