/**
 * Ring mode's links: each download link (neighbour, owner for the batch,
 * fallback as a second owner link) is an object with its own policy, run by
 * a RingSession on the engine's scheduler (../engine/). Nothing here imports
 * the peer or swarm mode.
 */
export { FallbackPolicy, type LinkProgress, type NeighbourProgress } from './fallback-policy.js';
export type { LinkHost, LinkRole, RingConnection, RingRole } from './link.js';
export { NeighbourLink } from './neighbour-link.js';
export { OwnerLink } from './owner-link.js';
export {
  MAX_HASH_FAILURES,
  RingSession,
  type RingSessionComponents,
  type RingSessionEvents,
  type RingSessionOptions,
} from './ring-session.js';
