import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { execa } from 'execa';

/** One simulated machine: a network namespace with one interface on the lab's LAN. */
export interface LabHost {
  readonly name: string;
  /** The namespace (`ip netns exec <ns> …`). */
  readonly ns: string;
  readonly ipv4: string;
  readonly ipv6: string;
}

/** Token bucket depth of `shapeUpload`: a few full-size frames, so the rate holds on a 100 ms scale. */
export const DEFAULT_TBF_BURST_BYTES = 32 * 1024;
/** How long a packet may wait in `shapeUpload`'s queue before tbf drops it. */
export const DEFAULT_TBF_LATENCY_MS = 50;

export interface UploadShape {
  /** Token bucket depth, bytes (default DEFAULT_TBF_BURST_BYTES). */
  readonly burstBytes?: number;
  /** Queue length, as time at the shaped rate (default DEFAULT_TBF_LATENCY_MS). */
  readonly latencyMs?: number;
}

/** The lab's LAN: 10.77.0.0/24 and fd00::/64, private to the lab's namespaces. */
export const LAB_IPV4_PREFIX = '10.77.0.';
export const LAB_IPV6_PREFIX = 'fd00::';

/**
 * Why a namespace lab cannot be built here, or undefined when it can: it
 * needs root (CAP_NET_ADMIN and /run/netns) and iproute2's `ip`.
 */
export function labUnavailableReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root to create network namespaces';
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
  } catch {
    return 'needs iproute2 (`ip`)';
  }
  return undefined;
}

/** As labUnavailableReason, for a lab whose uploads are shaped: also needs `tc`. */
export function shapedLabUnavailableReason(): string | undefined {
  const reason = labUnavailableReason();
  if (reason) return reason;
  try {
    execFileSync('tc', ['-V'], { stdio: 'ignore' });
  } catch {
    return 'needs iproute2 (`tc`)';
  }
  return undefined;
}

async function ip(...args: string[]): Promise<void> {
  const result = await execa('ip', args, { reject: false });
  if (result.exitCode !== 0)
    throw new Error(`ip ${args.join(' ')} failed: ${result.stderr.trim() || result.exitCode}`);
}

/**
 * Hosts on one Ethernet segment, each in its own network namespace: a
 * switch namespace holds a bridge, and every host has a veth pair with
 * `eth0` on its side and a bridge port on the switch's. Both veth ends are
 * created directly inside their namespaces, so nothing is added to the
 * machine's own namespace, and names are unique per lab (`sd<hex>-…`) so
 * labs of concurrent runs never meet. `close()` deletes every namespace the
 * lab made, which removes the veths and the bridge with them; call it even
 * when the test fails (afterAll), after stopping the processes inside.
 */
export class NetnsLab {
  readonly id: string;
  readonly hosts = new Map<string, LabHost>();
  private readonly namespaces: string[] = [];
  /** Each host's port on the switch's bridge. */
  private readonly ports = new Map<string, string>();
  private closed = false;
  /** The build under way (create); close() lets it stop before removing what it made. */
  private building: Promise<void> | undefined;

  private constructor(id: string) {
    this.id = id;
  }

  get switchNs(): string {
    return `${this.id}-sw`;
  }

  /**
   * Builds the lab; on any failure removes what it made and rethrows.
   * `onCreated` receives the lab before its first namespace exists, so that
   * whoever must clean up on Ctrl-C can `close()` it even mid-build: close
   * then stops the build and removes what it had made.
   */
  static async create(
    hostNames: readonly string[],
    hooks: { onCreated?: (lab: NetnsLab) => void } = {},
  ): Promise<NetnsLab> {
    if (hostNames.length > 200) throw new Error('a lab has at most 200 hosts');
    const lab = new NetnsLab(`sd${randomBytes(4).toString('hex')}`);
    hooks.onCreated?.(lab);
    lab.building = lab.build(hostNames);
    try {
      await lab.building;
    } catch (err) {
      await lab.close();
      throw err;
    }
    return lab;
  }

  private async build(hostNames: readonly string[]): Promise<void> {
    await this.addNamespace(this.switchNs);
    await ip('-n', this.switchNs, 'link', 'add', 'br0', 'type', 'bridge', 'forward_delay', '0');
    // Snooping would hold back the multicast that IPv6 neighbour discovery needs
    // until a querier speaks; a test LAN has none.
    await ip('-n', this.switchNs, 'link', 'set', 'br0', 'type', 'bridge', 'mcast_snooping', '0');
    await ip('-n', this.switchNs, 'link', 'set', 'br0', 'up');
    for (const [i, name] of hostNames.entries()) await this.addHost(name, i + 1);
  }

  host(name: string): LabHost {
    const host = this.hosts.get(name);
    if (!host) throw new Error(`no lab host "${name}"`);
    return host;
  }

  /** The prefix that runs a program inside host `name`'s namespace. */
  exec(name: string): string[] {
    return ['ip', 'netns', 'exec', this.host(name).ns];
  }

  private async addNamespace(ns: string): Promise<void> {
    if (this.closed) throw new Error(`lab ${this.id} closed while it was being built`);
    await ip('netns', 'add', ns);
    this.namespaces.push(ns);
    await ip('-n', ns, 'link', 'set', 'lo', 'up');
  }

  private async addHost(name: string, index: number): Promise<void> {
    const ns = `${this.id}-${name}`;
    await this.addNamespace(ns);
    const port = `p${index}`;
    await ip(
      'link',
      'add',
      'eth0',
      'netns',
      ns,
      'type',
      'veth',
      'peer',
      'name',
      port,
      'netns',
      this.switchNs,
    );
    await ip('-n', this.switchNs, 'link', 'set', port, 'master', 'br0', 'up');
    const ipv4 = `${LAB_IPV4_PREFIX}${index}`;
    const ipv6 = `${LAB_IPV6_PREFIX}${index.toString(16)}`;
    await ip('-n', ns, 'addr', 'add', `${ipv4}/24`, 'dev', 'eth0');
    // nodad: usable at once, instead of "tentative" for a second or two of duplicate detection.
    await ip('-n', ns, '-6', 'addr', 'add', `${ipv6}/64`, 'dev', 'eth0', 'nodad');
    await ip('-n', ns, 'link', 'set', 'eth0', 'up');
    this.hosts.set(name, { name, ns, ipv4, ipv6 });
    this.ports.set(name, port);
  }

  /**
   * Limits host `name`'s upload (its eth0 egress) to `rateBitsPerSecond`
   * with a token bucket (`tc qdisc … tbf`). `netem` is not available on
   * every kernel this runs on; tbf is. The queue behind the bucket holds
   * `latencyMs` of traffic at that rate: what a home router's upload queue
   * does, and what a request or `have` waits behind on a full link.
   */
  async shapeUpload(
    name: string,
    rateBitsPerSecond: number,
    shape: UploadShape = {},
  ): Promise<void> {
    await this.tbf(this.host(name).ns, 'eth0', rateBitsPerSecond, shape, name);
  }

  /**
   * Limits what host `name` receives: a tbf on the switch's port towards it.
   * The queue is then outside every sender's kernel. A tbf on a sender's own
   * eth0 is also where TCP Small Queues count that socket's bytes, so how
   * much of that queue a local TCP sender holds is up to its kernel, not the
   * link; a home uplink's queue is in the router, not in the sender.
   */
  async shapeDownload(
    name: string,
    rateBitsPerSecond: number,
    shape: UploadShape = {},
  ): Promise<void> {
    const port = this.ports.get(name);
    if (port === undefined) throw new Error(`no lab host "${name}"`);
    await this.tbf(this.switchNs, port, rateBitsPerSecond, shape, `${name}'s download`);
  }

  private async tbf(
    ns: string,
    dev: string,
    rateBitsPerSecond: number,
    shape: UploadShape,
    what: string,
  ): Promise<void> {
    if (!Number.isFinite(rateBitsPerSecond) || rateBitsPerSecond < 8_000)
      throw new Error(`upload rate must be at least 8000 bit/s, got ${rateBitsPerSecond}`);
    const burstBytes = shape.burstBytes ?? DEFAULT_TBF_BURST_BYTES;
    const latencyMs = shape.latencyMs ?? DEFAULT_TBF_LATENCY_MS;
    const result = await execa(
      'tc',
      [
        '-n',
        ns,
        'qdisc',
        'replace',
        'dev',
        dev,
        'root',
        'tbf',
        'rate',
        `${Math.round(rateBitsPerSecond)}bit`,
        'burst',
        String(burstBytes),
        'latency',
        `${latencyMs}ms`,
      ],
      { reject: false },
    );
    if (result.exitCode !== 0)
      throw new Error(`tc tbf on ${what} failed: ${result.stderr.trim() || result.exitCode}`);
  }

  /** Deletes every namespace this lab created (their veths and bridge go with them). Safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // After this, the build adds no namespace: the list below is complete.
    await this.building?.catch(() => undefined);
    const failures: string[] = [];
    for (const ns of this.namespaces.reverse()) {
      const result = await execa('ip', ['netns', 'del', ns], { reject: false });
      if (result.exitCode !== 0) failures.push(`${ns}: ${result.stderr.trim()}`);
    }
    if (failures.length > 0) throw new Error(`could not remove namespaces: ${failures.join('; ')}`);
  }
}

/** The namespaces whose name starts with `prefix` (to check a lab left nothing behind). */
export async function namespacesNamed(prefix: string): Promise<string[]> {
  const { stdout } = await execa('ip', ['netns', 'list']);
  return stdout
    .split('\n')
    .map((line) => line.split(' ')[0]!)
    .filter((ns) => ns.startsWith(prefix));
}
