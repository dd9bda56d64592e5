import { describe, expect, it } from 'vitest';
import {
  ConnectionRegistry,
  keepsDialledBySmallerId,
  type RegisteredConnection,
  type RegistryEntry,
} from '../src/engine/connection-registry.js';

/** A connection as the registry reads it: a label, a handshake, a remote bitfield that may be complete. */
class FakeConnection implements RegisteredConnection {
  complete = false;
  closedWith: string | undefined;
  readonly remoteHas = { isComplete: () => this.complete };
  readonly wire: { remoteHandshake: { peerId: Uint8Array } | undefined };
  constructor(
    readonly label: string,
    peerId?: string,
  ) {
    this.wire = { remoteHandshake: peerId ? { peerId: Buffer.from(peerId) } : undefined };
  }
  close(reason: string): void {
    this.closedWith = reason;
  }
}

interface Entry extends RegistryEntry {
  readonly connection: FakeConnection;
  readonly role: 'owner' | 'swarm';
}

const entry = (label: string, role: Entry['role'] = 'swarm', peerId?: string): Entry => ({
  connection: new FakeConnection(label, peerId),
  role,
});

const registry = (maxConnections?: number) =>
  new ConnectionRegistry<Entry>({
    maxConnections,
    countsAsPeer: (e) => e.role === 'swarm',
    awaitsServed: (e) => e.role !== 'owner',
  });

describe('ConnectionRegistry', () => {
  it('adds and removes entries with typed events, and refuses a key twice', () => {
    const r = registry();
    const seen: string[] = [];
    r.on('added', (key, e) => seen.push(`+${key}=${e.connection.label}`));
    r.on('removed', (key) => seen.push(`-${key}`));
    const a = entry('10.0.0.1:1');
    r.add('a', a);
    expect(r.get('a')).toBe(a);
    expect(r.has('a')).toBe(true);
    expect(r.size).toBe(1);
    expect(() => r.add('a', entry('10.0.0.2:1'))).toThrow(/already registered/);
    expect(r.remove('a', a)).toBe(true);
    expect(r.remove('a', a)).toBe(false);
    expect(r.size).toBe(0);
    expect(seen).toEqual(['+a=10.0.0.1:1', '-a']);
  });

  it('leaves a successor alone when a replaced entry is removed late', () => {
    const r = registry();
    const old = entry('10.0.0.1:1');
    const successor = entry('10.0.0.1:1');
    r.add('10.0.0.1:1', old);
    r.remove('10.0.0.1:1', old);
    r.add('10.0.0.1:1', successor);
    // The old connection's `closed` handler runs after the replacement.
    expect(r.remove('10.0.0.1:1', old)).toBe(false);
    expect(r.get('10.0.0.1:1')).toBe(successor);
  });

  it('finds entries by remote peer id and by address', () => {
    const r = registry();
    const a = entry('10.0.0.1:1', 'swarm', '-AR0000-aaaaaaaaaaaa');
    const b = entry('10.0.0.2:1', 'swarm', '-AR0000-bbbbbbbbbbbb');
    const c = entry('10.0.0.1:1', 'swarm');
    r.add('a', a);
    r.add('b', b);
    r.add('c', c);
    expect(r.withPeerId(Buffer.from('-AR0000-bbbbbbbbbbbb'))).toEqual([b]);
    expect(r.withPeerId(Buffer.from('-AR0000-cccccccccccc'))).toEqual([]);
    expect(r.withAddress('10.0.0.1:1')).toEqual([a, c]);
    expect(r.keyed().map(([k]) => k)).toEqual(['a', 'b', 'c']);
  });

  it('counts registered and pending connections toward the cap; a release counts once', () => {
    const r = registry(2);
    expect(r.isFull()).toBe(false);
    const release = r.hold();
    r.add('a', entry('10.0.0.1:1'));
    expect(r.pending).toBe(1);
    expect(r.isFull()).toBe(true);
    release();
    release();
    expect(r.pending).toBe(0);
    expect(r.isFull()).toBe(false);
    expect(registry().isFull()).toBe(false);
  });

  it('marks an address being dialled once', () => {
    const r = registry();
    expect(r.startDialling('10.0.0.1:1')).toBe(true);
    expect(r.startDialling('10.0.0.1:1')).toBe(false);
    expect(r.isDialling('10.0.0.1:1')).toBe(true);
    r.stopDialling('10.0.0.1:1');
    expect(r.isDialling('10.0.0.1:1')).toBe(false);
  });

  it('counts each peer seen once, only those that count, and keeps the count after they leave', () => {
    const r = registry();
    const a = entry('10.0.0.1:1');
    const owner = entry('10.0.0.9:1', 'owner');
    r.add('a', a);
    r.add('owner', owner);
    r.markSeen(a);
    r.markSeen(a);
    r.markSeen(owner);
    expect(r.peersSeen).toBe(1);
    r.remove('a', a);
    expect(r.peersSeen).toBe(1);
  });

  it('is all served when every awaited remote is complete, whatever the others hold', () => {
    const r = registry();
    expect(r.allServed()).toBe(true);
    const a = entry('10.0.0.1:1');
    const owner = entry('10.0.0.9:1', 'owner');
    r.add('a', a);
    r.add('owner', owner);
    expect(r.allServed()).toBe(false);
    a.connection.complete = true;
    expect(r.allServed()).toBe(true);
  });

  it('closes every registered connection with the reason', () => {
    const r = registry();
    const a = entry('10.0.0.1:1');
    const b = entry('10.0.0.2:1');
    r.add('a', a);
    r.add('b', b);
    // A close handler that removes its entry while closeAll walks the registry.
    a.connection.close = (reason) => {
      a.connection.closedWith = reason;
      r.remove('a', a);
    };
    r.closeAll('peer stopping');
    expect(a.connection.closedWith).toBe('peer stopping');
    expect(b.connection.closedWith).toBe('peer stopping');
    expect(r.size).toBe(1);
  });
});

describe('keepsDialledBySmallerId', () => {
  it('picks one connection of the two, the same one at both ends, whoever asks', () => {
    const small = Buffer.from('-SD0100-06001-aaaaaa');
    const large = Buffer.from('-SD0100-06001-aaaaab');
    // The small id's outgoing connection is the large id's incoming one.
    expect(keepsDialledBySmallerId(small, large, 'out')).toBe(true);
    expect(keepsDialledBySmallerId(large, small, 'in')).toBe(true);
    expect(keepsDialledBySmallerId(small, large, 'in')).toBe(false);
    expect(keepsDialledBySmallerId(large, small, 'out')).toBe(false);
  });
});
