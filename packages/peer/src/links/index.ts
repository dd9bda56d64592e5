/**
 * Ring mode's links: each download link (neighbour, owner for the batch,
 * fallback as a second owner link) is an object with its own policy, run by
 * a RingSession on the swarm scheduler. Nothing here imports the peer.
 */
export * from './link.js';
export * from './neighbour-link.js';
export * from './owner-link.js';
export * from './ring-session.js';
