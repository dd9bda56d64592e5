import {
  histogramValue,
  metricValue,
  type PromMetrics,
  parseMetrics,
  promtoolCheck,
  toolAvailable,
} from '@swarmdrop/testkit';
import { describe, expect, it } from 'vitest';
import { createMetrics, DomainEvents, REQUEST_SECONDS_BUCKETS, remoteKind } from '../src/index.js';

const A = '127.0.0.1:7002';
const B = '127.0.0.1:7003';
const STOCK = '127.0.0.1:51413';

/** A service's events, its metrics, and a hand-moved clock (ms). */
function setup(
  options: {
    chunksHeld?: () => number;
    trackerPeers?: () => number;
    utpMalformed?: () => number;
    utpReorderBytes?: () => number;
  } = {},
) {
  const events = new DomainEvents();
  let ms = 1_000;
  const metrics = createMetrics(events, { now: () => ms, processMetrics: false, ...options });
  return {
    events,
    metrics,
    advance(by: number) {
      ms += by;
    },
    /** What a scraper reads: the registry's text exposition, parsed. */
    async scrape(): Promise<PromMetrics> {
      return parseMetrics(await metrics.registry.metrics());
    },
  };
}

function histogram(m: PromMetrics, labels: Record<string, string>) {
  return histogramValue(m, 'swarmdrop_request_duration_seconds', labels);
}

describe('createMetrics', () => {
  it('counts chunks and bytes received by source, and sent by the kind of remote', async () => {
    const { events, scrape } = setup();
    events.publish('connected', { peer: A, dir: 'in', role: 'in', transport: 'tcp' });
    events.publish('connected', { peer: STOCK, dir: 'in', client: 'Transmission 4.0' });
    for (const [chunk, via] of [
      [0, 'owner'],
      [1, 'owner'],
      [2, 'neighbour'],
      [3, 'swarm'],
      [4, 'fallback'],
    ] as const)
      events.publish('chunk-received', { chunk, from: B, bytes: 100 + chunk, via });
    events.publish('chunk-sent', { chunk: 0, to: A, bytes: 100 });
    events.publish('chunk-sent', { chunk: 1, to: A, bytes: 101 });
    events.publish('chunk-sent', { chunk: 2, to: STOCK, bytes: 102 });
    // Sent on a connection this subscriber never saw (it subscribed late).
    events.publish('chunk-sent', { chunk: 3, to: '127.0.0.9:1', bytes: 7 });

    const m = await scrape();
    expect(m.swarmdrop_chunks_received_total?.type).toBe('counter');
    expect(metricValue(m, 'swarmdrop_chunks_received_total', { source: 'owner' })).toBe(2);
    expect(metricValue(m, 'swarmdrop_chunks_received_total', { source: 'neighbour' })).toBe(1);
    expect(metricValue(m, 'swarmdrop_chunks_received_total', { source: 'swarm' })).toBe(1);
    expect(metricValue(m, 'swarmdrop_chunks_received_total', { source: 'fallback' })).toBe(1);
    expect(metricValue(m, 'swarmdrop_received_bytes_total', { source: 'owner' })).toBe(201);
    expect(metricValue(m, 'swarmdrop_received_bytes_total')).toBe(510);
    expect(metricValue(m, 'swarmdrop_chunks_sent_total', { kind: 'swarmdrop' })).toBe(2);
    expect(metricValue(m, 'swarmdrop_sent_bytes_total', { kind: 'swarmdrop' })).toBe(201);
    expect(metricValue(m, 'swarmdrop_chunks_sent_total', { kind: 'stock' })).toBe(1);
    expect(metricValue(m, 'swarmdrop_chunks_sent_total', { kind: 'unknown' })).toBe(1);
    expect(metricValue(m, 'swarmdrop_sent_bytes_total')).toBe(310);
  });

  it('a source that no link has (disk) is counted as source="other", not as a new label value', async () => {
    const { events, scrape } = setup();
    events.publish('chunk-received', { chunk: 0, from: A, bytes: 5, via: 'disk' });
    const m = await scrape();
    expect(metricValue(m, 'swarmdrop_chunks_received_total', { source: 'other' })).toBe(1);
    const sources = (
      m.swarmdrop_chunks_received_total!.data as Array<{ labels: Record<string, string> }>
    ).map((s) => s.labels.source);
    expect(sources).not.toContain('disk');
  });

  it('keeps open connections by kind and transport, and counts every one opened', async () => {
    const { events, scrape } = setup();
    events.publish('connected', { peer: A, dir: 'out', role: 'owner', transport: 'tcp' });
    events.publish('connected', { peer: B, dir: 'out', role: 'swarm', transport: 'utp' });
    // The same remote both ways (swarm mode): two connections under one label.
    events.publish('connected', { peer: B, dir: 'in', role: 'in', transport: 'tcp' });
    let m = await scrape();
    expect(m.swarmdrop_connections?.type).toBe('gauge');
    expect(metricValue(m, 'swarmdrop_connections', { kind: 'owner', transport: 'tcp' })).toBe(1);
    expect(metricValue(m, 'swarmdrop_connections', { kind: 'swarmdrop', transport: 'utp' })).toBe(
      1,
    );
    expect(metricValue(m, 'swarmdrop_connections', { kind: 'swarmdrop', transport: 'tcp' })).toBe(
      1,
    );

    events.publish('disconnected', { peer: B, role: 'swarm', reason: 'done' });
    events.publish('disconnected', { peer: A, role: 'owner', reason: 'batch complete' });
    // Closed before its handshake: never counted open, so not taken off either.
    events.publish('disconnected', { peer: '127.0.0.1:9', reason: 'handshake timeout' });
    m = await scrape();
    expect(metricValue(m, 'swarmdrop_connections')).toBe(1);
    expect(metricValue(m, 'swarmdrop_connections', { kind: 'swarmdrop', transport: 'tcp' })).toBe(
      1,
    );
    expect(metricValue(m, 'swarmdrop_connections_opened_total')).toBe(3);
    expect(
      metricValue(m, 'swarmdrop_connections_opened_total', { kind: 'swarmdrop', transport: 'utp' }),
    ).toBe(1);
  });

  it('counts refusals, protocol errors and both kinds of hash failure', async () => {
    const { events, scrape } = setup();
    events.publish('connection-refused', { from: A, reason: 'too many connections' });
    events.publish('connection-refused', { from: B, reason: 'handshake timeout' });
    events.publish('protocol-error', { peer: A, reason: 'bitfield of the wrong length' });
    events.publish('chunk-rejected', { chunk: 3, from: A, reason: 'SHA-1 mismatch' });
    events.publish('chunk-rejected', { chunk: 4, from: A, reason: 'SHA-1 mismatch' });
    events.publish('chunk-corrupt', { chunk: 5, reason: 'stored file failed SHA-1' });
    const m = await scrape();
    expect(metricValue(m, 'swarmdrop_connections_refused_total')).toBe(2);
    expect(metricValue(m, 'swarmdrop_protocol_errors_total')).toBe(1);
    expect(metricValue(m, 'swarmdrop_hash_failures_total', { event: 'chunk-rejected' })).toBe(2);
    expect(metricValue(m, 'swarmdrop_hash_failures_total', { event: 'chunk-corrupt' })).toBe(1);
  });

  it('times a request from request-sent to chunk-received of that chunk from that remote', async () => {
    const { events, scrape, advance } = setup();
    events.publish('request-sent', { chunk: 1, to: A, blocks: 7 });
    advance(30);
    events.publish('request-sent', { chunk: 2, to: A, blocks: 7 });
    advance(220);
    events.publish('chunk-received', { chunk: 1, from: A, bytes: 100, via: 'neighbour' });
    advance(2_000);
    events.publish('chunk-received', { chunk: 2, from: A, bytes: 100, via: 'neighbour' });

    const h = histogram(await scrape(), { source: 'neighbour' });
    expect(h.count).toBe(2);
    expect(h.sum).toBeCloseTo(0.25 + 2.22, 6);
    expect(h.bucket(0.1)).toBe(0);
    expect(h.bucket(0.25)).toBe(1);
    expect(h.bucket(2.5)).toBe(2);
    expect(REQUEST_SECONDS_BUCKETS).toContain(0.25);
  });

  it('in endgame, times only the remote that delivered, and forgets the other requests', async () => {
    const { events, scrape, advance } = setup();
    events.publish('request-sent', { chunk: 9, to: A });
    events.publish('request-sent', { chunk: 9, to: B });
    advance(40);
    events.publish('chunk-received', { chunk: 9, from: B, bytes: 1, via: 'swarm' });
    advance(40);
    // A's late copy would be dropped by the peer; were it logged, it is not a second sample.
    events.publish('chunk-received', { chunk: 9, from: A, bytes: 1, via: 'swarm' });
    const h = histogram(await scrape(), { source: 'swarm' });
    expect(h.count).toBe(1);
    expect(h.sum).toBeCloseTo(0.04, 6);
  });

  it('a chunk that failed its hash is not timed when it comes again without a new request', async () => {
    const { events, scrape, advance } = setup();
    events.publish('request-sent', { chunk: 1, to: A });
    events.publish('chunk-rejected', { chunk: 1, from: A, reason: 'SHA-1 mismatch' });
    advance(10_000);
    events.publish('chunk-received', { chunk: 1, from: A, bytes: 1, via: 'neighbour' });
    const m = await scrape();
    expect(histogram(m, { source: 'neighbour' }).count).toBe(0);
    expect(metricValue(m, 'swarmdrop_chunks_received_total', { source: 'neighbour' })).toBe(1);
  });

  it('a disconnected with no matching connected (closed before its handshake) leaves the open ones alone', async () => {
    const { events, scrape } = setup();
    // B's link to us, then our own link to B failing before its handshake: same label.
    events.publish('connected', { peer: B, dir: 'in', role: 'in', transport: 'tcp' });
    events.publish('disconnected', { peer: B, role: 'neighbour', reason: 'connection reset' });
    let m = await scrape();
    expect(metricValue(m, 'swarmdrop_connections', { kind: 'swarmdrop', transport: 'tcp' })).toBe(
      1,
    );
    events.publish('disconnected', { peer: B, role: 'in', reason: 'done' });
    m = await scrape();
    expect(metricValue(m, 'swarmdrop_connections')).toBe(0);
  });

  it("follows the µTP endpoint's count of malformed datagrams at each scrape, as a counter", async () => {
    let malformed = 0;
    const { scrape } = setup({ utpMalformed: () => malformed });
    expect(metricValue(await scrape(), 'swarmdrop_utp_malformed_datagrams_total')).toBe(0);
    malformed = 7;
    expect(metricValue(await scrape(), 'swarmdrop_utp_malformed_datagrams_total')).toBe(7);
    malformed = 9;
    expect(metricValue(await scrape(), 'swarmdrop_utp_malformed_datagrams_total')).toBe(9);
  });

  it('reads the bytes µTP holds out of order at each scrape, as a gauge', async () => {
    let held = 60_000;
    const { scrape } = setup({ utpReorderBytes: () => held });
    expect(metricValue(await scrape(), 'swarmdrop_utp_reorder_bytes')).toBe(60_000);
    held = 0;
    expect(metricValue(await scrape(), 'swarmdrop_utp_reorder_bytes')).toBe(0);
  });

  it('reads chunks held and tracker peers at each scrape, and the file size from the events', async () => {
    let held = 3;
    const { events, scrape } = setup({ chunksHeld: () => held, trackerPeers: () => 5 });
    events.publish('metainfo', {
      name: 'f',
      size: 1,
      chunks: 40,
      infohash: '00',
      torrent: '/t',
    });
    let m = await scrape();
    expect(metricValue(m, 'swarmdrop_chunks_held')).toBe(3);
    expect(metricValue(m, 'swarmdrop_file_chunks')).toBe(40);
    expect(metricValue(m, 'swarmdrop_tracker_peers')).toBe(5);
    held = 40;
    m = await scrape();
    expect(metricValue(m, 'swarmdrop_chunks_held')).toBe(40);
  });

  it('a peer has no tracker gauge; every counter family is there before anything happened', async () => {
    const { scrape } = setup();
    const m = await scrape();
    expect(m.swarmdrop_tracker_peers).toBeUndefined();
    for (const name of [
      'swarmdrop_chunks_received_total',
      'swarmdrop_received_bytes_total',
      'swarmdrop_hash_failures_total',
      'swarmdrop_connections_refused_total',
      'swarmdrop_protocol_errors_total',
      'swarmdrop_chunks_held',
    ])
      expect(m[name], name).toBeDefined();
    expect(metricValue(m, 'swarmdrop_chunks_received_total', { source: 'owner' })).toBe(0);
  });

  it('two services in one process keep their own registries; process metrics come along once', async () => {
    const one = new DomainEvents();
    const two = new DomainEvents();
    const a = createMetrics(one);
    const b = createMetrics(two);
    one.publish('protocol-error', { peer: A, reason: 'x' });
    const ma = await parseMetrics(await a.registry.metrics());
    const mb = await parseMetrics(await b.registry.metrics());
    expect(metricValue(ma, 'swarmdrop_protocol_errors_total')).toBe(1);
    expect(metricValue(mb, 'swarmdrop_protocol_errors_total')).toBe(0);
    expect(ma.process_cpu_seconds_total).toBeDefined();
    expect(mb.nodejs_eventloop_lag_seconds).toBeDefined();
  });

  it.runIf(toolAvailable('promtool'))(
    "passes promtool's parser and its lint of Prometheus naming conventions",
    async () => {
      const { events, metrics, advance } = setup({ chunksHeld: () => 1, trackerPeers: () => 2 });
      events.publish('connected', { peer: A, dir: 'out', role: 'neighbour', transport: 'utp' });
      events.publish('request-sent', { chunk: 0, to: A });
      advance(5);
      events.publish('chunk-received', { chunk: 0, from: A, bytes: 9, via: 'neighbour' });
      events.publish('chunk-sent', { chunk: 0, to: A, bytes: 9 });
      expect(await promtoolCheck(await metrics.registry.metrics())).toEqual({
        code: 0,
        output: '',
      });
      // With the process metrics: prom-client's own `nodejs_active_*_total`
      // gauges draw lint warnings (exit 3), but all of it parses (not 1) and
      // nothing of ours is named.
      const full = createMetrics(new DomainEvents(), { trackerPeers: () => 0 });
      const { code, output } = await promtoolCheck(await full.registry.metrics());
      expect([0, 3]).toContain(code);
      expect(output).not.toMatch(/swarmdrop_|error/);
    },
  );

  it('stop() unsubscribes: later events change nothing', async () => {
    const { events, metrics, scrape } = setup();
    metrics.stop();
    events.publish('protocol-error', { peer: A, reason: 'x' });
    expect(metricValue(await scrape(), 'swarmdrop_protocol_errors_total')).toBe(0);
  });
});

describe('remoteKind', () => {
  it.each([
    [{ peer: A, dir: 'out', role: 'owner' }, 'owner'],
    [{ peer: A, dir: 'out', role: 'fallback' }, 'owner'],
    [{ peer: A, dir: 'out', role: 'neighbour' }, 'swarmdrop'],
    [{ peer: A, dir: 'in', client: 'swarmdrop' }, 'swarmdrop'],
    [{ peer: A, dir: 'in', client: 'aria2 1.37.0' }, 'stock'],
    [{ peer: A, dir: 'in', role: 'in', client: 'Transmission 4.0' }, 'stock'],
  ] as const)('%o is %s', (fields, kind) => {
    expect(remoteKind(fields)).toBe(kind);
  });
});
