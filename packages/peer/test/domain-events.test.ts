/**
 * The services' domain events (protocol `events.ts`): every state change is
 * published once, and the console log is one subscriber, so what a test
 * subscribes to and what the log prints are the same stream, event for event.
 */
import { CLIENT_NAME } from '@swarmdrop/protocol';
import {
  type ChunkSource,
  DomainEvents,
  type EventFields,
  LOG_EVENTS,
  type LogEventName,
  type ServiceEvents,
} from '@swarmdrop/service';
import {
  CHUNK,
  Cleanup,
  freePorts,
  type LogCapture,
  merged,
  startOwner,
  startPeer,
} from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

interface Published {
  readonly event: LogEventName;
  readonly fields: Readonly<Record<string, unknown>>;
}

/** A DomainEvents and the list of everything published on it. */
function recorder(): { events: DomainEvents; seen: Published[] } {
  const events = new DomainEvents();
  const seen: Published[] = [];
  for (const event of LOG_EVENTS) {
    const listener = (fields: Readonly<Record<string, unknown>>) => seen.push({ event, fields });
    events.on(event, listener as ServiceEvents[typeof event]);
  }
  return { events, seen };
}

function extendedHandshakes(seen: readonly Published[]): EventFields['extended-handshake'][] {
  return seen
    .filter((p) => p.event === 'extended-handshake')
    .map((p) => p.fields as EventFields['extended-handshake']);
}

/** The printed lines are the published events, in order (the log subscribes, nothing else prints). */
function printedAsPublished(log: LogCapture, seen: readonly Published[]): void {
  expect(log.lines.map((l) => l.event)).toEqual(seen.map((p) => p.event));
}

function received(seen: readonly Published[]): EventFields['chunk-received'][] {
  return seen
    .filter((p) => p.event === 'chunk-received')
    .map((p) => p.fields as EventFields['chunk-received']);
}

describe('domain events', () => {
  it('a ring: owner and peers publish what they print; chunk-received names its ChunkSource', async () => {
    const chunks = 13;
    const owner = recorder();
    const {
      owner: o,
      data,
      log: ownerLog,
    } = await startOwner(cleanup, {
      size: chunks * CHUNK - 99,
      options: { expectedPeers: 2 },
      components: { events: owner.events },
    });
    const ports = await freePorts(2);
    const peers = ports.map(() => recorder());
    const started = await Promise.all(
      ports.map((port, i) =>
        startPeer(cleanup, {
          ownerPort: o.port,
          port,
          neighbourPort: ports[(i + 1) % 2]!,
          options: { fallbackAfterMs: 600_000 },
          components: { events: peers[i]!.events },
        }),
      ),
    );
    await Promise.all(started.map((p) => merged(p.log)));
    for (const [i, p] of started.entries()) {
      const got = received(peers[i]!.seen);
      const sources = new Set<ChunkSource>(got.map((f) => f.via));
      expect([...sources].sort()).toEqual(['neighbour', 'owner']);
      expect(got.reduce((sum, f) => sum + f.bytes, 0)).toBe(data.length);
      expect(extendedHandshakes(peers[i]!.seen)).toContainEqual(
        expect.objectContaining({ peer: `127.0.0.1:${o.port}`, client: CLIENT_NAME }),
      );
      await p.peer.close();
      printedAsPublished(p.log, peers[i]!.seen);
    }
    // Every peer announced BEP 10 to the owner, with its listening port.
    for (const port of ports)
      expect(extendedHandshakes(owner.seen)).toContainEqual(
        expect.objectContaining({ client: CLIENT_NAME, listenPort: port }),
      );
    // The owner's served counters come from its chunk-sent events.
    const sent = owner.seen.filter((p) => p.event === 'chunk-sent');
    const bytes = sent.reduce((sum, p) => sum + Number(p.fields.bytes), 0);
    expect(o.status()).toMatchObject({ chunksServed: sent.length, bytesServed: bytes });
    expect(sent.length).toBeGreaterThan(0);
    await o.close();
    printedAsPublished(ownerLog, owner.seen);
  });

  it('swarm mode: chunk-received names owner or swarm, and the log prints every published event', async () => {
    const chunks = 11;
    const { owner, data } = await startOwner(cleanup, {
      size: chunks * CHUNK - 5,
      options: { expectedPeers: 2 },
    });
    const ports = await freePorts(2);
    const peers = ports.map(() => recorder());
    const started = [];
    for (const [i, port] of ports.entries()) {
      started.push(
        await startPeer(cleanup, {
          ownerPort: owner.port,
          port,
          components: { events: peers[i]!.events },
        }),
      );
    }
    await Promise.all(started.map((p) => merged(p.log)));
    for (const [i, p] of started.entries()) {
      const got = received(peers[i]!.seen);
      for (const f of got) expect(['owner', 'swarm']).toContain(f.via);
      expect(got.reduce((sum, f) => sum + f.bytes, 0)).toBe(data.length);
      await p.peer.close();
      printedAsPublished(p.log, peers[i]!.seen);
    }
  });
});
