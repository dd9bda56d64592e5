import { randomBytes } from 'node:crypto';
import { BLOCK_SIZE, MAX_BLOCK_LENGTH, PEER_ID_PREFIX } from './constants.js';

/**
 * The first random character of a swarm-mode peer's id. The random part is
 * otherwise letters and digits only, in every version so far, so no ring
 * peer, old or new, can carry it by chance (the owner would seed such a peer
 * piece by piece, and its batch would never come).
 */
const SWARM_MODE_MARK = '~';

/**
 * A swarmdrop peer id: `-SD0100-` + the sender's listening port (5 digits) +
 * `-` + 6 random characters. Carrying the port lets the other side name a
 * connection by its listening address, so both ends' logs name the same peer.
 * A peer in swarm mode starts the random part with `~` (the owner seeds it
 * piece by piece, InitialSeeder); older parsers read the port as before.
 */
export function makePeerId(listenPort: number, mode: 'swarm' | 'other' = 'other'): Buffer {
  let random = randomBytes(6)
    .toString('base64')
    .replace(/[^A-Za-z0-9]/g, 'x')
    .slice(0, 6);
  if (mode === 'swarm') random = SWARM_MODE_MARK + random.slice(1);
  return Buffer.from(`${PEER_ID_PREFIX}${String(listenPort).padStart(5, '0')}-${random}`, 'latin1');
}

/** True for the id of a swarmdrop peer in swarm mode (`makePeerId(port, 'swarm')`). */
export function isSwarmModePeer(peerId: Uint8Array): boolean {
  return (
    isSwarmdropPeer(peerId) &&
    Buffer.from(peerId).toString('latin1', PEER_ID_PREFIX.length + 6, PEER_ID_PREFIX.length + 7) ===
      SWARM_MODE_MARK
  );
}

/** The listening port inside a swarmdrop peer id, or undefined for other clients. */
export function listenPortOf(peerId: Uint8Array): number | undefined {
  const text = Buffer.from(peerId).toString('latin1');
  const match = /^-SD\d{4}-(\d{5})-/.exec(text);
  if (!match) return undefined;
  const port = Number(match[1]);
  return port > 0 && port <= 65_535 ? port : undefined;
}

/** True when the peer id is a swarmdrop one. */
export function isSwarmdropPeer(peerId: Uint8Array): boolean {
  return listenPortOf(peerId) !== undefined;
}

/**
 * The remote's client as the logs and `/status` name it: `swarmdrop`, else
 * the Azureus-style code of a stock client's id (`-TR4060-` → `TR4060`,
 * `-aria2-` style ids and others → `other`).
 */
export function clientOf(peerId: Uint8Array): string {
  if (isSwarmdropPeer(peerId)) return 'swarmdrop';
  const match = /^-([A-Za-z0-9]{2}\d{4})-/.exec(Buffer.from(peerId).toString('latin1'));
  return match ? match[1]! : 'other';
}

/**
 * Bytes per request to a remote with this peer id (undefined before its
 * handshake): whole chunks (capped at MAX_BLOCK_LENGTH) from another
 * swarmdrop process, 16 KiB from anyone else, since stock clients refuse
 * larger requests. Ring and swarm mode both ask it, so both speak alike.
 */
export function requestBytesFor(remotePeerId: Uint8Array | undefined, pieceLength: number): number {
  return remotePeerId && isSwarmdropPeer(remotePeerId)
    ? Math.min(pieceLength, MAX_BLOCK_LENGTH)
    : BLOCK_SIZE;
}
