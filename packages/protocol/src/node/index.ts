/**
 * @packageDocumentation
 * The Node.js side of swarmdrop's protocol: disk (chunk store, splitting) and
 * sockets (one BitTorrent connection, the one-port BitTorrent/HTTP server, the
 * shared serving logic). Owner and peer both build on these.
 *
 * `Connection` wraps a `PeerWire` and owns the remote's state (bitfield, the
 * four choke/interest flags, requests both ways, rates), emitting typed
 * events; `BlockServer` serves its requests from the store. Invariants:
 * `packages/peer/src/swarm/STATE.md`.
 *
 * @example
 * ```ts
 * import { BlockServer, ChunkStore, Connection, DualServer, PeerWire } from '@swarmdrop/protocol/node';
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
 * process gets the same pair (`limits`). `ProgressLine` is the terminal's
 * status line, a subscriber to a service's `DomainEvents`.
 */
export * from './accept-incoming.js';
export * from './block-server.js';
export * from './bounded-writer.js';
export * from './buffer-pool.js';
export * from './chunk-store.js';
export * from './cli.js';
export * from './clock.js';
export * from './connection.js';
export * from './dashboard-http.js';
export * from './disk-space.js';
export * from './dual-server.js';
export * from './handshake-budget.js';
export * from './http.js';
export * from './log-sink.js';
export * from './logger.js';
export * from './memory.js';
export * from './merged-file.js';
export * from './metrics.js';
export * from './mse-handshake.js';
export * from './peer-wire.js';
export * from './progress-line.js';
export * from './split.js';
export * from './stdout.js';
export * from './utp.js';
