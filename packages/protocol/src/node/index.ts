/**
 * @packageDocumentation
 * The Node.js side of swarmdrop's protocol: chunking (`../chunks/`: the
 * split, the chunk store and its --dir rules, the merged file, the buffer
 * pool, disk space) and sockets (one BitTorrent connection over TCP or µTP,
 * MSE, serving blocks). Owner and peer both build on these; the port that
 * accepts connections is the service shell's (`@swarmdrop/service`).
 *
 * `Connection` wraps a `PeerWire` and owns the remote's state (bitfield, the
 * four choke/interest flags, requests both ways, rates), emitting typed
 * events; `BlockServer` serves its requests from the store. Invariants:
 * `packages/peer/src/engine/STATE.md`.
 *
 * @example
 * ```ts
 * import { BlockServer, ChunkStore, Connection, PeerWire } from '@swarmdrop/protocol/node';
 * import { DualServer } from '@swarmdrop/service';
 * const { store } = await ChunkStore.open({ dir, metainfo });
 * const server = new DualServer({ port: 6881, onHttp, onWire(socket, initial) {
 *   const wire = new PeerWire({ socket, initial, metainfo, peerId });
 *   const connection = new Connection({ wire, pieceCount: store.pieceCount, localHas: store.held });
 *   new BlockServer({ connection, store });
 *   connection.on('ready', () => connection.sendBitfield(store.held));
 *   connection.on('interested', () => connection.unchoke());
 * }});
 * await server.listen();
 * ```
 *
 * Rate limits: `createWireLimits` makes one `RateLimiter` (a token bucket,
 * in the pure part) per direction for a process; every `PeerWire` of that
 * process gets the same pair (`limits`).
 */

export { BufferPool } from '../chunks/buffer-pool.js';
export {
  CHUNK_DIR,
  type ChunkDirListing,
  ChunkStore,
  type ChunkStoreOptions,
  checkChunkDir,
  chunkFileName,
  listChunkDir,
  type OpenResult,
  type PutOptions,
  readChunkFile,
  SUMMARY_FILE,
  sha1,
  VERIFIED_TRUST_MS,
  writeChunkFile,
} from '../chunks/chunk-store.js';
export { checkDiskSpace, formatBytes, type SpaceNeeded } from '../chunks/disk-space.js';
export { chunksWithin, DEFAULT_CACHE_BYTES, DEFAULT_POOL_BYTES } from '../chunks/memory.js';
export {
  HASH_SLICE_BYTES,
  MERGE_RECORD_FILE,
  MergedFile,
  type MergedFileOptions,
  type MergeResult,
  partPathFor,
  readAll,
  writeAll,
} from '../chunks/merged-file.js';
export { type SplitOptions, type SplitResult, splitFile } from '../chunks/split.js';
export {
  BlockServer,
  type BlockServerEvents,
  type BlockServerOptions,
  type BlockSource,
} from './block-server.js';
export { dateClock, systemClock } from './clock.js';
export {
  type BlockRef,
  Connection,
  type ConnectionClose,
  type ConnectionEvents,
  type ConnectionOptions,
  type ConnectionState,
  DEFAULT_CHOKED_REQUEST_GRACE_MS,
  DEFAULT_MAX_REMOTE_REQUESTS,
  type IdListForm,
  MAX_ALLOWED_FAST,
  MAX_EXTENDED_HANDSHAKES,
  MAX_REDUNDANT_BITFIELDS,
  MAX_SUGGESTED,
  type OutgoingRequest,
  type PieceEvent,
  type RejectReason,
} from './connection.js';
export type { MessageWire } from './message-wire.js';
export {
  DEFAULT_METADATA_IN_FLIGHT,
  DEFAULT_METADATA_PIECE_TIMEOUT_MS,
  type FetchedMetadata,
  fetchMetadata,
  MetadataFetcher,
  type MetadataFetcherEvents,
  type MetadataFetcherOptions,
} from './metadata-fetcher.js';
export {
  MAX_METADATA_OVERRUN,
  MAX_METADATA_QUEUED,
  METADATA_REQUEST_WINDOW_MS,
  MetadataServer,
  type MetadataServerEvents,
  type MetadataServerOptions,
} from './metadata-server.js';
export {
  DEFAULT_MSE_TIMEOUT_MS,
  MAX_MSE_INITIAL_PAYLOAD,
  MAX_MSE_RESPONDER_BYTES,
  MseError,
  MseKeyPair,
  type MseOptions,
  type MseResult,
  MseStream,
  mseInitiate,
  mseRespond,
} from './mse-handshake.js';
export {
  type ExtensionSettings,
  type OpenConnection,
  type OpenConnectionOptions,
  type OpenedSocket,
  openConnection,
} from './open-connection.js';
export {
  createWireLimits,
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_KEEPALIVE_MS,
  PeerWire,
  type PeerWireOptions,
  type WireClose,
  type WireLimits,
  type WireSocket,
} from './peer-wire.js';
export {
  DEFAULT_UTP_MAX_CONNECTIONS,
  DEFAULT_UTP_MAX_CONNECTIONS_PER_ADDRESS,
  firstBytes,
  UTP_MAX_UNPROVEN,
  UTP_MAX_UNPROVEN_PER_ADDRESS,
  UTP_RATE_ADDRESSES,
  UTP_RESET_BURST,
  UTP_RESET_PER_SECOND,
  UTP_SYN_BURST,
  UTP_SYN_PER_SECOND,
  UTP_TICK_MS,
  UtpEndpoint,
  type UtpEndpointOptions,
  type UtpEndpointStats,
  UtpStream,
} from './utp.js';
