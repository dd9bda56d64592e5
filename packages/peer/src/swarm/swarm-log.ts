import { clientOf } from '@swarmdrop/protocol';
import type { Publish } from '@swarmdrop/service';
import type { SwarmLink, SwarmSession } from './swarm-session.js';

/**
 * Swarm mode's domain events: the session's and each connection's typed
 * events, published as the peer's events under the same words as the ring
 * (README, "Log events"), so the console log, the metrics and the dashboard
 * see both modes alike. Nothing reacts to a printed line.
 */
export function publishSwarm(session: SwarmSession, publish: Publish): void {
  session.on('connected', (link) => {
    const { wire } = link.connection;
    const remote = wire.remoteHandshake;
    publish('connected', {
      peer: link.connection.label,
      role: link.role,
      ...(remote ? { client: clientOf(remote.peerId) } : {}),
      dir: link.dir,
      transport: wire.transport,
      encryption: wire.encryption,
    });
    publishLink(link, publish);
  });
  session.on('disconnected', (link, reason, error) => {
    if (error) publish('protocol-error', { peer: link.connection.label, reason });
    publish('disconnected', { peer: link.connection.label, role: link.role, reason });
  });
  session.on('idlistSent', (link, chunks, of) =>
    publish('idlist-sent', { to: link.connection.label, chunks, of }),
  );
  session.on('haveSent', (index, link) =>
    publish('have-sent', { chunk: index, to: link.connection.label }),
  );
  session.on('requested', (index, link, blocks) =>
    publish('request-sent', { chunk: index, to: link.connection.label, blocks }),
  );
  session.on('pieceStored', (index, from, role, bytes) =>
    publish('chunk-received', { chunk: index, from, bytes, via: role }),
  );
  session.on('pieceRejected', (index, from) =>
    publish('chunk-rejected', { chunk: index, from: from.join(','), reason: 'sha1-mismatch' }),
  );
  session.on('chunkCorrupt', (index) =>
    publish('chunk-corrupt', { chunk: index, reason: 'stored file failed SHA-1; dropped' }),
  );
}

function publishLink(link: SwarmLink, publish: Publish): void {
  const { connection, server } = link;
  const label = connection.label;
  connection.on('bitfield', (remote) =>
    publish('idlist-received', { from: label, chunks: remote.count(), of: remote.size }),
  );
  connection.on('have', (index) => publish('have-received', { chunk: index, from: label }));
  server.on('requestReceived', (index) =>
    publish('request-received', { chunk: index, from: label }),
  );
  server.on('chunkSent', (index, bytes) =>
    publish('chunk-sent', { chunk: index, to: label, bytes }),
  );
}
