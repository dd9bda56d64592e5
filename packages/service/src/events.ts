import { TypedEmitter } from '@swarmdrop/protocol';
import type { LogEventName, LogFields } from './log/log.js';
import { LOG_EVENTS } from './log/log.js';

/**
 * Where a chunk we hold came from: the dashboard's chunk-map colours and the
 * metrics' `source` label. `disk` is a chunk found at start (resume).
 */
export type ChunkSource = 'owner' | 'neighbour' | 'swarm' | 'fallback' | 'disk';

/** How a chunk ID list went when it was not a bitfield (BEP 6). */
export type IdListAs = 'have-all' | 'have-none';

/** The `as` field of an idlist line: present only for BEP 6's two forms. */
export function idListAs(form: 'bitfield' | IdListAs): { as?: IdListAs } {
  return form === 'bitfield' ? {} : { as: form };
}

/** Who is at the other end of a connection. */
export type RemoteKind = 'owner' | 'swarmdrop' | 'stock';

/**
 * The typed fields of each domain event. Every state change a service makes
 * is published once as one of these; the console log, the metrics, the
 * dashboard and the progress line are subscribers, and nothing reacts to a
 * printed line. The names are the log's event words (README, "Log events"),
 * so a line and the event it prints read alike. Remotes are named by their
 * listening address (`127.0.0.1:7002`), as in the log.
 */
export interface EventFields {
  listening: { addr: string } & Partial<Record<string, string | number | boolean>>;
  ready: { torrent: string; url: string; link: string; magnet: string; private: boolean };
  stopping: Record<string, never>;
  error: { reason: string } & Partial<Record<string, string | number>>;
  connected: {
    peer: string;
    dir: 'in' | 'out';
    transport?: string;
    encryption?: string;
    /** Peer: the link's role (`owner`, `neighbour`, `fallback`, `in`, `swarm`). */
    role?: string;
    /** The remote's client, from its peer id (`swarmdrop`, a stock client's code, `other`). */
    client?: string;
  };
  disconnected: { peer: string; reason: string; role?: string; sent?: number };
  'connection-refused': { from: string; reason: string };
  'protocol-error': { peer: string; reason: string };
  'log-suppressed': { from: string; count: number; events: string };
  /** Printed by the logger itself (lines a reader far behind never got), never published. */
  'log-dropped': { count: number };
  /** `as`: BEP 6's `have-all` / `have-none` went in place of the bitfield. */
  'idlist-sent': { to: string; chunks: number; of: number; as?: IdListAs };
  'idlist-received': { from: string; chunks: number; of: number; as?: IdListAs };
  'request-sent': { chunk: number; to: string; blocks?: number };
  'request-received': { chunk: number; from: string };
  'chunk-sent': { chunk: number; to: string; bytes: number };
  'chunk-received': { chunk: number; from: string; bytes: number; via: ChunkSource };
  'have-sent': { chunk: number; to: string };
  'have-received': { chunk: number; from: string };
  /**
   * BEP 10: the remote's extended handshake. `extensions`: the names of ours
   * it enabled, comma-separated (`none` for none); `client` its `v`.
   */
  'extended-handshake': {
    peer: string;
    extensions: string;
    client?: string;
    listenPort?: number;
    reqq?: number;
    metadataSize?: number;
  };
  /** BEP 9, serving: `from` asked us for metadata piece `piece` of `of`. */
  'metadata-requested': { piece: number; of: number; from: string };
  'metadata-sent': { piece: number; to: string; bytes: number };
  'metadata-rejected': { piece: number; to: string; reason: string };
  /** BEP 9, fetching: a piece of the metadata arrived and fitted. */
  'metadata-received': { piece: number; of: number; from: string; bytes: number };
  /** BEP 9, fetching: that remote will not do; the next is tried. */
  'metadata-dropped': { from: string; reason: string };
  /** BEP 9, fetching: the whole info dictionary, its SHA-1 the info-hash. */
  'metadata-fetched': { from: string; size: number; infohash: string };
  /** A peer exchange message: how many peers it lists as added and dropped. */
  'pex-sent': { to: string; added: number; dropped: number };
  /** `kept`: of its added peers, how many are new to us and wait for a dial (the dial budget's share of one message). */
  'pex-received': { from: string; added: number; dropped: number; kept: number };
  'chunk-rejected': { chunk: number; from: string; reason: string };
  /** BEP 6: the remote refused one of our requests. */
  'reject-received': { chunk: number; begin: number; length: number; from: string };
  /** BEP 6: we refused `count` of the remote's requests, and why (`choked`, `cancelled`, `queue-full`, `refused`). */
  'reject-sent': { to: string; count: number; reason: string };
  /** BEP 6: a remote that choked us answered `count` of our requests with neither the piece nor a reject. */
  'rejects-missing': { from: string; count: number };
  'chunk-corrupt': { chunk?: number; reason: string; restored?: boolean; why?: string };
  'batch-assigned': { peer: string; count: number; chunks: string };
  announce: { peer: string; event?: string; left?: number };
  metainfo: { name: string; size: number; chunks: number; infohash: string; torrent: string };
  'batch-received': { from: string; count: number; chunks: string };
  resumed: { verified: number; discarded: number; dir: string; fromMerged?: number };
  waiting: { for: string; addr: string; reason: string; retryMs?: number };
  fallback: { from: string; count: number; chunks: string; reason: string };
  'chunks-removed': { count: number; servingFrom: string };
  merged: {
    path: string;
    sha256: string;
    verified: boolean;
    owner: number;
    neighbour: number;
    fallback: number;
    swarm?: number;
  };
  done: { path: string };
}

/**
 * How a part publishes upward without knowing who listens: a DomainEvents'
 * bound `publish`, or a test's recorder.
 */
export type Publish = <E extends LogEventName>(event: E, fields: EventFields[E]) => void;

/** Each event name to a listener of its typed fields. */
export type ServiceEvents = { [E in LogEventName]: (fields: EventFields[E]) => void };

/**
 * One service's (owner's or peer's) stream of domain events. Parts publish
 * upward through it instead of calling the level above.
 */
export class DomainEvents extends TypedEmitter<ServiceEvents> {
  /** Bound, so a part can be handed `events.publish` alone. */
  readonly publish: Publish = (event, fields) => {
    this.emit(event, ...([fields] as Parameters<ServiceEvents[typeof event]>));
  };
}

/** A sink with the shape of the console logger (`Logger` in `/node`). */
export interface EventSink {
  log(event: LogEventName, fields: LogFields): void;
}

/**
 * Prints every domain event as one log line: the console log is a subscriber
 * like any other. Returns the unsubscribe.
 */
export function subscribeLog(events: DomainEvents, sink: EventSink): () => void {
  const offs = LOG_EVENTS.map((name) =>
    events.on(name, ((fields: LogFields) => sink.log(name, fields)) as ServiceEvents[typeof name]),
  );
  return () => {
    for (const off of offs) off();
  };
}
