/**
 * @packageDocumentation
 * The swarmdrop peer as a library (the `swarmdrop-peer` bin wraps it).
 *
 * @example
 * ```ts
 * import { Peer, parsePeerArgs } from '@swarmdrop/peer';
 * const options = parsePeerArgs(['6881', '7001', '7002', '--exit-when-done']);
 * if (typeof options === 'object') {
 *   const peer = await Peer.start(options);
 *   process.exitCode = await peer.finished;
 *   await peer.close();
 * }
 * ```
 */
export { PROGRAM, parsePeerArgs, USAGE } from './args.js';
export { backoffMs } from './backoff.js';
export { type Clock, pause, systemClock, type Timer } from './clock.js';
export {
  FallbackPolicy,
  type LinkProgress,
  type NeighbourProgress,
} from './fallback-policy.js';
export { announce, fetchMetainfo } from './owner-client.js';
export {
  DEFAULT_FALLBACK_AFTER_MS,
  DEFAULT_LINGER_MS,
  DEFAULT_OWNER_TIMEOUT_MS,
  MAX_HASH_FAILURES,
  Peer,
  type PeerComponents,
  type PeerOptions,
} from './peer.js';
export { REANNOUNCE_MS, Reannouncer } from './reannouncer.js';
export { DEFAULT_PIPELINE_BLOCKS } from './swarm/swarm-scheduler.js';
