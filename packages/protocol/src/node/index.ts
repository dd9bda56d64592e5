/**
 * @packageDocumentation
 * The Node.js side of swarmdrop's protocol: disk (chunk store, splitting,
 * merging) and sockets (one BitTorrent connection over TCP or µTP, MSE,
 * serving blocks). Owner and peer both build on these; the port that
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
export * from './block-server.js';
export * from './buffer-pool.js';
export * from './chunk-store.js';
export * from './clock.js';
export * from './connection.js';
export * from './disk-space.js';
export * from './memory.js';
export * from './merged-file.js';
export * from './mse-handshake.js';
export * from './open-connection.js';
export * from './peer-wire.js';
export * from './split.js';
export * from './utp.js';
