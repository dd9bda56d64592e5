import { clientOf } from '@swarmdrop/protocol';
import type {
  BlockServer,
  Connection,
  MetadataFetcher,
  MetadataServer,
} from '@swarmdrop/protocol/node';
import { idListAs, type Publish } from './events.js';

/**
 * A connection's typed events as the service's domain events, written once
 * for the owner, ring mode and swarm mode (they had a copy each): the same
 * words and fields in the same order (docs/log-events.md), so the console
 * log, metrics and the dashboard see every connection alike. A subscriber,
 * never a gate: subscribe it before the caller's own listeners, and each
 * line comes before whatever the caller does on the same event.
 */
export function publishTraffic(
  connection: Connection,
  server: BlockServer,
  publish: Publish,
  metadata?: MetadataServer | undefined,
): void {
  const label = () => connection.label;
  connection.on('bitfield', (remote, form) =>
    publish('idlist-received', {
      from: label(),
      chunks: remote.count(),
      of: remote.size,
      ...idListAs(form),
    }),
  );
  connection.on('rejected', (request) =>
    publish('reject-received', {
      chunk: request.index,
      begin: request.begin,
      length: request.length,
      from: label(),
    }),
  );
  connection.on('rejectsSent', (count, reason) =>
    publish('reject-sent', { to: label(), count, reason }),
  );
  connection.on('have', (index) => publish('have-received', { chunk: index, from: label() }));
  server.on('requestReceived', (index) =>
    publish('request-received', { chunk: index, from: label() }),
  );
  server.on('chunkSent', (index, bytes) =>
    publish('chunk-sent', { chunk: index, to: label(), bytes }),
  );
  connection.on('extendedHandshake', (remote) =>
    publish('extended-handshake', {
      peer: label(),
      extensions: remote.ids.size === 0 ? 'none' : [...remote.ids.keys()].join(','),
      ...(remote.client === undefined ? {} : { client: remote.client }),
      ...(remote.listenPort === undefined ? {} : { listenPort: remote.listenPort }),
      ...(remote.reqq === undefined ? {} : { reqq: remote.reqq }),
      ...(remote.metadataSize === undefined ? {} : { metadataSize: remote.metadataSize }),
    }),
  );
  if (!metadata) return;
  metadata.on('requested', (piece, of) =>
    publish('metadata-requested', { piece, of, from: label() }),
  );
  metadata.on('sent', (piece, bytes) => publish('metadata-sent', { piece, to: label(), bytes }));
  metadata.on('rejected', (piece, reason) =>
    publish('metadata-rejected', { piece, to: label(), reason }),
  );
}

/** A metadata fetch's typed events (BEP 9) as domain events. */
export function publishMetadataFetch(
  fetcher: MetadataFetcher,
  publish: Publish,
  infoHash: Uint8Array,
): void {
  fetcher.on('piece', (from, piece, of, bytes) =>
    publish('metadata-received', { piece, of, from, bytes }),
  );
  fetcher.on('dropped', (from, reason) => publish('metadata-dropped', { from, reason }));
  fetcher.on('fetched', (from, size) =>
    publish('metadata-fetched', { from, size, infohash: Buffer.from(infoHash).toString('hex') }),
  );
}

/** `connected`, once the handshake is through: who, in which role, which client, how. */
export function publishConnected(
  connection: Connection,
  publish: Publish,
  fields: { readonly dir: 'in' | 'out'; readonly role?: string; readonly client?: string },
): void {
  const { wire } = connection;
  const remote = wire.remoteHandshake;
  const client = fields.client ?? (remote ? clientOf(remote.peerId) : undefined);
  publish('connected', {
    peer: connection.label,
    ...(fields.role === undefined ? {} : { role: fields.role }),
    ...(client === undefined ? {} : { client }),
    dir: fields.dir,
    transport: wire.transport,
    encryption: wire.encryption,
  });
}

/** `protocol-error` when a violation closed it, then `disconnected` with why. */
export function publishClosed(
  connection: Connection,
  publish: Publish,
  close: { readonly reason: string; readonly error?: unknown },
  fields: { readonly role?: string; readonly sent?: number } = {},
): void {
  const peer = connection.label;
  if (close.error) publish('protocol-error', { peer, reason: close.reason });
  publish('disconnected', {
    peer,
    ...(fields.role === undefined ? {} : { role: fields.role }),
    reason: close.reason,
    ...(fields.sent === undefined ? {} : { sent: fields.sent }),
  });
}
