import type { Socket } from 'node:net';
import {
  DEFAULT_ENCRYPTION,
  DEFAULT_TRANSPORT,
  type EncryptionPolicy,
  formatEndpoint,
  type TransportPolicy,
  type WireEncryption,
  type WireTransport,
} from '@swarmdrop/protocol';
import type { WireSocket } from '@swarmdrop/protocol/node';
import { firstBytes, mseRespond, type UtpStream } from '@swarmdrop/protocol/node';
import { sniffConnection } from './dual-server.js';
import { HandshakeBudget } from './handshake-budget.js';

/** How long an incoming µTP stream may take to send its first bytes (the owner passes its handshake timeout). */
export const DEFAULT_INCOMING_TIMEOUT_MS = 10_000;

/** An incoming BitTorrent connection, handshaken as far as encryption goes: PeerWire runs over `socket`. */
export interface IncomingConnection {
  readonly socket: WireSocket;
  /** Payload bytes already read (the remote's handshake, or part of it), for PeerWire's `initial`. */
  readonly initial: Buffer;
  readonly encryption: WireEncryption;
  readonly transport: WireTransport;
}

/**
 * Where an incoming connection comes from: a TCP socket the port's sniffer
 * already told apart (its first bytes and what they are), or a µTP stream,
 * whose first bytes are read here.
 */
export type IncomingStart =
  | { readonly transport: 'tcp'; readonly initial: Buffer; readonly kind: 'plaintext' | 'mse' }
  | { readonly transport: 'utp' };

export interface AcceptIncomingOptions {
  readonly infoHash: Uint8Array;
  /** Default DEFAULT_ENCRYPTION. */
  readonly encryption?: EncryptionPolicy | undefined;
  /** Default DEFAULT_TRANSPORT. */
  readonly transport?: TransportPolicy | undefined;
  /** Deadline for a µTP stream's first bytes and for the MSE handshake (default DEFAULT_INCOMING_TIMEOUT_MS). */
  readonly timeoutMs?: number | undefined;
  /**
   * Runs once the transport is known, before anything is answered: the
   * reason to refuse this remote (a private swarm's admission), or undefined.
   */
  readonly admit?: (socket: WireSocket) => Promise<string | undefined> | string | undefined;
}

/** Why an incoming connection was turned away; its message is the `connection-refused` reason. */
export class IncomingRefusedError extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'IncomingRefusedError';
  }
}

/**
 * The one way owner and peer (ring and swarm mode) take an incoming
 * BitTorrent connection, over TCP or µTP: the transport policy (BitTorrent
 * over TCP is refused under `--transport utp`; HTTP over µTP always), the
 * admission check, then a plaintext handshake (refused under `--encryption
 * require`) or an MSE one answered under the policy. Resolves with what to
 * run PeerWire over; rejects with the reason to log as `connection-refused`,
 * having destroyed the socket.
 */
export async function acceptIncoming(
  socket: WireSocket,
  start: IncomingStart,
  options: AcceptIncomingOptions,
): Promise<IncomingConnection> {
  const refuse = (reason: string): never => {
    socket.destroy();
    throw new IncomingRefusedError(reason);
  };
  const timeoutMs = options.timeoutMs ?? DEFAULT_INCOMING_TIMEOUT_MS;
  const encryption = options.encryption ?? DEFAULT_ENCRYPTION;
  let initial: Buffer;
  let kind: 'plaintext' | 'mse';
  if (start.transport === 'tcp') {
    if ((options.transport ?? DEFAULT_TRANSPORT) === 'utp')
      refuse('BitTorrent over TCP, but --transport is utp');
    initial = start.initial;
    kind = start.kind;
  } else {
    initial = await firstBytes(socket, timeoutMs).catch((err: Error) => refuse(err.message));
    const sniffed = sniffConnection(initial);
    if (sniffed === 'http') refuse('HTTP over µTP');
    kind = sniffed === 'bittorrent' ? 'plaintext' : 'mse';
  }
  const denied = await options.admit?.(socket);
  if (denied !== undefined) refuse(denied);
  if (socket.destroyed) refuse('closed before it was admitted');
  if (kind === 'plaintext') {
    if (encryption === 'require') refuse('plaintext handshake, but --encryption is require');
    return { socket, initial, encryption: 'plaintext', transport: start.transport };
  }
  const mse = await mseRespond(socket, initial, {
    infoHash: options.infoHash,
    policy: encryption,
    timeoutMs,
  }).catch((err: Error) => refuse(err.message));
  return { ...mse, transport: start.transport };
}

/** What a service gives `incomingHandlers`: its policies, and what to do with each outcome. */
export interface IncomingHandlersOptions {
  /**
   * The policies for a connection arriving now, or undefined to close it at
   * once (the service is still preparing, or stopping).
   */
  readonly policies: () => AcceptIncomingOptions | undefined;
  /** A connection through acceptIncoming: run PeerWire over it. */
  readonly onAccepted: (connection: IncomingConnection) => void;
  /** `from` (host:port) was refused for `reason`; its socket is already destroyed. */
  readonly onRefused: (from: string, reason: string) => void;
  /**
   * The bound on handshakes in progress, shared by TCP and µTP (a new
   * HandshakeBudget with its defaults when omitted; pass one to read its stats).
   */
  readonly handshakes?: HandshakeBudget | undefined;
}

/** The arrival hooks of DualServer (`onWire`, `onEncrypted`) and UtpEndpoint (`onConnection`). */
export interface IncomingHandlers {
  readonly onWire: (socket: Socket, initial: Buffer) => void;
  readonly onEncrypted: (socket: Socket, initial: Buffer) => void;
  readonly onConnection: (stream: UtpStream) => void;
}

/**
 * The arrival hooks for DualServer and UtpEndpoint, all three through
 * acceptIncoming: owner and peer each had the same three thin adapters
 * (TCP plaintext, TCP MSE, µTP) around it, and the same refusal path.
 *
 * @example
 * const incoming = incomingHandlers({ policies, onAccepted, onRefused });
 * new DualServer({ ...incoming, onHttp, ... }); new UtpEndpoint({ onConnection: incoming.onConnection, ... });
 */
export function incomingHandlers(options: IncomingHandlersOptions): IncomingHandlers {
  const budget = options.handshakes ?? new HandshakeBudget();
  const accept = (socket: WireSocket, start: IncomingStart) => {
    const policies = options.policies();
    if (!policies) {
      socket.destroy();
      return;
    }
    const from = formatEndpoint(socket.remoteAddress, socket.remotePort ?? 0);
    let evicted: string | undefined;
    const slot = budget.open(socket.remoteAddress, () => {
      evicted = `handshake slots full (limit ${budget.maxHandshakes}): the oldest in progress was cut`;
      socket.destroy();
    });
    if (typeof slot === 'string') {
      socket.destroy();
      options.onRefused(from, slot);
      return;
    }
    acceptIncoming(socket, start, policies).then(
      (connection) => {
        slot.release();
        options.onAccepted(connection);
      },
      (err: Error) => {
        slot.release();
        options.onRefused(from, evicted ?? err.message);
      },
    );
  };
  return {
    onWire: (socket, initial) => accept(socket, { transport: 'tcp', initial, kind: 'plaintext' }),
    onEncrypted: (socket, initial) => accept(socket, { transport: 'tcp', initial, kind: 'mse' }),
    onConnection: (stream) => accept(stream, { transport: 'utp' }),
  };
}
