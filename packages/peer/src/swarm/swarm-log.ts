import type { Logger } from '@swarmdrop/protocol/node';
import type { SwarmLink, SwarmSession } from './swarm-session.js';

/**
 * The console log of swarm mode: one subscriber to the session's and each
 * connection's typed events, printing the same event words as the ring
 * (README, "Log events"), so both modes read and grep alike. Nothing reacts
 * to these lines.
 */
export function logSwarm(session: SwarmSession, log: Logger): void {
  session.on('connected', (link) => {
    log.log('connected', { peer: link.connection.label, role: link.role, dir: link.dir });
    logLink(link, log);
  });
  session.on('disconnected', (link, reason, error) => {
    if (error) log.log('protocol-error', { peer: link.connection.label, reason });
    log.log('disconnected', { peer: link.connection.label, role: link.role, reason });
  });
  session.on('idlistSent', (link, chunks, of) =>
    log.log('idlist-sent', { to: link.connection.label, chunks, of }),
  );
  session.on('haveSent', (index, link) =>
    log.log('have-sent', { chunk: index, to: link.connection.label }),
  );
  session.on('requested', (index, link, blocks) =>
    log.log('request-sent', { chunk: index, to: link.connection.label, blocks }),
  );
  session.on('pieceStored', (index, from, role, bytes) =>
    log.log('chunk-received', { chunk: index, from, bytes, via: role }),
  );
  session.on('pieceRejected', (index, from) =>
    log.log('chunk-rejected', { chunk: index, from: from.join(','), reason: 'sha1-mismatch' }),
  );
  session.on('chunkCorrupt', (index) =>
    log.log('chunk-corrupt', { chunk: index, reason: 'stored file failed SHA-1; dropped' }),
  );
}

function logLink(link: SwarmLink, log: Logger): void {
  const { connection, server } = link;
  const label = connection.label;
  connection.on('bitfield', (remote) =>
    log.log('idlist-received', { from: label, chunks: remote.count(), of: remote.size }),
  );
  connection.on('have', (index) => log.log('have-received', { chunk: index, from: label }));
  server.on('requestReceived', (index) =>
    log.log('request-received', { chunk: index, from: label }),
  );
  server.on('chunkSent', (index, bytes) =>
    log.log('chunk-sent', { chunk: index, to: label, bytes }),
  );
}
