/**
 * @packageDocumentation
 * The one test kit of swarmdrop: every package's tests use it, so that a
 * helper is written once. Everything that opens something registers its
 * teardown with a `Cleanup`, which the test file runs in `afterEach`; every
 * wait is on an event (a log line, a message) and bounded only against a hang.
 *
 * @example
 * ```ts
 * import { Cleanup, startOwner, startPeer, merged, freePorts } from '@swarmdrop/testkit';
 * const cleanup = new Cleanup();
 * afterEach(() => cleanup.run());
 * it('downloads', async () => {
 *   const { port: ownerPort } = await startOwner(cleanup, { size: 1_000_000 });
 *   const [port, neighbourPort] = await freePorts(2);
 *   const { log } = await startPeer(cleanup, { ownerPort, port, neighbourPort });
 *   await merged(log); // rejects with the log's tail if no `merged` line comes
 * });
 * ```
 */
export { Cleanup } from './cleanup.js';
export { HANG_MS, hasTool, IN_CI, toolAvailable, toolPath } from './env.js';
export { rejected, thrown, within } from './errors.js';
export { CHUNK, KiB, MiB, pseudoRandomBytes, randomFile } from './files.js';
export {
  type AnnounceLoadOptions,
  type AnnounceLoadResult,
  announceLoad,
  FleetConnections,
  type FleetConnectionsOptions,
  type FleetMember,
  fleetAddress,
  jainIndex,
} from './fleet.js';
export {
  announcePath,
  type EventStream,
  type HttpResult,
  httpGet,
  openEventStream,
  rawExchange,
} from './http.js';
export { type FieldMatch, LogCapture, type LogLine, type WaitOptions } from './log-capture.js';
export {
  fetchMetrics,
  histogramValue,
  metricValue,
  type PromMetrics,
  parseMetrics,
  promtoolCheck,
  scrapeMetrics,
} from './metrics.js';
export { closed, freePort, freePorts, socketPair } from './ports.js';
export { startGatedProxy } from './proxy.js';
export {
  type Child,
  merged,
  OWNER_BIN,
  type OwnerSpec,
  ownerOptions,
  PEER_BIN,
  type PeerSpec,
  readSummary,
  runBin,
  scanChunks,
  startOwner,
  startPeer,
  type TestOwner,
  type TestPeerProcess,
} from './services.js';
export {
  type BlockRequest,
  stockPeerId,
  TestPeer,
  type TestPeerScript,
  TestPeerServer,
} from './test-peer.js';
export { type RawUtpPacket, RawUtpRemote } from './utp-remote.js';
