/** Bytes per chunk (a BitTorrent piece): the seed's 100 KiB. */
export const DEFAULT_CHUNK_SIZE = 102_400;
/** Bytes per block on the wire: the size every stock client requests and accepts. */
export const BLOCK_SIZE = 16_384;
/** Largest block we accept in a request or piece (some clients ask for 32 KiB; 128 KiB is generous). */
export const MAX_BLOCK_LENGTH = 131_072;
/**
 * Largest chunk (piece) size: the owner's --chunk-size cap and what a peer
 * accepts in a metainfo. Past a few MiB a user gains nothing: the per-chunk
 * costs (a file, a SHA-1 check, a `have`, a log line) are already spread
 * thin, and MAX_PIECE_COUNT chunks of 16 MiB make 32 TiB. A larger chunk only
 * costs memory (a whole chunk is held to verify it, in each budget) and time
 * (a peer shares nothing of a chunk until all of it has arrived).
 */
export const MAX_PIECE_LENGTH = 16 * 1024 * 1024;
/**
 * Largest chunk count we accept: 2 Mi chunks (libtorrent's default limit
 * too) is a 200 GiB file at the default 100 KiB and 32 TiB at the largest
 * chunk size, so no real file needs more; it keeps a metainfo under 40 MiB
 * and a bitfield at 256 KiB.
 */
export const MAX_PIECE_COUNT = 2 * 1024 * 1024;
/** The 19-byte protocol string of a BEP 3 handshake. */
export const PROTOCOL_NAME = 'BitTorrent protocol';
export const HANDSHAKE_LENGTH = 68;
/** Prefix of every swarmdrop peer id, Azureus-style: client "SD", version 0100. */
export const PEER_ID_PREFIX = '-SD0100-';
/** What our BEP 10 handshake's `v` names us: the wire's version, not any one package's. */
export const CLIENT_NAME = 'swarmdrop 0.2.0';
