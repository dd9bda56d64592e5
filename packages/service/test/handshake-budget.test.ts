/**
 * The bound on incoming handshakes in progress: per source a newcomer is
 * refused, in total the oldest is cut. Half-open MSE handshakes once held
 * the port (256 of them, and the metainfo was refused).
 */
import { EventEmitter, once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';
import { Cleanup } from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import {
  HandshakeBudget,
  type HandshakeSlot,
  type IncomingConnection,
  incomingHandlers,
} from '../src/index.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const INFO_HASH = Buffer.alloc(20, 0x42);

describe('HandshakeBudget', () => {
  it('refuses a source past its cap, and counts it', () => {
    const budget = new HandshakeBudget({ maxHandshakes: 10, maxHandshakesPerAddress: 2 });
    const a = budget.open('10.0.0.1', () => {});
    const b = budget.open('10.0.0.1', () => {});
    expect(typeof a).toBe('object');
    expect(typeof b).toBe('object');
    expect(budget.open('10.0.0.1', () => {})).toBe(
      'too many handshakes in progress from 10.0.0.1 (limit 2 per address)',
    );
    expect(typeof budget.open('10.0.0.2', () => {})).toBe('object');
    expect(budget.stats).toMatchObject({ held: 3, refusedAddressCap: 1, evicted: 0 });
    (a as HandshakeSlot).release();
    (a as HandshakeSlot).release(); // a second release gives nothing back twice
    expect(budget.stats.held).toBe(2);
    expect(typeof budget.open('10.0.0.1', () => {})).toBe('object');
    expect(budget.open('10.0.0.1', () => {})).toMatch(/limit 2 per address/);
  });

  it('cuts the oldest handshake when every slot is taken, so newcomers always get one', () => {
    const budget = new HandshakeBudget({ maxHandshakes: 3, maxHandshakesPerAddress: 3 });
    const evicted: number[] = [];
    const slots = [0, 1, 2, 3, 4].map((i) => budget.open(`10.0.0.${i}`, () => evicted.push(i)));
    expect(slots.every((s) => typeof s === 'object')).toBe(true);
    expect(evicted).toEqual([0, 1]);
    expect(budget.stats).toMatchObject({ held: 3, peak: 3, evicted: 2 });
    // An evicted slot released late (its handshake's own ending) takes nothing from the others.
    (slots[0] as HandshakeSlot).release();
    expect(budget.stats.held).toBe(3);
  });

  it('gives a source its slot back when its own oldest handshake is cut for its newest', () => {
    // Pins a count that leaked: a source whose oldest was cut for its own newcomer kept
    // the cut one's count, and after enough rounds was refused with next to nothing held.
    const budget = new HandshakeBudget({ maxHandshakes: 4, maxHandshakesPerAddress: 8 });
    for (let i = 0; i < 100; i++) expect(typeof budget.open('10.0.0.1', () => {})).toBe('object');
    expect(budget.stats).toMatchObject({ held: 4, evicted: 96, refusedAddressCap: 0 });
  });

  it('counts an IPv6 /64 as one source', () => {
    const budget = new HandshakeBudget({ maxHandshakesPerAddress: 1 });
    expect(typeof budget.open('2001:db8:1:2::1', () => {})).toBe('object');
    expect(budget.open('2001:db8:1:2::ffff', () => {})).toMatch(/2001:db8:1:2::\/64/);
  });
});

/** A listener whose connections go to `incomingHandlers` as DualServer would hand over MSE (the first bytes read). */
async function handshakeServer(budget: HandshakeBudget) {
  const refused: string[] = [];
  const accepted: IncomingConnection[] = [];
  const handled = new EventEmitter();
  const handlers = incomingHandlers({
    policies: () => ({ infoHash: INFO_HASH, timeoutMs: 60_000 }),
    onAccepted: (c) => accepted.push(c),
    onRefused: (_from, reason) => refused.push(reason),
    handshakes: budget,
  });
  const server = createServer({ pauseOnConnect: true }, (socket) => {
    socket.once('data', (first: Buffer) => {
      socket.pause();
      handlers.onEncrypted(socket, first);
      handled.emit('handled');
    });
    socket.resume();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanup.add(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const port = (server.address() as { port: number }).port;
  /** Opens a connection from `localAddress` that starts an MSE handshake and never finishes it; resolves once the server took it in. */
  const halfOpen = async (localAddress: string): Promise<Socket> => {
    const socket = connect({ host: '127.0.0.1', port, localAddress });
    cleanup.add(() => socket.destroy());
    socket.on('error', () => {});
    await once(socket, 'connect');
    const taken = once(handled, 'handled');
    socket.write(Buffer.alloc(50, 0xa5)); // half a public key
    await taken;
    return socket;
  };
  return { halfOpen, refused, accepted };
}

const closed = (socket: Socket) => (socket.closed ? Promise.resolve() : once(socket, 'close'));

describe('incomingHandlers with a handshake budget', () => {
  it('holds no more half-open MSE handshakes than its caps: a source past its own is refused, the oldest cut for newcomers', async () => {
    const budget = new HandshakeBudget({ maxHandshakes: 4, maxHandshakesPerAddress: 2 });
    const { halfOpen, refused } = await handshakeServer(budget);
    const a1 = await halfOpen('127.0.0.2');
    const a2 = await halfOpen('127.0.0.2');
    const a3 = await halfOpen('127.0.0.2');
    await closed(a3);
    expect(refused).toEqual([
      'too many handshakes in progress from 127.0.0.2 (limit 2 per address)',
    ]);
    const others = [
      await halfOpen('127.0.0.3'),
      await halfOpen('127.0.0.3'),
      await halfOpen('127.0.0.4'),
      await halfOpen('127.0.0.4'),
    ];
    await Promise.all([closed(a1), closed(a2)]);
    expect(budget.stats).toMatchObject({ held: 4, peak: 4, evicted: 2, refusedAddressCap: 1 });
    expect(refused.slice(1)).toEqual([
      'handshake slots full (limit 4): the oldest in progress was cut',
      'handshake slots full (limit 4): the oldest in progress was cut',
    ]);
    expect(others.some((s) => s.closed)).toBe(false);
  });
});
