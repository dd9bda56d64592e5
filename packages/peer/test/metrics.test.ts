/**
 * GET /metrics on a real owner and two ring peers, scraped during and after
 * a transfer and read with a Prometheus text parser: every counter must
 * agree with the lines of the same process's log.
 */
import { createSocket } from 'node:dgram';
import { readFile } from 'node:fs/promises';
import { parseRanges } from '@swarmdrop/service';
import {
  CHUNK,
  Cleanup,
  fetchMetrics,
  freePort,
  freePorts,
  histogramValue,
  httpGet,
  type LogCapture,
  merged,
  metricValue,
  PEER_BIN,
  type PromMetrics,
  parseMetrics,
  promtoolCheck,
  runBin,
  scrapeMetrics,
  startOwner,
  startPeer,
  TestPeer,
  toolAvailable,
} from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const SOURCES = ['owner', 'neighbour', 'swarm', 'fallback'] as const;

/** Checks a peer's received-chunk counters against its `chunk-received` lines. */
function expectReceivedAgree(m: PromMetrics, log: LogCapture): void {
  for (const source of SOURCES) {
    const lines = log.filter('chunk-received', { via: source });
    expect(metricValue(m, 'swarmdrop_chunks_received_total', { source }), source).toBe(
      lines.length,
    );
    expect(metricValue(m, 'swarmdrop_received_bytes_total', { source }), source).toBe(
      lines.reduce((sum, l) => sum + Number(l.fields.bytes), 0),
    );
  }
}

/**
 * Chunk-received lines that answer a request-sent of that chunk to that same
 * remote before them (a chunk's arrival or rejection settles all its requests).
 */
function answeredRequests(log: LogCapture): number {
  const asked = new Set<string>();
  let answered = 0;
  for (const line of log.lines) {
    if (line.event === 'request-sent') asked.add(`${line.fields.chunk}@${line.fields.to}`);
    if (line.event === 'chunk-received' && asked.has(`${line.fields.chunk}@${line.fields.from}`))
      answered++;
    if (line.event === 'chunk-received' || line.event === 'chunk-rejected')
      for (const k of [...asked]) if (k.startsWith(`${line.fields.chunk}@`)) asked.delete(k);
  }
  return answered;
}

describe('GET /metrics', () => {
  it('during and after a ring transfer, the counters agree with the logs of owner and peers', async () => {
    const chunks = 12;
    const {
      owner,
      log: ownerLog,
      data,
    } = await startOwner(cleanup, {
      size: chunks * CHUNK - 321,
      options: { expectedPeers: 2 },
    });
    const [port1, port2] = await freePorts(2);
    // p1 downloads from p2, which is not started yet: p1 gets its batch from
    // the owner and then waits for its neighbour, mid-transfer.
    const p1 = await startPeer(cleanup, {
      ownerPort: owner.port,
      port: port1!,
      neighbourPort: port2!,
      options: { fallbackAfterMs: 600_000 },
    });
    const batch = parseRanges((await p1.log.waitFor('batch-received')).fields.chunks!);
    expect(batch.length).toBeGreaterThan(0);
    expect(batch.length).toBeLessThan(chunks);
    await p1.log.waitFor('chunk-received', { via: 'owner' }, { count: batch.length });

    const during = await scrapeMetrics(port1!);
    expectReceivedAgree(during, p1.log);
    expect(metricValue(during, 'swarmdrop_chunks_received_total', { source: 'owner' })).toBe(
      batch.length,
    );
    expect(metricValue(during, 'swarmdrop_chunks_held')).toBe(batch.length);
    expect(metricValue(during, 'swarmdrop_file_chunks')).toBe(chunks);
    const ownerDuring = await scrapeMetrics(owner.port);
    expect(metricValue(ownerDuring, 'swarmdrop_chunks_sent_total', { kind: 'swarmdrop' })).toBe(
      ownerLog.filter('chunk-sent').length,
    );
    expect(metricValue(ownerDuring, 'swarmdrop_tracker_peers')).toBe(1);
    expect(metricValue(ownerDuring, 'swarmdrop_chunks_held')).toBe(chunks);

    const p2 = await startPeer(cleanup, {
      ownerPort: owner.port,
      port: port2!,
      neighbourPort: port1!,
      options: { fallbackAfterMs: 600_000 },
    });
    const paths = await Promise.all([merged(p1.log), merged(p2.log)]);
    for (const path of paths) expect((await readFile(path)).equals(data)).toBe(true);

    const ownerAfter = await scrapeMetrics(owner.port);
    const ownerSent = ownerLog.filter('chunk-sent');
    expect(metricValue(ownerAfter, 'swarmdrop_chunks_sent_total')).toBe(ownerSent.length);
    expect(metricValue(ownerAfter, 'swarmdrop_chunks_sent_total', { kind: 'swarmdrop' })).toBe(
      ownerSent.length,
    );
    expect(metricValue(ownerAfter, 'swarmdrop_sent_bytes_total')).toBe(
      ownerSent.reduce((sum, l) => sum + Number(l.fields.bytes), 0),
    );
    expect(metricValue(ownerAfter, 'swarmdrop_connections_opened_total')).toBe(
      ownerLog.filter('connected').length,
    );
    expect(metricValue(ownerAfter, 'swarmdrop_tracker_peers')).toBe(2);

    let fromOwner = 0;
    for (const { log, peer } of [p1, p2]) {
      const m = await scrapeMetrics(peer.port);
      expectReceivedAgree(m, log);
      // A fallback link is to the owner too.
      fromOwner +=
        metricValue(m, 'swarmdrop_chunks_received_total', { source: 'owner' }) +
        metricValue(m, 'swarmdrop_chunks_received_total', { source: 'fallback' });
      expect(metricValue(m, 'swarmdrop_chunks_received_total')).toBe(chunks);
      expect(metricValue(m, 'swarmdrop_chunks_held')).toBe(chunks);
      const sent = log.filter('chunk-sent');
      expect(sent.length).toBeGreaterThan(0);
      expect(metricValue(m, 'swarmdrop_chunks_sent_total', { kind: 'swarmdrop' })).toBe(
        sent.length,
      );
      expect(metricValue(m, 'swarmdrop_sent_bytes_total')).toBe(
        sent.reduce((sum, l) => sum + Number(l.fields.bytes), 0),
      );
      const connected = log.filter('connected');
      expect(metricValue(m, 'swarmdrop_connections_opened_total')).toBe(connected.length);
      expect(metricValue(m, 'swarmdrop_connections_opened_total', { kind: 'owner' })).toBe(
        connected.filter((l) => l.fields.role === 'owner' || l.fields.role === 'fallback').length,
      );
      expect(metricValue(m, 'swarmdrop_connections')).toBe(
        connected.length - log.filter('disconnected').length,
      );
      expect(metricValue(m, 'swarmdrop_hash_failures_total')).toBe(
        log.filter('chunk-rejected').length + log.filter('chunk-corrupt').length,
      );
      expect(metricValue(m, 'swarmdrop_protocol_errors_total')).toBe(
        log.filter('protocol-error').length,
      );
      const latency = histogramValue(m, 'swarmdrop_request_duration_seconds');
      expect(latency.count, log.text()).toBe(answeredRequests(log));
      expect(latency.count).toBeGreaterThan(0);
      expect(latency.bucket('+Inf')).toBe(latency.count);
      expect(latency.sum).toBeGreaterThan(0);
    }
    // What the peers got from the owner is what the owner sent.
    expect(fromOwner, `${ownerLog.text()}\n${p1.log.text()}\n${p2.log.text()}`).toBe(
      ownerSent.length,
    );
  });

  it("in swarm mode, each peer's counters agree with its log", async () => {
    const chunks = 20;
    const { owner } = await startOwner(cleanup, {
      size: chunks * CHUNK,
      options: { expectedPeers: 3 },
    });
    const ports = await freePorts(3);
    const peers = await Promise.all(
      ports.map((port) => startPeer(cleanup, { ownerPort: owner.port, port })),
    );
    await Promise.all(peers.map((p) => merged(p.log)));
    for (const { log, peer } of peers) {
      const m = await scrapeMetrics(peer.port);
      expectReceivedAgree(m, log);
      expect(metricValue(m, 'swarmdrop_chunks_received_total')).toBe(chunks);
      const sent = log.filter('chunk-sent');
      expect(metricValue(m, 'swarmdrop_chunks_sent_total')).toBe(sent.length);
      expect(metricValue(m, 'swarmdrop_sent_bytes_total')).toBe(
        sent.reduce((sum, l) => sum + Number(l.fields.bytes), 0),
      );
      expect(metricValue(m, 'swarmdrop_connections_opened_total')).toBe(
        log.filter('connected').length,
      );
      const latency = histogramValue(m, 'swarmdrop_request_duration_seconds');
      expect(latency.count, log.text()).toBe(answeredRequests(log));
      expect(latency.count).toBeGreaterThan(0);
    }
  });

  it.runIf(toolAvailable('promtool'))(
    "is Prometheus' text format: promtool parses it and has nothing to say about swarmdrop_ names",
    async () => {
      const { owner } = await startOwner(cleanup, {
        size: 3 * CHUNK,
        options: { expectedPeers: 1 },
      });
      const port = await freePort();
      const { log, peer } = await startPeer(cleanup, { ownerPort: owner.port, port });
      await merged(log);
      for (const p of [owner.port, peer.port]) {
        const text = await fetchMetrics(p);
        const { code, output } = await promtoolCheck(text);
        // 3: lint findings (prom-client's own nodejs_active_*_total gauges); 1 would be a parse error.
        expect([0, 3], output).toContain(code);
        expect(output).not.toMatch(/swarmdrop_|error/);
        expect(Object.keys(await parseMetrics(text))).toContain('process_cpu_seconds_total');
      }
    },
  );

  it('chunks sent to a stock client count as kind="stock", on the owner and on a peer', async () => {
    const {
      owner,
      log: ownerLog,
      metainfo,
    } = await startOwner(cleanup, {
      size: 4 * CHUNK,
      options: { expectedPeers: 1 },
    });
    const { log, peer } = await startPeer(cleanup, { ownerPort: owner.port, port: 0 });
    await merged(log);
    for (const [port, serverLog] of [
      [owner.port, ownerLog],
      [peer.port, log],
    ] as const) {
      const stock = await TestPeer.connect(port, { metainfo });
      cleanup.add(() => stock.destroy());
      await stock.interested();
      await stock.fetchChunks([0, 2]);
      await serverLog.waitFor('chunk-sent', { to: stock.label }, { count: 2 });
      const m = await scrapeMetrics(port);
      expect(metricValue(m, 'swarmdrop_chunks_sent_total', { kind: 'stock' })).toBe(2);
      expect(metricValue(m, 'swarmdrop_sent_bytes_total', { kind: 'stock' })).toBe(2 * CHUNK);
      expect(metricValue(m, 'swarmdrop_connections', { kind: 'stock', transport: 'tcp' })).toBe(1);
      const sent = serverLog.filter('chunk-sent');
      expect(metricValue(m, 'swarmdrop_chunks_sent_total')).toBe(sent.length);
    }
  });

  it('counts UDP datagrams on the µTP port that are not µTP, on the owner and on a peer', async () => {
    const { owner } = await startOwner(cleanup, { size: 2 * CHUNK, options: { expectedPeers: 1 } });
    const { log, peer } = await startPeer(cleanup, {
      ownerPort: owner.port,
      port: await freePort(),
    });
    await merged(log);
    const udp = createSocket('udp4');
    cleanup.add(() => udp.close());
    for (const port of [owner.port, peer.port]) {
      const before = metricValue(
        await scrapeMetrics(port),
        'swarmdrop_utp_malformed_datagrams_total',
      );
      expect(before).toBe(0);
      // Version 0 is no µTP header (BEP 29 packets carry version 1): dropped as malformed.
      for (let i = 0; i < 3; i++) udp.send(Buffer.alloc(20), port, '127.0.0.1');
      // UDP arrives when it arrives: poll the scrape, bounded, until all three are counted.
      let seen: number | undefined = 0;
      for (let attempt = 0; attempt < 100 && seen !== 3; attempt++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        seen = metricValue(await scrapeMetrics(port), 'swarmdrop_utp_malformed_datagrams_total');
      }
      expect(seen).toBe(3);
    }
  });

  it('a private swarm answers /metrics only with the token, on the owner and on a peer', async () => {
    const token = 'metrics-test-token-0123456789abcdef';
    const { owner } = await startOwner(cleanup, {
      size: 2 * CHUNK,
      options: { expectedPeers: 1, token },
    });
    const port = await freePort();
    const { log, peer } = await startPeer(cleanup, {
      ownerPort: owner.port,
      port,
      options: { token },
    });
    await merged(log);
    for (const p of [owner.port, peer.port]) {
      const denied = await httpGet(p, '/metrics');
      expect(denied.status).toBe(401);
      expect(denied.body.toString()).not.toContain('swarmdrop_');
      const m = await scrapeMetrics(p, { token });
      expect(metricValue(m, 'swarmdrop_chunks_held')).toBe(2);
      const byKey = await httpGet(p, `/metrics?key=${token}`);
      expect(byKey.status).toBe(200);
    }
  });
});

describe('--log-format json (pino)', () => {
  it('a peer bin that exits when done has written every line, the last ones `done` and `stopping`', async () => {
    const chunks = 40;
    const { owner } = await startOwner(cleanup, {
      size: chunks * CHUNK,
      options: { expectedPeers: 1 },
    });
    const dir = await cleanup.tempDir();
    const child = runBin(cleanup, PEER_BIN, [
      String(owner.port),
      String(await freePort()),
      '--dir',
      dir,
      '--exit-when-done',
      '--linger-ms',
      '0',
      '--log-format',
      'json',
    ]);
    expect(await child.exited).toBe(0);
    const records = child.stdout.lines.map(
      (l) =>
        JSON.parse(l.line) as {
          event: string;
          role: string;
          port: number;
          chunk?: number;
          linkRole?: string;
        },
    );
    expect(records.length).toBeGreaterThan(chunks);
    expect(records[0]).toMatchObject({ event: 'listening', role: 'peer' });
    // Every line's `role` is the service; a `connected` line's own role (the
    // link's) is `linkRole`. It used to overwrite `role` with `owner`.
    expect(records.every((r) => r.role === 'peer')).toBe(true);
    expect(records.find((r) => r.event === 'connected')).toMatchObject({ linkRole: 'owner' });
    expect(records.filter((r) => r.event === 'chunk-received')).toHaveLength(chunks);
    const events = records.map((r) => r.event);
    const done = events.indexOf('done');
    const stopping = events.indexOf('stopping');
    expect(done).toBeGreaterThan(events.indexOf('merged'));
    expect(stopping).toBeGreaterThan(done);
    // After `stopping`, only the ends of the connections it closed.
    expect(events.slice(stopping + 1).every((e) => e === 'disconnected')).toBe(true);
  });
});
