/**
 * Swarm mode: a peer with no download neighbour (or --swarm) takes peers
 * from the owner's tracker and trades with all of them on the engine
 * (../engine/): rarest first, endgame, choking with reciprocation.
 */
export {
  DEFAULT_REDIAL_ATTEMPTS,
  REDIAL_MAX_DELAY_MS,
  Redialer,
  type RedialerComponents,
  type RedialerOptions,
} from './redialer.js';
export { publishSwarm } from './swarm-log.js';
export {
  DEFAULT_MAX_PEERS,
  DUPLICATE_REASON,
  MAX_HASH_FAILURES_PER_LINK,
  SWARM_TICK_MS,
  type SwarmConnection,
  type SwarmLink,
  type SwarmRole,
  SwarmSession,
  type SwarmSessionComponents,
  type SwarmSessionEvents,
  type SwarmSessionOptions,
  type SwarmStore,
} from './swarm-session.js';
