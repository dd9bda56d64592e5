/** swarmdrop peer ids carry the sender's listening port. */
import { describe, expect, it } from 'vitest';
import { isSwarmdropPeer, listenPortOf, makePeerId, PEER_ID_PREFIX } from '../src/index.js';

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
