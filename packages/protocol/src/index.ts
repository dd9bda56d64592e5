/**
 * @packageDocumentation
 * swarmdrop's shared framing, the pure part: the BitTorrent v1 (BEP 3) wire
 * codec, bitfields, peer ids, metainfo, the tracker's format, MSE's
 * arithmetic, µTP's packets and congestion control, chunk geometry,
 * addresses, and the clock and rate tools they run on. Sockets and disk
 * (chunking) live in `@swarmdrop/protocol/node`; the service shell (log,
 * metrics, dashboard, options, the port) is `@swarmdrop/service`.
 *
 * @example
 * ```ts
 * import { FrameDecoder, encodeMessage, Geometry } from '@swarmdrop/protocol';
 * const decoder = new FrameDecoder({ geometry: new Geometry(512_000, 102_400) });
 * socket.on('data', (bytes) => {
 *   for (const message of decoder.push(bytes)) handle(message); // throws WireError on abuse
 * });
 * socket.write(encodeMessage({ type: 'have', index: 3 }));
 * ```
 */
export {
  canonicalHost,
  type Endpoint,
  formatEndpoint,
  parseEndpoint,
  sourceKey,
  unmapIPv4,
} from './address.js';
export { bencodeDecode, bencodeEncode } from './bencoding.js';
export { Bitfield } from './bitfield.js';
export {
  BLOCK_SIZE,
  CLIENT_NAME,
  DEFAULT_CHUNK_SIZE,
  HANDSHAKE_LENGTH,
  MAX_BLOCK_LENGTH,
  MAX_PIECE_COUNT,
  MAX_PIECE_LENGTH,
  PEER_ID_PREFIX,
  PROTOCOL_NAME,
} from './constants.js';
export {
  ChunkError,
  type ErrorCode,
  MetainfoError,
  OptionError,
  SwarmdropError,
  WireError,
} from './errors.js';
export { type EventMap, TypedEmitter } from './events/typed-emitter.js';
export { type Block, Geometry } from './geometry.js';
export {
  formatMagnet,
  looksLikeMagnet,
  MAX_MAGNET_ENTRIES,
  MAX_MAGNET_LENGTH,
  type MagnetLink,
  parseMagnet,
} from './magnet.js';
export {
  MetadataAssembly,
  type MetadataAssemblyOptions,
  MetadataRemoteError,
} from './metadata-assembly.js';
export {
  buildMetainfo,
  fitFileName,
  MAX_FILE_NAME_BYTES,
  MAX_METAINFO_BYTES,
  type Metainfo,
  type MetainfoInput,
  PieceHashes,
  parseInfoDictionary,
  parseMetainfo,
  torrentFileName,
  torrentFromInfo,
  withAnnounce,
} from './metainfo.js';
export {
  CRYPTO_PLAINTEXT,
  CRYPTO_RC4,
  cryptoProvide,
  cryptoSelect,
  DEFAULT_ENCRYPTION,
  DEFAULT_TRANSPORT,
  ENCRYPTION_POLICIES,
  type EncryptionPolicy,
  MSE_GENERATOR,
  MSE_KEY_LENGTH,
  MSE_MAX_PAD,
  MSE_PRIME_HEX,
  MSE_VC,
  mseCiphers,
  mseHash,
  padKey,
  parseEncryptionPolicy,
  parseTransportPolicy,
  RC4_DROP,
  Rc4,
  req1Hash,
  req2FromReq23,
  req2Hash,
  req23Hash,
  TRANSPORT_POLICIES,
  type TransportPolicy,
  type WireEncryption,
  type WireTransport,
} from './mse.js';
export {
  clientOf,
  isSwarmdropPeer,
  isSwarmModePeer,
  listenPortOf,
  makePeerId,
  requestBytesFor,
} from './peer-id.js';
export {
  decodePex,
  encodePex,
  PEX_EXTENSION,
  PEX_FLAG,
  PEX_INTERVAL_MS,
  PEX_MAX_ADDED,
  PEX_MAX_ENTRIES_RECEIVED,
  PEX_MAX_PAYLOAD_BYTES,
  type PexMessage,
  type PexPeer,
} from './pex.js';
export {
  DEFAULT_RATE_BUCKET_MS,
  DEFAULT_RATE_WINDOW_MS,
  RateEstimator,
  type RateEstimatorOptions,
} from './rate/rate-estimator.js';
export {
  DEFAULT_RATE_LIMIT_BURST_MS,
  formatBytes,
  formatRate,
  MAX_RATE_LIMIT_BYTES_PER_SECOND,
  parseRateLimit,
  RateLimiter,
  type RateLimiterOptions,
} from './rate/rate-limiter.js';
export {
  DEFAULT_MIN_UPLOAD_BYTES_PER_SECOND,
  DEFAULT_MIN_UPLOAD_GRACE_MS,
  DEFAULT_MIN_UPLOAD_WINDOW_MS,
  UploadFloor,
  type UploadFloorOptions,
  type UploadFloorSettings,
} from './rate/upload-floor.js';
export {
  type Clock,
  ManualClock,
  MONOTONIC_CLOCK,
  type Rng,
  randomBelow,
  seededRng,
  type Timer,
  type TimerClock,
} from './time/clock.js';
export {
  ANNOUNCE_EXPIRY_MS,
  ANNOUNCE_INTERVAL_S,
  ANNOUNCE_MIN_INTERVAL_S,
  type AnnounceAnswer,
  AnnounceError,
  type AnnounceQueryFields,
  type AnnounceRequest,
  announceFailure,
  announceQuery,
  announceResponse,
  BATCH_KEY,
  DEFAULT_NUMWANT,
  decodeAnnounceResponse,
  decodeCompactPeers,
  decodeCompactPeers6,
  encodeCompactPeers,
  encodeCompactPeers6,
  MAX_NUMWANT,
  parseAnnounce,
  parseQueryBytes,
  percentEncodeBytes,
  type TrackerPeer,
} from './tracker.js';
export { escapeUnsafe, UNSAFE_CHARS, unicodeEscape } from './unsafe-text.js';
export { AddressRate, type AddressRateOptions } from './utp/address-rate.js';
export {
  DEFAULT_UTP_CONNECT_TIMEOUT_MS,
  DEFAULT_UTP_IDLE_TIMEOUT_MS,
  DEFAULT_UTP_KEEPALIVE_MS,
  UTP_AMPLIFICATION_FACTOR,
  UTP_DUPLICATE_ACKS,
  UTP_INITIAL_RTO_MS,
  UTP_MAX_PACKETS_AHEAD,
  UTP_MAX_REORDER,
  UTP_MAX_RTO_MS,
  UTP_MAX_TIMEOUTS,
  UTP_MAX_UNPROVEN_BAD_ACKS,
  UTP_MIN_RTO_MS,
  UTP_PACKET_BYTES,
  UTP_RECEIVE_OVERRUN_BYTES,
  UTP_RECEIVE_WINDOW_BYTES,
  UTP_REORDER_MAX_BYTES,
  UtpConnection,
  type UtpConnectionOptions,
  type UtpState,
} from './utp/connection.js';
export {
  BASE_DELAY_BUCKET_MS,
  CURRENT_DELAY_FILTER,
  CURRENT_DELAY_WINDOW_MS,
  LEDBAT_MAX_WINDOW_BYTES,
  LEDBAT_TARGET_US,
  Ledbat,
  type LedbatOptions,
  MAX_CWND_INCREASE_BYTES_PER_RTT,
  MAX_DECREASE_PER_RTT,
  SLOW_START_THRESHOLD_BYTES,
} from './utp/ledbat.js';
export {
  buildSack,
  decodeUtpPacket,
  encodeUtpPacket,
  MAX_SACK_BYTES,
  sackedSeqs,
  seqAdd,
  seqDiff,
  UTP_EXTENSION_SACK,
  UTP_HEADER_LENGTH,
  UTP_SEQ_MASK,
  UTP_TYPE,
  UTP_VERSION,
  type UtpPacket,
  UtpPacketError,
  type UtpType,
  utpWireBytes,
} from './utp/packet.js';
export {
  PROCESS_REORDER_BUDGET,
  ReorderBudget,
  UTP_REORDER_PROCESS_MAX_BYTES,
} from './utp/reorder-budget.js';
export { FrameDecoder, type FrameDecoderOptions } from './wire/decoder.js';
export { encodeMessage, encodePieceHeader } from './wire/encode.js';
export {
  EXTENDED_HANDSHAKE_ID,
  EXTENSION_RESERVED_BIT,
  EXTENSION_RESERVED_BYTE,
  type ExtensionName,
  encodeExtendedHandshake,
  LOCAL_EXTENSIONS,
  type LocalHandshake,
  localExtensionOf,
  MAX_CLIENT_NAME_LENGTH,
  MAX_EXTENDED_PAYLOAD,
  parseExtendedHandshake,
  type RemoteExtensions,
  supportsExtensions,
  withExtensionBit,
} from './wire/extended.js';
export { FAST_MESSAGE_TYPES, supportsFast, withFastBit } from './wire/fast.js';
export {
  type Handshake,
  MESSAGE_ID,
  type Message,
  type MessageOf,
  type MessageType,
} from './wire/messages.js';
export {
  decodeMetadataMessage,
  encodeMetadataMessage,
  MAX_METADATA_SIZE,
  METADATA_PIECE_SIZE,
  type MetadataMessage,
  metadataPieceCount,
  metadataPieceLength,
} from './wire/metadata.js';
