/** swarmdrop peer ids carry the sender's listening port. */
import { describe, expect, it } from 'vitest';
import {
  clientOf,
  isSwarmdropPeer,
  isSwarmModePeer,
  listenPortOf,
  makePeerId,
  PEER_ID_PREFIX,
} from '../src/index.js';

describe('peer ids', () => {
  it('are 20 bytes, start with the prefix and carry the listening port', () => {
    for (const port of [1, 7001, 65_535]) {
      const id = makePeerId(port);
      expect(id).toHaveLength(20);
      expect(id.subarray(0, 8).toString('latin1')).toBe(PEER_ID_PREFIX);
      expect(listenPortOf(id)).toBe(port);
      expect(isSwarmdropPeer(id)).toBe(true);
    }
  });

  it('differ between calls', () => {
    const ids = new Set(Array.from({ length: 20 }, () => makePeerId(7001).toString('latin1')));
    expect(ids.size).toBe(20);
  });

  it('other clients have no listening port', () => {
    for (const text of ['-TR3000-abcdefghijkl', '-SD0100-00000-abcdef', 'A2-1-36-0-xxxxxxxxxx']) {
      const id = Buffer.from(text, 'latin1');
      expect(listenPortOf(id)).toBeUndefined();
      expect(isSwarmdropPeer(id)).toBe(false);
    }
  });
});

describe('swarm-mode peer ids', () => {
  it('carry the mark the owner seeds by, keep the port readable, and no other id carries it', () => {
    for (let k = 0; k < 500; k++) {
      const swarm = makePeerId(7001, 'swarm');
      expect(swarm).toHaveLength(20);
      expect(isSwarmModePeer(swarm)).toBe(true);
      expect(listenPortOf(swarm)).toBe(7001);
      expect(isSwarmModePeer(makePeerId(7001))).toBe(false);
    }
    // Ids of every version so far: letters and digits after the port, never the mark.
    expect(isSwarmModePeer(Buffer.from('-SD0100-07001-SWxy12', 'latin1'))).toBe(false);
    expect(isSwarmModePeer(Buffer.from('-qB4650-~12345678901', 'latin1'))).toBe(false);
  });

  it('clientOf names swarmdrop, a stock client by its Azureus-style code, or other', () => {
    expect(clientOf(makePeerId(7001))).toBe('swarmdrop');
    expect(clientOf(makePeerId(7001, 'swarm'))).toBe('swarmdrop');
    expect(clientOf(Buffer.from('-TR4060-abcdefghijkl', 'latin1'))).toBe('TR4060');
    expect(clientOf(Buffer.from('A2-1-37-0-abcdefghij', 'latin1'))).toBe('other');
  });
});
