import type { ManualClock, Timer } from '@swarmdrop/protocol';

/**
 * The modelled network: hosts with an upload and a download capacity and
 * an access latency, and one FIFO flow of messages per direction of each
 * connection.
 *
 * Sharing: a flow with payload queued is active; it gets
 * min(up(a) / active flows out of a, down(b) / active flows into b). That
 * is an equal share at each end, the way TCP flows share a bottleneck, but
 * not full max-min fairness across the network: what a flow leaves unused
 * because the other end limits it is not handed to the host's other flows.
 * Rates are recomputed for the flows of a host whenever one of its flows
 * starts or stops, and each flow's head message is re-timed.
 *
 * A control message (anything but a piece) sent on an idle flow goes at the
 * link's full speed without joining the share: its few bytes are charged in
 * the statistics but take no capacity from the pieces (a blind spot of under
 * 1% at 100 KiB pieces). On a busy flow it waits its turn behind the pieces
 * queued before it, as in a TCP stream. Delivery is transmission plus the
 * one-way latency of the link (the sum of both hosts' access latencies), and
 * never overtakes an earlier message of the same flow.
 */

export interface HostSpec {
  /** Bytes per second. */
  readonly up: number;
  readonly down: number;
  /** One-way access latency in ms. */
  readonly latencyMs: number;
}

export class Host {
  readonly id: number;
  readonly spec: HostSpec;
  readonly out = new Set<Flow>();
  readonly in = new Set<Flow>();
  alive = true;
  bytesUp = 0;
  bytesDown = 0;
  payloadUp = 0;
  /** Block bytes of the pieces it sent. */
  pieceBytesUp = 0;

  constructor(id: number, spec: HostSpec) {
    this.id = id;
    this.spec = spec;
  }
}

interface Queued {
  readonly bytes: number;
  readonly payload: boolean;
  readonly deliver: () => void;
}

/** One direction of one connection: from `from` to `to`. */
export class Flow {
  readonly from: Host;
  readonly to: Host;
  readonly queue: Queued[] = [];
  /** Bytes queued, the head's untransmitted part included. */
  queuedBytes = 0;
  headLeft = 0;
  rate = 0;
  lastAt = 0;
  timer: Timer | undefined;
  lastDeliverAt = 0;
  closed = false;
  /** Called when a message finished transmission (the socket buffer drained by that much). */
  onProgress: () => void = () => {};

  constructor(from: Host, to: Host) {
    this.from = from;
    this.to = to;
  }

  get active(): boolean {
    return this.queue.length > 0;
  }
}

export class Network {
  readonly clock: ManualClock;
  readonly hosts: Host[] = [];

  constructor(clock: ManualClock) {
    this.clock = clock;
  }

  addHost(spec: HostSpec): Host {
    const host = new Host(this.hosts.length, spec);
    this.hosts.push(host);
    return host;
  }

  latency(a: Host, b: Host): number {
    return a.spec.latencyMs + b.spec.latencyMs;
  }

  flow(from: Host, to: Host): Flow {
    return new Flow(from, to);
  }

  /** Sends `bytes` on `flow`; `deliver` runs at the far end when they arrive. */
  send(flow: Flow, bytes: number, payload: boolean, deliver: () => void): void {
    if (flow.closed) return;
    flow.from.bytesUp += bytes;
    if (payload) flow.from.payloadUp += bytes;
    if (!payload && !flow.active) {
      const speed = Math.min(flow.from.spec.up, flow.to.spec.down);
      this.schedule(flow, this.clock.now() + (bytes / speed) * 1000, bytes, deliver);
      flow.onProgress();
      return;
    }
    const wasActive = flow.active;
    flow.queue.push({ bytes, payload, deliver });
    flow.queuedBytes += bytes;
    if (!wasActive) {
      flow.headLeft = bytes;
      flow.lastAt = this.clock.now();
      flow.from.out.add(flow);
      flow.to.in.add(flow);
      this.reshare(flow.from, flow.to);
    }
  }

  /** Ends a flow: what is queued is lost, and its share goes back to the others. */
  close(flow: Flow): void {
    if (flow.closed) return;
    flow.closed = true;
    flow.timer?.cancel();
    flow.timer = undefined;
    flow.queue.length = 0;
    flow.queuedBytes = 0;
    if (flow.from.out.delete(flow) && flow.to.in.delete(flow)) this.reshare(flow.from, flow.to);
    flow.onProgress();
  }

  private schedule(flow: Flow, sentAt: number, bytes: number, deliver: () => void): void {
    const at = Math.max(sentAt + this.latency(flow.from, flow.to), flow.lastDeliverAt);
    flow.lastDeliverAt = at;
    this.clock.setTimeout(() => {
      if (flow.closed) return;
      flow.to.bytesDown += bytes;
      deliver();
    }, at - this.clock.now());
  }

  /** Settles the progress of every flow out of `a` and into `b`, then gives them their new rates. */
  private reshare(a: Host, b: Host): void {
    const now = this.clock.now();
    const touched = new Set<Flow>();
    for (const f of a.out) touched.add(f);
    for (const f of b.in) touched.add(f);
    for (const f of touched) {
      f.headLeft -= (f.rate * (now - f.lastAt)) / 1000;
      f.lastAt = now;
    }
    for (const f of touched) this.retime(f);
  }

  private retime(f: Flow): void {
    f.timer?.cancel();
    f.rate = Math.min(f.from.spec.up / f.from.out.size, f.to.spec.down / f.to.in.size);
    const left = Math.max(0, f.headLeft);
    f.timer = this.clock.setTimeout(() => this.headDone(f), (left / f.rate) * 1000);
  }

  private headDone(f: Flow): void {
    f.timer = undefined;
    const now = this.clock.now();
    const head = f.queue.shift()!;
    f.queuedBytes -= head.bytes;
    this.schedule(f, now, head.bytes, head.deliver);
    const next = f.queue[0];
    if (next) {
      f.headLeft = next.bytes;
      f.lastAt = now;
      this.retime(f);
    } else {
      f.from.out.delete(f);
      f.to.in.delete(f);
      this.reshare(f.from, f.to);
    }
    f.onProgress();
  }
}
