/**
 * @packageDocumentation
 * The swarmdrop file owner as a library (the `swarmdrop-owner` bin wraps it).
 *
 * @example
 * ```ts
 * import { Owner } from '@swarmdrop/owner';
 * // Only `file` is required; the rest default as on the command line (port 0: any free port).
 * const owner = await Owner.start({ file: 'movie.mkv', dir: '/tmp/o', chunkSize: 102_400 });
 * console.log(owner.port, owner.metainfo.infoHash.toString('hex'));
 * await owner.close();
 * ```
 */
export { type OwnerCliOptions, parseOwnerArgs, USAGE } from './args.js';
export { BatchAssigner } from './batch-assigner.js';
export {
  DEFAULT_OFFERS_PER_PEER,
  InitialSeeder,
  type InitialSeederOptions,
} from './initial-seeder.js';
export {
  DEFAULT_EXPECTED_PEERS,
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
  DEFAULT_PORT,
  OWNER_FLAGS,
  OWNER_OPTIONS,
  type OwnerFlag,
  type OwnerOptions,
  type ResolvedOwnerOptions,
  resolveOwnerOptions,
} from './options.js';
export {
  ANNOUNCE_EXPIRY_MS,
  Owner,
  type OwnerComponents,
  STATUS_MAX_PEERS,
} from './owner.js';
export { SuperSeeding } from './super-seeding.js';
export {
  ANNOUNCE_INTERVAL_S,
  announceResponse,
  BATCH_KEY,
  DEFAULT_NUMWANT,
  DEFAULT_TRACKER_MAX_PEERS,
  DEFAULT_TRACKER_MAX_PER_ADDRESS,
  MAX_NUMWANT,
  parseAnnounce,
  parseQueryBytes,
  TrackerRegistry,
} from './tracker.js';
