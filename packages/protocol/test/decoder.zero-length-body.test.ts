/**
 * Pins a bug: a message with an empty body (choke, unchoke, interested, not
 * interested, or the bitfield of a file with no chunks) at the very end of a
 * read made FrameDecoder.take(0) read `queue[0]` of an empty queue, and the
 * decoder failed the connection with ERR_MESSAGE_LENGTH. A lone `interested`
 * in its own TCP segment, the usual case, killed the connection.
 */
import { describe, expect, it } from 'vitest';
import { encodeMessage, FrameDecoder, Geometry, type Message } from '../src/index.js';

const bodiless: Message[] = [
  { type: 'choke' },
  { type: 'unchoke' },
  { type: 'interested' },
  { type: 'notInterested' },
];

describe('a message with an empty body ending a read', () => {
  it.each(bodiless.map((m) => [m.type, m] as const))('%s alone in a read decodes', (_t, m) => {
    const d = new FrameDecoder({ geometry: new Geometry(10, 5), expectHandshake: false });
    expect(d.push(encodeMessage(m))).toEqual([m]);
    expect(d.push(encodeMessage(m))).toEqual([m]);
  });

  it('the empty bitfield of a zero-chunk file alone in a read decodes', () => {
    const d = new FrameDecoder({ geometry: new Geometry(0, 5), expectHandshake: false });
    const [message] = d.push(encodeMessage({ type: 'bitfield', bytes: new Uint8Array(0) }));
    expect(message?.type).toBe('bitfield');
  });
});
