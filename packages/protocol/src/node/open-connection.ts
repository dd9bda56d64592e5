import type { ChunkStore } from '../chunks/chunk-store.js';
import { CLIENT_NAME } from '../constants.js';
import type { WireEncryption, WireTransport } from '../mse.js';
import { listenPortOf } from '../peer-id.js';
import type { TimerClock } from '../time/clock.js';
import { type ExtensionName, withExtensionBit } from '../wire/extended.js';
import { withFastBit } from '../wire/fast.js';
import { BlockServer } from './block-server.js';
import { Connection, DEFAULT_MAX_REMOTE_REQUESTS } from './connection.js';
import { MetadataServer } from './metadata-server.js';
import { PeerWire, type WireLimits, type WireSocket } from './peer-wire.js';

/** A socket that is ours to speak BitTorrent on: accepted (through its handshake) or dialled. */
export interface OpenedSocket {
  readonly socket: WireSocket;
  /** Bytes already read from it (the sniffed first bytes, or what followed MSE's handshake). */
  readonly initial?: Buffer | undefined;
  readonly encryption: WireEncryption;
  readonly transport: WireTransport;
}

export interface OpenConnectionOptions {
  readonly opened: OpenedSocket;
  /** What we serve from and announce: its metainfo, and what it holds. */
  readonly store: ChunkStore;
  readonly peerId: Uint8Array;
  /** The process's one clock: the wire's timers and the connection's rates run on it. */
  readonly clock: TimerClock;
  /** The process's shared rate limits, if any. */
  readonly limits?: WireLimits | undefined;
  readonly handshakeTimeoutMs?: number | undefined;
  /** BEP 6, the fast extension (default on); false offers it not, as swarmdrop 0.1 did. */
  readonly fast?: boolean | undefined;
  /**
   * BEP 10 (default on, with the extensions this stack serves itself):
   * `enabled` adds extensions the caller handles on top; false offers none,
   * as swarmdrop 0.1 did.
   */
  readonly extensions?: ExtensionSettings | false | undefined;
}

/** The extensions a connection offers beyond those the stack serves itself. */
export interface ExtensionSettings {
  /** Extensions the caller handles (it listens to `extended` for them). */
  readonly enabled?: readonly ExtensionName[];
  /**
   * BEP 9: serve the info dictionary (`ut_metadata`) to whoever reached the
   * wire (default true; never for a private torrent).
   */
  readonly serveMetadata?: boolean;
}

/** One remote: its wire, the connection that owns its state, and the server of its requests. */
export interface OpenConnection {
  readonly wire: PeerWire;
  readonly connection: Connection;
  readonly server: BlockServer;
  /** BEP 9: serves the info dictionary to a remote that asks (absent with extensions off). */
  readonly metadata: MetadataServer | undefined;
}

/**
 * The stack every BitTorrent connection runs, built one way for the owner,
 * ring mode and swarm mode alike: PeerWire (framing, timers, limits) under a
 * Connection (the remote's state) with a BlockServer answering its requests
 * from the store. The caller subscribes to what it needs; nothing here logs.
 */
export function openConnection(options: OpenConnectionOptions): OpenConnection {
  const { opened, store, clock } = options;
  const settings = options.extensions === false ? undefined : (options.extensions ?? {});
  // A private swarm (BEP 27) serves its metadata to no one: its wire admits by address, and a
  // host that shares an admitted address must not learn the torrent from the wire.
  const infoBytes =
    settings?.serveMetadata === false || store.metainfo.private
      ? undefined
      : store.metainfo.infoBytes;
  const enabled = new Set<ExtensionName>(settings?.enabled ?? []);
  if (infoBytes) enabled.add('ut_metadata');
  const fast = options.fast !== false;
  // Both bits where both are offered: BEP 10's byte 5, BEP 6's byte 7.
  let reserved: Uint8Array = new Uint8Array(8);
  if (settings) reserved = withExtensionBit(reserved);
  if (fast) reserved = withFastBit(reserved);
  const wire = new PeerWire({
    socket: opened.socket,
    metainfo: store.metainfo,
    peerId: options.peerId,
    encryption: opened.encryption,
    transport: opened.transport,
    ...(opened.initial ? { initial: opened.initial } : {}),
    ...(options.limits ? { limits: options.limits } : {}),
    ...(options.handshakeTimeoutMs === undefined
      ? {}
      : { handshakeTimeoutMs: options.handshakeTimeoutMs }),
    clock,
    ...(settings || fast ? { reserved } : {}),
  });
  const connection = new Connection({
    wire,
    pieceCount: store.pieceCount,
    localHas: store.held,
    clock,
    ...(settings
      ? {
          extensions: {
            enabled: [...enabled],
            version: CLIENT_NAME,
            listenPort: listenPortOf(options.peerId),
            reqq: DEFAULT_MAX_REMOTE_REQUESTS,
            ...(infoBytes ? { metadataSize: infoBytes.length } : {}),
          },
        }
      : {}),
    fast,
  });
  const metadata =
    settings && infoBytes ? new MetadataServer({ connection, infoBytes, clock }) : undefined;
  return { wire, connection, server: new BlockServer({ connection, store }), metadata };
}
