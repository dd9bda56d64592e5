import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  formatEndpoint,
  PROCESS_REORDER_BUDGET,
  type TimerClock,
  type TransportPolicy,
} from '@swarmdrop/protocol';
import {
  createWireLimits,
  dateClock,
  UtpEndpoint,
  type WireLimits,
} from '@swarmdrop/protocol/node';
import { DASHBOARD_REPORT_PATH, DashboardHttp } from './dashboard/dashboard-http.js';
import type { DashboardModel } from './dashboard/model.js';
import { DomainEvents, subscribeLog } from './events.js';
import type { LogFormat } from './log/log.js';
import { createLogger, type Logger } from './log/logger.js';
import { createMetrics, type MetricsOptions, type ServiceMetrics, sendMetrics } from './metrics.js';
import {
  type AcceptIncomingOptions,
  type IncomingConnection,
  incomingHandlers,
} from './port/accept-incoming.js';
import { DualServer } from './port/dual-server.js';
import { HandshakeBudget } from './port/handshake-budget.js';
import { carriesToken, httpRouter, sendJson, sendText, sendUnauthorized } from './port/http.js';

/** What a service runs its shell with: its port, its caps, its log, its token. */
export interface ServiceHostOptions {
  readonly role: 'owner' | 'peer';
  readonly host: string | undefined;
  readonly port: number;
  /** The option a port error names (DualServer's default when omitted). */
  readonly portField?: string | undefined;
  readonly maxConnections: number;
  readonly maxConnectionsPerAddress: number;
  /** The deadline for a first byte and a whole HTTP request (DualServer's defaults when omitted). */
  readonly requestTimeoutMs?: number | undefined;
  /** `tcp` opens no µTP endpoint. */
  readonly transport: TransportPolicy;
  readonly logFormat: LogFormat;
  /** A private swarm's token: HTTP's /status, /metrics and the dashboard need it. */
  readonly token: string | undefined;
  readonly uploadLimitBytesPerSecond?: number | undefined;
  readonly downloadLimitBytesPerSecond?: number | undefined;
  /** The 503 text HTTP gets until the service is attached (it is still preparing). */
  readonly startingText: string;
}

export interface ServiceHostComponents {
  /** The console log (one made from logFormat, stamped from `clock`, by default). */
  readonly logger?: Logger | undefined;
  /** Where the service publishes its domain events (a new one by default). */
  readonly events?: DomainEvents | undefined;
  readonly clock: TimerClock;
}

/** The gauges a scrape reads from the service (it may not exist yet: read late). */
export type ServiceGauges = Pick<MetricsOptions, 'chunksHeld' | 'trackerPeers'>;

/** What a service gives its host once it can take connections and requests. */
export interface HostedService {
  /** How an incoming BitTorrent connection is taken now; undefined closes it at once (starting, stopping). */
  incomingPolicies(): AcceptIncomingOptions | undefined;
  /** A connection through its handshake: the service runs PeerWire over it. */
  acceptWire(connection: IncomingConnection): void;
  /** Its own HTTP routes, tried first; true when it answered. */
  route(path: string, req: IncomingMessage, res: ServerResponse, authorized: boolean): boolean;
  /** `/status` for a token holder (or anyone, in a public swarm). */
  status(): Record<string, unknown>;
  /** `/status` without the token of a private swarm: counts only. */
  publicStatus(): Record<string, unknown>;
  /**
   * An incoming connection refused during its handshake; without this hook the
   * host publishes `connection-refused` (the peer drops the ones its own
   * stopping cut short).
   */
  refused?(from: string, reason: string): void;
}

/** What `close()` asks of the service, in the shell's one close order. */
export interface ServiceClose {
  /** Synchronous, before any socket closes: stop starting things, close connections. */
  stop(): void;
  /** After the port is closed: release the store (a write or merge in progress finishes first). */
  release(): Promise<void>;
}

/**
 * The shell both services run, written once: the console log, metrics and
 * the dashboard as subscribers to one DomainEvents; the port (DualServer:
 * BitTorrent, MSE and HTTP told apart by the first byte) and its µTP twin,
 * both through acceptIncoming with one handshake budget; HTTP routing
 * (`/status`, `/metrics`, the dashboard, a service's own routes); the wire's
 * rate limits; and the close order.
 *
 * Lifecycle: `open` binds the port (so a port in use fails before any long
 * work) and starts the log and metrics, so that refusals while the service
 * prepares count; until `attach`, HTTP gets 503 and BitTorrent connections
 * are closed at once. `close` runs the one close order.
 */
export class ServiceHost {
  readonly options: ServiceHostOptions;
  readonly events: DomainEvents;
  /** What `GET /metrics` serves: a subscriber to `events`. */
  readonly metrics: ServiceMetrics;
  readonly log: Logger;
  readonly clock: TimerClock;
  /** One bucket per direction for every connection (--upload-limit, --download-limit). */
  readonly limits: WireLimits;
  /** Incoming handshakes in progress, TCP and µTP (handshake-budget.ts). */
  readonly handshakes = new HandshakeBudget();
  readonly server: DualServer;
  /** The port bound, once `open` resolved. */
  port = 0;
  #utp: UtpEndpoint | undefined;
  #service: HostedService | undefined;
  #dashboard: DashboardHttp | undefined;
  #closing: Promise<void> | undefined;

  private constructor(
    options: ServiceHostOptions,
    components: ServiceHostComponents,
    gauges: ServiceGauges,
  ) {
    this.options = options;
    this.clock = components.clock;
    this.log =
      components.logger ??
      createLogger({
        role: options.role,
        port: options.port,
        format: options.logFormat,
        clock: dateClock(components.clock),
      });
    this.events = components.events ?? new DomainEvents();
    subscribeLog(this.events, this.log);
    this.metrics = createMetrics(this.events, {
      ...gauges,
      utpMalformed: () => this.#utp?.malformed ?? 0,
      utpReorderBytes: () => PROCESS_REORDER_BUDGET.held,
    });
    this.limits = createWireLimits({ ...options, clock: components.clock });
    const incoming = incomingHandlers({
      handshakes: this.handshakes,
      policies: () => this.#service?.incomingPolicies(),
      onAccepted: (connection) => this.#service?.acceptWire(connection),
      onRefused: (from, reason) => {
        if (this.#service?.refused) this.#service.refused(from, reason);
        else this.events.publish('connection-refused', { from, reason });
      },
    });
    this.incoming = incoming;
    this.server = new DualServer({
      host: options.host,
      port: options.port,
      ...(options.portField === undefined ? {} : { portField: options.portField }),
      maxConnections: options.maxConnections,
      maxConnectionsPerAddress: options.maxConnectionsPerAddress,
      ...(options.requestTimeoutMs === undefined
        ? {}
        : {
            firstByteTimeoutMs: options.requestTimeoutMs,
            requestTimeoutMs: options.requestTimeoutMs,
          }),
      onWire: incoming.onWire,
      onEncrypted: incoming.onEncrypted,
      onHttp: (req, res) => {
        if (this.#service) this.handleHttp(req, res);
        else sendText(res, 503, options.startingText);
      },
      onRefused: (from, reason) => this.events.publish('connection-refused', { from, reason }),
    });
  }

  private readonly incoming: ReturnType<typeof incomingHandlers>;

  /**
   * Starts the log and metrics (`gauges` are read at each scrape) and binds
   * the port; `listenUtp` then opens µTP on the same port number.
   */
  static async open(
    options: ServiceHostOptions,
    components: ServiceHostComponents,
    gauges: ServiceGauges = {},
  ): Promise<ServiceHost> {
    const host = new ServiceHost(options, components, gauges);
    const address: AddressInfo = await host.server.listen();
    host.port = address.port;
    host.log.setPort(address.port);
    return host;
  }

  /**
   * Opens µTP on the port's number, unless `transport` is tcp. On failure
   * the caller closes (the owner abandons its start, the peer closes).
   */
  async listenUtp(): Promise<void> {
    const options = this.options;
    if (options.transport === 'tcp' || this.#utp) return;
    this.#utp = new UtpEndpoint({
      host: options.host,
      port: this.port,
      ...(options.portField === undefined ? {} : { portField: options.portField }),
      maxConnections: options.maxConnections,
      maxConnectionsPerAddress: options.maxConnectionsPerAddress,
      onConnection: this.incoming.onConnection,
      onRefused: (from, reason) => this.events.publish('connection-refused', { from, reason }),
    });
    await this.#utp.listen();
  }

  /** The µTP endpoint (the dialers send from it too), unless transport is tcp. */
  get utp(): UtpEndpoint | undefined {
    return this.#utp;
  }

  /** The address the port is bound to. */
  get address(): AddressInfo {
    return this.server.address;
  }

  /** `host:port` as this process calls itself on the dashboard. */
  selfId(publicHost: string | undefined): string {
    return formatEndpoint(publicHost ?? this.options.host ?? '127.0.0.1', this.port);
  }

  /**
   * Serves `model` at `/` and `/dashboard/*` (the token guards it in a private
   * swarm). Given `announced` (the owner), it also takes peers' reports.
   */
  serveDashboard(
    model: DashboardModel,
    title: string,
    announced?: (host: string, port: number) => boolean,
  ): void {
    this.#dashboard = new DashboardHttp({
      model,
      clock: this.clock,
      token: this.options.token,
      title,
      holdOpen: (res) => this.server.holdOpen(res),
      ...(announced ? { announced } : {}),
    });
    if (announced) this.postPaths.add(DASHBOARD_REPORT_PATH);
  }

  /** From now on the port's connections and requests go to `service`. */
  attach(service: HostedService): void {
    this.#service = service;
  }

  /**
   * The one close order: `stopping` is published; the dashboard's streams
   * end; the service stops (closing its connections); the rate limiters,
   * µTP and the port close; the service releases its store; last the log is
   * flushed, since it is written asynchronously and the bin exits right after.
   */
  close(service: ServiceClose): Promise<void> {
    this.#closing ??= (async () => {
      this.events.publish('stopping', {});
      this.#dashboard?.close();
      service.stop();
      this.limits.upload?.close();
      this.limits.download?.close();
      await this.#utp?.close();
      await this.server.close();
      await service.release();
      await this.log.flush();
    })();
    return this.#closing;
  }

  /** A start that failed before the service existed: metrics stop, the ports close. */
  async abandon(): Promise<void> {
    this.metrics.stop();
    await this.#utp?.close();
    await this.server.close();
  }

  /** A request that failed in a handler: one `error` line naming it (and, for the owner, its source). */
  private httpError(err: Error, req: IncomingMessage): void {
    this.events.publish('error', {
      ...(this.options.role === 'owner'
        ? { from: formatEndpoint(req.socket.remoteAddress, req.socket.remotePort ?? 0) }
        : {}),
      request: `${req.method} ${(req.url ?? '').slice(0, 200)}`,
      reason: err.message,
    });
  }

  /** POST is taken only where a route expects it (the owner's dashboard reports). */
  private readonly postPaths = new Set<string>();

  /** HTTP on the port: a bad target or a handler bug costs one request, never the process. */
  private readonly handleHttp = httpRouter(
    (path, req, res) => this.route(path, req, res),
    (err, req) => this.httpError(err, req),
    this.postPaths,
  );

  private route(path: string, req: IncomingMessage, res: ServerResponse): void {
    const service = this.#service!;
    const authorized = carriesToken(req, this.options.token);
    if (service.route(path, req, res, authorized)) return;
    if (path === '/status') {
      sendJson(req, res, authorized ? service.status() : service.publicStatus());
      return;
    }
    if (path === '/metrics') {
      if (authorized)
        sendMetrics(req, res, this.metrics.registry, (err) => this.httpError(err, req));
      else sendUnauthorized(res);
      return;
    }
    if (this.#dashboard?.handle(path, req, res)) return;
    sendText(res, 404, `no such path: ${path.slice(0, 200)}\n`);
  }
}
