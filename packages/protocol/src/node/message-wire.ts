import type { SwarmdropError } from '../errors.js';
import type { Handshake, Message } from '../wire/messages.js';

export interface WireClose {
  /** One line for the log: why the connection ended. */
  readonly reason: string;
  /** Set when the remote broke the protocol. */
  readonly error?: SwarmdropError | Error;
}

/**
 * What a Connection needs of the wire under it: whole messages both ways,
 * the remote's handshake, back-pressure, and one way to end. `PeerWire` is
 * the real one (a socket, framing, timers, limits); the simulator's carries
 * `Message` objects over a modelled network, so both run this same
 * Connection, and the engine above it cannot tell them apart.
 */
export interface MessageWire {
  /** How logs and the sessions name the remote: its listening address when known. */
  readonly label: string;
  readonly isClosed: boolean;
  /** The remote's handshake, once it arrived. */
  readonly remoteHandshake: Handshake | undefined;
  /** Called once with the remote's handshake, before any message that follows it. */
  onHandshake: (handshake: Handshake) => void;
  /** Called for each message after the handshake (a piece's block is valid during the call only). */
  onMessage: (message: Message) => void;
  /** Resolves once, when the connection has ended. */
  readonly closed: Promise<WireClose>;
  /** True when the next piece must wait for `drained()`. */
  readonly needsDrain: boolean;
  send(message: Message): boolean;
  sendPiece(index: number, begin: number, block: Uint8Array): boolean;
  drained(): Promise<void>;
  batch(fn: () => void): void;
  close(reason: string, error?: SwarmdropError | Error): void;
}
