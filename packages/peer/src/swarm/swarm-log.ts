import {
  idListAs,
  type Publish,
  publishClosed,
  publishConnected,
  publishTraffic,
} from '@swarmdrop/service';
import type { SwarmSession } from './swarm-session.js';

/**
 * Swarm mode's domain events: the session's and each connection's typed
 * events, published as the peer's events under the same words as the ring
 * (README, "Log events"), so the console log, the metrics and the dashboard
 * see both modes alike. Nothing reacts to a printed line.
 */
export function publishSwarm(session: SwarmSession, publish: Publish): void {
  session.on('connected', (link) => {
    publishConnected(link.connection, publish, { role: link.role, dir: link.dir });
    publishTraffic(link.connection, link.server, publish, link.metadata);
  });
  session.on('disconnected', (link, reason, error) =>
    publishClosed(link.connection, publish, { reason, error }, { role: link.role }),
  );
  session.on('idlistSent', (link, chunks, of, form) =>
    publish('idlist-sent', { to: link.connection.label, chunks, of, ...idListAs(form) }),
  );
  session.on('rejectsMissing', (link, count) =>
    publish('rejects-missing', { from: link.connection.label, count }),
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
  session.on('pexSent', (to, added, dropped) => publish('pex-sent', { to, added, dropped }));
  session.on('pexReceived', (from, added, dropped, kept) =>
    publish('pex-received', { from, added, dropped, kept }),
  );
  session.on('chunkCorrupt', (index) =>
    publish('chunk-corrupt', { chunk: index, reason: 'stored file failed SHA-1; dropped' }),
  );
}
