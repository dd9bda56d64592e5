/**
 * The µTP reflection attack against a live owner on loopback. A sender that
 * forges a victim's address never sees the owner's replies: it sends a SYN,
 * then a DATA packet with a BitTorrent handshake, `interested` and requests
 * for a whole chunk, with a guessed ack, then more guesses across the 16-bit
 * sequence space. The victim (127.0.0.2) is where the replies land; it
 * counts the bytes both ways. Before the fix the owner took the handshake at
 * once and sent the victim 114x to 630x what it had been sent.
 *
 * The guesses here all miss. A real blind sender hits the right ack with a
 * chance of UTP_MAX_UNPROVEN_BAD_ACKS in 65,536 per SYN, and its SYNs are
 * rate-limited; to keep the run deterministic the test looks at the owner's
 * STATE only to leave the right value out.
 */
import { encodeMessage, seqAdd, UTP_AMPLIFICATION_FACTOR } from '@swarmdrop/protocol';
import {
  CHUNK,
  Cleanup,
  freePorts,
  merged,
  RawUtpRemote,
  startOwner,
  startPeer,
} from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const BLOCK = 16_384;

describe('µTP from a forged source address', () => {
  it(`sends the victim at most ${UTP_AMPLIFICATION_FACTOR}x what the attacker sent, while a real µTP peer downloads`, async () => {
    const { owner, log, metainfo, data } = await startOwner(cleanup, {
      size: 8 * CHUNK,
      options: { expectedPeers: 1 },
    });
    const victim = await RawUtpRemote.open(cleanup, '127.0.0.2', { port: owner.port });
    const request = Buffer.concat([
      encodeMessage({
        type: 'handshake',
        reserved: new Uint8Array(8),
        infoHash: metainfo.infoHash,
        peerId: Buffer.from('-XX0001-abcdefghijkl', 'latin1'),
      }),
      encodeMessage({ type: 'interested' }),
      ...Array.from({ length: Math.ceil(CHUNK / BLOCK) }, (_, i) =>
        encodeMessage({
          type: 'request',
          index: 0,
          begin: i * BLOCK,
          length: Math.min(BLOCK, CHUNK - i * BLOCK),
        }),
      ),
    ]);
    const connections = 12;
    for (let k = 0; k < connections; k++) {
      const id = 2 * k + 100;
      const answered = victim.next((p) => p.type === 'state' && p.connectionId === id);
      victim.send({ type: 'syn', connectionId: id, seq: 1 });
      const right = seqAdd((await answered).seq, -1);
      // Guesses spread over the sequence space, the right one left out.
      const guesses = Array.from({ length: 60 }, (_, i) => (right + 1 + i * 1_091) & 0xffff);
      victim.send({
        type: 'data',
        connectionId: id + 1,
        seq: 2,
        ack: guesses[0],
        payload: request,
      });
      for (const ack of guesses.slice(1)) {
        victim.send({ type: 'state', connectionId: id + 1, seq: 3, ack });
      }
    }
    // A real peer over µTP from 127.0.0.1 gets the whole file meanwhile; by
    // the time it has, the owner has long answered the attack's requests, if
    // it was going to.
    const [port, neighbourPort] = await freePorts(2);
    const peer = await startPeer(cleanup, {
      ownerPort: owner.port,
      port: port!,
      neighbourPort: neighbourPort!,
      options: { transport: 'utp' },
    });
    await merged(peer.log);
    expect(peer.log.filter('connected', { role: 'owner' })[0]?.fields.transport).toBe('utp');
    await victim.barrier();
    expect(victim.bytesSent).toBeGreaterThan(connections * (20 + 20 + request.length));
    expect(victim.bytesReceived).toBeLessThanOrEqual(UTP_AMPLIFICATION_FACTOR * victim.bytesSent);
    // Nothing past the handshake: no wire was opened, no chunk sent.
    const fromVictim = (f: Record<string, string | undefined>) =>
      (f.peer ?? f.to ?? '').startsWith('127.0.0.2:');
    expect(log.filter('connected', fromVictim)).toEqual([]);
    expect(log.filter('chunk-sent', fromVictim)).toEqual([]);
    expect(data.length).toBe(8 * CHUNK);
  });
});
