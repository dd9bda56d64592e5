/**
 * @packageDocumentation
 * The swarmdrop file owner as a library (the `swarmdrop-owner` bin wraps it).
 *
 * @example
 * ```ts
 * import { Owner } from '@swarmdrop/owner';
 * const owner = await Owner.start({ file: 'movie.mkv', dir: '/tmp/o', port: 0, chunkSize: 102_400,
 *   expectedPeers: 5, maxConnections: 256, handshakeTimeoutMs: 10_000, logFormat: 'text' });
 * console.log(owner.port, owner.metainfo.infoHash.toString('hex'));
 * await owner.close();
 * ```
 */
export { parseOwnerArgs, USAGE } from './args.js';
export { BatchAssigner } from './batch-assigner.js';
export {
  DEFAULT_OFFERS_PER_PEER,
  InitialSeeder,
  type InitialSeederOptions,
} from './initial-seeder.js';
export {
  ANNOUNCE_EXPIRY_MS,
  DEFAULT_EXPECTED_PEERS,
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
  Owner,
  type OwnerComponents,
  type OwnerOptions,
  STATUS_MAX_PEERS,
} from './owner.js';
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
