import {
  decodePex,
  encodePex,
  formatEndpoint,
  type PexMessage,
  type PexPeer,
  TypedEmitter,
  WireError,
} from '@swarmdrop/protocol';
import type { Timer, TimerClock } from '../clock.js';
import {
  PEX_MAX_RECEIVED_PER_INTERVAL,
  PexDialBudget,
  type PexDialBudgetOptions,
  PexFloodGuard,
  PexSender,
} from './pex-policy.js';

/** How often the exchange looks for messages that fell due and for slots to dial into. */
export const PEX_ROUND_MS = 5_000;

/** What the exchange needs of one connection that offered ut_pex. */
export interface PexRemote {
  /**
   * Whom its dials count against (the budget's per-source bound): its host,
   * an IPv6 /64 as one (sourceKey), so that reconnecting does not reset it.
   */
  readonly source: string;
  /** Sends one ut_pex payload; false when the socket is full (the message is still queued). */
  send(payload: Buffer): boolean;
  /** Closes this one connection after a protocol violation (a bad or flooding message). */
  fail(error: WireError): void;
}

/** The session's side: whom we would list, whom we hold, how many slots are free, how to dial. */
export interface SwarmPexComponents {
  readonly clock: TimerClock;
  /** The peers we would list now, by label: live links with a known listening address. */
  readonly listed: () => ReadonlyMap<string, PexPeer>;
  /** True for a label connected, being dialled or ourselves: told of it, we dial nothing. */
  readonly known: (label: string) => boolean;
  /** Connection slots free for a dial now. */
  readonly freeSlots: () => number;
  /** Dials an address learnt from `source` once (a failure is not retried). */
  readonly dial: (host: string, port: number, source: string) => void;
}

export type SwarmPexEvents = {
  /** A PEX message went to `to`. */
  sent: (to: string, message: PexMessage) => void;
  /** A PEX message from `from` was read; `kept` of its added peers wait for a dial. */
  received: (from: string, message: PexMessage, kept: number) => void;
  /** An address learnt from `source` is being dialled. */
  dialling: (label: string, source: string) => void;
};

interface Exchange {
  readonly remote: PexRemote;
  readonly sender: PexSender;
  readonly guard: PexFloodGuard;
}

/**
 * Swarm mode's peer exchange (BEP 11) over the connections that offered
 * `ut_pex`: every PEX_ROUND_MS, each of them gets what changed in whom we
 * hold (PexSender: the first message lists them all, then at most 50 added
 * and 50 dropped, at most once a minute); what they tell us is checked
 * (decodePex, PexFloodGuard: a bad or flooding message closes that one
 * connection) and dialled within the PexDialBudget when slots are free.
 * A private swarm never creates one (BEP 27).
 */
export class SwarmPex extends TypedEmitter<SwarmPexEvents> {
  private readonly components: SwarmPexComponents;
  private readonly budget: PexDialBudget;
  private readonly exchanges = new Map<string, Exchange>();
  private timer: Timer | undefined;
  private closed = false;

  constructor(components: SwarmPexComponents, budget: PexDialBudgetOptions = {}) {
    super();
    this.components = components;
    this.budget = new PexDialBudget(components.clock, budget);
  }

  /** Addresses learnt and waiting for a slot. */
  get waiting(): number {
    return this.budget.size;
  }

  /**
   * `label` offered ut_pex: it gets our first message now (if we hold anyone
   * to list), then the rounds. A new connection under a label replaces the
   * old one's exchange (a duplicate kept in its place starts afresh); the
   * same one again (an updated extended handshake) changes nothing.
   */
  add(label: string, remote: PexRemote): void {
    if (this.closed || this.exchanges.get(label)?.remote === remote) return;
    const { clock } = this.components;
    this.exchanges.set(label, {
      remote,
      sender: new PexSender(clock),
      guard: new PexFloodGuard(clock),
    });
    this.timer ??= clock.setInterval(() => this.round(), PEX_ROUND_MS);
    this.sendTo(label);
  }

  /**
   * `label`'s connection is gone (only `remote`'s, when given: a successor
   * under the same label keeps its own): nothing more is sent to it. What it
   * told us may still be dialled.
   */
  remove(label: string, remote?: PexRemote): void {
    const exchange = this.exchanges.get(label);
    if (!exchange || (remote !== undefined && exchange.remote !== remote)) return;
    this.exchanges.delete(label);
    if (this.exchanges.size === 0) {
      this.timer?.cancel();
      this.timer = undefined;
    }
  }

  /**
   * A ut_pex payload from `label`. A message that does not decode, or one
   * more than the flood guard allows, closes that connection (fail closed,
   * as the rest of the wire); from a connection that never offered ut_pex
   * (or after close), or from `remote` when another connection holds the
   * label now, it is ignored.
   */
  receive(label: string, payload: Uint8Array, remote?: PexRemote): void {
    const exchange = this.exchanges.get(label);
    if (this.closed || !exchange || (remote !== undefined && exchange.remote !== remote)) return;
    if (!exchange.guard.accept()) {
      exchange.remote.fail(
        new WireError(
          'ERR_PEX_FLOOD',
          `ut_pex: more than ${PEX_MAX_RECEIVED_PER_INTERVAL} messages a minute`,
        ),
      );
      return;
    }
    let message: PexMessage;
    try {
      message = decodePex(payload);
    } catch (err) {
      exchange.remote.fail(err as WireError);
      return;
    }
    const kept = this.budget.learn(exchange.remote.source, message, this.components.known);
    this.emit('received', label, message, kept);
    this.dialFree();
  }

  /** Dials what waits, as far as free slots and the budget allow (also after a connection closed). */
  dialFree(): void {
    if (this.closed) return;
    const slots = this.components.freeSlots();
    if (slots <= 0 || this.budget.size === 0) return;
    for (const { host, port, source } of this.budget.take(slots, this.components.known)) {
      this.emit('dialling', formatEndpoint(host, port), source);
      this.components.dial(host, port, source);
    }
  }

  /** Stops the rounds; nothing more is sent, read or dialled. */
  close(): void {
    this.closed = true;
    this.timer?.cancel();
    this.timer = undefined;
    this.exchanges.clear();
  }

  private round(): void {
    if (this.closed) return;
    for (const label of this.exchanges.keys()) this.sendTo(label);
    this.dialFree();
  }

  private sendTo(label: string): void {
    const exchange = this.exchanges.get(label);
    if (!exchange?.sender.isDue()) return;
    const listed = new Map(this.components.listed());
    listed.delete(label);
    const message = exchange.sender.next(listed);
    if (!message) return;
    exchange.remote.send(encodePex(message));
    this.emit('sent', label, message);
  }
}
