import { CLIENT_NAME } from '../constants.js';
import { TypedEmitter } from '../events/typed-emitter.js';
import { MetadataAssembly, MetadataRemoteError } from '../metadata-assembly.js';
import { type Metainfo, parseInfoDictionary } from '../metainfo.js';
import { listenPortOf } from '../peer-id.js';
import type { Timer, TimerClock } from '../time/clock.js';
import { withExtensionBit } from '../wire/extended.js';
import {
  decodeMetadataMessage,
  encodeMetadataMessage,
  MAX_METADATA_SIZE,
} from '../wire/metadata.js';
import { Connection } from './connection.js';
import type { OpenedSocket } from './open-connection.js';
import { PeerWire, type WireLimits } from './peer-wire.js';

/** How long a remote may take for its extended handshake, and then for each piece. */
export const DEFAULT_METADATA_PIECE_TIMEOUT_MS = 15_000;
/** Metadata pieces asked of one remote at once: 256 KiB. */
export const DEFAULT_METADATA_IN_FLIGHT = 16;

export type MetadataFetcherEvents = {
  /** A candidate's BitTorrent handshake is through. */
  connected: (from: string) => void;
  /** Its extended handshake offered `size` bytes of metadata; its pieces are being asked for. */
  requesting: (from: string, size: number, pieces: number) => void;
  /** A piece arrived and fitted. */
  piece: (from: string, piece: number, of: number, bytes: number) => void;
  /** That remote will not do: the reason, one line; the next candidate is dialled. */
  dropped: (from: string, reason: string) => void;
  /** The metadata is complete, its SHA-1 is the info-hash, and it parsed. */
  fetched: (from: string, size: number) => void;
};

export interface MetadataFetcherOptions {
  readonly infoHash: Uint8Array;
  /** Our peer id (swarmdrop's carries our listening port). */
  readonly peerId: Uint8Array;
  /**
   * The next candidate, dialled (TCP or µTP, MSE or not: the caller's
   * dialers), or undefined when there is none left: the fetch then fails.
   * A dial that throws is a candidate that failed; the next is asked for.
   */
  readonly dial: (signal: AbortSignal) => Promise<OpenedSocket | undefined>;
  readonly clock: TimerClock;
  readonly signal?: AbortSignal | undefined;
  /** Announce URL for the metainfo (a magnet link's `tr`). */
  readonly announce?: string | undefined;
  readonly maxMetadataSize?: number;
  readonly pieceTimeoutMs?: number;
  readonly maxInFlight?: number;
  readonly handshakeTimeoutMs?: number;
  readonly limits?: WireLimits | undefined;
}

export interface FetchedMetadata {
  readonly metainfo: Metainfo;
  /** The info dictionary, exactly the bytes whose SHA-1 is the info-hash. */
  readonly infoBytes: Buffer;
  /** Who sent it (a label: its listening address when known). */
  readonly from: string;
}

/**
 * Fetches the info dictionary of `infoHash` from peers (BEP 9): one
 * candidate at a time, from `dial`, until one gives all of it with the
 * right SHA-1. A candidate that cannot (no BEP 10, no ut_metadata, no or an
 * oversized `metadata_size`, a reject, a wrong or unasked piece, a wrong
 * hash, silence past the piece timeout, a closed connection) is dropped with
 * a `dropped` event and the next one dialled.
 *
 * The connection it got the metadata over is closed once the metadata is
 * in: it was opened without the torrent's geometry (there was none), so it
 * cannot carry chunks; the caller dials the swarm again with the metainfo,
 * which costs one handshake.
 */
export class MetadataFetcher extends TypedEmitter<MetadataFetcherEvents> {
  private readonly options: MetadataFetcherOptions;
  /** Set when the genuine metadata cannot be used: no other remote can help. */
  private fatal: string | undefined;

  constructor(options: MetadataFetcherOptions) {
    super();
    this.options = options;
  }

  async run(): Promise<FetchedMetadata> {
    const { signal } = this.options;
    const reasons: string[] = [];
    for (;;) {
      signal?.throwIfAborted();
      let opened: OpenedSocket | undefined;
      try {
        opened = await this.options.dial(signal ?? new AbortController().signal);
      } catch (err) {
        signal?.throwIfAborted();
        reasons.push(`dial failed: ${(err as Error).message}`);
        continue;
      }
      if (opened === undefined) {
        const last = reasons.slice(-3).join('; ');
        throw new Error(
          `no remote gave the metadata (${reasons.length} tried${last ? `: ${last}` : ''})`,
        );
      }
      const result = await this.attempt(opened);
      if ('metainfo' in result) return result;
      signal?.throwIfAborted();
      if (this.fatal !== undefined) throw new Error(this.fatal);
      reasons.push(result.reason);
    }
  }

  /** One candidate: its metadata, or why not. */
  private attempt(opened: OpenedSocket): Promise<FetchedMetadata | { reason: string }> {
    const o = this.options;
    const clock = o.clock;
    const timeoutMs = o.pieceTimeoutMs ?? DEFAULT_METADATA_PIECE_TIMEOUT_MS;
    const maxInFlight = o.maxInFlight ?? DEFAULT_METADATA_IN_FLIGHT;
    const wire = new PeerWire({
      socket: opened.socket,
      infoHash: o.infoHash,
      peerId: o.peerId,
      encryption: opened.encryption,
      transport: opened.transport,
      ...(opened.initial ? { initial: opened.initial } : {}),
      ...(o.limits ? { limits: o.limits } : {}),
      ...(o.handshakeTimeoutMs === undefined ? {} : { handshakeTimeoutMs: o.handshakeTimeoutMs }),
      clock,
      reserved: withExtensionBit(new Uint8Array(8)),
    });
    const connection = new Connection({
      wire,
      pieceCount: 0,
      localHas: { has: () => false },
      clock,
      extensions: {
        enabled: ['ut_metadata'],
        version: CLIENT_NAME,
        listenPort: listenPortOf(o.peerId),
      },
    });
    return new Promise((resolve) => {
      let assembly: MetadataAssembly | undefined;
      let timer: Timer | undefined;
      let settled = false;
      const onAbort = () => drop('aborted');
      o.signal?.addEventListener('abort', onAbort, { once: true });
      const finish = (result: FetchedMetadata | { reason: string }) => {
        if (settled) return;
        settled = true;
        timer?.cancel();
        o.signal?.removeEventListener('abort', onAbort);
        resolve(result);
      };
      const drop = (reason: string) => {
        if (settled) return;
        this.emit('dropped', connection.label, reason);
        connection.close(`metadata: ${reason}`);
        finish({ reason: `${connection.label}: ${reason}` });
      };
      const arm = (what: string) => {
        timer?.cancel();
        timer = clock.setTimeout(() => drop(`no ${what} within ${timeoutMs} ms`), timeoutMs);
      };
      const ask = () => {
        if (!assembly) return;
        for (const piece of assembly.take(maxInFlight))
          connection.sendExtended('ut_metadata', encodeMetadataMessage({ type: 'request', piece }));
      };
      connection.on('ready', () => {
        this.emit('connected', connection.label);
        if (!connection.extensionsActive) return drop('the remote does not offer BEP 10');
        arm('extended handshake');
      });
      connection.on('extendedHandshake', (remote) => {
        if (assembly) return; // an update; the size it started with holds
        if (!remote.ids.has('ut_metadata')) return drop('the remote does not offer ut_metadata');
        if (remote.metadataSize === undefined) return drop('the remote announced no metadata_size');
        try {
          assembly = new MetadataAssembly({
            infoHash: o.infoHash,
            size: remote.metadataSize,
            maxSize: o.maxMetadataSize ?? MAX_METADATA_SIZE,
          });
        } catch (err) {
          return drop((err as Error).message);
        }
        arm('metadata piece');
        this.emit('requesting', connection.label, assembly.size, assembly.pieces);
        ask();
      });
      connection.on('extended', (name, payload) => {
        if (name !== 'ut_metadata' || settled) return;
        let message: ReturnType<typeof decodeMetadataMessage>;
        try {
          message = decodeMetadataMessage(payload);
        } catch (err) {
          return drop((err as Error).message);
        }
        if (!message || message.type === 'request') return; // we serve nothing here
        if (!assembly) return drop('ut_metadata before its extended handshake');
        if (message.type === 'reject') return drop(`rejected metadata piece ${message.piece}`);
        let complete: boolean;
        try {
          complete = assembly.accept(message.piece, message.totalSize, message.data);
        } catch (err) {
          if (err instanceof MetadataRemoteError) return drop(err.message);
          throw err;
        }
        this.emit('piece', connection.label, message.piece, assembly.pieces, message.data.length);
        if (!complete) {
          arm('metadata piece');
          ask();
          return;
        }
        let infoBytes: Buffer;
        try {
          infoBytes = Buffer.from(assembly.verified());
        } catch (err) {
          return drop((err as Error).message);
        }
        let metainfo: Metainfo;
        try {
          metainfo = parseInfoDictionary(infoBytes, o.announce);
        } catch (err) {
          // Its SHA-1 is the info-hash: it is the torrent, and no other remote has another.
          const reason = `the metadata is not a torrent we take: ${(err as Error).message}`;
          drop(reason);
          this.fatal = reason;
          return;
        }
        if (!metainfo.infoHash.equals(Buffer.from(o.infoHash)))
          return drop('the metadata carries bytes past its dictionary');
        const from = connection.label;
        this.emit('fetched', from, infoBytes.length);
        connection.close('metadata fetched');
        finish({ metainfo, infoBytes, from });
      });
      connection.on('closed', (close) => {
        if (settled) return;
        this.emit('dropped', connection.label, close.reason);
        finish({ reason: `${connection.label}: ${close.reason}` });
      });
    });
  }
}

/** Runs a MetadataFetcher: the info dictionary of `infoHash`, from peers. */
export function fetchMetadata(options: MetadataFetcherOptions): Promise<FetchedMetadata> {
  return new MetadataFetcher(options).run();
}
