import type { IncomingMessage, ServerResponse } from 'node:http';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { ChunkSource, DomainEvents, EventFields, RemoteKind } from './events.js';
import { sendBody, sendText } from './port/http.js';

/**
 * The `source` label of received chunks and request latency: where a chunk
 * came from (ChunkSource less `disk`, which no link delivers), or `other`
 * should a `chunk-received` name anything else.
 */
export type SourceLabel = Exclude<ChunkSource, 'disk'> | 'other';
/** The `kind` label of connections and sent chunks; `unknown` when the connection was not seen. */
export type KindLabel = RemoteKind | 'unknown';

const SOURCES: ReadonlySet<string> = new Set<SourceLabel>([
  'owner',
  'neighbour',
  'swarm',
  'fallback',
]);

/**
 * Request latency buckets, seconds: from a loopback round trip (well under
 * a millisecond per block) to a chunk waiting behind a slow or choking link.
 */
export const REQUEST_SECONDS_BUCKETS: readonly number[] = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
];

export interface MetricsOptions {
  /** Milliseconds from a monotonic clock, for request latency (default performance.now). */
  readonly now?: () => number;
  /** The chunks held now, read at each scrape from whoever holds them (the chunk store). */
  readonly chunksHeld?: () => number;
  /** Peers in the tracker's table now, read at each scrape (the owner's tracker). */
  readonly trackerPeers?: () => number;
  /**
   * UDP datagrams on the µTP port dropped as malformed since start, read at
   * each scrape (the µTP endpoint's count). A remote whose packets we cannot
   * read looks like silence from the connection's side: this says otherwise.
   */
  readonly utpMalformed?: () => number;
  /** Bytes the process's µTP connections hold out of order now, read at each scrape (their shared budget). */
  readonly utpReorderBytes?: () => number;
  /** Adds prom-client's process and Node.js metrics (`process_*`, `nodejs_*`); default true. */
  readonly processMetrics?: boolean;
}

export interface ServiceMetrics {
  /**
   * This service's metrics (and the process's, unless turned off): what
   * `/metrics` serves. The process's metrics start when this is first read
   * (the first scrape), so their event-loop delay and GC figures count from then.
   */
  readonly registry: Registry;
  /** Stops listening to the events; the counters keep their values. */
  stop(): void;
}

/** Requests for one chunk not yet answered, by remote, with the time each was sent. */
type Pending = Map<string, number>;

interface OpenConnection {
  readonly kind: RemoteKind;
  readonly transport: string;
  readonly role: string | undefined;
}

let processRegistry: Registry | undefined;

/**
 * prom-client's default metrics describe the process, not a service, so
 * they are collected once per process (two services in one test process
 * would otherwise each start an event-loop monitor and a GC observer).
 */
function processMetricsRegistry(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

/**
 * The Prometheus metrics of one service (owner or peer), kept by
 * subscribing to its domain events: nothing in the service counts twice,
 * and nothing reacts to a printed log line. Each call makes a fresh
 * Registry (never prom-client's global one), so two services in one process
 * keep apart. Labels take a handful of values each (source, kind,
 * transport, event); remote addresses are never labels.
 *
 * Names and labels are documented in the README ("Metrics").
 */
export function createMetrics(events: DomainEvents, options: MetricsOptions = {}): ServiceMetrics {
  const now = options.now ?? (() => performance.now());
  const own = new Registry();
  const registers = [own];

  const chunksReceived = new Counter({
    name: 'swarmdrop_chunks_received_total',
    help: 'Chunks received and verified (SHA-1), by where they came from',
    labelNames: ['source'] as const,
    registers,
  });
  const bytesReceived = new Counter({
    name: 'swarmdrop_received_bytes_total',
    help: 'Bytes of verified chunks received, by where they came from',
    labelNames: ['source'] as const,
    registers,
  });
  const chunksSent = new Counter({
    name: 'swarmdrop_chunks_sent_total',
    help: 'Chunks sent whole, by the kind of remote they went to',
    labelNames: ['kind'] as const,
    registers,
  });
  const bytesSent = new Counter({
    name: 'swarmdrop_sent_bytes_total',
    help: 'Bytes of chunks sent, by the kind of remote they went to',
    labelNames: ['kind'] as const,
    registers,
  });
  const fileChunks = new Gauge({
    name: 'swarmdrop_file_chunks',
    help: 'Chunks in the file being distributed (0 until the metainfo is known)',
    registers,
  });
  const chunksHeld = options.chunksHeld;
  new Gauge({
    name: 'swarmdrop_chunks_held',
    help: 'Verified chunks held now',
    registers,
    collect() {
      this.set(chunksHeld?.() ?? 0);
    },
  });
  const open = new Gauge({
    name: 'swarmdrop_connections',
    help: 'BitTorrent connections open now (handshaken), by kind of remote and transport',
    labelNames: ['kind', 'transport'] as const,
    registers,
  });
  const opened = new Counter({
    name: 'swarmdrop_connections_opened_total',
    help: 'BitTorrent connections handshaken, by kind of remote and transport',
    labelNames: ['kind', 'transport'] as const,
    registers,
  });
  const refused = new Counter({
    name: 'swarmdrop_connections_refused_total',
    help: 'Connections refused before a handshake (caps, deadlines, policy, token)',
    registers,
  });
  const protocolErrors = new Counter({
    name: 'swarmdrop_protocol_errors_total',
    help: 'Connections closed for breaking the wire protocol',
    registers,
  });
  const hashFailures = new Counter({
    name: 'swarmdrop_hash_failures_total',
    help: 'Chunks that failed their SHA-1: received (chunk-rejected) or a stored chunk file (chunk-corrupt)',
    labelNames: ['event'] as const,
    registers,
  });
  const requestSeconds = new Histogram({
    name: 'swarmdrop_request_duration_seconds',
    help: 'From a chunk requested of a remote (request-sent) to that chunk received from it (chunk-received)',
    labelNames: ['source'] as const,
    buckets: [...REQUEST_SECONDS_BUCKETS],
    registers,
  });
  const trackerPeers = options.trackerPeers;
  if (trackerPeers) {
    new Gauge({
      name: 'swarmdrop_tracker_peers',
      help: "Peers in the owner's tracker table now",
      registers,
      collect() {
        this.set(trackerPeers());
      },
    });
  }
  const utpReorderBytes = options.utpReorderBytes;
  if (utpReorderBytes) {
    new Gauge({
      name: 'swarmdrop_utp_reorder_bytes',
      help: 'Payload bytes the uTP connections hold out of order now (packets ahead of a hole)',
      registers,
      collect() {
        this.set(utpReorderBytes());
      },
    });
  }
  const utpMalformed = options.utpMalformed;
  if (utpMalformed) {
    let counted = 0;
    new Counter({
      name: 'swarmdrop_utp_malformed_datagrams_total',
      help: 'UDP datagrams on the uTP port dropped because they were not valid uTP (BEP 29)',
      registers,
      collect() {
        // The endpoint counts; the counter follows it, never backwards.
        const now = utpMalformed();
        if (now > counted) this.inc(now - counted);
        counted = Math.max(counted, now);
      },
    });
  }
  // Counters with labels show up only once touched; zeros from the start
  // let a rate() see the first increase and a reader see what exists.
  for (const source of SOURCES) {
    chunksReceived.inc({ source }, 0);
    bytesReceived.inc({ source }, 0);
  }
  hashFailures.inc({ event: 'chunk-rejected' }, 0);
  hashFailures.inc({ event: 'chunk-corrupt' }, 0);

  /** Open connections by the remote's label; a label can have more than one (in and out). */
  const connections = new Map<string, OpenConnection[]>();
  /**
   * Unanswered requests by chunk. An entry goes when its chunk arrives (from
   * anyone) or is rejected, so there are at most the file's chunks times the
   * remotes asked for one chunk at once. A closed link leaves its entries: a
   * new link sends (and publishes) its requests again, which restarts them.
   */
  const pending = new Map<number, Pending>();

  const kindOf = (label: string): KindLabel => connections.get(label)?.[0]?.kind ?? 'unknown';

  const pexMessages = new Counter({
    name: 'swarmdrop_pex_messages_total',
    help: 'Peer exchange (BEP 11) messages, by direction (sent, received)',
    labelNames: ['direction'] as const,
    registers,
  });
  const pexPeers = new Counter({
    name: 'swarmdrop_pex_peers_kept_total',
    help: 'Addresses learnt from peer exchange that were new and kept for a dial',
    registers,
  });
  const handlers: { [E in keyof EventFields]?: (fields: EventFields[E]) => void } = {
    listening: (f) => {
      // The owner's listening line carries the file's chunk count.
      if (typeof f.chunks === 'number') fileChunks.set(f.chunks);
    },
    metainfo: (f) => fileChunks.set(f.chunks),
    connected: (f) => {
      const conn: OpenConnection = {
        kind: remoteKind(f),
        transport: f.transport ?? 'tcp',
        role: f.role,
      };
      const list = connections.get(f.peer);
      if (list) list.push(conn);
      else connections.set(f.peer, [conn]);
      open.inc({ kind: conn.kind, transport: conn.transport });
      opened.inc({ kind: conn.kind, transport: conn.transport });
    },
    disconnected: (f) => {
      // The connection with this label and role (a peer's link to a
      // neighbour and the neighbour's link to it share the label). One that
      // closed before its handshake (a `disconnected` with an error and no
      // `connected`) matches none and was never counted open.
      const list = connections.get(f.peer);
      const at = list?.findIndex((c) => c.role === f.role) ?? -1;
      if (!list || at === -1) return;
      const [conn] = list.splice(at, 1);
      if (list.length === 0) connections.delete(f.peer);
      if (conn) open.dec({ kind: conn.kind, transport: conn.transport });
    },
    'pex-sent': () => pexMessages.inc({ direction: 'sent' }),
    'pex-received': (f) => {
      pexMessages.inc({ direction: 'received' });
      pexPeers.inc(f.kept);
    },
    'connection-refused': () => refused.inc(),
    'protocol-error': () => protocolErrors.inc(),
    'chunk-rejected': (f) => {
      hashFailures.inc({ event: 'chunk-rejected' });
      pending.delete(f.chunk);
    },
    'chunk-corrupt': () => hashFailures.inc({ event: 'chunk-corrupt' }),
    'request-sent': (f) => {
      let asked = pending.get(f.chunk);
      if (!asked) {
        asked = new Map();
        pending.set(f.chunk, asked);
      }
      // A request sent again (after a choke dropped it) times from the new one.
      asked.set(f.to, now());
    },
    'chunk-received': (f) => {
      const source: SourceLabel = SOURCES.has(f.via) ? (f.via as SourceLabel) : 'other';
      chunksReceived.inc({ source });
      bytesReceived.inc({ source }, f.bytes);
      const asked = pending.get(f.chunk);
      const sentAt = asked?.get(f.from);
      if (sentAt !== undefined) requestSeconds.observe({ source }, (now() - sentAt) / 1000);
      // The chunk is held: requests for it elsewhere (endgame) are cancelled.
      pending.delete(f.chunk);
    },
    'chunk-sent': (f) => {
      const kind = kindOf(f.to);
      chunksSent.inc({ kind });
      bytesSent.inc({ kind }, f.bytes);
    },
  };
  const offs = Object.entries(handlers).map(([event, handler]) =>
    events.on(event as keyof EventFields, handler as never),
  );

  let registry: Registry | undefined;
  return {
    // Made at the first scrape: prom-client's process metrics include an event-loop monitor
    // that wakes the process every 10 ms, which was most of an idle owner's or peer's CPU
    // (about 9 ms per second). A service nobody scrapes never starts it.
    get registry() {
      registry ??=
        (options.processMetrics ?? true) ? Registry.merge([own, processMetricsRegistry()]) : own;
      return registry;
    },
    stop() {
      for (const off of offs) off();
    },
  };
}

/**
 * Who is at the other end of a connection, from what its `connected` event
 * says: the owner names the remote's client (from its peer id), a peer
 * names the link's role (its owner and fallback links go to the owner).
 */
export function remoteKind(fields: EventFields['connected']): RemoteKind {
  const given = (fields as { kind?: unknown }).kind;
  if (given === 'owner' || given === 'swarmdrop' || given === 'stock') return given;
  if (fields.role === 'owner' || fields.role === 'fallback') return 'owner';
  if (fields.client !== undefined) return fields.client === 'swarmdrop' ? 'swarmdrop' : 'stock';
  return 'swarmdrop';
}

/**
 * Answers `GET /metrics` with the registry in Prometheus' text format. A
 * collect that fails costs this request a 500, reported to `onError`.
 */
export function sendMetrics(
  req: IncomingMessage,
  res: ServerResponse,
  registry: Registry,
  onError: (err: Error) => void,
): void {
  registry.metrics().then(
    (text) => sendBody(req, res, registry.contentType, text),
    (err: Error) => {
      onError(err);
      if (!res.headersSent) sendText(res, 500, 'internal error\n');
      else res.destroy();
    },
  );
}
