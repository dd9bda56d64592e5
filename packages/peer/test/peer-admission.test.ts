/**
 * A private swarm's admission on the peer's side, on a ManualClock: who may
 * open a connection to us while the owner's tracker answers, and while it
 * does not. Before, admission ran out on the wall clock: once the owner had
 * been gone for three announce intervals, the peers it had admitted could no
 * longer reconnect to each other.
 */
import { ANNOUNCE_EXPIRY_MS, ManualClock } from '@swarmdrop/protocol';
import type { WireSocket } from '@swarmdrop/protocol/node';
import { describe, expect, it } from 'vitest';
import { ADMIT_REFRESH_MS, PeerAdmission } from '../src/private-swarm.js';

const from = (host: string) => ({ remoteAddress: host }) as unknown as WireSocket;

/** A PeerAdmission whose tracker answers with `listed` while `up`, and fails otherwise. */
function setup() {
  const clock = new ManualClock(1_000);
  const tracker = { up: true, listed: ['127.0.0.2', '127.0.0.3'], asked: 0 };
  const admission: PeerAdmission = new PeerAdmission({
    clock,
    reannounce: () => {
      tracker.asked++;
      if (!tracker.up) return Promise.reject(new Error('owner unreachable'));
      admission.admit(tracker.listed);
      return Promise.resolve();
    },
  });
  return { clock, tracker, admission };
}

describe('PeerAdmission', () => {
  it('admits the hosts the tracker lists, and refuses others', async () => {
    const { admission } = setup();
    admission.admit(['127.0.0.2']);
    expect(await admission.check(from('127.0.0.2'))).toBeUndefined();
    expect(await admission.check(from('127.0.0.9'))).toBe('not announced with the token');
  });

  it('while the owner is unreachable, keeps its admitted hosts for good and lets nobody new in', async () => {
    const { clock, tracker, admission } = setup();
    admission.admit(tracker.listed);
    tracker.up = false;
    // Far past the expiry: the owner has been gone all along.
    clock.advance(10 * ANNOUNCE_EXPIRY_MS);
    expect(await admission.check(from('127.0.0.2'))).toBeUndefined();
    expect(await admission.check(from('::ffff:127.0.0.3'))).toBeUndefined();
    expect(await admission.check(from('127.0.0.9'))).toBe('not announced with the token');
    expect(tracker.asked).toBe(1);
    clock.advance(ADMIT_REFRESH_MS);
    expect(await admission.check(from('127.0.0.9'))).toBe('not announced with the token');
    expect(tracker.asked).toBe(2);
  });

  it('once the tracker answers again, a host it stopped listing expires as before', async () => {
    const { clock, tracker, admission } = setup();
    admission.admit(tracker.listed);
    tracker.listed = ['127.0.0.3'];
    // The tracker goes on answering, without 127.0.0.2.
    for (let t = 0; t <= ANNOUNCE_EXPIRY_MS; t += 30_000) {
      clock.advance(30_000);
      admission.admit(tracker.listed);
    }
    expect(await admission.check(from('127.0.0.3'))).toBeUndefined();
    expect(await admission.check(from('127.0.0.2'))).toBe('not announced with the token');
  });
});
