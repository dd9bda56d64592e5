import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Timer, TimerClock } from '@swarmdrop/protocol';
import { formatEndpoint, sourceKey, unmapIPv4 } from '@swarmdrop/protocol';
import { carriesToken, sendBody, sendJson, sendText, sendUnauthorized } from '../port/http.js';
import {
  type DashboardModel,
  MAX_REPORT_BYTES,
  type PeerReport,
  parseReport,
  ReportError,
} from './model.js';

/** How often browsers get a delta: a chunk's arrival is not pushed on its own. */
export const DEFAULT_DASHBOARD_INTERVAL_MS = 500;
/**
 * Browsers (event streams) served at once. A newcomer past it ends the
 * stream of the longest-connected viewer (of the source address holding the
 * most streams): the page's EventSource reconnects on its own, and nobody,
 * however idle or however many, can hold every slot against a newcomer.
 */
export const DEFAULT_MAX_DASHBOARD_CLIENTS = 16;
/** A comment line this often keeps idle streams (and proxies) open. */
export const DASHBOARD_KEEPALIVE_MS = 15_000;
/** A browser that has not taken its data for this long is cut. */
export const DASHBOARD_STALL_MS = 30_000;
/** The path peers POST their reports to, on the owner. */
export const DASHBOARD_REPORT_PATH = '/dashboard/report';
/**
 * The owner's answer to a report says when to send the next (ms): every
 * second while a browser watches the owner's dashboard, every
 * DASHBOARD_REPORT_IDLE_MS otherwise. Reports feed only the dashboard, and
 * twenty peers reporting every second cost the owner, whose upload is the
 * swarm's bottleneck, a tenth of its CPU in bench:net.
 */
export const DASHBOARD_REPORT_HEADER = 'x-swarmdrop-report-ms';
export const DASHBOARD_REPORT_WATCHED_MS = 1_000;
export const DASHBOARD_REPORT_IDLE_MS = 5_000;

/** The page, script and style; compiled into the release bundles by scripts/bundle.mjs. */
export interface DashboardAssets {
  readonly html: string;
  readonly js: string;
  readonly css: string;
}

declare const SWARMDROP_DASHBOARD_ASSETS: DashboardAssets | undefined;

let assets: DashboardAssets | undefined;

/**
 * The dashboard's files: built into a release bundle, else read once from
 * the package's `dashboard/` folder (beside `src/` and `dist/`).
 */
export function dashboardAssets(): DashboardAssets {
  if (assets) return assets;
  if (typeof SWARMDROP_DASHBOARD_ASSETS === 'object' && SWARMDROP_DASHBOARD_ASSETS) {
    assets = SWARMDROP_DASHBOARD_ASSETS;
  } else {
    const read = (name: string) =>
      readFileSync(new URL(`../../dashboard/${name}`, import.meta.url), 'utf8');
    assets = { html: read('index.html'), js: read('dashboard.js'), css: read('dashboard.css') };
  }
  return assets;
}

export interface DashboardHttpOptions {
  readonly model: DashboardModel;
  readonly clock: TimerClock;
  /** With a token, the page, its state and its event stream need it (`?key=` or a Bearer header). */
  readonly token?: string | undefined;
  /** The page's title: what this process is. */
  readonly title: string;
  /** Lifts the server's request deadline for a long-lived stream (DualServer.holdOpen). */
  readonly holdOpen: (res: ServerResponse) => void;
  /**
   * Given (the owner): take peers' reports, each only for the address that
   * sent it and a port this says the tracker saw announced from that
   * address (in a private swarm, only announces with the token get there).
   */
  readonly announced?: ((host: string, port: number) => boolean) | undefined;
  readonly intervalMs?: number;
  readonly maxClients?: number;
}

interface Client {
  readonly res: ServerResponse;
  /** Its source address (an IPv6 /64), to find the address holding the most streams. */
  readonly source: string;
  /** Arrival order: the lowest has been watching longest. */
  readonly seq: number;
  /** When it last could not take a delta (its socket buffer was full); undefined while it keeps up. */
  behindSince: number | undefined;
}

/**
 * The dashboard over HTTP, on the service's own port: the page at `/`, its
 * script and style, `/dashboard/state` (the model's full state as JSON),
 * `/dashboard/events` (Server-Sent Events: one full state, then a delta every
 * `intervalMs` while anything changed), and on the owner the peers' reports.
 */
export class DashboardHttp {
  private readonly options: DashboardHttpOptions;
  private readonly clients = new Set<Client>();
  private nextSeq = 0;
  private flushTimer: Timer | undefined;
  private keepaliveTimer: Timer | undefined;

  constructor(options: DashboardHttpOptions) {
    const max = options.maxClients;
    if (max !== undefined && (!Number.isSafeInteger(max) || max < 1))
      throw new RangeError(`maxClients must be a whole number >= 1, got ${max}`);
    this.options = options;
  }

  /** Browsers connected now. */
  get clientCount(): number {
    return this.clients.size;
  }

  /** Answers `path` if it is the dashboard's; returns false otherwise. */
  handle(path: string, req: IncomingMessage, res: ServerResponse): boolean {
    const authorized = carriesToken(req, this.options.token);
    switch (path) {
      case '/':
      case '/index.html':
        if (!authorized) sendUnauthorized(res);
        else {
          const page = dashboardAssets().html.replaceAll(
            '{{title}}',
            escapeHtml(this.options.title),
          );
          sendBody(req, res, 'text/html; charset=utf-8', page, {
            'content-security-policy': "default-src 'self'; style-src 'self'; script-src 'self'",
          });
        }
        return true;
      // The script and style hold no swarm data, so they need no token.
      case '/dashboard.js':
        sendBody(req, res, 'text/javascript; charset=utf-8', dashboardAssets().js);
        return true;
      case '/favicon.ico':
        res.writeHead(204);
        res.end();
        return true;
      case '/dashboard.css':
        sendBody(req, res, 'text/css; charset=utf-8', dashboardAssets().css);
        return true;
      case '/dashboard/state':
        if (!authorized) sendUnauthorized(res);
        else sendJson(req, res, this.options.model.full());
        return true;
      case '/dashboard/events':
        if (!authorized) sendUnauthorized(res);
        else this.subscribe(req, res);
        return true;
      case DASHBOARD_REPORT_PATH:
        if (!this.options.announced) return false;
        if (req.method !== 'POST')
          sendText(res, 405, `${path} takes a POST of a peer's report\n`, { allow: 'POST' });
        else if (!authorized) sendUnauthorized(res);
        else this.report(req, res);
        return true;
      default:
        return false;
    }
  }

  /** Ends every stream and stops the timers. */
  close(): void {
    this.stopTimers();
    for (const client of this.clients) client.res.end();
    this.clients.clear();
  }

  private stopTimers(): void {
    this.flushTimer?.cancel();
    this.keepaliveTimer?.cancel();
    this.flushTimer = undefined;
    this.keepaliveTimer = undefined;
  }

  /**
   * The viewer that makes room for a newcomer at the cap: one that cannot
   * take its data first, else the longest-connected of the address with
   * the most streams (so one address's flood ends its own streams first).
   * Slots are never held for a fixed time instead: a stream is one-way, so
   * an idle attacker looks exactly like a tab left open on a quiet swarm,
   * and would simply reconnect when its time ran out.
   */
  private makeRoom(): boolean {
    const perSource = new Map<string, number>();
    for (const c of this.clients) perSource.set(c.source, (perSource.get(c.source) ?? 0) + 1);
    const streams = (c: Client) => perSource.get(c.source)!;
    /** True when `a` goes before `b`. */
    const before = (a: Client, b: Client) => {
      const aBehind = a.behindSince !== undefined;
      if (aBehind !== (b.behindSince !== undefined)) return aBehind;
      if (streams(a) !== streams(b)) return streams(a) > streams(b);
      return a.seq < b.seq;
    };
    let victim: Client | undefined;
    for (const c of this.clients) if (!victim || before(c, victim)) victim = c;
    if (!victim) return false;
    this.clients.delete(victim);
    // A clean end (the page reconnects), then the socket goes: it counts against
    // the port's caps. One that does not read would never see the end.
    const { res } = victim;
    if (victim.behindSince !== undefined) res.destroy();
    else res.end(() => res.destroy());
    return true;
  }

  private subscribe(req: IncomingMessage, res: ServerResponse): void {
    if (req.method !== 'HEAD') {
      const max = this.options.maxClients ?? DEFAULT_MAX_DASHBOARD_CLIENTS;
      while (this.clients.size >= max) if (!this.makeRoom()) break;
    }
    this.options.holdOpen(res);
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
    });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    if (this.flushTimer === undefined) {
      // Nobody watched: what piled up since the last delta is in the full state below.
      this.options.model.delta();
      this.flushTimer = this.options.clock.setInterval(
        () => this.flush(),
        this.options.intervalMs ?? DEFAULT_DASHBOARD_INTERVAL_MS,
      );
      this.keepaliveTimer = this.options.clock.setInterval(() => {
        for (const c of this.clients)
          if (c.behindSince === undefined) c.res.write(': keepalive\n\n');
      }, DASHBOARD_KEEPALIVE_MS);
    }
    const client: Client = {
      res,
      source: sourceKey(req.socket.remoteAddress),
      seq: this.nextSeq++,
      behindSince: undefined,
    };
    this.clients.add(client);
    res.write(`data: ${JSON.stringify(this.options.model.full())}\n\n`);
    res.on('drain', () => {
      if (client.behindSince === undefined) return;
      // It missed deltas while it was full: start it over from the whole state.
      client.behindSince = undefined;
      res.write(`data: ${JSON.stringify(this.options.model.full())}\n\n`);
    });
    res.on('close', () => {
      this.clients.delete(client);
      if (this.clients.size === 0) this.stopTimers();
    });
  }

  /** One delta to every browser that keeps up. */
  private flush(): void {
    const delta = this.options.model.delta();
    const now = this.options.clock.now();
    const line = delta ? `data: ${JSON.stringify(delta)}\n\n` : undefined;
    for (const client of [...this.clients]) {
      if (client.behindSince !== undefined) {
        if (now - client.behindSince > DASHBOARD_STALL_MS) client.res.destroy();
        continue;
      }
      if (!line) continue;
      if (client.res.writableNeedDrain) client.behindSince = now;
      else client.res.write(line);
    }
  }

  private report(req: IncomingMessage, res: ServerResponse): void {
    const declared = Number(req.headers['content-length'] ?? Number.NaN);
    if (declared > MAX_REPORT_BYTES) {
      sendText(res, 413, `report larger than ${MAX_REPORT_BYTES} bytes\n`, { connection: 'close' });
      req.destroy();
      return;
    }
    const parts: Buffer[] = [];
    let size = 0;
    let failed = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_REPORT_BYTES && !failed) {
        failed = true;
        sendText(res, 413, `report larger than ${MAX_REPORT_BYTES} bytes\n`, {
          connection: 'close',
        });
        req.destroy();
        return;
      }
      if (!failed) parts.push(chunk);
    });
    req.on('end', () => {
      if (failed) return;
      let report: PeerReport;
      try {
        let value: unknown;
        try {
          value = JSON.parse(Buffer.concat(parts).toString('utf8'));
        } catch {
          throw new ReportError('report: body is not JSON');
        }
        report = parseReport(value);
      } catch (err) {
        if (err instanceof ReportError) sendText(res, 400, `${err.message}\n`);
        else sendText(res, 500, 'internal error\n');
        return;
      }
      // A report names its sender by the port it claims: only a port that
      // announced from this very address, so no one can speak for a peer elsewhere.
      const host = unmapIPv4(req.socket.remoteAddress ?? '');
      if (!this.options.announced?.(host, report.port)) {
        sendText(
          res,
          403,
          `report for ${formatEndpoint(host, report.port)}: no announce from that address and port\n`,
        );
        return;
      }
      try {
        // The peer names us by the address it reached us at.
        this.options.model.addAlias(
          formatEndpoint(req.socket.localAddress, req.socket.localPort ?? 0),
        );
        this.options.model.applyReport(host, report);
      } catch (err) {
        if (err instanceof ReportError) sendText(res, 400, `${err.message}\n`);
        else sendText(res, 500, 'internal error\n');
        return;
      }
      res.writeHead(204, {
        [DASHBOARD_REPORT_HEADER]: String(
          this.clients.size > 0 ? DASHBOARD_REPORT_WATCHED_MS : DASHBOARD_REPORT_IDLE_MS,
        ),
      });
      res.end();
    });
  }
}

function escapeHtml(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
  );
}
