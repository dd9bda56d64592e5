import type { ChunkStore } from '../chunks/chunk-store.js';
import type { WireEncryption, WireTransport } from '../mse.js';
import type { TimerClock } from '../time/clock.js';
import { BlockServer } from './block-server.js';
import { Connection } from './connection.js';
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
}

/** One remote: its wire, the connection that owns its state, and the server of its requests. */
export interface OpenConnection {
  readonly wire: PeerWire;
  readonly connection: Connection;
  readonly server: BlockServer;
}

/**
 * The stack every BitTorrent connection runs, built one way for the owner,
 * ring mode and swarm mode alike: PeerWire (framing, timers, limits) under a
 * Connection (the remote's state) with a BlockServer answering its requests
 * from the store. The caller subscribes to what it needs; nothing here logs.
 */
export function openConnection(options: OpenConnectionOptions): OpenConnection {
  const { opened, store, clock } = options;
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
  });
  const connection = new Connection({
    wire,
    pieceCount: store.pieceCount,
    localHas: store.held,
    clock,
  });
  return { wire, connection, server: new BlockServer({ connection, store }) };
}
