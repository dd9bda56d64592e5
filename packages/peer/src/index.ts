/**
 * @packageDocumentation
 * The swarmdrop peer as a library (the `swarmdrop-peer` bin wraps it).
 *
 * @example
 * ```ts
 * import { Peer } from '@swarmdrop/peer';
 * // Only the owner is required: swarm mode, any free port, the command line's defaults.
 * const peer = await Peer.start({ owner: { host: '10.0.0.1', port: 6881 }, exitWhenDone: true });
 * process.exitCode = await peer.finished; // 0 once merged
 * await peer.close();
 * ```
 */
export { type PeerCliOptions, PROGRAM, parsePeerArgs, USAGE } from './args.js';
export { pause, systemClock, type Timer, type TimerClock } from './clock.js';
export { backoffMs } from './dialers.js';
// The engine and swarm mode by name, for the simulator (packages/sim), which runs them over modelled links.
export {
  Choker,
  type ChokerOptions,
  MinRatePolicy,
  type MinRatePolicyOptions,
  type PieceSink,
  SwarmPicker,
  type SwarmPickerOptions,
  SwarmScheduler,
  type SwarmSchedulerComponents,
  type SwarmSchedulerOptions,
} from './engine/index.js';
export {
  DEFAULT_FALLBACK_AFTER_MS,
  DEFAULT_LINGER_MS,
  DEFAULT_LISTEN,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
  DEFAULT_MAX_PEERS,
  DEFAULT_METAINFO_PATH,
  DEFAULT_OWNER_TIMEOUT_MS,
  DEFAULT_PIPELINE_BLOCKS,
  PEER_FLAGS,
  PEER_OPTIONS,
  type PeerFlag,
  type PeerOptions,
  type ResolvedPeerOptions,
  resolvePeerOptions,
} from './options.js';
export { type AnnounceResult, announce, fetchMetainfo } from './owner-client.js';
export { MAX_HASH_FAILURES, Peer, type PeerComponents } from './peer.js';
export { REANNOUNCE_MS, Reannouncer } from './reannouncer.js';
export {
  FallbackPolicy,
  type LinkProgress,
  type NeighbourProgress,
} from './ring/fallback-policy.js';
export {
  SWARM_TICK_MS,
  type SwarmConnection,
  type SwarmLink,
  type SwarmRole,
  SwarmSession,
  type SwarmSessionComponents,
  type SwarmSessionEvents,
  type SwarmSessionOptions,
  type SwarmStore,
} from './swarm/index.js';
