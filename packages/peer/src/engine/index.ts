/**
 * The engine both modes run: pure parts on an injected clock and RNG. The
 * picker chooses what to ask for (rarest first, endgame), the scheduler
 * pipelines requests and assembles pieces into the store, the min-rate
 * policy cuts a stalled link, the choker decides who is served, and the
 * registry keeps every live connection once. Ring mode (ring/) and swarm
 * mode (swarm/) each wire it to their links; it imports neither.
 * Invariants: STATE.md next to this file.
 */
export {
  type ChokeCandidate,
  type ChokeDecision,
  Choker,
  type ChokerOptions,
  DEFAULT_NEW_CONNECTION_MS,
  DEFAULT_OPTIMISTIC_INTERVAL_MS,
  DEFAULT_RECHOKE_INTERVAL_MS,
  DEFAULT_SNUB_TIMEOUT_MS,
  DEFAULT_UNCHOKE_SLOTS,
  NEW_CONNECTION_WEIGHT,
} from './choker.js';
export {
  type ConnectionDirection,
  ConnectionRegistry,
  type ConnectionRegistryEvents,
  type ConnectionRegistryOptions,
  keepsDialledBySmallerId,
  type RegisteredConnection,
  type RegistryEntry,
} from './connection-registry.js';
export {
  DEFAULT_MIN_RATE_BYTES_PER_SEC,
  DEFAULT_MIN_RATE_WINDOW_MS,
  DEFAULT_PROBATION_IN_FLIGHT_BYTES,
  type LinkSample,
  MinRatePolicy,
  type MinRatePolicyOptions,
} from './min-rate-policy.js';
export {
  type BlockOutcome,
  type CancelOrder,
  DEFAULT_ENDGAME_MAX_REQUESTERS,
  DEFAULT_RANDOM_FIRST_PIECES,
  type PickBudget,
  type PickedBlock,
  type PieceSet,
  SwarmPicker,
  type SwarmPickerOptions,
} from './picker.js';
export { RarityOrder } from './rarity-order.js';
export {
  DEFAULT_MAX_STORING_PIECES,
  DEFAULT_PIPELINE_BLOCKS,
  DEFAULT_PIPELINE_BYTES,
  DEFAULT_PIPELINE_QUEUE_MS,
  type LinkOptions,
  MAX_EMPTY_RETRIES,
  MIN_PIPELINE_BYTES,
  type PieceSink,
  pipelineBytesFor,
  SPARSE_PIECES,
  SwarmScheduler,
  type SwarmSchedulerComponents,
  type SwarmSchedulerEvents,
  type SwarmSchedulerOptions,
} from './scheduler.js';
